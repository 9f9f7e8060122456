"""KSG estimator 1 (Kraskov et al. 2004) against the Gaussian closed form I = −½ log(1 − ρ²)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dro_theory.errors import InputError
from estimators.ksg import ksg_mi


def _gaussian_pairs(n: int, d: int, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1.0 - rho**2) * rng.standard_normal((n, d))
    return x, y


def _replicates(d: int, rho: float, n: int, reps: int) -> np.ndarray:
    return np.array([ksg_mi(*_gaussian_pairs(n, d, rho, seed)) for seed in range(reps)])


@pytest.mark.parametrize(("d", "rho"), [(1, 0.5), (1, 0.9), (2, 0.6)])
def test_gaussian_closed_form(d: int, rho: float) -> None:
    # 10 independent replicates (seeds 0..9) of n = 2000. Tolerance: 4 standard errors of the
    # replicate mean (sd/√10, measured from the replicates themselves: a t_9 test at about
    # the 0.3% level) plus 0.01 nats for KSG's systematic error on low-dimensional Gaussians
    # at N = 2000 (Kraskov et al. 2004, Fig. 4–5: |bias| well under 0.01 nats at d ≤ 2).
    truth = -0.5 * d * math.log(1.0 - rho**2)
    est = _replicates(d, rho, 2000, 10)
    se = est.std(ddof=1) / math.sqrt(est.size)
    assert abs(est.mean() - truth) <= 4.0 * se + 0.01, (est.mean(), truth, se)


def test_independent_is_zero() -> None:
    # Independence: KSG's systematic errors cancel (Kraskov et al. 2004, Sec. IV), so the
    # replicate mean is 0 within 4 standard errors (seeds 0..9, n = 2000).
    est = _replicates(3, 0.0, 2000, 10)
    se = est.std(ddof=1) / math.sqrt(est.size)
    assert abs(est.mean()) <= 4.0 * se + 1e-3


def test_invariant_to_column_scale_when_standardised() -> None:
    x, y = _gaussian_pairs(500, 2, 0.5, 3)
    a = ksg_mi(x, y)
    b = ksg_mi(x * np.array([1e3, 1e-2]), 7.0 * y + 2.0)
    assert a == pytest.approx(b, abs=1e-9)


def test_one_dimensional_inputs_and_k() -> None:
    x, y = _gaussian_pairs(400, 1, 0.8, 1)
    assert ksg_mi(x[:, 0], y[:, 0], k=5) == pytest.approx(ksg_mi(x, y, k=5), abs=1e-12)


def test_jitter_is_seeded() -> None:
    x, y = _gaussian_pairs(300, 1, 0.5, 2)
    a = ksg_mi(x, y, jitter=1e-6, seed=4)
    assert a == ksg_mi(x, y, jitter=1e-6, seed=4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k: expected an integer"),
        ({"k": 400}, "k: expected an integer"),
        ({"jitter": -1.0}, "jitter: expected"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    x, y = _gaussian_pairs(400, 1, 0.5, 0)
    with pytest.raises(InputError, match=match):
        ksg_mi(x, y, **kwargs)  # type: ignore[arg-type]


def test_bad_data() -> None:
    x, y = _gaussian_pairs(100, 2, 0.5, 0)
    with pytest.raises(InputError, match="y: expected 100 rows"):
        ksg_mi(x, y[:50])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="x: expected finite values"):
        ksg_mi(bad, y)
    const = x.copy()
    const[:, 1] = 2.0
    with pytest.raises(InputError, match="x: expected non-constant columns"):
        ksg_mi(const, y)
