#!/usr/bin/env python3
"""ResNet-18 on all of CIFAR-10 with InfoNCE and ADNCE (and the Table-1 "unbiased" InfoNCE run
if time is left) under a wall-clock budget, on one GPU.

usage: python3 scripts/gpu_run.py --budget SECONDS [--out results/gpu] [--epochs 30]
                                  [--batch-size 512] [--table1] [--compile] [--smoke]

Every run is a ``cldro train`` run (``validation.training.loop.train``) whose record is written
atomically to ``OUT/<name>.json`` after EVERY epoch, so a run cut short keeps what it has;
checkpoints go to ``OUT/checkpoints/`` (every ``--checkpoint-every`` epochs and the last) and a
run restarts from its checkpoint. The budget is split between the runs still to do; a run stops
after the epoch when the next one would not fit in its share, and an alarm at the end of the
whole budget stops whatever is running (the records already written stay). ``OUT/run.json``
says what ran, on which hardware, with which torch, and how each run ended. One line per epoch
goes to stderr.

Independent of an installed ``cldro`` command (this checkout is put first on ``sys.path``);
no cvxpy needed. ``--smoke``: tiny sizes on the CPU to test this script.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from validation.atomic import write_json  # noqa: E402
from validation.training.loop import TrainConfig, TrainResult, train  # noqa: E402

#: the authors' CIFAR-10 settings (τ, ADNCE μ and σ) and our seed
BASE = TrainConfig(
    dataset="cifar10",
    encoder="resnet18",
    temperature=0.4,
    mu=0.7,
    sigma=0.5,
    lr=1e-3,
    weight_decay=1e-6,
    seed=2023,
    radius_every=20,
    radius_anchors=64,
    log_every=20,
    knn_k=200,
    probe=True,
)
#: seconds kept back at the end of the budget for the last record and the summary
RESERVE_S = 20.0


class BudgetSpent(BaseException):
    """Raised (by the epoch guard or the alarm) when the wall-clock budget is spent."""


@dataclass(frozen=True)
class Run:
    """One training run of the plan."""

    name: str
    config: TrainConfig


def plan(args: argparse.Namespace, out: Path) -> list[Run]:
    """InfoNCE and ADNCE, then (``--table1``) InfoNCE with the unbiased negatives."""
    base = replace(
        BASE,
        epochs=args.epochs,
        batch_size=args.batch_size,
        device="cuda",
        compile=args.compile,
        checkpoint_every=args.checkpoint_every,
        resume=True,
        encoder=args.encoder,
    )
    if args.smoke:
        base = replace(
            base,
            subset=256,
            test_subset=64,
            epochs=2,
            batch_size=32,
            device="cpu",
            radius_every=4,
            log_every=4,
            knn_k=20,
            compile=False,
        )
    specs = [("infonce", "all"), ("adnce", "all")]
    if args.table1:
        specs.append(("infonce", "unbiased"))
    runs = []
    for loss, negatives in specs:
        name = f"{args.encoder}-{loss}" + ("-unbiased" if negatives == "unbiased" else "")
        ckpt = out / "checkpoints" / f"{name}.pt"
        cfg = replace(base, loss=loss, negatives=negatives, checkpoint=str(ckpt))
        runs.append(Run(name, cfg))
    return runs


def _log(text: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def run_one(run: Run, out: Path, deadline: float) -> str:
    """Train ``run`` until done or its share of the budget ends; returns how it ended."""
    started = time.monotonic()
    record = out / f"{run.name}.json"

    def on_epoch(so_far: TrainResult) -> bool:
        write_json(record, so_far.to_dict())
        t = so_far.epoch_times[-1]
        _log(
            f"{run.name} epoch {so_far.epochs_done}/{run.config.epochs}: loss "
            f"{so_far.loss_curve[-1]:.4f} kNN {so_far.knn_top1[-1]:.2f} % train "
            f"{t.train_seconds:.1f} s eval {t.eval_seconds:.1f} s"
        )
        slowest = max(e.train_seconds + e.eval_seconds for e in so_far.epoch_times)
        return time.monotonic() + slowest > deadline  # the next epoch would not fit

    _log(f"{run.name}: start ({run.config.epochs} epochs, {deadline - started:.0f} s share)")
    result = train(run.config, on_epoch=on_epoch)
    write_json(record, result.to_dict())
    return "done" if result.epochs_done == run.config.epochs else "budget"


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise BudgetSpent


def draw_figure(out: Path, names: list[str]) -> None:
    """``OUT/gpu-knn.png``: kNN per epoch of every finished record, implied radius below."""
    from validation.plotting import plot_training_runs

    paths = {n: out / f"{n}.json" for n in names}
    records = {n: json.loads(p.read_text()) for n, p in paths.items() if p.exists()}
    if records:
        _log(f"figure: {plot_training_runs(records, out / 'gpu-knn.png')}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, required=True, help="wall-clock seconds for all")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "gpu")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--encoder", default="resnet18", help="resnet18 (or cnn-small for tests)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--table1", action="store_true", help="add InfoNCE with unbiased negatives")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--smoke", action="store_true", help="tiny CPU run to test this script")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    end = t0 + args.budget - RESERVE_S
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not args.smoke and not torch.cuda.is_available():
        _log("no CUDA device: nothing to do (use --smoke to test on the CPU)")
        return 2
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(end - t0)))
    runs = plan(args, out)
    ended: dict[str, str] = {}
    try:
        for k, run in enumerate(runs):
            share = (end - time.monotonic()) / (len(runs) - k)
            ended[run.name] = run_one(run, out, time.monotonic() + share)
    except BudgetSpent:
        ended.setdefault(runs[len(ended)].name, "alarm")
    finally:
        signal.alarm(0)
    summary = {
        "budget_seconds": args.budget,
        "wall_seconds": time.monotonic() - t0,
        "runs": ended,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "smoke": args.smoke,
    }
    write_json(out / "run.json", summary)
    draw_figure(out, [r.name for r in runs])
    _log(f"done in {summary['wall_seconds']:.0f} s: {json.dumps(ended)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
