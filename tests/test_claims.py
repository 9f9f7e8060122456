"""Each claim at a tiny size passes its checks, and a deliberately broken ingredient fails them.

(The systematic version, a catalogue of faults patched on every path, is tests/faults.)

The second half is what makes the checks meaningful: each test replaces one dependency of a
claim (in the claim module's namespace) by a slightly wrong version and asserts that the check
that guards it reports ``passed=False``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import numpy as np
import pytest

from dro_theory.errors import InputError
from validation.claims import CLAIMS, get_claim, run_claim

TINY: dict[str, dict[str, Any]] = {
    "infonce-is-kl-dro": {
        "anchors": 3,
        "negatives": 10,
        "temperatures": [1e-3, 0.5],
        "cvxpy_anchors": 1,
        "cvxpy_negatives": 30,
        "cvxpy_temperatures": [0.5],
        "grad_batch": 5,
        "grad_temperatures": [1e-3, 0.5],
    },
    "temperature-is-lagrange": {
        "n": 500,
        "radii": np.geomspace(1e-6, 1e-3, 6).tolist(),
        "temperatures": np.geomspace(0.05, 50.0, 8).tolist(),
    },
    "mean-variance": {
        "n": 500,
        "kl_temperatures": np.geomspace(1.0, 40.0, 6).tolist(),
        "divergences": ["kl", "chi2", "hellinger"],
    },
    "dro-and-phi-mi": {
        "divergences": ["kl", "hellinger"],
        "mc_pairs": 300,
        "mc_divergences": ["kl"],
        "trained": {"divergences": []},
    },
    "sampling-bias": {
        "instances": 30,
        "train": {"steps": 15, "tau_grid": [0.5], "n_train": 300, "n_val": 200, "n_test": 200},
    },
    "adnce-reshapes-worst-case": {
        "anchors": 3,
        "negatives": 15,
        "temperatures": [1e-3, 0.5],
        "mu_sigma": [[0.7, 0.5]],
        "false_negatives": 3,
    },
}


def _check(record: Any, prefix: str) -> Any:
    found = [c for c in record.checks if c.name.startswith(prefix)]
    assert found, f"no check named {prefix!r} in {[c.name for c in record.checks]}"
    return found[0]


def test_tiny_configs_cover_every_claim() -> None:
    assert set(TINY) == set(CLAIMS)


@pytest.mark.parametrize("name", list(TINY))
def test_claim_passes_at_tiny_size(name: str) -> None:
    record = run_claim(name, quick=True, seed=0, overrides=TINY[name])
    assert record.claim == name
    assert record.paper_reference == CLAIMS[name].reference
    assert record.checks
    failed = [(c.name, c.observed, c.expected, c.tolerance) for c in record.failed]
    assert not failed
    assert record.series  # the figure has something to draw
    assert record.environment["python"]


def test_unknown_claim_and_override() -> None:
    with pytest.raises(InputError, match="did you mean 'mean-variance'"):
        get_claim("mean-varience")
    with pytest.raises(InputError, match="overrides"):
        run_claim("mean-variance", quick=True, overrides={"no_such_key": 1})


# ------------------------------------------------------------------------------------------
# broken ingredients make the guarding check fail
# ------------------------------------------------------------------------------------------
def _module(name: str) -> Any:
    return importlib.import_module(f"validation.claims.{get_claim(name).module}")


def test_wrong_infonce_fails_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("infonce-is-kl-dro")
    real = mod.infonce_population
    monkeypatch.setattr(mod, "infonce_population", lambda *a, **k: real(*a, **k) + 1e-6)
    rec = run_claim("infonce-is-kl-dro", quick=True, overrides=TINY["infonce-is-kl-dro"])
    assert not _check(rec, "τ·infonce_population and phi_cl_dro").passed
    assert _check(rec, "penalized_worst_case value − τ·InfoNCE_pop").passed


def test_wrong_worst_case_temperature_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("infonce-is-kl-dro")
    real = mod.penalized_worst_case
    monkeypatch.setattr(
        mod, "penalized_worst_case", lambda f, d, t, **k: real(f, d, t * 1.001, **k)
    )
    rec = run_claim("infonce-is-kl-dro", quick=True, overrides=TINY["infonce-is-kl-dro"])
    assert not _check(rec, "penalised worst case q vs softmax").passed
    assert not _check(rec, "∇θ CL-DRO").passed


def test_wrong_radius_fails_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("infonce-is-kl-dro")
    real = mod.radius_for_temperature
    monkeypatch.setattr(mod, "radius_for_temperature", lambda *a, **k: real(*a, **k) * 1.01)
    rec = run_claim("infonce-is-kl-dro", quick=True, overrides=TINY["infonce-is-kl-dro"])
    assert not _check(rec, "radius_for_temperature vs KL(q_τ‖q0) written here").passed
    assert _check(rec, "cvxpy multiplier").passed  # the solve uses the radius written here


def test_biased_lagrange_curve_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("temperature-is-lagrange")
    real = mod.lagrange_curve

    class Shifted:
        def __init__(self, curve: Any) -> None:
            self.temperature = np.asarray(curve.temperature) * (1 + 1e-3)
            self.temperature_law = curve.temperature_law

    monkeypatch.setattr(mod, "lagrange_curve", lambda *a, **k: Shifted(real(*a, **k)))
    rec = run_claim(
        "temperature-is-lagrange", quick=True, overrides=TINY["temperature-is-lagrange"]
    )
    assert not _check(rec, "relative error of the law: log–log slope").passed
    assert not _check(rec, "relative error / √(2η)").passed


def test_wrong_penalized_value_fails_mean_variance(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("mean-variance")
    real = mod.penalized_worst_case

    def off(*a: Any, **k: Any) -> Any:
        res = real(*a, **k)
        return dataclasses.replace(res, value=res.value + 1e-5)

    monkeypatch.setattr(mod, "penalized_worst_case", off)
    rec = run_claim("mean-variance", quick=True, overrides=TINY["mean-variance"])
    assert not _check(rec, "KL penalised: error·τ²").passed
    assert not _check(rec, "χ² penalised: value").passed


def test_wrong_closed_form_fails_phi_mi(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("dro-and-phi-mi")
    real = mod.gaussian_phi_mi

    class Off:
        def __init__(self, res: Any) -> None:
            self.value = res.value * 1.01

    monkeypatch.setattr(mod, "gaussian_phi_mi", lambda *a, **k: Off(real(*a, **k)))
    rec = run_claim("dro-and-phi-mi", quick=True, overrides=TINY["dro-and-phi-mi"])
    assert not _check(rec, "kl: tight form at T*").passed


def test_plain_used_as_tight_fails_the_recomputed_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("dro-and-phi-mi")
    monkeypatch.setattr(mod, "phi_tight", mod.phi_plain)
    rec = run_claim("dro-and-phi-mi", quick=True, overrides=TINY["dro-and-phi-mi"])
    assert not _check(rec, "phi_tight and phi_plain vs the bounds written here").passed


def test_understated_infonce_breaks_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("sampling-bias")
    real = mod.infonce_population
    monkeypatch.setattr(mod, "infonce_population", lambda *a, **k: real(*a, **k) - 0.5)
    rec = run_claim("sampling-bias", quick=True, overrides=TINY["sampling-bias"])
    assert not _check(rec, "τ·L_InfoNCE(τ) + τη − L_unbiased").passed


def test_wrong_adnce_weights_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module("adnce-reshapes-worst-case")
    real = mod.adnce_weights
    monkeypatch.setattr(
        mod, "adnce_weights", lambda sim, **k: real(sim, **{**k, "mu": k["mu"] + 0.05})
    )
    rec = run_claim(
        "adnce-reshapes-worst-case", quick=True, overrides=TINY["adnce-reshapes-worst-case"]
    )
    assert not _check(rec, "adnce_weights vs w̃").passed
    assert _check(rec, "τ·ADNCE").passed  # the loss itself is untouched
