"""Does the temperature advisor help? Transfer a good τ across batch sizes by its KL radius.

CIFAR-10 (stratified subset, small CNN, CPU). Per seed:

1. train InfoNCE at batch 256 with the reference τ (0.2, the best τ at batch 256 of
   ``experiments/results/README.md``), keep its checkpoint;
2. the radius it implies: η_ref = mean over the 512 anchors of a batch of 256 pairs of
   KL(q_τ‖q0) on that encoder (``validation.advisor.advise_from_checkpoint``);
3. the advisor's τ at batch 64 and 1024: the τ whose mean radius over a batch of that size
   (same encoder) equals η_ref;
4. train at batch 64 and 1024 with the advised τ and with each τ of the sweep {0.1, 0.2, 0.5}
   (0.2 = keeping τ fixed) and compare the final kNN top-1.

Every training run's record (the ``cldro train --json`` format) goes to
``OUT/<name>.json``, the advice to ``OUT/advice-s<seed>.json``; finished pieces are skipped, so
the script can be restarted. ``--summarize`` only rebuilds ``OUT/README.md`` and
``OUT/summary.json``.

usage: OMP_WAIT_POLICY=PASSIVE nice python experiments/run_tau_advisor.py [--seeds 0 1 2]
       [--subset 5000] [--epochs 4] [--out experiments/results/tau-advisor] [--summarize]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from validation.advisor import advise_from_checkpoint
from validation.atomic import write_json, write_text
from validation.training.loop import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
#: a good τ at batch 256 (experiments/results/README.md: 0.2 beats 0.5 over 3 seeds, 10k subset)
TAU_REF = 0.2
#: the batch size at which the reference τ is good
BATCH_REF = 256
#: batch sizes the advisor transfers the radius to
BATCHES = (64, 1024)
#: the small sweep (includes TAU_REF: "keep τ fixed")
SWEEP = (0.1, 0.2, 0.5)
#: heading of the hand-written section of README.md, kept when the tables are rebuilt
NOTES = "## Reading (hand-written)"


@dataclass(frozen=True)
class Run:
    name: str
    batch_size: int
    temperature: float
    seed: int


def config(run: Run, args: argparse.Namespace, checkpoint: str | None = None) -> TrainConfig:
    return TrainConfig(
        dataset="cifar10",
        data=None if args.data is None else str(args.data),
        encoder="cnn-small",
        loss="infonce",
        temperature=run.temperature,
        epochs=args.epochs,
        batch_size=run.batch_size,
        lr=2e-3,
        subset=args.subset,
        test_subset=args.subset // 5,
        seed=run.seed,
        device="cpu",
        probe=False,
        radius_every=4,
        radius_anchors=64,
        checkpoint=checkpoint,
        cache_dir=args.cache,
    )


def _train(run: Run, args: argparse.Namespace, checkpoint: str | None = None) -> dict[str, Any]:
    target = args.out / f"{run.name}.json"
    if target.is_file():
        rec: dict[str, Any] = json.loads(target.read_text())
        return rec
    t0 = time.perf_counter()
    result = train(config(run, args, checkpoint))
    rec = result.to_dict()
    write_json(target, rec)
    sys.stderr.write(
        f"{run.name}: kNN {result.knn_top1[0]:.1f} → {result.knn_top1[-1]:.1f}, "
        f"{time.perf_counter() - t0:.0f} s\n"
    )
    return rec


def _advice(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    target = args.out / f"advice-s{seed}.json"
    if target.is_file():
        rec: dict[str, Any] = json.loads(target.read_text())
        return rec
    ckpt = Path(args.cache) / f"tau-advisor-ref-s{seed}.pt"
    ref = Run(f"ref-b{BATCH_REF}-t{TAU_REF}-s{seed}", BATCH_REF, TAU_REF, seed)
    if (args.out / f"{ref.name}.json").is_file() and not ckpt.is_file():
        (args.out / f"{ref.name}.json").unlink()  # the checkpoint is gone: train again
    _train(ref, args, checkpoint=str(ckpt))
    kw: dict[str, Any] = {"seed": seed, "cache_dir": args.cache}
    at_ref = advise_from_checkpoint(ckpt, temperature=TAU_REF, batch_size=BATCH_REF, **kw)
    rec = {"seed": seed, "tau_ref": TAU_REF, "batch_ref": BATCH_REF, "eta_ref": at_ref.mean_radius}
    for b in BATCHES:
        adv = advise_from_checkpoint(ckpt, radius=at_ref.mean_radius, batch_size=b, **kw)
        law = float(np.sqrt(np.mean(adv.variance) / (2 * at_ref.mean_radius)))
        rec[str(b)] = {
            "tau": adv.matched_temperature,
            "tau_quantiles": dict(
                zip(map(str, adv.quantile_levels), adv.quantiles.tolist(), strict=True)
            ),
            "tau_law_mean_variance": law,
            "notes": list(adv.notes),
        }
    write_json(target, rec)
    return rec


def _ms(values: list[float], digits: int = 1) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (n=1)"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f} (n={len(values)})"


def _final(out: Path, name: str) -> float | None:
    p = out / f"{name}.json"
    return float(json.loads(p.read_text())["knn_top1"][-1]) if p.is_file() else None


def _paired(a: dict[int, float | None], b: dict[int, float | None]) -> list[float]:
    """a[s] − b[s] over the seeds where both runs finished."""
    return [x - y for s, x in a.items() if x is not None and (y := b.get(s)) is not None]


def _batch_rows(out: Path, b: int, advice: dict[int, Any]) -> tuple[list[str], dict[str, Any]]:
    seeds = sorted(advice)
    taus = [float(advice[s][str(b)]["tau"]) for s in seeds]
    rows = {f"{t}": {s: _final(out, f"b{b}-t{t}-s{s}") for s in seeds} for t in SWEEP}
    rows["advised"] = {s: _final(out, f"b{b}-advised-s{s}") for s in seeds}
    fixed = rows[f"{TAU_REF}"]

    def done(r: dict[int, float | None]) -> list[float]:
        return [v for v in r.values() if v is not None]

    means = {k: float(np.mean(done(rows[k]))) if done(rows[k]) else -np.inf for k in rows}
    best = max(map(str, SWEEP), key=lambda k: means[k])
    lines = []
    for label, r in rows.items():
        tau_txt = f"advised: {_ms(taus, 3)}" if label == "advised" else label
        lines.append(f"| {b} | {tau_txt} | {_ms(done(r))} | {_ms(_paired(r, fixed))} |")
    gap = _paired(rows[best], rows["advised"])
    lines.append(f"| {b} | best of sweep (τ = {best}) − advised | | {_ms(gap)} |")
    summary = {
        "advised_tau": taus,
        "knn_final": {k: [r[s] for s in seeds] for k, r in rows.items()},
        "best_sweep_tau": float(best),
        "best_minus_advised": gap,
        "advised_minus_fixed": _paired(rows["advised"], fixed),
    }
    return lines, summary


def summarize(out: Path, args: argparse.Namespace) -> str:
    advice = {}
    for p in sorted(out.glob("advice-s*.json")):
        rec = json.loads(p.read_text())
        advice[int(rec["seed"])] = rec
    seeds = sorted(advice)
    ref = [_final(out, f"ref-b{BATCH_REF}-t{TAU_REF}-s{s}") for s in seeds]
    summary: dict[str, Any] = {
        "seeds": seeds,
        "subset": args.subset,
        "epochs": args.epochs,
        "eta_ref": [advice[s]["eta_ref"] for s in seeds],
        "knn_ref": ref,
    }
    lines = [
        "# Temperature advisor: transferring τ across batch sizes by its KL radius",
        "",
        "Produced by `experiments/run_tau_advisor.py` "
        f"(CIFAR-10, {args.subset} training / {args.subset // 5} test images, stratified and "
        f"seeded; `cnn-small`; InfoNCE; AdamW lr 2e-3, cosine; {args.epochs} epochs at every "
        "batch size; kNN k = 200 on backbone features). Reference: τ = "
        f"{TAU_REF} at batch {BATCH_REF}; η_ref = mean KL(q_τ‖q0) over the 512 anchors of one "
        "batch on the trained reference encoder; the advised τ at batch B makes the mean "
        "radius over a batch of B pairs (2B − 2 negatives per anchor) equal η_ref on the same "
        "encoder. kNN top-1 after training; mean ± sample std over seeds; paired = same seed.",
        "",
        "η_ref per seed: "
        + ", ".join(f"{advice[s]['eta_ref']:.4f}" for s in seeds)
        + f"; kNN at batch {BATCH_REF}, τ = {TAU_REF}: "
        + _ms([r for r in ref if r is not None]),
        "",
        f"| batch | τ | kNN top-1 (%) | paired − fixed τ = {TAU_REF} |",
        "|---|---|---|---|",
    ]
    for b in BATCHES:
        rows, summary[str(b)] = _batch_rows(out, b, advice)
        lines += rows
    text = "\n".join(lines) + "\n"
    readme = out / "README.md"
    if readme.is_file() and NOTES in readme.read_text():  # keep the hand-written reading
        text += "\n" + NOTES + readme.read_text().split(NOTES, 1)[1]
    write_text(readme, text)
    write_json(out / "summary.json", summary)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--subset", type=int, default=5000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", type=Path, default=None, help="CIFAR npz (default: shared)")
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "tau-advisor")
    ap.add_argument("--cache", default="/tmp/cldro-cache")
    ap.add_argument("--summarize", action="store_true", help="only rebuild README.md")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.summarize:
        t0 = time.perf_counter()
        for seed in args.seeds:
            advice = _advice(seed, args)
            for b in BATCHES:
                _train(Run(f"b{b}-advised-s{seed}", b, advice[str(b)]["tau"], seed), args)
                for tau in SWEEP:
                    _train(Run(f"b{b}-t{tau}-s{seed}", b, tau, seed), args)
            summarize(args.out, args)
        sys.stderr.write(f"total {time.perf_counter() - t0:.0f} s\n")
    sys.stdout.write(summarize(args.out, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
