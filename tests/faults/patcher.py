"""One generic patcher: replace a public library object wherever the claims can reach it.

A target is ``"package.module:name"`` (a function or other module attribute) or
``"package.module:Class.attr"`` (a class attribute, e.g. a divergence's φ''(1)). A module
attribute is replaced in its defining module AND in every loaded module of ``dro_theory``,
``estimators`` or ``validation`` that has the same object bound under any name (a scan of
``sys.modules``), so a fault survives refactors that move a function into a sub-module and
re-export it. A class attribute is set on the class itself. Everything is restored on exit.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

__all__ = ["SCANNED_PACKAGES", "patched", "patched_all"]

#: the top-level packages whose modules are scanned for bindings of the patched object
SCANNED_PACKAGES = ("dro_theory", "estimators", "validation")

_MISSING = object()


def _resolve(target: str) -> tuple[Any, str]:
    module_name, sep, attr = target.partition(":")
    if not sep or not attr:
        raise ValueError(f"target: expected 'module:name' or 'module:Class.attr', found {target!r}")
    owner: Any = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _bindings(orig: Any) -> list[tuple[Any, str]]:
    found = []
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or mod_name.split(".")[0] not in SCANNED_PACKAGES:
            continue
        for key, value in list(vars(mod).items()):
            if value is orig:
                found.append((mod, key))
    return found


@contextmanager
def patched(target: str, make: Callable[[Any], Any]) -> Iterator[Any]:
    """Replace ``target`` by ``make(original)`` on every path while the block runs.

    Yields the replacement. Raises ValueError when a module attribute is bound nowhere (the
    fault would test nothing).
    """
    owner, name = _resolve(target)
    orig = getattr(owner, name)
    new = make(orig)
    if isinstance(owner, type):
        saved = vars(owner).get(name, _MISSING)
        setattr(owner, name, new)
        try:
            yield new
        finally:
            if saved is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, saved)
        return
    sites = _bindings(orig)
    if not sites:
        raise ValueError(f"target: {target!r} is bound in no scanned module")
    for mod, key in sites:
        setattr(mod, key, new)
    try:
        yield new
    finally:
        for mod, key in sites:
            setattr(mod, key, orig)


@contextmanager
def patched_all(patches: tuple[tuple[str, Callable[[Any], Any]], ...]) -> Iterator[None]:
    """Apply several patches at once (one fault may touch a loss and its weights)."""
    with ExitStack() as stack:
        for target, make in patches:
            stack.enter_context(patched(target, make))
        yield
