"""Forward + backward time of ADNCE, DCL and HCL relative to NT-Xent InfoNCE.

B = 512 pairs (2B = 1024 embeddings, dim 128), the (2B, 2B) NT-Xent layout, float32. Every
repeat times one forward+backward of each loss on the same embeddings in an interleaved,
rotating order (so drift and cache effects hit all losses alike); the report is the median
per loss and the ratio of medians to NT-Xent. Target: ADNCE / NT-Xent ≤ 1.10.

``adnce_unfused`` is the first implementation (boolean mask, out-of-place weight ops), kept
here as the "before" of the optimisation; it must agree with :func:`adnce` (checked at start).

Run:  OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_losses.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable

import torch

from estimators.losses import adnce, dcl, hcl, nt_xent_from_sim, pair_similarity

LossFn = Callable[[torch.Tensor], torch.Tensor]


def _adnce_unfused(sim: torch.Tensor, tau: float, mu: float, sigma: float) -> torch.Tensor:
    """The first, straightforward ADNCE (image form) kept as the "before" of the optimisation:
    an (R, M) boolean mask, out-of-place weight ops, masked_fill and index_put with grad."""
    n = sim.shape[0]
    rows = torch.arange(n)
    pos = (rows + n // 2) % n
    neg = torch.ones(sim.shape, dtype=torch.bool)
    neg[rows, pos] = False
    neg[rows, rows] = False
    with torch.no_grad():
        logg = (-((sim - mu) ** 2) / (2.0 * sigma * sigma)).masked_fill(~neg, -math.inf)
        cnt = neg.sum(dim=1, keepdim=True).to(sim.dtype)
        logw = logg - (torch.logsumexp(logg, dim=1, keepdim=True) - torch.log(cnt))
    pos_logit = sim[rows, pos] / tau
    logits = (sim / tau + logw).masked_fill(~neg, -math.inf)
    logits = logits.index_put((rows, pos), pos_logit)
    return (torch.logsumexp(logits, dim=1) - pos_logit).mean()


def _step(fn: LossFn, z1: torch.Tensor, z2: torch.Tensor, device: torch.device) -> float:
    a = z1.detach().requires_grad_(True)
    b = z2.detach().requires_grad_(True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss = fn(pair_similarity(a, b))
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    z1 = torch.randn(args.batch, args.dim, generator=gen).to(device)
    z2 = (z1.cpu() + 0.5 * torch.randn(args.batch, args.dim, generator=gen)).to(device)
    tau = 0.4
    losses: dict[str, LossFn] = {
        "nt_xent": lambda s: nt_xent_from_sim(s, tau),
        "adnce": lambda s: adnce(s, tau, mu=0.7, sigma=0.5),
        "adnce_unfused": lambda s: _adnce_unfused(s, tau, 0.7, 0.5),
        "dcl": lambda s: dcl(s, tau, tau_plus=0.1),
        "hcl": lambda s: hcl(s, tau, tau_plus=0.1, beta=1.0),
    }
    names = list(losses)
    sim0 = pair_similarity(z1, z2)
    if abs(float(losses["adnce"](sim0)) - float(losses["adnce_unfused"](sim0))) > 1e-4:
        raise SystemExit("adnce and adnce_unfused disagree")
    for name in names:  # warm-up
        for _ in range(3):
            _step(losses[name], z1, z2, device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            times[name].append(_step(losses[name], z1, z2, device))
    med = {n: statistics.median(t) for n, t in times.items()}
    out = sys.stdout
    out.write(
        f"device={device} B={args.batch} (2B={2 * args.batch}) dim={args.dim} "
        f"repeats={args.repeats} threads={torch.get_num_threads()} torch={torch.__version__}\n"
    )
    for n in names:
        ratio_n = med[n] / med["nt_xent"]
        out.write(f"{n:14s} median {med[n] * 1e3:8.2f} ms   ratio to nt_xent {ratio_n:.3f}\n")
    ratio = med["adnce"] / med["nt_xent"]
    before = med["adnce_unfused"] / med["nt_xent"]
    out.write(f"ADNCE before optimisation (unfused) / NT-Xent = {before:.3f}\n")
    out.write(
        f"ADNCE / NT-Xent = {ratio:.3f} (target <= 1.10: {'OK' if ratio <= 1.10 else 'OVER'})\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
