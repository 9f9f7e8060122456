"""cldro's φ-MI against the public "Beyond Normal" MI benchmark (package ``benchmark-mi``).

Tasks are sampled with the package's own samplers (n = 5000 by default, seeds given), and
every estimator sees the same samples: cldro's :class:`estimators.phi_mi.PhiMI` (KL for every
task; χ² and squared Hellinger where the task has a Gaussian core whose canonical
correlations are known, against their closed forms, :func:`estimators.synthetic.gaussian_phi_mi`)
and the package's KSG, CCA, InfoNCE and MINE.

``benchmark-mi`` 0.1.3 pins numpy < 2, pandas < 2, pydantic < 2 and JAX < 0.4.34, so it lives in
its own environment (the ``bench`` extra of pyproject.toml declares it); the stages are:

    BMI_PY sample    --out DIR [--n 5000] [--seeds 0 1 2]   # in the benchmark-mi environment
    BMI_PY baselines --samples DIR [--neural]   # idem: KSG, CCA; --neural: InfoNCE, MINE
    python cldro     --samples DIR [--threads 2] [--folds K] [--specs kl] [--gaussian-core]
    python table     --samples DIR                          # markdown table (README)

Each stage writes JSON next to the samples; ``table`` prints mean absolute error, worst task
and median time per estimator, then one row per task. The sample and baseline stages import
nothing from this project (so they run in the other environment).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

#: the task families of issue 10 (``benchmark-mi`` task ids), with the canonical correlations
#: of the Gaussian core where one is known in closed form ("pair": two equal correlations
#: recovered from the KL truth I = −log(1 − ρ²); "one": the bivariate normal, ρ = 0.75)
TASKS: dict[str, str | None] = {
    "1v1-normal-0.75": "one",
    "normal_cdf-1v1-normal-0.75": "one",
    "1v1-additive-0.75": None,
    "1v1-bimodal-0.75": None,
    "wiggly-1v1-normal-0.75": "one",
    "half_cube-1v1-normal-0.75": "one",
    "student-identity-1-1-1": None,
    "swissroll_x-normal_cdf-1v1-normal-0.75": None,
    "multinormal-dense-5-5-0.5": None,
    "multinormal-dense-25-25-0.5": None,
    "multinormal-sparse-5-5-2-2.0": "pair",
    "multinormal-sparse-25-25-2-2.0": "pair",
    "half_cube-multinormal-sparse-25-25-2-2.0": "pair",
    "spiral-multinormal-sparse-5-5-2-2.0": "pair",
    "student-identity-3-3-3": None,
}
#: tasks that are a monotone per-variable warp of a Gaussian (the interval's coverage target)
GAUSSIAN_CORE = frozenset(
    t for t, kind in TASKS.items() if kind is not None and not t.startswith("spiral")
) | {"multinormal-dense-5-5-0.5", "multinormal-dense-25-25-0.5"}
#: correlation of the bivariate-normal core of the 1v1 tasks (benchmark-mi's task_list.py)
ONE_RHO = 0.75
PHI_SPECS = ("chi2", "hellinger")


def _sample(args: argparse.Namespace) -> None:
    import numpy as np
    from bmi.benchmark import BENCHMARK_TASKS

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    missing = [t for t in TASKS if t not in BENCHMARK_TASKS]
    if missing:
        sys.exit(f"tasks not in this benchmark-mi version: {missing}")
    meta = {}
    for task_id in TASKS:
        task = BENCHMARK_TASKS[task_id]
        for seed in args.seeds:
            x, y = task.sample(args.n, seed=seed)
            np.savez(out / f"{task_id}__{seed}.npz", x=np.asarray(x), y=np.asarray(y))
        meta[task_id] = {"kl": float(task.mutual_information), "name": task.name}
    (out / "tasks.json").write_text(json.dumps({"n": args.n, "seeds": args.seeds, "tasks": meta}))


def _baselines(args: argparse.Namespace) -> None:
    import bmi
    import numpy as np

    samples = Path(args.samples)
    meta = json.loads((samples / "tasks.json").read_text())
    estimators = {
        "KSG": lambda: bmi.estimators.KSGEnsembleFirstEstimator(neighborhoods=(5,)),
        "CCA": lambda: bmi.estimators.CCAMutualInformationEstimator(),
    }
    if args.neural:  # a separate stage and file: ~10^4 training steps each
        estimators.clear()
        estimators["InfoNCE"] = lambda: bmi.estimators.InfoNCEEstimator(verbose=False)
        estimators["MINE"] = lambda: bmi.estimators.MINEEstimator(verbose=False)
    out_name = "baselines_neural.json" if args.neural else "baselines.json"
    rows = []
    for task_id in meta["tasks"]:
        for seed in meta["seeds"]:
            data = np.load(samples / f"{task_id}__{seed}.npz")
            for name, make in estimators.items():
                start = time.perf_counter()
                value = float(make().estimate(data["x"], data["y"]))
                rows.append(_row(task_id, seed, name, "kl", value, start))
                print(rows[-1], flush=True)
                (samples / out_name).write_text(json.dumps(rows))  # partial runs keep rows


def _row(task: str, seed: int, name: str, spec: str, value: float, start: float) -> dict[str, Any]:
    return {
        "task": task,
        "seed": seed,
        "estimator": name,
        "divergence": spec,
        "estimate": value,
        "seconds": time.perf_counter() - start,
    }


def _core_rhos(kind: str | None, kl: float) -> list[float] | None:
    if kind == "one":
        return [ONE_RHO]
    if kind == "pair":
        return [math.sqrt(-math.expm1(-kl))] * 2  # I = 2 · (−½ log(1 − ρ²))
    return None


def _cldro(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from estimators.phi_mi import PhiMI

    torch.set_num_threads(args.threads)
    samples = Path(args.samples)
    meta = json.loads((samples / "tasks.json").read_text())
    name = "cldro" if args.folds == 1 else f"cldro-cv{args.folds}"
    rows = []
    for task_id, info in meta["tasks"].items():
        if args.gaussian_core and task_id not in GAUSSIAN_CORE:
            continue
        specs = ("kl", *PHI_SPECS) if _core_rhos(TASKS.get(task_id), info["kl"]) else ("kl",)
        for seed in meta["seeds"]:
            data = np.load(samples / f"{task_id}__{seed}.npz")
            for spec in (s for s in specs if args.specs is None or s in args.specs):
                start = time.perf_counter()
                est = PhiMI(divergence=spec, seed=seed, folds=args.folds).fit(data["x"], data["y"])
                row = _row(task_id, seed, name, spec, est.estimate_, start)
                row.update(ci=list(est.ci_), valid=est.valid_, warnings=list(est.warnings_))
                rows.append(row)
                print(row, flush=True)
                (samples / f"{name}.json").write_text(json.dumps(rows))  # partial runs keep rows


def _truth(task_id: str, spec: str, meta: dict[str, Any]) -> float | None:
    kl = float(meta["tasks"][task_id]["kl"])
    if spec == "kl":
        return kl
    rhos = _core_rhos(TASKS.get(task_id), kl)
    if rhos is None:
        return None
    from estimators.synthetic import gaussian_phi_mi

    return float(gaussian_phi_mi(rhos, spec).value)


def _coverage(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Share of (task, seed) rows whose interval holds the truth: Gaussian
    cores (:data:`GAUSSIAN_CORE`) and all tasks; empty for estimators without intervals."""
    parts = []
    for label, keep in (("Gaussian core", GAUSSIAN_CORE), ("all", set(TASKS))):
        hits = [
            r["ci"][0] <= _truth(r["task"], r["divergence"], meta) <= r["ci"][1]  # type: ignore[operator]
            for r in rows
            if "ci" in r and r["task"] in keep
        ]
        if hits:
            parts.append(f"{label} {sum(hits)}/{len(hits)}")
    return ", ".join(parts)


def _table(args: argparse.Namespace) -> None:
    samples = Path(args.samples)
    meta = json.loads((samples / "tasks.json").read_text())
    rows = []
    for path in sorted(samples.glob("*.json")):
        if path.name != "tasks.json":
            rows += json.loads(path.read_text())
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        truth = _truth(r["task"], r["divergence"], meta)
        if truth is not None:
            r["error"] = abs(r["estimate"] - truth) if math.isfinite(r["estimate"]) else math.inf
            groups.setdefault((r["estimator"], r["divergence"]), []).append(r)
    print(f"n = {meta['n']}, seeds {meta['seeds']}\n")
    print("| estimator | φ | mean abs error | worst task (abs error) | median s | CI covers |")
    print("|---|---|---|---|---|---|")
    for (name, spec), rs in sorted(groups.items()):
        worst = max(rs, key=lambda r: r["error"])
        med = statistics.median(r["seconds"] for r in rs)
        mae = statistics.fmean(r["error"] for r in rs)
        print(
            f"| {name} | {spec} | {mae:.3f} | {worst['task']} ({worst['error']:.3f}) | {med:.1f} "
            f"| {_coverage(rs, meta)} |"
        )
    print("\n| task | φ | truth | " + " | ".join(sorted({k[0] for k in groups})) + " |")
    names = sorted({k[0] for k in groups})
    print("|---|---|---|" + "---|" * len(names))
    for task_id in meta["tasks"]:
        for spec in ("kl", *PHI_SPECS):
            truth = _truth(task_id, spec, meta)
            cells = []
            for name in names:
                vals = [r["estimate"] for r in groups.get((name, spec), []) if r["task"] == task_id]
                cells.append(f"{statistics.fmean(vals):.3f}" if vals else "")
            if truth is not None and any(cells):
                print(f"| {task_id} | {spec} | {truth:.3f} | " + " | ".join(cells) + " |")


def main() -> None:
    """Parse the stage and run it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="stage")
    p = sub.add_parser("sample")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p = sub.add_parser("baselines")
    p.add_argument("--samples", required=True)
    p.add_argument("--neural", action="store_true", help="InfoNCE and MINE instead (slow)")
    p = sub.add_parser("cldro")
    p.add_argument("--samples", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--folds", type=int, default=1, help="PhiMI(folds=...): cross-fitting")
    p.add_argument("--specs", nargs="+", default=None, help="only these φ (default: all)")
    p.add_argument("--gaussian-core", action="store_true", help="only GAUSSIAN_CORE tasks")
    p = sub.add_parser("table")
    p.add_argument("--samples", required=True)
    args = parser.parse_args()
    if args.stage is None:  # `make bench` runs every benchmark bare: this one runs by stage
        parser.print_help()
        return
    {"sample": _sample, "baselines": _baselines, "cldro": _cldro, "table": _table}[args.stage](args)


if __name__ == "__main__":
    main()
