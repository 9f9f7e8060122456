"""The project's exceptions: one small module, imported by every layer.

``InputError`` is raised for bad user input (it is a ``ValueError`` so that generic callers can
catch it as such); its message names the parameter, what was expected and what was found.
``DROSolveError`` is raised when no solver in the fallback chain returns a verified answer.
"""

from __future__ import annotations

__all__ = ["CldroError", "DROSolveError", "InputError"]


class CldroError(Exception):
    """Base class of every error raised on purpose by cldro."""


class InputError(CldroError, ValueError):
    """Invalid input: the message names the parameter, the expectation and what was found."""


class DROSolveError(CldroError, RuntimeError):
    """A worst-case problem could not be solved to a verified answer by any solver tried."""
