"""Fault makers: each takes the original object and returns the broken one."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = [
    "arg_scaled",
    "const",
    "divergence_name",
    "excess_scaled",
    "field_map",
    "field_scaled",
    "forced_kwarg",
    "q_is_nominal",
    "tensor_map",
]

Maker = Callable[[Any], Any]


def divergence_name(divergence: Any) -> str:
    """The spec string of a divergence given as a name or an object (``"kl"``, …)."""
    return str(getattr(divergence, "name", divergence)).split(":")[0]


def _bound(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
    ba = inspect.signature(fn).bind(*args, **kwargs)
    ba.apply_defaults()
    return ba


def _wrap(orig: Any, body: Callable[[inspect.BoundArguments], Any]) -> Any:
    @functools.wraps(orig)
    def broken(*args: Any, **kwargs: Any) -> Any:
        return body(_bound(orig, args, kwargs))

    return broken


def _applies(ba: inspect.BoundArguments, only: str | None) -> bool:
    return only is None or divergence_name(ba.arguments.get("divergence")) == only


def arg_scaled(arg: str, factor: float, only: str | None = None) -> Maker:
    """Call the original with argument ``arg`` multiplied by ``factor`` (only for φ ``only``)."""

    def make(orig: Any) -> Any:
        def body(ba: inspect.BoundArguments) -> Any:
            if _applies(ba, only):
                ba.arguments[arg] = ba.arguments[arg] * factor
            return orig(*ba.args, **ba.kwargs)

        return _wrap(orig, body)

    return make


def forced_kwarg(arg: str, value: Any) -> Maker:
    """Call the original with argument ``arg`` replaced by ``value``."""

    def make(orig: Any) -> Any:
        def body(ba: inspect.BoundArguments) -> Any:
            ba.arguments[arg] = value
            return orig(*ba.args, **ba.kwargs)

        return _wrap(orig, body)

    return make


def field_map(name: str, fn: Callable[[Any], Any], only: str | None = None) -> Maker:
    """Replace field ``name`` of the (frozen dataclass) result by ``fn(field)``."""

    def make(orig: Any) -> Any:
        def body(ba: inspect.BoundArguments) -> Any:
            res = orig(*ba.args, **ba.kwargs)
            if not _applies(ba, only):
                return res
            return dataclasses.replace(res, **{name: fn(getattr(res, name))})

        return _wrap(orig, body)

    return make


def field_scaled(name: str, factor: float, only: str | None = None) -> Maker:
    """Result field ``name`` multiplied by ``factor``."""
    return field_map(name, lambda v: np.asarray(v, dtype=np.float64) * factor, only)


def _nominal_mean(ba: inspect.BoundArguments) -> float:
    f = np.asarray(ba.arguments["scores"], dtype=np.float64)
    w = ba.arguments.get("weights")
    w = np.full(f.shape[-1], 1.0 / f.shape[-1]) if w is None else np.asarray(w, dtype=np.float64)
    return float(f @ w)


def excess_scaled(factor: float, only: str | None = None) -> Maker:
    """The value's excess over the nominal mean, V − μ, multiplied by ``factor`` (1-D scores)."""

    def make(orig: Any) -> Any:
        def body(ba: inspect.BoundArguments) -> Any:
            res = orig(*ba.args, **ba.kwargs)
            if not _applies(ba, only):
                return res
            mu = _nominal_mean(ba)
            return dataclasses.replace(res, value=mu + factor * (float(res.value) - mu))

        return _wrap(orig, body)

    return make


def q_is_nominal(orig: Any) -> Any:
    """A solver that returns q0 (and the value E_{q0} f) instead of the worst case."""

    def body(ba: inspect.BoundArguments) -> Any:
        res = orig(*ba.args, **ba.kwargs)
        f = np.asarray(ba.arguments["scores"], dtype=np.float64)
        w = ba.arguments.get("weights")
        q0 = np.full(f.shape, 1.0 / f.shape[-1]) if w is None else np.broadcast_to(w, f.shape)
        value = (f * q0).sum(axis=-1)
        return dataclasses.replace(res, q=np.array(q0), value=value if value.ndim else float(value))

    return _wrap(orig, body)


def tensor_map(fn: Callable[[torch.Tensor, inspect.BoundArguments], torch.Tensor]) -> Maker:
    """A tensor-valued function's output replaced by ``fn(output, arguments)``."""

    def make(orig: Any) -> Any:
        return _wrap(orig, lambda ba: fn(orig(*ba.args, **ba.kwargs), ba))

    return make


def const(value: Any) -> Maker:
    """Replace a (class) attribute by a constant."""

    def make(orig: Any) -> Any:
        del orig
        return value

    return make


NAN = math.nan
