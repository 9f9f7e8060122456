"""Benchmark: the cvxpy primal worst case against the dual, timed in the same process.

1. KL at N = 10⁵ (f ~ N(0, 1), uniform q0, η = 0.1): primal time, dual time, their ratio and the
   relative error of the primal value on V − μ (targets: ≤ 4 s, ≤ 1e-8).
2. Robustness sweep: KL, N = 10⁴, 20 radii in logspace(1e-3, 1), three seeds (60 problems):
   failures after the fallback chain (target 0), how many needed a fallback, the largest errors
   of value, q and multiplier against the dual, and the time ratio primal/dual.

Usage: ``python benchmarks/bench_worst_case.py [--quick]`` (``--quick``: N = 10⁴ and a 20-problem
sweep at N = 10³).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from dro_theory.duals import worst_case_dual
from dro_theory.errors import DROSolveError
from dro_theory.worst_case import worst_case, worst_case_sweep


def _errors(primal, dual, mu: float) -> tuple[float, float, float]:
    value = abs(float(primal.value) - float(dual.value)) / abs(float(dual.value) - mu)
    q_l1 = float(np.abs(np.asarray(primal.q) - np.asarray(dual.q)).sum())
    mult = abs(float(primal.multiplier) / float(dual.multiplier) - 1.0)
    return value, q_l1, mult


def single(n: int, eta: float) -> None:
    f = np.random.default_rng(0).normal(size=n)
    mu = float(f.mean())
    worst_case_dual(f, "kl", eta)  # warm the dual's imports
    t0 = time.perf_counter()
    worst_case(f[:100], "kl", eta)  # import cvxpy and warm its first compile (not timed below)
    print(f"[0] cvxpy import + first small solve: {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    dual = worst_case_dual(f, "kl", eta)
    t_dual = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    primal = worst_case(f, "kl", eta)
    t_primal, cpu_primal = time.perf_counter() - t0, time.process_time() - c0
    err_v, err_q, err_m = _errors(primal, dual, mu)
    print(f"[1] KL primal, N = {n}, eta = {eta}")
    print(
        f"    primal {t_primal:.3f} s wall, {cpu_primal:.3f} s CPU ({primal.solver}, "
        f"{primal.status})  dual {t_dual:.4f} s  ratio primal/dual = {t_primal / t_dual:.0f}x"
    )
    print(
        f"    rel. error of V - mu = {err_v:.2e}   L1(q) = {err_q:.2e}   "
        f"multiplier rel. error = {err_m:.2e}"
    )
    print(
        f"    targets: time <= 4 s -> {'ok' if t_primal <= 4 else 'MISSED'}; "
        f"error <= 1e-8 -> {'ok' if err_v <= 1e-8 else 'MISSED'}"
    )


def sweep(n: int, seeds: list[int], n_radii: int) -> None:
    radii = np.logspace(-3, 0, n_radii)
    failures = fallbacks = total = 0
    worst = np.zeros(3)
    t_primal = t_dual = 0.0
    by_solver: dict[str, int] = {}
    for seed in seeds:
        f = np.random.default_rng(seed).normal(size=n)
        mu = float(f.mean())
        t0 = time.perf_counter()
        duals = [worst_case_dual(f, "kl", float(r)) for r in radii]
        t_dual += time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            results: list = worst_case_sweep(f, "kl", radii)
        except DROSolveError:
            results = []
            for r in radii:  # redo one by one to count the failures
                try:
                    results.append(worst_case(f, "kl", float(r)))
                except DROSolveError as exc:
                    print(f"    FAILED seed {seed}: {exc}")
                    results.append(None)
        t_primal += time.perf_counter() - t0
        for res, dual in zip(results, duals, strict=True):
            total += 1
            if res is None:
                failures += 1
                continue
            by_solver[res.solver] = by_solver.get(res.solver, 0) + 1
            fallbacks += len(res.diagnostics.get("solvers_tried", [])) > 1
            worst = np.maximum(worst, _errors(res, dual, mu))
    print(f"[2] KL sweep, N = {n}, {n_radii} radii in logspace(1e-3, 1), seeds {seeds}")
    print(
        f"    problems {total}: failures after fallback {failures} (target 0), "
        f"needed a fallback {fallbacks}, verified by {by_solver}"
    )
    print(
        f"    max rel. error of V - mu = {worst[0]:.2e}   max L1(q) = {worst[1]:.2e}   "
        f"max multiplier rel. error = {worst[2]:.2e}"
    )
    print(
        f"    time primal {t_primal:.2f} s, dual {t_dual:.3f} s, "
        f"ratio primal/dual = {t_primal / t_dual:.0f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    # wall times depend on the load: print it so that the numbers can be read in context
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, CPUs: {os.cpu_count()}")
    if args.quick:
        single(10_000, 0.1)
        sweep(1_000, [0], 20)
    else:
        single(100_000, 0.1)
        sweep(10_000, [0, 1, 2], 20)


if __name__ == "__main__":
    main()
