"""Every plot function draws a PNG from a synthetic record (no recomputation needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from validation import plotting
from validation.records import Record, as_series, check_at_most, check_close

PNG = b"\x89PNG\r\n\x1a\n"
s = np.linspace(-1.0, 1.0, 20)
t = np.geomspace(0.1, 10.0, 8)

SERIES = {
    "infonce-is-kl-dro": {
        "worst_case_vs_softmax": as_series(
            score=s,
            q_cvxpy=np.exp(s) / np.exp(s).sum(),
            q_softmax=np.exp(s) / np.exp(s).sum(),
            q0=np.full(20, 0.05),
        ),
        "identity_errors": as_series(
            temperature=[1e-3, 1.0, 1e-3, 1.0],
            scale=[1, 1, 50, 50],
            error=[0.0, 1e-16, 2e-15, 3e-15],
        ),
    },
    "temperature-is-lagrange": {
        "tau_eta": as_series(
            radius=t,
            tau_exact=1 / np.sqrt(t),
            tau_law=1.01 / np.sqrt(t),
            rel_error=0.1 * np.sqrt(t),
            rel_error_predicted=0.1 * np.sqrt(t),
        ),
    },
    "mean-variance": {
        "penalized": as_series(
            temperature=t,
            error_kl=1 / t**2,
            predicted_kl=1 / t**2,
            error_chi2=0 * t,
            predicted_chi2=0 * t,
        ),
        "constrained": as_series(radius=t, error_kl=t, predicted_kl=t),
    },
    "dro-and-phi-mi": {
        "estimates": as_series(
            index=[0, 1],
            truth=[0.1, 0.3],
            quadrature=[0.1, 0.3],
            monte_carlo=[0.11, np.nan],
            se=[0.01, np.nan],
        ),
        "trained": as_series(index=[0], truth=[0.29], estimate=[0.3], ci_half=[0.05]),
    },
    "sampling-bias": {
        "bound_slack": as_series(temperature=t, slack=t - 0.5 + 1.0),
        "training": as_series(
            temperature=[0.1, 0.5],
            acc_biased=[70, 72],
            acc_unbiased=[71, 74],
            acc_dcl=[70, np.nan],
            acc_hcl=[69, np.nan],
        ),
    },
    "adnce-reshapes-worst-case": {
        "weights": as_series(
            score=s,
            q_infonce=np.full(20, 0.05),
            q_adnce=np.full(20, 0.05),
            false_negative=(s > 0.8).astype(float),
        ),
        "tilt": as_series(score=s, effective_weight=np.exp(-(s**2)), gaussian=np.exp(-(s**2))),
    },
}


def _record(claim: str, series: dict[str, dict[str, np.ndarray]]) -> Record:
    return Record(
        claim=claim,
        paper_reference="Theorem X",
        config={"divergences": ["kl", "chi2"], "trained": {"divergences": ["kl"]}},
        seed=0,
        checks=(check_close("identity", 1e-15, 0.0, 1e-10), check_at_most("bound", 1.0, 0.0)),
        metrics={"example_temperature": 0.5, "alpha_star": 0.3},
        series=series,
    )


def test_every_claim_has_a_plotter() -> None:
    from validation.claims import CLAIMS

    assert set(plotting.PLOTTERS) == set(CLAIMS) == set(SERIES)


@pytest.mark.parametrize("claim", sorted(SERIES))
def test_plot_function_writes_png(claim: str, tmp_path: Path) -> None:
    out = plotting.PLOTTERS[claim](_record(claim, SERIES[claim]), tmp_path / f"{claim}.png")
    assert out.read_bytes()[:8] == PNG
    assert [p.name for p in tmp_path.iterdir()] == [f"{claim}.png"]  # no temp file left


def test_plot_record_falls_back_to_checks(tmp_path: Path) -> None:
    out = plotting.plot_record(_record("temperature-is-lagrange", {}), tmp_path / "a.png")
    assert out.read_bytes()[:8] == PNG
    out = plotting.plot_record(_record("unknown-claim", {}), tmp_path / "b.png")
    assert out.read_bytes()[:8] == PNG


def test_failed_savefig_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("render failed")

    monkeypatch.setattr(plotting.Figure, "savefig", boom)
    with pytest.raises(RuntimeError, match="render failed"):
        plotting.plot_checks(_record("x", {}), tmp_path / "c.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_training_runs_draws_every_run(tmp_path: Path) -> None:
    runs = {
        name: {
            "knn_top1": [10.0, 20.0 + k, 30.0 + k],
            "implied_radius": [
                {"epoch": e, "eta_exact_mean": 1.0 / e, "eta_approx_mean": 1.1 / e}
                for e in (1, 2)
            ],
        }
        for k, name in enumerate(("infonce", "adnce"))
    }
    out = plotting.plot_training_runs(runs, tmp_path / "sub" / "gpu-knn.png")
    assert out.exists() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
