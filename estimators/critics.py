r"""Critics T(x, y) that return the full (K, M) score matrix of a batch.

* :class:`SeparableCritic`: T(x, y) = g(x)ᵀ h(y) with two MLP encoders (the "separable" critic
  of Poole et al. 2019; the form of contrastive learning's similarity f(x, y) = g(x)ᵀh(y)).
* :class:`ConcatCritic`: T(x, y) = m([x; y]) with one MLP on the concatenation, evaluated on all
  K·M pairs (the "concat" / joint critic). The first layer is split, W[x; y] = W_x x + W_y y,
  so the K·M first-layer pre-activations come from one broadcast sum instead of a K·M × (d_x+d_y)
  matrix product (the same function, less memory).

Initialisation is deterministic from ``seed`` (an int or a CPU ``torch.Generator``); the global
torch RNG is never touched. Each linear layer gets PyTorch's default law,
W, b ~ U(−1/√fan_in, 1/√fan_in), drawn from that generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from dro_theory.errors import InputError

__all__ = ["CRITIC_NAMES", "ConcatCritic", "SeparableCritic", "make_critic"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}

CRITIC_NAMES: tuple[str, ...] = ("separable", "concat")


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A CPU generator: the one given, one seeded with ``seed``, or a fresh random one."""
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise InputError(f"seed: expected a CPU torch.Generator, found one on {seed.device}")
        return seed
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    elif isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
        gen.manual_seed(seed)
    else:
        raise InputError(f"seed: expected a non-negative int or torch.Generator, found {seed!r}")
    return gen


def _check_dim(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name}: expected a positive int, found {value!r}")
    return value


def _check_layers(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"layers: expected a non-negative int, found {value!r}")
    return value


def _activation(name: str) -> Callable[[], nn.Module]:
    if name not in _ACTIVATIONS:
        raise InputError(f"activation: expected one of {', '.join(_ACTIVATIONS)}, found {name!r}")
    return _ACTIVATIONS[name]


@torch.no_grad()
def _linear(in_dim: int, out_dim: int, gen: torch.Generator) -> nn.Linear:
    """nn.Linear built without its default (global-RNG) init, then drawn from ``gen``."""
    layer = nn.utils.skip_init(nn.Linear, in_dim, out_dim)
    bound = 1.0 / math.sqrt(in_dim)
    for p in (layer.weight, layer.bias):
        p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
    return layer


def _mlp(
    in_dim: int, hidden: int, layers: int, out_dim: int, act: str, gen: torch.Generator
) -> nn.Sequential:
    """``layers`` hidden blocks Linear→activation of width ``hidden``, then Linear to out_dim."""
    mods: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        mods += [_linear(width, hidden, gen), _activation(act)()]
        width = hidden
    mods.append(_linear(width, out_dim, gen))
    return nn.Sequential(*mods)


def _check_batch(x: torch.Tensor, dim: int, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, found {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != dim:
        raise InputError(f"{name}: expected shape (K, {dim}), found {tuple(x.shape)}")


class SeparableCritic(nn.Module):
    r"""T(x, y) = g(x)ᵀ h(y); ``forward(x, y)`` returns S with S_ij = g(x_i)ᵀ h(y_j).

    Parameters
    ----------
    x_dim, y_dim : int
        Input dimensions.
    hidden : int
        Width of the hidden layers of g and h.
    layers : int
        Number of hidden Linear→activation blocks in each of g and h (0 gives linear maps).
    embed : int
        Dimension of the embeddings g(x), h(y).
    activation : str
        ``relu`` (default), ``elu``, ``gelu`` or ``tanh``.
    seed : int or torch.Generator, optional
        Initialisation randomness (CPU generator); a fresh seed when None.
    dtype : torch.dtype
        Parameter dtype (float32 for training, float64 for exact checks).
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        hidden: int = 256,
        layers: int = 2,
        embed: int = 32,
        *,
        activation: str = "relu",
        seed: int | torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.x_dim = _check_dim(x_dim, "x_dim")
        self.y_dim = _check_dim(y_dim, "y_dim")
        hidden = _check_dim(hidden, "hidden")
        embed = _check_dim(embed, "embed")
        layers = _check_layers(layers)
        gen = _generator(seed)
        self.g = _mlp(self.x_dim, hidden, layers, embed, activation, gen)
        self.h = _mlp(self.y_dim, hidden, layers, embed, activation, gen)
        self.to(dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores of shape (K, M) for x of shape (K, x_dim) and y of shape (M, y_dim)."""
        _check_batch(x, self.x_dim, "x")
        _check_batch(y, self.y_dim, "y")
        return self.g(x) @ self.h(y).T


class ConcatCritic(nn.Module):
    r"""T(x, y) = m([x; y]); ``forward(x, y)`` returns S with S_ij = m([x_i; y_j]).

    Parameters
    ----------
    x_dim, y_dim : int
        Input dimensions.
    hidden : int
        Width of the hidden layers.
    layers : int
        Number of hidden Linear→activation blocks (≥ 1: the first one is the split layer).
    activation, seed, dtype
        As for :class:`SeparableCritic`.

    Notes
    -----
    Memory grows as K·M·hidden: a batch of 256 with hidden = 256 holds 16.8 M activations per
    layer.
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        hidden: int = 256,
        layers: int = 2,
        *,
        activation: str = "relu",
        seed: int | torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.x_dim = _check_dim(x_dim, "x_dim")
        self.y_dim = _check_dim(y_dim, "y_dim")
        hidden = _check_dim(hidden, "hidden")
        layers = _check_dim(layers, "layers")
        gen = _generator(seed)
        self.first = _linear(self.x_dim + self.y_dim, hidden, gen)
        self.act = _activation(activation)()
        self.rest = _mlp(hidden, hidden, layers - 1, 1, activation, gen)
        self.to(dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores of shape (K, M) for x of shape (K, x_dim) and y of shape (M, y_dim)."""
        _check_batch(x, self.x_dim, "x")
        _check_batch(y, self.y_dim, "y")
        w_x = self.first.weight[:, : self.x_dim]
        w_y = self.first.weight[:, self.x_dim :]
        pre = (x @ w_x.T).unsqueeze(1) + (y @ w_y.T).unsqueeze(0) + self.first.bias
        return self.rest(self.act(pre)).squeeze(-1)


def make_critic(
    name: str,
    x_dim: int,
    y_dim: int,
    *,
    hidden: int = 256,
    layers: int = 2,
    embed: int = 32,
    activation: str = "relu",
    seed: int | torch.Generator | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> SeparableCritic | ConcatCritic:
    """Build the critic called ``name``: ``"separable"`` or ``"concat"``.

    ``generator`` is an alias of ``seed`` for a ``torch.Generator`` (give one or the other).
    ``embed`` is used by the separable critic only.

    Raises
    ------
    InputError
        Unknown name, non-positive sizes, or both ``seed`` and ``generator``.
    """
    if generator is not None:
        if seed is not None:
            raise InputError("generator: expected either seed or generator, found both")
        seed = generator
    key = name.strip().lower() if isinstance(name, str) else name
    if key == "separable":
        return SeparableCritic(
            x_dim, y_dim, hidden, layers, embed, activation=activation, seed=seed, dtype=dtype
        )
    if key == "concat":
        return ConcatCritic(
            x_dim, y_dim, hidden, layers, activation=activation, seed=seed, dtype=dtype
        )
    raise InputError(f"critic: expected one of {', '.join(CRITIC_NAMES)}, found {name!r}")
