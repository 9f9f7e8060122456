"""Encoders for contrastive training: a backbone f (features used for evaluation) and a
projection head g (used only in the loss).

* ``cnn-small``: 4 conv layers (3×3, BN, ReLU) of widths w, 2w, 4w, 8w, the first three with
  stride 2 (32 → 16 → 8 → 4 pixels), and global average pooling; with w = 16 the backbone gives
  128-d features and the whole model (with its head) has about 131k parameters (the data
  README's "4-layer CNN, width 16").
* ``resnet18``: the CIFAR variant of ResNet-18 (He et al. 2016): conv1 is 3×3 stride 1,
  no max-pool, four stages of two basic blocks (64, 128, 256, 512), 512-d features
  (the ADNCE image code does the same to ResNet-50, ``reference/paper.md`` §3.1).
* ``mlp``: flattened pixels → Linear–BN–ReLU ×2 (256 units) for 8×8 digits.

Head (SimCLR): Linear(d → h, no bias) → BN → ReLU → Linear(h → 128). The loss L2-normalises
the head's output; evaluation uses the backbone features.

Initialisation is reproducible from a seed without touching the global RNG state:
:func:`build_model` draws the weights inside ``torch.random.fork_rng``.
"""

from __future__ import annotations

import torch
from torch import nn

from dro_theory.errors import InputError

__all__ = ["ENCODERS", "ContrastiveModel", "build_model", "count_parameters"]

#: the names :func:`build_model` accepts
ENCODERS = ("cnn-small", "resnet18", "mlp")


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


def small_cnn(in_channels: int, width: int = 16) -> tuple[nn.Module, int]:
    """The 4-layer CNN backbone; returns (module, feature dimension = 8·width)."""
    w = width
    layers = [
        *_conv_bn(in_channels, w, stride=2),
        *_conv_bn(w, 2 * w, stride=2),
        *_conv_bn(2 * w, 4 * w, stride=2),
        *_conv_bn(4 * w, 8 * w),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers), 8 * w


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def resnet18_cifar(in_channels: int) -> tuple[nn.Module, int]:
    """CIFAR ResNet-18 backbone (3×3 stride-1 stem, no max-pool); features 512-d."""
    layers: list[nn.Module] = [*_conv_bn(in_channels, 64)]
    c_in = 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1)]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 512


def mlp(in_features: int, hidden: int = 256) -> tuple[nn.Module, int]:
    """Two-layer MLP backbone on flattened pixels; features ``hidden``-d."""
    return (
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        ),
        hidden,
    )


def projection_head(dim: int, hidden: int, out: int = 128) -> nn.Module:
    """SimCLR head: Linear(dim → hidden, no bias) → BN → ReLU → Linear(hidden → out)."""
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out),
    )


class ContrastiveModel(nn.Module):
    """Backbone f and projection head g.

    ``forward(x)`` returns ``(h, z)`` with h = f(x) of shape (B, feature_dim) and z = g(h) of
    shape (B, projection_dim), not normalised.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, feature_dim: int, name: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = feature_dim
        self.name = name

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return h, self.head(h)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features f(x), shape (B, feature_dim)."""
        out: torch.Tensor = self.backbone(x)
        return out


def build_model(
    name: str,
    *,
    in_channels: int,
    image_size: int,
    seed: int = 0,
    width: int = 16,
    projection_dim: int = 128,
) -> ContrastiveModel:
    """Build an encoder with its projection head, initialised reproducibly from ``seed``.

    Parameters
    ----------
    name : {"cnn-small", "resnet18", "mlp"}
        The backbone.
    in_channels, image_size : int
        Input shape (C, H = W).
    seed : int
        Seed of the weight initialisation (drawn inside ``torch.random.fork_rng``; the global
        RNG state is restored afterwards).
    width : int
        Base width of ``cnn-small``.
    projection_dim : int
        Output dimension of the head.
    """
    key = str(name).strip().lower()
    if key not in ENCODERS:
        raise InputError(f"encoder: expected one of {', '.join(ENCODERS)}, found {name!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if key == "cnn-small":
            backbone, dim = small_cnn(in_channels, width)
            hidden = dim
        elif key == "resnet18":
            backbone, dim = resnet18_cifar(in_channels)
            hidden = 512
        else:
            backbone, dim = mlp(in_channels * image_size * image_size)
            hidden = dim
        head = projection_head(dim, hidden, projection_dim)
        model = ContrastiveModel(backbone, head, dim, key)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
