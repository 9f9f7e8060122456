"""A small builder that claims use to collect checks, metrics and series into a Record."""

from __future__ import annotations

import time
from typing import Any

from numpy.typing import ArrayLike

from validation.records import (
    Check,
    Record,
    as_series,
    check_at_least,
    check_at_most,
    check_close,
    collect_environment,
    now_iso,
)

__all__ = ["Recorder", "merge_config"]


def merge_config(base: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``base`` updated by ``overrides`` (nested dicts merged one level deep); unknown keys fail.

    Tests use it to shrink a claim (``run(quick=True, overrides={"n": 200})``).
    """
    out = dict(base)
    for key, value in (overrides or {}).items():
        if key not in out:
            from dro_theory.errors import InputError

            raise InputError(f"overrides: expected keys among {sorted(out)}, found {key!r}")
        if isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


class Recorder:
    """Collects the pieces of a :class:`Record` while a claim runs; :meth:`finish` builds it.

    Parameters
    ----------
    claim, reference : str
        The claim's name and paper reference.
    config : dict
        The run's parameters (stored verbatim).
    seed : int
        The run's seed.
    """

    def __init__(self, claim: str, reference: str, config: dict[str, Any], seed: int) -> None:
        self.claim = claim
        self.reference = reference
        self.config = dict(config)
        self.seed = int(seed)
        self.checks: list[Check] = []
        self.metrics: dict[str, float] = {}
        self.series: dict[str, dict[str, Any]] = {}
        self.solver = "none"
        self.device = "cpu"
        self._started = now_iso()
        self._t0 = time.perf_counter()

    def close(
        self,
        name: str,
        observed: float,
        expected: float,
        tolerance: float,
        *,
        relative: bool = False,
        note: str = "",
    ) -> Check:
        """Add |observed − expected| ≤ tolerance (× |expected| when ``relative``)."""
        c = check_close(name, observed, expected, tolerance, relative=relative, note=note)
        self.checks.append(c)
        return c

    def at_most(
        self, name: str, observed: float, bound: float, tolerance: float = 0.0, *, note: str = ""
    ) -> Check:
        """Add observed ≤ bound + tolerance."""
        c = check_at_most(name, observed, bound, tolerance, note=note)
        self.checks.append(c)
        return c

    def at_least(
        self, name: str, observed: float, bound: float, tolerance: float = 0.0, *, note: str = ""
    ) -> Check:
        """Add observed ≥ bound − tolerance."""
        c = check_at_least(name, observed, bound, tolerance, note=note)
        self.checks.append(c)
        return c

    def metric(self, name: str, value: float) -> None:
        """Record a number without pass/fail."""
        self.metrics[name] = float(value)

    def add_series(self, name: str, **columns: ArrayLike) -> None:
        """Record a table (equal-length columns) for the figure."""
        self.series[name] = as_series(**columns)

    def finish(self) -> Record:
        """The Record, with the environment and the elapsed time."""
        return Record(
            claim=self.claim,
            paper_reference=self.reference,
            config=self.config,
            seed=self.seed,
            checks=tuple(self.checks),
            metrics=dict(self.metrics),
            series=dict(self.series),
            environment=collect_environment(solver=self.solver, device=self.device),
            started_at=self._started,
            seconds=time.perf_counter() - self._t0,
        )
