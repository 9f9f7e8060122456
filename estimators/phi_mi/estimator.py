r"""The :class:`PhiMI` estimator: I_φ(X;Y) from a trained critic and a held-out bound.

I_φ(X;Y) = D_φ(P_XY ‖ P_X⊗P_Y) = E_Q φ(r), estimated with the tight Fenchel bound that
Wu et al. (NeurIPS 2023), Theorem 3.6, identify with the CL-DRO objective. Design notes and
measured accuracy: docs/phi_mi.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator

from dro_theory.divergences import Divergence
from dro_theory.errors import InputError
from estimators.critics import make_critic
from estimators.io import validate_pairs
from estimators.phi_mi._calibrate import AffineCritic, calibrate
from estimators.phi_mi._config import FitConfig, build_config, split_sizes
from estimators.phi_mi._critics import GaussianLogRatio, ResidualCritic
from estimators.phi_mi._held_out import (
    HeldOut,
    allowed_range,
    bias_warnings,
    combine_folds,
    held_out,
    range_problem,
)
from estimators.phi_mi._maps import ColumnMap
from estimators.phi_mi._result import PhiMIResult
from estimators.phi_mi._scoring import evaluate, score_matrix
from estimators.phi_mi._train import FitHistory, train

__all__ = ["MIN_ROWS", "PhiMI"]

#: fewest rows :meth:`PhiMI.fit` accepts (as :func:`estimators.io.load_pairs`)
MIN_ROWS = 100
#: automatic step budget: this many epochs of the training split, clipped to [600, 3000]
#: (enough for the validation curve to peak on the Gaussian benchmarks; docs/phi_mi.md)
_AUTO_EPOCHS = 100
_MIN_AUTO_STEPS, _MAX_AUTO_STEPS = 600, 3000
#: fewest rows per cross-fitting fold: a test split of >= 20 rows (``split_sizes``)
_MIN_FOLD_ROWS = 20
_FITTED = (
    "estimate_", "ci_", "history_", "critic_", "n_train_", "n_val_", "n_test_", "seconds_",
    "result_", "steps_", "batch_size_", "test_rows_", "config_", "warnings_", "valid_",
    "closed_form_", "fold_estimates_",
)  # fmt: skip
_CI_COVERS = (
    "sampling variability of the held-out test split for the fitted critic (batch means); "
    "not the critic's optimisation error nor the O(1/n) bias of the inner minimum"
)
_CI_COVERS_FOLDS = (
    "sampling variability of the held-out rows and the critic's optimisation and estimation "
    "error ({k} critics trained on different splits, each evaluated on its own held-out fold; "
    "the larger of the between-fold and the within-fold variance); not a bias shared by "
    "every fold (the critic family's gap to the optimal critic) nor the O(1/n) bias of the "
    "inner minimum"
)


@dataclass(frozen=True)
class _Fold:
    """One trained critic, its maps, its held-out value on its own test rows."""

    critic: torch.nn.Module
    history: FitHistory
    calib: Any
    maps: tuple[ColumnMap, ColumnMap]
    held: HeldOut
    steps: int
    closed_form: bool
    idx_test: NDArray[np.int64]
    sizes: tuple[int, int, int]
    warnings: tuple[str, ...]


def _splits(
    n: int, cfg: FitConfig
) -> list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]]:
    """(train, validation, test) row indices of each fold (one split when ``folds`` is 1).

    ``folds`` = K ≥ 2: the permuted rows are cut into K test folds; the rest of each is split
    into validation (``val_fraction``) and training rows. Raises InputError on small splits.
    """
    perm = np.random.default_rng(cfg.seed).permutation(n)
    if cfg.folds == 1:
        n_test = split_sizes(n, cfg.test_fraction, cfg.val_fraction)[2]
        tests = [perm[:n_test]]
    else:
        try:
            split_sizes(n, 1.0 / cfg.folds, cfg.val_fraction)
        except InputError as exc:
            raise InputError(
                f"folds: expected at most {n // _MIN_FOLD_ROWS} folds of the {n} rows given, "
                f"found {cfg.folds} ({exc})"
            ) from exc
        tests = np.array_split(perm, cfg.folds)
    out = []
    for k, test in enumerate(tests):
        others = [t for j, t in enumerate(tests) if j != k]
        rest = perm[len(test) :] if cfg.folds == 1 else np.concatenate(others)
        n_val = round(cfg.val_fraction * len(rest))
        out.append((rest[n_val:], rest[:n_val], test))
    return out


def _as_matrix(a: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected an array of numbers, found {type(a).__name__}") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 1-D or 2-D array, found shape {arr.shape}")
    return arr


def _build_critic(
    cfg: FitConfig, x_tr: NDArray[np.float64], y_tr: NDArray[np.float64], gen: torch.Generator
) -> torch.nn.Module:
    """The network critic, wrapped as a residual of the Gaussian log-ratio when ``cfg.base``."""
    net = make_critic(
        cfg.critic,
        x_tr.shape[1],
        y_tr.shape[1],
        hidden=cfg.hidden,
        layers=cfg.layers,
        embed=cfg.embed,
        activation=cfg.activation,
        generator=gen,
        dtype=cfg.dtype,
    )
    critic: torch.nn.Module = net
    if cfg.base:
        # NWJ and plain KL: φ*(s) = e^{s−1}, so the optimal critic is 1 + log r
        offset = 1.0 if cfg.train_bound in ("plain", "nwj") else 0.0
        critic = ResidualCritic(GaussianLogRatio(x_tr, y_tr), net, offset).to(cfg.dtype)
    return critic.to(cfg.device)


def _prefer_closed_form(
    critic: torch.nn.Module,
    val: tuple[NDArray[np.float64], NDArray[np.float64]],
    cfg: FitConfig,
    best_trained: float,
) -> bool:
    """Switch a residual critic to its closed-form base when that is better on validation.

    Both candidates are critics, so either one's held-out value is a valid bound; the choice
    uses the validation split only (the training criterion, float64).
    """
    if not isinstance(critic, ResidualCritic):
        return False
    saved = {k: v.clone() for k, v in critic.state_dict().items()}
    critic.closed_form()
    base_val = evaluate(critic, val[0], val[1], cfg.train_bound, cfg.train_div, cfg.eval_block)
    if base_val > best_trained:
        return True
    critic.load_state_dict(saved)
    return False


class PhiMI(BaseEstimator):  # type: ignore[misc]
    r"""Estimate I_φ(X;Y) = D_φ(P_XY‖P_X⊗P_Y) with a trained critic and a held-out bound.

    A scikit-learn estimator: ``__init__`` only stores the parameters (validated in
    :meth:`fit`), ``get_params``/``set_params``/``sklearn.base.clone`` work, :meth:`fit`
    returns ``self`` and sets the attributes ending in ``_``. The critic is trained on the
    training split, early-stopped on the validation split, and ``estimate_`` is the bound

    .. math:: \hat I = \frac1n\sum_i T_{ii} - \min_\lambda\Big[\lambda
              + \frac{1}{n(n-1)}\sum_{i\ne j}\phi^*(T_{ij}-\lambda)\Big]

    on the held-out test split (Wu et al. 2023, Thm 3.6), a lower bound of I_φ in expectation
    up to an O(1/n) term.

    Parameters
    ----------
    divergence : str or Divergence
        ``kl`` (Shannon MI), ``reverse_kl``, ``chi2``, ``hellinger``, ``tv``, ``js`` or
        ``cressie_read:ALPHA``.
    bound : str
        ``tight`` (default), ``plain`` (NWJ/f-GAN), or the KL-only ``infonce``, ``nwj``, ``dv``.
    training : str
        ``log_ratio`` (default; ``tight``/``plain``): train v ≈ log r with Donsker–Varadhan,
        report the target bound of T = link(a·clip(v) + c), (a, c) fitted on validation.
        ``direct``: train the target bound itself.
    critic : str
        ``separable`` (g(x)ᵀh(y), default) or ``concat`` (an MLP on [x, y]).
    base : str
        ``copula`` (default): where the critic is a log-ratio, the closed-form Gaussian
        log-ratio of the mapped data plus a learned residual, or that closed form alone if it
        is better on validation. ``none``: network only.
    hidden, layers, embed : int
        Critic width, hidden layers, embedding size (separable only).
    activation : str
        ``elu`` (default), ``relu``, ``gelu`` or ``tanh``.
    marginals : str
        ``rank`` (default; Gaussianised mid-ranks) or ``standardize``, fitted on training rows.
    batch_size : int
        Pairs per training batch (clipped to the training split).
    steps : int, optional
        Maximum optimiser steps; None: 100 epochs, clipped to [600, 3000].
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay.
    test_fraction, val_fraction : float
        Share of rows held out for the estimate; share of the rest for early stopping.
    patience, eval_every : int
        Stop after ``patience`` validation checks without improvement; steps between checks.
    eval_block : int
        Largest score matrix side evaluated at once (larger splits: mean over blocks).
    ci_level : float
        Confidence level of ``ci_``.
    seed : int
        Seeds the split, the initialisation and the batch order (nothing global).
    device : str
        ``auto``, ``cpu`` or ``cuda[:N]``.
    progress : bool
        Progress on stderr (a bar on a terminal, plain lines otherwise).
    dtype : str
        Training dtype, ``float32`` or ``float64``; evaluation is always float64.
    max_seconds : float, optional
        Wall-time budget of training (shared equally by the folds); the best critic so far is
        used when it ends.
    folds : int
        1 (default): one train/validation/test split; the interval covers the test split's
        sampling error only. K ≥ 2: cross-fitting — K critics, each trained without one of K
        test folds (``test_fraction`` unused) and evaluated on it; ``estimate_`` is the mean of
        the K values and the interval also covers the critic's optimisation error
        (:func:`estimators.phi_mi._held_out.combine_folds`; ``result_.ci_covers``). About K
        times the runtime.

    Attributes
    ----------
    estimate_ : float
    ci_ : tuple of float
    valid_ : bool
        False when the estimate leaves the allowed range (see ``result_.problem``).
    closed_form_ : bool
        Whether the closed-form Gaussian critic alone beat the trained one on validation.
    fold_estimates_ : tuple of float
        Held-out value of each fold (one value when ``folds`` is 1). ``critic_``,
        ``history_``, ``steps_``, ``closed_form_``, ``test_rows_``, ``n_*_``, :meth:`score`
        and :meth:`score_matrix` are those of fold 0.
    warnings_ : tuple of str
    history_ : FitHistory
    critic_ : torch.nn.Module
        Kept critic (float64, CPU, eval mode) on mapped inputs; :meth:`score_matrix` for raw.
    config_ : FitConfig
    n_train_, n_val_, n_test_, steps_, batch_size_ : int
    test_rows_ : numpy.ndarray of int
    seconds_ : float
    result_ : PhiMIResult

    Raises
    ------
    InputError
        From :meth:`fit`: bad parameters or data (the message names the parameter).
    """

    def __init__(
        self,
        divergence: str | Divergence = "kl",
        bound: str = "tight",
        training: str = "log_ratio",
        critic: str = "separable",
        base: str = "copula",
        hidden: int = 256,
        layers: int = 2,
        embed: int = 32,
        activation: str = "elu",
        marginals: str = "rank",
        batch_size: int = 256,
        steps: int | None = None,
        lr: float = 5e-4,
        weight_decay: float = 0.0,
        test_fraction: float = 0.3,
        val_fraction: float = 0.2,
        patience: int = 10,
        eval_every: int = 20,
        eval_block: int = 4096,
        ci_level: float = 0.95,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
        dtype: str = "float32",
        max_seconds: float | None = None,
        folds: int = 1,
    ) -> None:
        self.divergence = divergence
        self.bound = bound
        self.training = training
        self.critic = critic
        self.base = base
        self.hidden = hidden
        self.layers = layers
        self.embed = embed
        self.activation = activation
        self.marginals = marginals
        self.batch_size = batch_size
        self.steps = steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.test_fraction = test_fraction
        self.val_fraction = val_fraction
        self.patience = patience
        self.eval_every = eval_every
        self.eval_block = eval_block
        self.ci_level = ci_level
        self.seed = seed
        self.device = device
        self.progress = progress
        self.dtype = dtype
        self.max_seconds = max_seconds
        self.folds = folds

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails, i.e. a fitted attribute before fit()
        if name in _FITTED:
            raise AttributeError(f"PhiMI is not fitted yet: call fit(x, y) before reading {name}")
        raise AttributeError(f"'PhiMI' object has no attribute {name!r}")

    def fit(self, x: ArrayLike, y: ArrayLike) -> PhiMI:
        """Train the critic on a split of (x, y) and estimate I_φ on the held-out rows.

        Parameters
        ----------
        x : array_like, shape (n,) or (n, d_x)
        y : array_like, shape (n,) or (n, d_y)
            Paired samples; row i of x goes with row i of y. n ≥ 100.

        Returns
        -------
        PhiMI
            ``self``, with the fitted attributes set.

        Raises
        ------
        InputError
            Bad parameters (unknown names, KL-only bound with another φ, sizes), NaN/inf,
            mismatched rows, fewer than 100 rows, constant columns.
        """
        start = time.perf_counter()
        cfg = build_config(self.get_params())
        xa, ya = _as_matrix(x, "x"), _as_matrix(y, "y")
        validate_pairs(xa, ya, min_rows=MIN_ROWS, source="the arrays given to fit")
        splits = _splits(xa.shape[0], cfg)
        folds = []
        for k, rows in enumerate(splits):
            end = None if cfg.max_seconds is None else (k + 1) * cfg.max_seconds / len(splits)
            folds.append(self._fit_fold(cfg, xa, ya, rows, None if end is None else start + end))
        first = folds[0]
        out = (
            first.held if len(folds) == 1 else combine_folds([f.held for f in folds], cfg.ci_level)
        )
        self._x_map, self._y_map = first.maps
        self.config_ = cfg
        self.critic_ = first.critic
        self.test_rows_ = np.sort(first.idx_test)
        self.history_ = first.history
        self.steps_, self.closed_form_ = first.steps, first.closed_form
        self.estimate_, self.ci_ = out.estimate, out.ci
        self.fold_estimates_ = tuple(f.held.estimate for f in folds)
        self.n_train_, self.n_val_, self.n_test_ = first.sizes
        self.batch_size_ = min(cfg.batch_size, self.n_train_)
        problem = range_problem(out.estimate, cfg.div)
        self.valid_ = problem is None
        self.warnings_ = tuple(dict.fromkeys(w for f in folds for w in f.warnings))
        self.seconds_ = time.perf_counter() - start
        self.result_ = self._result(cfg, out, first, problem)
        return self

    def _result(self, cfg: FitConfig, out: HeldOut, first: _Fold, problem: str | None) -> Any:
        """The :class:`PhiMIResult` of a fit (fold 0's training facts)."""
        low, high = allowed_range(cfg.div)
        calib = first.calib
        if cfg.folds == 1:
            method = f"batch means over {out.blocks} disjoint test blocks"
            covers = _CI_COVERS
        else:
            method = f"cross-fitting over {cfg.folds} folds ({out.blocks} test blocks in all)"
            covers = _CI_COVERS_FOLDS.format(k=cfg.folds)
        return PhiMIResult(
            estimate=out.estimate,
            ci_low=out.ci[0],
            ci_high=out.ci[1],
            ci_level=cfg.ci_level,
            ci_method=method,
            ci_covers=covers,
            divergence=str(cfg.div),
            bound=cfg.bound,
            critic=cfg.critic,
            base=cfg.base,
            closed_form=first.closed_form,
            training="log_ratio" if cfg.two_stage else "direct",
            link_scale=1.0 if calib is None else calib.scale,
            link_shift=0.0 if calib is None else calib.shift,
            log_ratio_cap=None if calib is None else calib.cap,
            n_train=first.sizes[0],
            n_val=first.sizes[1],
            n_test=first.sizes[2],
            steps=first.steps,
            best_step=first.history.best_step,
            stopped_early=first.history.stopped_early,
            budget_stopped=first.history.budget_stopped,
            seconds=self.seconds_,
            seed=cfg.seed,
            valid=problem is None,
            problem=problem,
            range_low=low,
            range_high=high,
            warnings=self.warnings_,
            folds=cfg.folds,
            fold_estimates=self.fold_estimates_,
        )

    def _fit_fold(
        self,
        cfg: FitConfig,
        xa: NDArray[np.float64],
        ya: NDArray[np.float64],
        rows: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
        deadline: float | None,
    ) -> _Fold:
        """Maps and critic on the training rows, choice on validation, value on the test rows."""
        idx_train, idx_val, idx_test = rows
        maps = (
            ColumnMap.fit(xa[idx_train], cfg.marginals),
            ColumnMap.fit(ya[idx_train], cfg.marginals),
        )
        xs, ys = maps[0](xa), maps[1](ya)
        gen = torch.Generator()
        gen.manual_seed(cfg.seed)
        critic = _build_critic(cfg, xs[idx_train], ys[idx_train], gen)
        x_tr = torch.as_tensor(xs[idx_train], dtype=cfg.dtype, device=cfg.device)
        y_tr = torch.as_tensor(ys[idx_train], dtype=cfg.dtype, device=cfg.device)
        batch = min(cfg.batch_size, len(idx_train))
        steps_max = cfg.steps
        if steps_max is None:
            epochs = _AUTO_EPOCHS * max(1, len(idx_train) // batch)
            steps_max = int(min(_MAX_AUTO_STEPS, max(_MIN_AUTO_STEPS, epochs)))
        val = (xs[idx_val], ys[idx_val])
        outcome = train(critic, x_tr, y_tr, val, batch, steps_max, gen, cfg, deadline)
        critic.load_state_dict(outcome.best_state)
        kept: torch.nn.Module = critic.to("cpu", torch.float64).eval()
        closed = _prefer_closed_form(kept, val, cfg, float(outcome.history.val.max()))
        calib = None
        if cfg.two_stage:
            calib = calibrate(kept, val[0], val[1], cfg)
            kept = AffineCritic(kept, calib.scale, calib.shift, calib.cap).eval()
        held = held_out(kept, xs[idx_test], ys[idx_test], cfg)
        n_block = min(len(idx_test), cfg.eval_block)
        return _Fold(
            critic=kept,
            history=outcome.history,
            calib=calib,
            maps=maps,
            held=held,
            steps=outcome.steps,
            closed_form=closed,
            idx_test=idx_test,
            sizes=(len(idx_train), len(idx_val), len(idx_test)),
            warnings=bias_warnings(held.estimate, outcome.history, cfg, n_block),
        )

    def _mapped(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], ...]:
        xa, ya = _as_matrix(x, "x"), _as_matrix(y, "y")
        for a, cmap, name in ((xa, self._x_map, "x"), (ya, self._y_map, "y")):
            if a.shape[1] != cmap.mean.shape[0]:
                raise InputError(
                    f"{name}: expected {cmap.mean.shape[0]} columns as in fit, found {a.shape[1]}"
                )
        return self._x_map(xa), self._y_map(ya)

    def score_matrix(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """Raw score matrix S_ij of the fitted critic on raw data (maps applied here).

        T = link(S) is the critic of the reported bound (``estimators.phi_mi`` docs).

        Returns
        -------
        numpy.ndarray, shape (len(x), len(y))

        Raises
        ------
        AttributeError
            Before :meth:`fit`.
        InputError
            Column counts differ from those seen in :meth:`fit`.
        """
        critic = self.critic_
        xm, ym = self._mapped(x, y)
        return np.asarray(score_matrix(critic, xm, ym).numpy(), dtype=np.float64)

    def score(self, x: ArrayLike, y: ArrayLike) -> float:
        """The fitted critic's bound on the pairs (x, y), as a float (scikit-learn ``score``).

        On the held-out rows ``x[test_rows_], y[test_rows_]`` of the data given to :meth:`fit`
        this is ``estimate_``; on other independent pairs it is another held-out estimate.

        Raises
        ------
        AttributeError
            Before :meth:`fit`.
        InputError
            Column counts differ from those seen in :meth:`fit`, or x and y differ in rows.
        """
        cfg = self.config_
        xm, ym = self._mapped(x, y)
        if xm.shape[0] != ym.shape[0] or xm.shape[0] < 2:
            raise InputError(
                f"y: expected as many rows as x ({xm.shape[0]}, at least 2), found {ym.shape[0]}"
            )
        return evaluate(self.critic_, xm, ym, cfg.bound, cfg.div, cfg.eval_block, cfg.exp_link)
