"""Encoders: parameter counts from the architecture, shapes, seeded init, errors."""

from __future__ import annotations

import pytest
import torch

from dro_theory.errors import InputError
from validation.training.encoders import build_model, count_parameters


def test_cnn_small_parameter_count_matches_the_architecture() -> None:
    m = build_model("cnn-small", in_channels=3, image_size=32)
    convs = 9 * (3 * 16 + 16 * 32 + 32 * 64 + 64 * 128)  # 3×3, no bias
    bns = 2 * (16 + 32 + 64 + 128)
    head = 128 * 128 + 2 * 128 + 128 * 128 + 128  # Linear(no bias), BN, Linear
    assert count_parameters(m.backbone) == convs + bns
    assert count_parameters(m) == convs + bns + head == 130_832  # the "~131k" of the data README


def test_resnet18_backbone_is_the_cifar_variant() -> None:
    m = build_model("resnet18", in_channels=3, image_size=32)
    # torchvision's resnet18 has 11,689,512 parameters: minus the fc layer (512·1000 + 1000) and
    # the 7×7 stem (3·64·49), plus a 3×3 stem (3·64·9) → the CIFAR variant
    assert count_parameters(m.backbone) == 11_689_512 - 513_000 - 3 * 64 * 49 + 3 * 64 * 9
    first = m.backbone[0]
    assert isinstance(first, torch.nn.Conv2d)
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    assert not any(isinstance(mod, torch.nn.MaxPool2d) for mod in m.modules())
    h, z = m(torch.randn(2, 3, 32, 32))
    assert h.shape == (2, 512) and z.shape == (2, 128)


@pytest.mark.parametrize(
    ("name", "shape", "feat"),
    [
        ("cnn-small", (4, 3, 32, 32), 128),
        ("mlp", (4, 1, 8, 8), 256),
        ("cnn-small", (4, 1, 28, 28), 128),
    ],
)
def test_output_shapes(name: str, shape: tuple[int, ...], feat: int) -> None:
    m = build_model(name, in_channels=shape[1], image_size=shape[2])
    h, z = m(torch.randn(*shape))
    assert h.shape == (4, feat) and z.shape == (4, 128)
    assert torch.equal(m.eval().features(torch.ones(*shape)), m.eval()(torch.ones(*shape))[0])


def test_init_is_seeded_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = build_model("mlp", in_channels=1, image_size=8, seed=1)
    b = build_model("mlp", in_channels=1, image_size=8, seed=1)
    c = build_model("mlp", in_channels=1, image_size=8, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_unknown_encoder() -> None:
    with pytest.raises(InputError, match="encoder: expected one of cnn-small, resnet18, mlp"):
        build_model("vit", in_channels=3, image_size=32)
