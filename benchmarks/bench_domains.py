"""Time per training step (two views, NT-Xent, forward + backward + Adam) of the sentence and
graph domains on this machine, and the time of their setup and evaluation.

Needs the real data (``make data``); the MiniLM row needs the ``text`` extra. The numbers go to
``docs/domains.md``.

Run: ``OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_domains.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from estimators.losses import nt_xent
from validation.training.domain import TrainingDomain
from validation.training.domains.gin import MoleculeDomain
from validation.training.domains.molecules import MoleculeSet, load_molecules
from validation.training.domains.sentences import SentenceDomain
from validation.training.domains.text import minilm_available
from validation.training.domains.wordnet import load_wordnet, make_tasks
from validation.training.loop import projections

#: τ of the timing runs (the time does not depend on it)
TAU = 0.1


def _step_time(domain: TrainingDomain, batch: int, steps: int) -> float:
    """Median wall time (s) of one training step, after one warm-up step."""
    model = domain.encoder
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        index = torch.randperm(domain.train_size, generator=gen)[:batch]
        z = projections(model, domain.views(index, slice(None), gen))
        loss = nt_xent(z[:batch], z[batch:], TAU)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _eval_time(domain: TrainingDomain) -> float:
    start = time.perf_counter()
    domain.evaluate(domain.encoder)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--no-minilm", action="store_true", help="skip the pretrained encoder")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    start = time.perf_counter()
    tasks = make_tasks(load_wordnet(), seed=0)
    sentences = SentenceDomain(tasks, encoder="small")
    print(f"wordnet setup (parse, split, tokenize): {time.perf_counter() - start:.1f} s")
    rows: list[tuple[str, TrainingDomain, int]]
    rows = [(f"wordnet small B={b}", sentences, b) for b in (64, 128)]
    if minilm_available() and not args.no_minilm:
        minilm = SentenceDomain(tasks, encoder="minilm")
        rows += [(f"wordnet minilm B={b}", minilm, b) for b in (32,)]
    start = time.perf_counter()
    molecules = MoleculeDomain(MoleculeSet(load_molecules()))
    print(f"molecules setup (parse, pack): {time.perf_counter() - start:.1f} s")
    rows += [(f"molecules gin B={b}", molecules, b) for b in (128, 256)]
    for name, domain, batch in rows:
        print(f"{name:24s} {_step_time(domain, batch, args.steps):7.3f} s/step")
    evaluated: tuple[tuple[str, TrainingDomain], ...] = (
        ("wordnet small", sentences),
        ("molecules gin", molecules),
    )
    for name, dom in evaluated:
        print(f"{name:24s} evaluation {_eval_time(dom):6.1f} s")


if __name__ == "__main__":
    main()
