r"""Which column of a similarity matrix is each anchor's positive, itself, and its negatives.

A loss gets a similarity matrix ``sim`` of shape (R, M) (row = anchor, column = key, higher =
more similar) and ONE layout object, :class:`AnchorIndex`, that says for every row which column
is the positive, which column (if any) is the anchor itself, and which further columns are
removed from its negatives. A layout is built and validated once (the index checks read the
indices back to the host) and can then be passed to every call without further checks:

``AnchorIndex.population(rows, cols)``
    positive of row i in column i, negatives the other M − 1 columns (the theory's cross-view
    layout, Wu et al. 2023 Sec. 2; SimCSE).
``AnchorIndex.nt_xent(rows)``
    the (2B, 2B) Gram matrix of ``cat(z1, z2)``: positive (i + B) mod 2B, the anchor's own
    column excluded, N = 2B − 2 negatives (SimCLR).
``AnchorIndex.explicit(pos_index, self_index, cols)``
    any rows, e.g. the local anchors of one rank against all gathered keys under DDP.
``idx.with_negatives(keep)``
    a bool (R, M) mask, False removing a column from that row's negatives (the "unbiased"
    oracle of paper Table 1); N then varies per row.

The string names ``"population"`` and ``"nt_xent"`` stand for the default layouts of ``sim``'s
shape. Value checks that need a device-to-host read (finite scores, at least one negative per
row) run on CPU tensors only, so that a loss on an accelerator makes no host synchronisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from dro_theory.checks import check_positive
from dro_theory.errors import InputError

__all__ = [
    "LAYOUTS",
    "REDUCTIONS",
    "AnchorIndex",
    "LayoutName",
    "Reduction",
    "check_choice",
    "check_sim",
    "finite_float",
    "log_negative_count",
    "negative_mask",
    "negatives_only",
    "positive_scores",
    "prepare",
    "reduce_loss",
    "resolve_layout",
    "with_minus_inf",
]

LayoutName = Literal["population", "nt_xent"]
Reduction = Literal["mean", "sum", "none"]

#: the named layouts
LAYOUTS = ("population", "nt_xent")
#: how per-anchor losses are combined
REDUCTIONS = ("mean", "sum", "none")


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else :class:`InputError` naming ``name``."""
    if value not in choices:
        raise InputError(f"{name}: expected one of {', '.join(choices)}, found {value!r}")
    return str(value)


def finite_float(value: object, name: str) -> float:
    """``value`` as a finite float, else :class:`InputError` naming ``name``."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a finite number, found {value!r}") from exc
    if not math.isfinite(v):
        raise InputError(f"{name}: expected a finite number, found {v!r}")
    return v


def check_sim(sim: object, name: str = "sim") -> Tensor:
    """A 2-D floating tensor; on the CPU also finite (no host read-back on an accelerator).

    Raises
    ------
    InputError
        Not a tensor, not 2-D, not floating point, or (CPU) a NaN/inf entry.
    """
    if not isinstance(sim, Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, found {type(sim).__name__}")
    if sim.ndim != 2:
        raise InputError(
            f"{name}: expected a 2-D (anchors × keys) tensor, found shape {tuple(sim.shape)}"
        )
    if not sim.is_floating_point():
        raise InputError(f"{name}: expected a floating-point tensor, found dtype {sim.dtype}")
    # one cheap reduction (NaN and ±inf propagate through a sum), the count on the error path
    if sim.device.type == "cpu" and not bool(torch.isfinite(sim.detach().sum())):
        bad = int((~torch.isfinite(sim)).sum())
        if bad:
            raise InputError(f"{name}: expected finite values, found {bad} NaN/inf entries")
    return sim


def _check_index(index: object, name: str, rows: int, cols: int) -> Tensor:
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
    return index.to(torch.int64)


@dataclass(frozen=True)
class AnchorIndex:
    """The layout of a similarity matrix: positive, self and removed columns of every row.

    Build it with :meth:`population`, :meth:`nt_xent` or :meth:`explicit` (validated once) and
    :meth:`with_negatives`; pass it as ``layout=`` to every loss.

    Attributes
    ----------
    pos_index : torch.Tensor
        Long (R,): the positive's column of every row.
    self_index : torch.Tensor or None
        Long (R,): the anchor's own column (excluded from the negatives), or None.
    drop : torch.Tensor or None
        Bool (R, M): further columns removed from each row's negatives (never the positive or
        the anchor's own column), or None.
    n_neg : torch.Tensor or None
        (R,): negatives per row when ``drop`` is set (else the constant M − 1 or M − 2).
    """

    pos_index: Tensor
    self_index: Tensor | None
    drop: Tensor | None = None
    n_neg: Tensor | None = None

    @property
    def rows(self) -> int:
        """R, the number of anchors."""
        return int(self.pos_index.shape[0])

    @classmethod
    def population(
        cls, rows: int, cols: int, device: torch.device | str | None = None
    ) -> AnchorIndex:
        """Positive of row i in column i, negatives the other ``cols`` − 1 columns."""
        if cols < rows:
            raise InputError(
                f"sim: expected at least as many columns as rows (positive of row i in column "
                f"i) for layout='population', found shape {(rows, cols)}"
            )
        return cls(torch.arange(rows, device=device), None)

    @classmethod
    def nt_xent(cls, rows: int, device: torch.device | str | None = None) -> AnchorIndex:
        """SimCLR's (2B, 2B) layout: positive (i + B) mod 2B, the anchor's column excluded."""
        if rows % 2:
            raise InputError(
                f"sim: expected a square (2B, 2B) matrix with an even side for "
                f"layout='nt_xent', found {rows} rows"
            )
        ar = torch.arange(rows, device=device)
        return cls((ar + rows // 2) % rows, ar)

    @classmethod
    def explicit(
        cls, pos_index: Tensor, self_index: Tensor | None, cols: int, rows: int | None = None
    ) -> AnchorIndex:
        """Caller-given positive (and self) columns, checked once against ``cols`` (and
        ``rows``, the number of anchors, when given).

        Raises
        ------
        InputError
            Not an integer (R,) tensor, an index outside [0, cols), or a row whose positive is
            its own column.
        """
        if rows is None:
            rows = int(pos_index.shape[0]) if isinstance(pos_index, Tensor) else -1
        pos = _check_index(pos_index, "pos_index", rows, cols)
        if self_index is None:
            return cls(pos, None)
        self_ = _check_index(self_index, "self_index", rows, cols).to(pos.device)
        if bool((pos == self_).any()):
            raise InputError(
                "pos_index: expected a column different from self_index in every row, found "
                "an equal pair"
            )
        return cls(pos, self_)

    def with_negatives(self, keep: Tensor) -> AnchorIndex:
        """This layout with the columns where ``keep`` is False removed from the negatives.

        Parameters
        ----------
        keep : torch.Tensor
            Bool (R, M). The positive and self columns are handled by the layout whatever
            ``keep`` says.

        Raises
        ------
        InputError
            Not a bool tensor of R rows, or (CPU tensors) a row left without a negative.
        """
        if not isinstance(keep, Tensor) or keep.dtype != torch.bool:
            found = f"dtype {keep.dtype}" if isinstance(keep, Tensor) else type(keep).__name__
            raise InputError(f"neg_mask: expected a bool torch.Tensor, found {found}")
        if keep.ndim != 2 or keep.shape[0] != self.rows:
            raise InputError(
                f"neg_mask: expected the shape of sim ({self.rows}, M), found {tuple(keep.shape)}"
            )
        keep = keep.to(self.pos_index.device)
        drop = ~keep
        rows = torch.arange(self.rows, device=keep.device)
        drop[rows, self.pos_index] = False
        if self.self_index is not None:
            drop[rows, self.self_index] = False
        n_neg = _base_count(self, int(keep.shape[1])) - drop.sum(dim=1)
        if keep.device.type == "cpu" and self.rows and int(n_neg.min()) < 1:
            raise InputError(
                f"neg_mask: expected at least one negative in every row, found "
                f"{int((n_neg < 1).sum())} row(s) with none"
            )
        return AnchorIndex(self.pos_index, self.self_index, drop, n_neg)


def _base_count(idx: AnchorIndex, cols: int) -> int:
    """N before any removal: M − 1, or M − 2 when the anchor's own column is excluded."""
    return cols - (1 if idx.self_index is None else 2)


def _check_fits(sim: Tensor, idx: AnchorIndex, layout: str) -> AnchorIndex:
    rows, cols = sim.shape
    if idx.rows != rows:
        raise InputError(
            f"layout: expected an AnchorIndex of {rows} rows (one per row of sim), found {idx.rows}"
        )
    if idx.drop is not None and tuple(idx.drop.shape) != (rows, cols):
        raise InputError(
            f"neg_mask: expected the shape of sim {tuple(sim.shape)}, found {tuple(idx.drop.shape)}"
        )
    minimum = 2 if idx.self_index is None else 3
    if cols < minimum:
        what = "one positive, one negative" if minimum == 2 else "self, positive, one negative"
        raise InputError(
            f"sim: expected at least {minimum} columns ({what}) for layout={layout!r}, found "
            f"shape {tuple(sim.shape)}"
        )
    return idx


def _on(index: object, sim: Tensor) -> Tensor:
    """``index`` on ``sim``'s device when it is a tensor (else as is, for the checks to name)."""
    return index.to(sim.device) if isinstance(index, Tensor) else index  # type: ignore[return-value]


def resolve_layout(
    sim: Tensor,
    layout: str | AnchorIndex,
    pos_index: Tensor | None = None,
    self_index: Tensor | None = None,
    neg_mask: Tensor | None = None,
) -> AnchorIndex:
    """The :class:`AnchorIndex` of ``sim`` for a layout name or object (checked to fit).

    ``pos_index``, ``self_index`` and ``neg_mask`` are the older keyword form of the same
    information (kept for existing callers; new code passes one :class:`AnchorIndex`).

    Raises
    ------
    InputError
        An unknown name, indices that do not fit ``sim``, or keywords given with an object.
    """
    rows, cols = sim.shape
    if isinstance(layout, AnchorIndex):
        if pos_index is not None or self_index is not None or neg_mask is not None:
            raise InputError(
                "layout: expected either an AnchorIndex or pos_index/self_index/neg_mask, "
                "found both"
            )
        return _check_fits(sim, layout, "AnchorIndex")
    name = check_choice(layout, "layout", LAYOUTS)
    if name == "population":
        if self_index is not None:
            raise InputError(
                "self_index: expected None for layout='population' (no column is the anchor "
                "itself), found a tensor"
            )
        idx = (
            AnchorIndex.population(rows, cols, sim.device)
            if pos_index is None
            else AnchorIndex.explicit(_on(pos_index, sim), None, cols, rows)
        )
    elif pos_index is None and self_index is None:
        if rows != cols or rows % 2:
            raise InputError(
                f"sim: expected a square (2B, 2B) matrix with an even side for "
                f"layout='nt_xent', found shape {tuple(sim.shape)}"
            )
        idx = AnchorIndex.nt_xent(rows, sim.device)
    elif pos_index is None or self_index is None:
        raise InputError(
            "pos_index, self_index: expected both or neither for layout='nt_xent', found only one"
        )
    else:
        idx = AnchorIndex.explicit(_on(pos_index, sim), _on(self_index, sim), cols, rows)
    if neg_mask is not None:
        if isinstance(neg_mask, Tensor) and neg_mask.shape != sim.shape:
            raise InputError(
                f"neg_mask: expected the shape of sim {tuple(sim.shape)}, found "
                f"{tuple(neg_mask.shape)}"
            )
        idx = idx.with_negatives(neg_mask)
    return _check_fits(sim, idx, name)


def negative_mask(idx: AnchorIndex, cols: int) -> Tensor:
    """Bool (R, ``cols``), True on each row's negatives (not positive, not self, not dropped)."""
    mask = torch.ones((idx.rows, cols), dtype=torch.bool, device=idx.pos_index.device)
    rows = torch.arange(idx.rows, device=mask.device)
    mask[rows, idx.pos_index] = False
    if idx.self_index is not None:
        mask[rows, idx.self_index] = False
    if idx.drop is not None:
        mask &= ~idx.drop
    return mask


def log_negative_count(sim: Tensor, idx: AnchorIndex, extra: int = 0) -> float | Tensor:
    """log(N_i + extra): a float when every row has the same N, else a (R,) tensor."""
    if idx.n_neg is None:
        return math.log(_base_count(idx, int(sim.shape[1])) + extra)
    return torch.log((idx.n_neg + extra).to(sim.dtype))


def _excluded(idx: AnchorIndex, *, positive: bool) -> tuple[Tensor, Tensor]:
    """(row, column) indices of the entries that are not negatives: self, and the positive."""
    rows = torch.arange(idx.rows, device=idx.pos_index.device)
    r_parts, c_parts = [], []
    if positive:
        r_parts.append(rows)
        c_parts.append(idx.pos_index)
    if idx.self_index is not None:
        r_parts.append(rows)
        c_parts.append(idx.self_index)
    if not r_parts:
        return rows[:0], rows[:0]
    return torch.cat(r_parts), torch.cat(c_parts)


def with_minus_inf(x: Tensor, idx: AnchorIndex, *, positive: bool, inplace: bool = False) -> Tensor:
    """``x`` with −inf off the negatives: on self, dropped columns and (``positive``) the positive.

    Out of place and differentiable unless ``inplace`` (for no-grad buffers); the backward
    zeroes those entries. Cheaper than building an (R, M) boolean mask.
    """
    r, c = _excluded(idx, positive=positive)
    fill = torch.full((r.numel(),), -math.inf, dtype=x.dtype, device=x.device)
    if r.numel():
        x = x.index_put_((r, c), fill) if inplace else x.index_put((r, c), fill)
    if idx.drop is not None:
        x = x.masked_fill_(idx.drop, -math.inf) if inplace else x.masked_fill(idx.drop, -math.inf)
    return x


def negatives_only(x: Tensor, idx: AnchorIndex) -> Tensor:
    """``x`` on each row's negatives, −inf on its positive, self and dropped columns."""
    return with_minus_inf(x, idx, positive=True)


def positive_scores(sim: Tensor, idx: AnchorIndex) -> Tensor:
    """s⁺, shape (R,): each row's entry in its positive column."""
    return sim.gather(1, idx.pos_index.unsqueeze(1)).squeeze(1)


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Mean (0-d), sum (0-d) or the per-anchor losses ("none", shape (R,))."""
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


_LEGACY = ("pos_index", "self_index", "neg_mask")


def prepare(
    sim: object, temperature: object, layout: str | AnchorIndex, legacy: dict[str, Tensor | None]
) -> tuple[Tensor, float, AnchorIndex]:
    """The checked ``sim``, τ > 0 and the :class:`AnchorIndex` every loss starts from.

    ``legacy`` holds the older keywords ``pos_index``, ``self_index``, ``neg_mask`` (see
    :func:`resolve_layout`).

    Raises
    ------
    InputError
        Bad ``sim`` or layout, τ not a finite number > 0, or an unknown keyword.
    """
    unknown = sorted(set(legacy) - set(_LEGACY))
    if unknown:
        raise InputError(
            f"{unknown[0]}: expected one of the keywords {', '.join(_LEGACY)}, found an "
            "unknown keyword"
        )
    sim = check_sim(sim)
    tau = check_positive(temperature, "temperature")
    return sim, tau, resolve_layout(sim, layout, **legacy)
