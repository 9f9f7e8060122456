"""Validated settings of one :class:`~estimators.phi_mi.PhiMI` fit (built in ``fit``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dro_theory.checks import check_nonnegative, check_seed
from dro_theory.divergences import Divergence, resolve_divergence
from dro_theory.errors import InputError
from estimators.critics import CRITIC_NAMES
from estimators.device import resolve_device

__all__ = ["BOUND_NAMES", "KL_ONLY", "FitConfig", "build_config", "resolve", "split_sizes"]

#: the accepted ``bound`` names; the last three are KL-only
BOUND_NAMES: tuple[str, ...] = ("tight", "plain", "infonce", "nwj", "dv")
KL_ONLY: tuple[str, ...] = ("infonce", "nwj", "dv")
#: fewest rows each split must keep (a batch-means CI needs ≥ 2 blocks of ≥ 10 rows)
_MIN_TEST, _MIN_VAL, _MIN_TRAIN = 20, 10, 20
#: smallest Cressie–Read α estimated: for a Gaussian pair with correlation ρ the optimal
#: critic's P-variance Var_P(r^{α−1}) is finite for every ρ < 1 iff |2 − 2α| ≤ 1, i.e. α ≥ ½
#: (reverse KL is α → 0: infinite as soon as ρ ≥ ½); docs/phi_mi.md §reverse KL
_MIN_RELIABLE_ALPHA = 0.5
#: smallest ``eval_block``: the O(1/block) bias of the held-out bound must stay small
_MIN_EVAL_BLOCK = 20


@dataclass(frozen=True)
class FitConfig:
    """Every setting of a fit, validated; ``train_*`` is what the critic is trained on.

    ``two_stage``: the critic is trained as a log-ratio with Donsker–Varadhan and the target
    bound is applied through the link (``exp_link``). ``base``: the Gaussian-copula log-ratio
    is the starting critic (a learned residual is added) — used where the trained critic is a
    log-ratio (two-stage, or a KL bound).
    """

    div: Divergence
    bound: str
    two_stage: bool
    exp_link: bool
    train_div: Divergence
    train_bound: str
    critic: str
    base: bool
    hidden: int
    layers: int
    embed: int
    activation: str
    marginals: str
    batch_size: int
    steps: int | None
    lr: float
    weight_decay: float
    test_fraction: float
    val_fraction: float
    patience: int
    eval_every: int
    eval_block: int
    ci_level: float
    seed: int
    device: torch.device
    dtype: torch.dtype
    progress: Any
    max_seconds: float | None
    folds: int


def resolve(divergence: Any) -> Divergence:
    """A :class:`Divergence` from an instance or a spec (``dro_theory``'s one parser)."""
    if isinstance(divergence, Divergence):
        return divergence
    return resolve_divergence(divergence)


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise InputError(f"{name}: expected an int >= {low}, found {value!r}")
    return int(value)


def _check_fraction(value: Any, name: str, low: float, high: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a number in ({low}, {high}), found {value!r}") from exc
    if not low < v < high:
        raise InputError(f"{name}: expected a number in ({low}, {high}), found {value!r}")
    return v


def _check_positive(value: Any, name: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a positive number, found {value!r}") from exc
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name}: expected a positive number, found {value!r}")
    return v


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    key = value.strip().lower() if isinstance(value, str) else value
    if key not in choices:
        quoted = " or ".join(repr(c) for c in choices)
        raise InputError(f"{name}: expected {quoted}, found {value!r}")
    return str(key)


def _check_bound(bound: Any, div: Divergence) -> str:
    key = bound.strip().lower() if isinstance(bound, str) else bound
    if key not in BOUND_NAMES:
        raise InputError(f"bound: expected one of {', '.join(BOUND_NAMES)}, found {bound!r}")
    if key in KL_ONLY and div.name != "kl":
        raise InputError(
            f"bound: bound={key!r} estimates KL MI only; for {div} use bound='tight' or 'plain'"
        )
    return str(key)


def _check_estimable(div: Divergence) -> Divergence:
    """Refuse the φ whose variational bound has an infinite-variance optimal critic."""
    alpha = getattr(div, "alpha", None) if div.name == "cressie_read" else None
    if div.name == "reverse_kl" or (alpha is not None and alpha < _MIN_RELIABLE_ALPHA):
        raise InputError(
            f"divergence: expected a divergence PhiMI can estimate reliably, found {div}: its "
            "optimal critic φ'(r) ∝ −r^(α−1) has infinite variance under P_XY as soon as a "
            f"canonical correlation reaches 1/(2(1 − α)) (reverse KL, α → 0: ½), so the "
            "held-out bound can be far off in either direction; use kl, hellinger, chi2, tv, "
            f"js or cressie_read:ALPHA with ALPHA >= {_MIN_RELIABLE_ALPHA}"
        )
    return div


def _check_critic(value: Any) -> str:
    key = value.strip().lower() if isinstance(value, str) else value
    if key not in CRITIC_NAMES:
        raise InputError(f"critic: expected one of {', '.join(CRITIC_NAMES)}, found {value!r}")
    return str(key)


def build_config(params: dict[str, Any]) -> FitConfig:
    """Validate the estimator's ``get_params()`` into a :class:`FitConfig`.

    Raises
    ------
    InputError
        Any setting outside its documented range (the message names the parameter).
    """
    div = _check_estimable(resolve(params["divergence"]))
    bound = _check_bound(params["bound"], div)
    critic = _check_critic(params["critic"])
    training = _check_choice(params["training"], "training", ("log_ratio", "direct"))
    # KL's optimal critic is the log-ratio itself: a second stage could only cost accuracy
    two_stage = training == "log_ratio" and bound in ("tight", "plain") and div.name != "kl"
    base = _check_choice(params["base"], "base", ("copula", "none")) == "copula"
    # every KL bound's optimal critic is log r + const (+1 for NWJ/plain), so is the DV stage's
    log_ratio_critic = two_stage or div.name == "kl"
    dtype = _check_choice(params["dtype"], "dtype", ("float32", "float64"))
    return FitConfig(
        div=div,
        bound=bound,
        two_stage=two_stage,
        exp_link=two_stage,
        train_div=resolve("kl") if two_stage else div,
        train_bound="dv" if two_stage else bound,
        critic=critic,
        base=base and log_ratio_critic,
        hidden=_check_int(params["hidden"], "hidden", 1),
        layers=_check_int(params["layers"], "layers", 1 if critic == "concat" else 0),
        embed=_check_int(params["embed"], "embed", 1),
        activation=params["activation"],
        marginals=_check_choice(params["marginals"], "marginals", ("standardize", "rank")),
        batch_size=_check_int(params["batch_size"], "batch_size", 2),
        steps=None if params["steps"] is None else _check_int(params["steps"], "steps", 1),
        lr=float(_check_positive(params["lr"], "lr") or 0.0),
        weight_decay=check_nonnegative(params["weight_decay"], "weight_decay"),
        test_fraction=_check_fraction(params["test_fraction"], "test_fraction", 0.0, 1.0),
        val_fraction=_check_fraction(params["val_fraction"], "val_fraction", 0.0, 1.0),
        patience=_check_int(params["patience"], "patience", 1),
        eval_every=_check_int(params["eval_every"], "eval_every", 1),
        eval_block=_check_int(params["eval_block"], "eval_block", _MIN_EVAL_BLOCK),
        ci_level=_check_fraction(params["ci_level"], "ci_level", 0.0, 1.0),
        seed=check_seed(params["seed"]),
        device=resolve_device(params["device"]),
        dtype=torch.float32 if dtype == "float32" else torch.float64,
        progress=params["progress"],
        max_seconds=_check_positive(params["max_seconds"], "max_seconds", allow_none=True),
        folds=_check_int(params["folds"], "folds", 1),
    )


def split_sizes(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) of n rows; raises InputError when a split is too small."""
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * (n - n_test))
    n_train = n - n_test - n_val
    needs = (("test", n_test, _MIN_TEST), ("val", n_val, _MIN_VAL), ("train", n_train, _MIN_TRAIN))
    for name, size, need in needs:
        if size < need:
            raise InputError(
                f"{name}_fraction: expected a split leaving >= {need} {name} rows of the "
                f"{n} given, found {size}"
            )
    return n_train, n_val, n_test
