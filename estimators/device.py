"""Device selection: ``"auto"`` means CUDA when present, else the CPU. Nothing runs at import."""

from __future__ import annotations

import torch

from dro_theory.errors import InputError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a torch.device) into a torch.device.

    Raises
    ------
    InputError
        If the name is not a device, or CUDA is asked for and is not available.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"device: expected auto, cpu or cuda[:N], found {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} was asked for but CUDA is not available here")
    if dev.type not in {"cpu", "cuda"}:
        raise InputError(f"device: expected auto, cpu or cuda[:N], found {device!r}")
    return dev
