r"""Contrastive losses on a similarity matrix: InfoNCE (two forms), ADNCE, DCL, HCL, φ-CL-DRO.

Every loss takes a similarity matrix ``sim`` of shape (R, M): row ``i`` is an anchor, columns are
candidate keys, scores are "higher = more similar" (cosine similarities in training). Which
column is the anchor's positive and which columns are its negatives is fixed by the ``layout``:

``layout="population"``
    ``sim`` is (B, M) with M ≥ B; the positive of row i is column ``pos_index[i]`` (default i,
    the diagonal) and the negatives are the other M − 1 columns (N = M − 1). This is the
    cross-view layout of the theory (Wu et al. 2023, Sec. 2), of SimCSE and of the authors'
    graph code.
``layout="nt_xent"``
    ``sim`` is the (2B, 2B) Gram matrix of the 2B embeddings ``cat(z1, z2)`` (see
    :func:`pair_similarity`); the positive of row i is its other view, column (i + B) mod 2B,
    the anchor's own column i is excluded, and the negatives are the other 2B − 2 columns
    (N = 2B − 2). This is SimCLR's layout and the authors' image code. For a rectangular block of
    rows (e.g. the local anchors of one rank against all gathered keys under DDP) pass
    ``pos_index`` and ``self_index`` explicitly (the training layer's distributed helper
    builds them).

``neg_mask`` (optional, bool (R, M)) removes further columns from a row's negatives (False =
removed), e.g. same-class false negatives for an "unbiased" oracle; N then varies per row.

With s⁺ the positive score, s_1..s_N the negatives' scores and τ > 0 the temperature, per anchor:

* :func:`infonce_population` (the theory form, paper Eq. 1 population / Thm 3.2):
  ℓ = −s⁺/τ + log (1/N) Σ_j e^{s_j/τ}. No positive in the denominator, mean over negatives.
* :func:`nt_xent_from_sim` / :func:`nt_xent` (the training form, SimCLR NT-Xent):
  ℓ = −s⁺/τ + log (e^{s⁺/τ} + Σ_j e^{s_j/τ}). Positive in the denominator, sum over negatives.
  The two differ exactly by  NT-Xent = population + log N + log(1 + e^{s⁺/τ} / Σ_j e^{s_j/τ}).
* :func:`adnce` (paper Sec. 4.2): Gaussian weights on the raw similarity, detached.
* :func:`hcl` (Robinson et al. 2021) and :func:`dcl` (Chuang et al. 2020, HCL with β = 0).
* :func:`phi_cl_dro` (paper Def. 3.1, penalised form): −s⁺ + min_c {c + τ E φ*((s − c)/τ)}; for
  KL it equals τ · :func:`infonce_population` exactly (Thm 3.2, α* = τ).

All losses are dtype agnostic (float32 or float64, computed in the input's dtype), work in the
log domain (log-sum-exp everywhere), and stay finite at τ = 1e-3 with scores of ±50.
``reduction`` is ``"mean"`` (default, a 0-d tensor), ``"sum"`` or ``"none"`` (shape (R,)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from dro_theory.checks import check_positive
from dro_theory.divergences import Divergence
from dro_theory.errors import InputError
from estimators.bounds import as_divergence, optimal_shift

__all__ = [
    "AnchorIndex",
    "adnce",
    "adnce_weights",
    "dcl",
    "hcl",
    "infonce_population",
    "nt_xent",
    "nt_xent_from_sim",
    "pair_similarity",
    "phi_cl_dro",
]

Layout = Literal["population", "nt_xent"]
Reduction = Literal["mean", "sum", "none"]
PositiveMode = Literal["unweighted", "none", "weighted"]

_LAYOUTS = ("population", "nt_xent")
_REDUCTIONS = ("mean", "sum", "none")
_POSITIVE_MODES = ("unweighted", "none", "weighted")


@dataclass(frozen=True)
class AnchorIndex:
    """Where each anchor's positive is, and which column (if any) is the anchor itself.

    Attributes
    ----------
    pos_index : torch.Tensor
        Long tensor of shape (R,): the positive's column for every row.
    self_index : torch.Tensor or None
        Long tensor of shape (R,): the column holding the anchor itself (excluded from the
        negatives), or None when no column is excluded.
    drop : torch.Tensor or None
        Bool (R, M): further columns removed from each row's negatives (from a ``neg_mask``;
        never the positive or the anchor's own column), or None.
    n_neg : torch.Tensor or None
        Shape (R,): the number of negatives per row when ``drop`` is set (else the constant
        M − 1 or M − 2).
    """

    pos_index: Tensor
    self_index: Tensor | None
    drop: Tensor | None = None
    n_neg: Tensor | None = None


# ------------------------------------------------------------------------------------------
# input checks and the layout
# ------------------------------------------------------------------------------------------
def _check_sim(sim: object, name: str = "sim") -> Tensor:
    if not isinstance(sim, Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, found {type(sim).__name__}")
    if sim.ndim != 2:
        raise InputError(
            f"{name}: expected a 2-D (anchors × keys) tensor, found shape {tuple(sim.shape)}"
        )
    if not sim.is_floating_point():
        raise InputError(f"{name}: expected a floating-point tensor, found dtype {sim.dtype}")
    # a sum is finite only if every entry is (NaN and ±inf propagate): one cheap reduction,
    # the exact elementwise count only on the error path
    if not bool(torch.isfinite(sim.detach().sum())) and not bool(torch.isfinite(sim).all()):
        bad = int((~torch.isfinite(sim)).sum())
        raise InputError(f"{name}: expected finite values, found {bad} NaN/inf entries")
    return sim


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{name}: expected one of {', '.join(choices)}, found {value!r}")
    return str(value)


def _check_index(index: object, name: str, rows: int, cols: int, device: torch.device) -> Tensor:
    if not isinstance(index, Tensor) or index.dtype not in (torch.int32, torch.int64):
        raise InputError(
            f"{name}: expected an integer torch.Tensor, found {type(index).__name__}"
            + (f" of dtype {index.dtype}" if isinstance(index, Tensor) else "")
        )
    if tuple(index.shape) != (rows,):
        raise InputError(
            f"{name}: expected shape ({rows},) (one per row of sim), found {tuple(index.shape)}"
        )
    if rows and (int(index.min()) < 0 or int(index.max()) >= cols):
        raise InputError(
            f"{name}: expected column indices in [0, {cols}), found range "
            f"[{int(index.min())}, {int(index.max())}]"
        )
    return index.to(device=device, dtype=torch.int64)


def _anchor_index(
    sim: Tensor,
    layout: str,
    pos_index: Tensor | None,
    self_index: Tensor | None,
    neg_mask: Tensor | None = None,
) -> AnchorIndex:
    """Resolve the positive/self columns (and the caller's negative mask) of every row."""
    idx = _layout_index(sim, layout, pos_index, self_index)
    if neg_mask is None:
        return idx
    if not isinstance(neg_mask, Tensor) or neg_mask.dtype != torch.bool:
        found = f"dtype {neg_mask.dtype}" if isinstance(neg_mask, Tensor) else type(neg_mask)
        raise InputError(f"neg_mask: expected a bool torch.Tensor, found {found}")
    if neg_mask.shape != sim.shape:
        raise InputError(
            f"neg_mask: expected the shape of sim {tuple(sim.shape)}, found {tuple(neg_mask.shape)}"
        )
    drop = ~neg_mask.to(sim.device)
    rows = torch.arange(sim.shape[0], device=sim.device)
    drop[rows, idx.pos_index] = False
    if idx.self_index is not None:
        drop[rows, idx.self_index] = False
    n_neg = _n_negatives(sim, idx) - drop.sum(dim=1)
    if sim.shape[0] and int(n_neg.min()) < 1:
        raise InputError(
            f"neg_mask: expected at least one negative in every row, found "
            f"{int((n_neg < 1).sum())} row(s) with none"
        )
    return AnchorIndex(idx.pos_index, idx.self_index, drop, n_neg)


def _layout_index(
    sim: Tensor,
    layout: str,
    pos_index: Tensor | None,
    self_index: Tensor | None,
) -> AnchorIndex:
    """Resolve the positive/self columns of every row of ``sim`` for ``layout``."""
    layout = _check_choice(layout, "layout", _LAYOUTS)
    rows, cols = sim.shape
    dev = sim.device
    if layout == "population":
        if self_index is not None:
            raise InputError(
                "self_index: expected None for layout='population' (no column is "
                "the anchor itself), found a tensor"
            )
        if pos_index is None:
            if cols < rows:
                raise InputError(
                    f"sim: expected at least as many columns as rows (positive of "
                    f"row i in column i) for layout='population', found shape "
                    f"{tuple(sim.shape)}"
                )
            pos = torch.arange(rows, device=dev)
        else:
            pos = _check_index(pos_index, "pos_index", rows, cols, dev)
        if cols < 2:
            raise InputError(
                f"sim: expected at least 2 columns (one positive, one negative), "
                f"found shape {tuple(sim.shape)}"
            )
        return AnchorIndex(pos, None)
    # nt_xent
    if pos_index is None and self_index is None:
        if rows != cols or rows % 2:
            raise InputError(
                f"sim: expected a square (2B, 2B) matrix with an even side for "
                f"layout='nt_xent', found shape {tuple(sim.shape)}"
            )
        half = rows // 2
        ar = torch.arange(rows, device=dev)
        pos = (ar + half) % rows
        self_ = ar
    elif pos_index is None or self_index is None:
        raise InputError(
            "pos_index, self_index: expected both or neither for layout='nt_xent', found only one"
        )
    else:
        pos = _check_index(pos_index, "pos_index", rows, cols, dev)
        self_ = _check_index(self_index, "self_index", rows, cols, dev)
        if bool((pos == self_).any()):
            raise InputError(
                "pos_index: expected a column different from self_index in every "
                "row, found an equal pair"
            )
    if cols < 3:
        raise InputError(
            f"sim: expected at least 3 columns (self, positive, one negative) for "
            f"layout='nt_xent', found shape {tuple(sim.shape)}"
        )
    return AnchorIndex(pos, self_)


def _negative_mask(sim: Tensor, idx: AnchorIndex) -> Tensor:
    """Boolean (R, M) mask, True on each row's negatives (not the positive, not the anchor)."""
    mask = torch.ones(sim.shape, dtype=torch.bool, device=sim.device)
    rows = torch.arange(sim.shape[0], device=sim.device)
    mask[rows, idx.pos_index] = False
    if idx.self_index is not None:
        mask[rows, idx.self_index] = False
    if idx.drop is not None:
        mask &= ~idx.drop
    return mask


def _n_negatives(sim: Tensor, idx: AnchorIndex) -> int:
    """N before any ``neg_mask``: M − 1 (population) or M − 2 (anchor column excluded)."""
    return sim.shape[1] - (1 if idx.self_index is None else 2)


def _log_count(sim: Tensor, idx: AnchorIndex, extra: int = 0) -> float | Tensor:
    """log(N_i + extra): a float when every row has the same N, else a (R,) tensor."""
    if idx.n_neg is None:
        return math.log(_n_negatives(sim, idx) + extra)
    return torch.log((idx.n_neg + extra).to(sim.dtype))


def _excluded(idx: AnchorIndex, *, positive: bool) -> tuple[Tensor, Tensor]:
    """(row, column) indices of the entries that are not negatives: self, and the positive."""
    rows = torch.arange(idx.pos_index.shape[0], device=idx.pos_index.device)
    r_parts, c_parts = [], []
    if positive:
        r_parts.append(rows)
        c_parts.append(idx.pos_index)
    if idx.self_index is not None:
        r_parts.append(rows)
        c_parts.append(idx.self_index)
    if not r_parts:
        empty = rows[:0]
        return empty, empty
    return torch.cat(r_parts), torch.cat(c_parts)


def _minus_inf(like: Tensor, n: int) -> Tensor:
    return torch.full((n,), -math.inf, dtype=like.dtype, device=like.device)


def _negatives_only(x: Tensor, idx: AnchorIndex, *, positive: bool = True) -> Tensor:
    """``x`` with −inf on the anchor's own column (and on the positive's when ``positive``).

    Out of place and differentiable; the backward zeroes those entries. Cheaper than building
    an (R, M) boolean mask.
    """
    r, c = _excluded(idx, positive=positive)
    if r.numel():
        x = x.index_put((r, c), _minus_inf(x, r.numel()))
    if idx.drop is not None:
        x = x.masked_fill(idx.drop, -math.inf)
    return x


def _positive(sim: Tensor, idx: AnchorIndex) -> Tensor:
    return sim.gather(1, idx.pos_index.unsqueeze(1)).squeeze(1)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    reduction = _check_choice(reduction, "reduction", _REDUCTIONS)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _temperature(temperature: object) -> float:
    return check_positive(temperature, "temperature")


# ------------------------------------------------------------------------------------------
# InfoNCE: the population form and NT-Xent
# ------------------------------------------------------------------------------------------
def pair_similarity(z1: Tensor, z2: Tensor, *, normalize: bool = True) -> Tensor:
    r"""The (2B, 2B) similarity matrix of the 2B embeddings ``cat(z1, z2)``.

    Parameters
    ----------
    z1, z2 : torch.Tensor
        Shape (B, d): the two views; row i of ``z1`` and row i of ``z2`` are a positive pair.
    normalize : bool
        L2-normalise the rows first, so that entries are cosine similarities in [−1, 1].

    Returns
    -------
    torch.Tensor
        Shape (2B, 2B), S_ij = z_iᵀ z_j with z = cat(z1, z2); the layout ``"nt_xent"``.
    """
    for name, z in (("z1", z1), ("z2", z2)):
        if not isinstance(z, Tensor) or z.ndim != 2:
            found = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise InputError(f"{name}: expected a 2-D (B, d) tensor, found {found}")
    if z1.shape != z2.shape:
        raise InputError(f"z2: expected the shape of z1 {tuple(z1.shape)}, found {tuple(z2.shape)}")
    z = torch.cat([z1, z2], dim=0)
    if normalize:
        z = F.normalize(z, dim=1)
    return z @ z.T


def infonce_population(
    sim: Tensor,
    temperature: float,
    *,
    layout: Layout = "population",
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Population-form InfoNCE (the theory's form; paper Eq. 1 with E_{Q0}, Thm 3.2).

    Per anchor, with Q0 the uniform distribution over its N negatives,

    .. math:: \ell_i = -\frac{s^+_i}{\tau}
              + \log \frac1N \sum_{j \in \mathrm{neg}(i)} e^{s_{ij}/\tau}.

    The positive is NOT in the denominator and the negatives enter through a mean, so
    ℓ_i = −log(e^{s⁺/τ} / E_{Q0} e^{s/τ}); this is the authors' graph ``easy`` loss.

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M) similarity matrix; see the module docstring for the layouts.
    temperature : float
        τ > 0.
    layout : {"population", "nt_xent"}
        Which columns are the positive / negatives (default: positive of row i in column i,
        negatives all other columns).
    pos_index, self_index : torch.Tensor, optional
        Shape (R,) long tensors overriding the layout's positive / self columns.
    neg_mask : torch.Tensor, optional
        Bool (R, M); False removes a column from that row's negatives (e.g. same-class false
        negatives for an "unbiased" oracle). The positive and self columns are handled by the
        layout whatever the mask says; every row must keep at least one negative. N then
        varies per row.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    torch.Tensor
        0-d, or shape (R,) for ``reduction="none"``.
    """
    sim = _check_sim(sim)
    tau = _temperature(temperature)
    idx = _anchor_index(sim, layout, pos_index, self_index, neg_mask)
    logits = _negatives_only(sim / tau, idx)
    log_n = _log_count(sim, idx)
    loss = torch.logsumexp(logits, dim=1) - log_n - _positive(sim, idx) / tau
    return _reduce(loss, reduction)


def nt_xent_from_sim(
    sim: Tensor,
    temperature: float,
    *,
    layout: Layout = "nt_xent",
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""NT-Xent / standard InfoNCE (training form; SimCLR, the authors' image ``easy`` loss).

    Per anchor, with the positive IN the denominator and a sum over the N negatives,

    .. math:: \ell_i = -\log \frac{e^{s^+_i/\tau}}
              {e^{s^+_i/\tau} + \sum_{j \in \mathrm{neg}(i)} e^{s_{ij}/\tau}}.

    With ``layout="nt_xent"`` (default) ``sim`` is the (2B, 2B) matrix of
    :func:`pair_similarity`, every one of the 2B embeddings is an anchor with its other view as
    positive and the 2B − 2 others as negatives. With ``layout="population"`` it is the
    SimCSE cross-entropy over each row of a (B, M) matrix with target column i.
    Relation to :func:`infonce_population` on the same layout (exact, per anchor):
    ℓ_NT-Xent = ℓ_pop + log N + log(1 + e^{s⁺/τ} / Σ_j e^{s_j/τ}).

    Parameters and returns as :func:`infonce_population`.
    """
    sim = _check_sim(sim)
    tau = _temperature(temperature)
    idx = _anchor_index(sim, layout, pos_index, self_index, neg_mask)
    logits = _negatives_only(sim / tau, idx, positive=False)
    loss = F.cross_entropy(logits, idx.pos_index, reduction="none")
    return _reduce(loss, reduction)


def nt_xent(
    z1: Tensor,
    z2: Tensor,
    temperature: float,
    *,
    normalize: bool = True,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""NT-Xent on two views: :func:`nt_xent_from_sim` of :func:`pair_similarity` (z1, z2).

    Parameters
    ----------
    z1, z2 : torch.Tensor
        Shape (B, d) embeddings of the two views (row i of each is a positive pair).
    temperature : float
        τ > 0.
    normalize : bool
        Cosine similarity (L2-normalise first), as in SimCLR.
    reduction : {"mean", "sum", "none"}
        ``"none"`` gives shape (2B,): anchors cat(z1, z2) in order.
    """
    return nt_xent_from_sim(
        pair_similarity(z1, z2, normalize=normalize), temperature, reduction=reduction
    )


# ------------------------------------------------------------------------------------------
# ADNCE
# ------------------------------------------------------------------------------------------
def _log_adnce_weights(
    sim: Tensor, idx: AnchorIndex, mu: float, sigma: float, *, include_positive: bool
) -> Tensor:
    """log w̃, detached: Gaussian log-weights minus their log-mean over the normalisation set
    (the negatives, plus the positive when ``include_positive``); −inf outside the set.

    One fused no-grad pass, in place: (s − μ)² · (−1/(2σ²)), exclusion, row log-mean-exp.
    """
    with torch.no_grad():
        logw = sim.detach() - mu
        logw.mul_(logw).mul_(-0.5 / (sigma * sigma))
        r, c = _excluded(idx, positive=not include_positive)
        if r.numel():
            logw.index_put_((r, c), _minus_inf(logw, r.numel()))
        if idx.drop is not None:
            logw.masked_fill_(idx.drop, -math.inf)
        log_n = _log_count(sim, idx, 1 if include_positive else 0)
        if isinstance(log_n, Tensor):
            log_n = log_n.unsqueeze(1)
        logw.sub_(torch.logsumexp(logw, dim=1, keepdim=True) - log_n)
        return logw


def adnce_weights(
    sim: Tensor,
    *,
    mu: float = 0.7,
    sigma: float = 0.5,
    positive: PositiveMode = "unweighted",
    layout: Layout = "nt_xent",
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
) -> Tensor:
    r"""The normalised, detached ADNCE weights w̃ (for logging their min / max).

    w_ij = exp(−(s_ij − μ)²/(2σ²)) on the RAW similarity, w̃_ij = w_ij / mean_{k∈set(i)} w_ik
    where set(i) is the anchor's negatives (``positive`` = "unweighted" / "none") or the
    negatives and the positive (``"weighted"``). Entries outside set(i) are 0.

    Returns
    -------
    torch.Tensor
        Shape (R, M), no gradient; each row averages to 1 over set(i).
    """
    sim = _check_sim(sim)
    sigma = check_positive(sigma, "sigma")
    mu = _finite(mu, "mu")
    mode = _check_choice(positive, "positive", _POSITIVE_MODES)
    idx = _anchor_index(sim, layout, pos_index, self_index, neg_mask)
    return _log_adnce_weights(sim, idx, mu, sigma, include_positive=mode == "weighted").exp()


def _finite(value: object, name: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a finite number, found {value!r}") from exc
    if not math.isfinite(v):
        raise InputError(f"{name}: expected a finite number, found {v!r}")
    return v


def adnce(
    sim: Tensor,
    temperature: float,
    *,
    mu: float = 0.7,
    sigma: float = 0.5,
    positive: PositiveMode = "unweighted",
    layout: Layout = "nt_xent",
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""ADNCE (paper Sec. 4.2): InfoNCE with detached Gaussian weights on the negatives.

    Weights on the raw similarity s (not on e^{s/τ}; see the reference notes, pitfall 1),

    .. math:: w_{ij} = \exp\!\big(-(s_{ij}-\mu)^2/(2\sigma^2)\big), \qquad
              \tilde w_{ij} = w_{ij} \big/ \tfrac{1}{|S_i|}\sum_{k \in S_i} w_{ik},

    computed under ``no_grad`` (stop-gradient: the nominal w̃·Q0 is fixed, so the DRO reading
    τ·ℓ = −s⁺ + max_Q {E_Q s − τ KL(Q‖w̃ Q0)} holds). The constant 1/(σ√(2π)) cancels. The
    positive is treated according to ``positive``:

    ``"unweighted"`` (authors' image code; default, with ``layout="nt_xent"``): S_i = neg(i),
        ℓ_i = −log( e^{s⁺/τ} / (e^{s⁺/τ} + Σ_{j∈neg} w̃_ij e^{s_ij/τ}) ).
    ``"none"`` (graph code = the paper's population form; use with ``layout="population"``):
        S_i = neg(i), ℓ_i = −s⁺/τ + log (1/N) Σ_{j∈neg} w̃_ij e^{s_ij/τ}.
    ``"weighted"`` (sentence code): S_i = neg(i) ∪ {pos(i)},
        ℓ_i = −log( e^{s⁺/τ} / Σ_{j∈S_i} w̃_ij e^{s_ij/τ} ).

    As σ → ∞, w̃ → 1 and each mode reduces to its InfoNCE (NT-Xent for "unweighted" and
    "weighted", :func:`infonce_population` for "none"); the effective tilt w e^{s/τ} is a
    Gaussian in s peaking at μ + σ²/τ.

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M) similarity matrix (raw cosine similarities); see the module docstring.
    temperature : float
        τ > 0.
    mu, sigma : float
        Centre and width of the Gaussian (defaults: the authors' CIFAR-10 values 0.7, 0.5).
    positive : {"unweighted", "none", "weighted"}
    layout : {"nt_xent", "population"}
    pos_index, self_index : torch.Tensor, optional
        Shape (R,) overrides of the layout's positive / self columns.
    neg_mask : torch.Tensor, optional
        Bool (R, M); False removes a column from that row's negatives (see
        :func:`infonce_population`).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    torch.Tensor
        0-d, or shape (R,) for ``reduction="none"``.
    """
    sim = _check_sim(sim)
    tau = _temperature(temperature)
    sigma = check_positive(sigma, "sigma")
    mu = _finite(mu, "mu")
    mode = _check_choice(positive, "positive", _POSITIVE_MODES)
    idx = _anchor_index(sim, layout, pos_index, self_index, neg_mask)
    # offset = log w̃ (no grad), −inf off the normalisation set; for "unweighted" the positive's
    # column gets offset 0, so logits = s/τ + offset holds the plain positive logit there
    offset = _log_adnce_weights(sim, idx, mu, sigma, include_positive=mode == "weighted")
    if mode == "unweighted":
        rows = torch.arange(sim.shape[0], device=sim.device)
        offset[rows, idx.pos_index] = 0.0
    pos_offset = (
        offset.gather(1, idx.pos_index.unsqueeze(1)).squeeze(1) if mode == "weighted" else None
    )
    logits = offset.add_(sim, alpha=1.0 / tau)  # in place on the no-grad buffer; grad wrt sim
    if mode == "none":
        log_n = _log_count(sim, idx)
        loss = torch.logsumexp(logits, dim=1) - log_n - _positive(sim, idx) / tau
    else:  # −log(e^{s⁺/τ} / Σ_{S_i} w̃ e^{s/τ}) = cross-entropy on the positive's column
        loss = F.cross_entropy(logits, idx.pos_index, reduction="none")
        if pos_offset is not None:  # logits[pos] = s⁺/τ + log w̃_pos; the numerator is e^{s⁺/τ}
            loss = loss + pos_offset
    return _reduce(loss, reduction)


# ------------------------------------------------------------------------------------------
# HCL and DCL
# ------------------------------------------------------------------------------------------
def hcl(
    sim: Tensor,
    temperature: float,
    *,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    layout: Layout = "nt_xent",
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Hard-negative contrastive loss (Robinson et al., ICLR 2021), in the authors' form.

    With pos_i = e^{s⁺/τ}, importance weights v_ij = e^{β s_ij/τ} over the N negatives and
    R_i = Σ_j v_ij e^{s_ij/τ} / ((1/N) Σ_j v_ij), the debiased negative term is

    .. math:: Ng_i = \max\Big( \frac{-\tau^+ N\,\mathrm{pos}_i + R_i}{1-\tau^+},\;
              N e^{-1/\tau} \Big), \qquad
              \ell_i = -\log \frac{\mathrm{pos}_i}{\mathrm{pos}_i + Ng_i}.

    τ⁺ is the class prior (probability that a "negative" shares the anchor's class). As in the
    authors' code the weights v are NOT detached. Computed in the log domain:
    ℓ_i = softplus(log Ng_i − s⁺/τ), log R_i = log N + lse_j((1+β)s_ij/τ) − lse_j(β s_ij/τ),
    log(R − T) = log R + log(−expm1(log T − log R)) for T = τ⁺ N pos < R, with R − T clamped
    below at eps·R (below that it is zero within the rounding of R and T); the floor
    N e^{−1/τ} is used when T ≥ R or the debiased term is below it.
    With β = 0 this is :func:`dcl`; with τ⁺ = 0 and β = 0 it is NT-Xent (when the floor is not
    active, which holds for cosine similarities > −1).

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M); see the module docstring (default layout: NT-Xent, 2B−2 negatives).
    temperature : float
        τ > 0.
    tau_plus : float
        Class prior τ⁺ ∈ [0, 1).
    beta : float
        Hardness concentration β ≥ 0.
    layout, pos_index, self_index, neg_mask, reduction
        As :func:`adnce`.

    Returns
    -------
    torch.Tensor
        0-d, or shape (R,) for ``reduction="none"``.
    """
    sim = _check_sim(sim)
    tau = _temperature(temperature)
    tau_plus = _finite(tau_plus, "tau_plus")
    if not 0.0 <= tau_plus < 1.0:
        raise InputError(f"tau_plus: expected a class prior in [0, 1), found {tau_plus!r}")
    beta = _finite(beta, "beta")
    if beta < 0:
        raise InputError(f"beta: expected a number >= 0, found {beta!r}")
    idx = _anchor_index(sim, layout, pos_index, self_index, neg_mask)
    log_n = _log_count(sim, idx)
    pos_logit = _positive(sim, idx) / tau
    masked = _negatives_only(sim, idx)
    log_r = torch.logsumexp(masked * ((1.0 + beta) / tau), dim=1)
    if beta != 0.0:
        log_r = log_r + log_n - torch.logsumexp(masked * (beta / tau), dim=1)
    floor = log_n - 1.0 / tau
    if tau_plus == 0.0:
        log_ng = torch.clamp(log_r, min=floor)
    else:
        log_t = math.log(tau_plus) + log_n + pos_logit
        eps = torch.finfo(sim.dtype).eps
        d = torch.clamp(log_t - log_r, max=math.log1p(-eps))  # R − T ≥ eps·R
        debiased = log_r + torch.log(-torch.expm1(d)) - math.log1p(-tau_plus)
        use = (log_t < log_r) & (debiased > floor)
        log_ng = torch.where(use, debiased, floor)
    loss = F.softplus(log_ng - pos_logit)
    return _reduce(loss, reduction)


def dcl(
    sim: Tensor,
    temperature: float,
    *,
    tau_plus: float = 0.1,
    layout: Layout = "nt_xent",
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Debiased contrastive loss (Chuang et al., NeurIPS 2020): :func:`hcl` with β = 0.

    .. math:: Ng_i = \max\Big( \frac{-\tau^+ N e^{s^+_i/\tau} + \sum_{j} e^{s_{ij}/\tau}}
              {1-\tau^+},\; N e^{-1/\tau} \Big), \qquad
              \ell_i = -\log \frac{e^{s^+_i/\tau}}{e^{s^+_i/\tau} + Ng_i}.

    With τ⁺ = 0 (and the floor inactive) this is NT-Xent. Parameters as :func:`hcl`.
    """
    return hcl(
        sim,
        temperature,
        tau_plus=tau_plus,
        beta=0.0,
        layout=layout,
        pos_index=pos_index,
        self_index=self_index,
        neg_mask=neg_mask,
        reduction=reduction,
    )


# ------------------------------------------------------------------------------------------
# φ-CL-DRO
# ------------------------------------------------------------------------------------------
def phi_cl_dro(
    sim: Tensor,
    temperature: float,
    divergence: str | Divergence = "kl",
    *,
    layout: Layout = "population",
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Penalised φ-CL-DRO loss (paper Def. 3.1 with the Lagrangian at α = τ; Thm 3.2, 3.6).

    Per anchor, with Q0 uniform over the N negatives,

    .. math:: \ell_i = -s^+_i + \max_{Q} \{E_Q s - \tau D_\phi(Q\|Q_0)\}
              = -s^+_i + \min_c \Big\{ c + \frac{\tau}{N}\sum_{j\in\mathrm{neg}(i)}
                \phi^*\!\Big(\frac{s_{ij}-c}{\tau}\Big) \Big\}.

    Substituting c = τλ, the inner value is τ·min_λ {λ + mean φ*(s/τ − λ)}; λ* comes from
    :func:`estimators.bounds.optimal_shift` per row under ``no_grad``; by the envelope theorem
    the gradient at fixed λ* is the gradient of the minimum. For KL (φ(t) = t log t,
    φ*(u) = e^{u−1}) the minimiser is λ* = log mean e^{s/τ} − 1 and the value is exactly
    τ log mean e^{s/τ}: the loss equals τ · :func:`infonce_population` with NO additive constant
    (the −1 in φ* is absorbed by λ*; any affine term a(t − 1) added to φ shifts λ* by a and
    leaves the value unchanged).

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M); see the module docstring (default layout: population).
    temperature : float
        τ > 0 (the penalty multiplier α).
    divergence : str or Divergence
        Catalogue name or spec (``"kl"``, ``"chi2"``, ``"cressie_read:1.5"``) or an instance;
        φ* is the catalogue's.
    layout, pos_index, self_index, neg_mask, reduction
        As :func:`infonce_population`.

    Returns
    -------
    torch.Tensor
        0-d, or shape (R,) for ``reduction="none"``. In units of s (not divided by τ).
    """
    sim = _check_sim(sim)
    tau = _temperature(temperature)
    div = as_divergence(divergence)
    idx = _anchor_index(sim, layout, pos_index, self_index, neg_mask)
    neg = _negative_mask(sim, idx)
    rows = sim.shape[0]
    if idx.n_neg is None:
        # every row has the same number of negatives; pack them into (R, N)
        u = (sim / tau)[neg].reshape(rows, _n_negatives(sim, idx))
        with torch.no_grad():
            lam = torch.as_tensor(
                optimal_shift(u.detach(), div, dim=1), dtype=sim.dtype, device=sim.device
            ).reshape(rows, 1)
        inner = lam.squeeze(1) + div.conjugate(u - lam).mean(dim=1)
    else:
        # N varies per row: weights 1/N_i on the negatives, 0 elsewhere; the other entries get
        # the row's mean negative (inside dom φ* after the shift) so φ* stays finite there
        w = neg.to(sim.dtype) / idx.n_neg.to(sim.dtype).unsqueeze(1)
        u_all = sim / tau
        fill = (u_all.detach() * w).sum(dim=1, keepdim=True)
        u = torch.where(neg, u_all, fill)
        with torch.no_grad():
            lam = torch.as_tensor(
                optimal_shift(u.detach(), div, dim=1, weights=w),
                dtype=sim.dtype,
                device=sim.device,
            ).reshape(rows, 1)
        inner = lam.squeeze(1) + (w * div.conjugate(u - lam)).sum(dim=1)
    loss = tau * inner - _positive(sim, idx)
    return _reduce(loss, reduction)
