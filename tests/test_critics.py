"""Tests of estimators.critics: shapes, loop references, deterministic initialisation, errors."""

from __future__ import annotations

import pytest
import torch

from dro_theory import InputError
from estimators.bounds import phi_tight
from estimators.critics import ConcatCritic, SeparableCritic, make_critic


def _batch(
    k: int = 5, dx: int = 3, dy: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(k, dx, generator=gen), torch.randn(k, dy, generator=gen)


def test_separable_matches_loop_reference() -> None:
    """S_ij = g(x_i)·h(y_j), computed pair by pair."""
    critic = SeparableCritic(3, 2, hidden=16, layers=2, embed=4, seed=0)
    x, y = _batch()
    s = critic(x, y)
    assert s.shape == (5, 5)
    for i in range(5):
        for j in range(5):
            ref = critic.g(x[i : i + 1]) @ critic.h(y[j : j + 1]).T
            assert torch.allclose(s[i, j], ref.squeeze(), atol=1e-5)


def test_concat_matches_loop_reference() -> None:
    """S_ij = m([x_i; y_j]) with the unsplit first layer applied to the concatenation."""
    critic = ConcatCritic(3, 2, hidden=16, layers=3, seed=0)
    x, y = _batch(k=4)
    s = critic(x, y[:3])
    assert s.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            xy = torch.cat([x[i], y[j]])[None]
            ref = critic.rest(critic.act(critic.first(xy)))
            assert torch.allclose(s[i, j], ref.squeeze(), atol=1e-5)


@pytest.mark.parametrize("name", ["separable", "concat"])
def test_deterministic_init_without_global_rng(name: str) -> None:
    state = torch.get_rng_state()
    a = make_critic(name, 3, 2, hidden=8, seed=7)
    b = make_critic(name, 3, 2, hidden=8, generator=torch.Generator().manual_seed(7))
    c = make_critic(name, 3, 2, hidden=8, seed=8)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG was not used
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert any(
        not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True)
    )


@pytest.mark.parametrize("name", ["separable", "concat"])
def test_float64_critic_gradients_reach_every_parameter(name: str) -> None:
    critic = make_critic(name, 3, 2, hidden=8, layers=2, seed=1, dtype=torch.float64)
    x, y = _batch(k=6)
    s = critic(x.double(), y.double())
    assert s.dtype == torch.float64 and s.shape == (6, 6)
    phi_tight(s, "js").backward()
    for p in critic.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0


def test_linear_separable_critic() -> None:
    """layers = 0 gives bilinear scores xᵀ Wgᵀ Wh y + affine terms."""
    critic = SeparableCritic(3, 2, layers=0, embed=4, seed=2)
    assert sum(isinstance(m, torch.nn.Linear) for m in critic.modules()) == 2
    x, y = _batch()
    assert critic(x, y).shape == (5, 5)


def test_errors() -> None:
    with pytest.raises(InputError, match=r"critic"):
        make_critic("bilinear", 3, 2)
    with pytest.raises(InputError, match=r"x_dim"):
        make_critic("separable", 0, 2)
    with pytest.raises(InputError, match=r"hidden"):
        make_critic("concat", 3, 2, hidden=-1)
    with pytest.raises(InputError, match=r"layers"):
        make_critic("concat", 3, 2, layers=0)
    with pytest.raises(InputError, match=r"layers"):
        make_critic("separable", 3, 2, layers=-1)
    with pytest.raises(InputError, match=r"activation"):
        make_critic("separable", 3, 2, activation="swish")
    with pytest.raises(InputError, match=r"seed"):
        make_critic("separable", 3, 2, seed=-3)
    with pytest.raises(InputError, match=r"generator"):
        make_critic("separable", 3, 2, seed=1, generator=torch.Generator())
    critic = make_critic("separable", 3, 2, hidden=4)
    x, y = _batch()
    with pytest.raises(InputError, match=r"x: expected shape"):
        critic(y, y)
    with pytest.raises(InputError, match=r"y: expected shape"):
        critic(x, x)
    with pytest.raises(InputError, match=r"torch.Tensor"):
        critic(x.numpy(), y)
