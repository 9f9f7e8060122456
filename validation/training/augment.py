"""Batched SimCLR augmentations in plain torch (no torchvision), identical on CPU and GPU.

An augmentation works on a whole batch ``x`` of uint8 images, shape (B, C, H, W), and returns
the normalised float32 views ``(view - mean) / std`` of the same shape. The random parameters of
every sample are drawn from a CPU ``torch.Generator`` in :meth:`sample` (so a seed gives the
same views on every device) and applied in :meth:`apply`; ``aug(x, generator)`` does both.
Splitting the two lets a distributed loop draw the parameters of the *global* batch on every
rank and apply only its own slice (:meth:`AugmentParams.select`).

CIFAR recipe (SimCLR, as in the ADNCE image code; ``reference/paper.md`` §3.1): random resized
crop (area fraction U(0.08, 1), log aspect ratio U(log 3/4, log 4/3)) and horizontal flip in one
bilinear ``grid_sample``; colour jitter with probability 0.8 (brightness, contrast, saturation
0.4, hue 0.1, applied in this fixed order; hue as a rotation of the chroma plane in YIQ space,
an approximation of the HSV hue shift); random grayscale with probability 0.2. The Gaussian
blur of the reference code is omitted (it is commonly dropped at 32×32).

Digits / grey recipe: a small random affine (scale U(0.9, 1.1), shift up to ±``shift`` of the
half-side) and additive Gaussian pixel noise, clamped to [0, 1].
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dro_theory.errors import InputError

__all__ = ["AugmentParams", "DigitsAugment", "SimCLRAugment", "augmentation_for", "normalize"]

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentParams:
    """Per-sample random parameters of a batch (every field has leading dimension B).

    ``theta`` is the (B, 2, 3) affine matrix of the sampling grid; the colour fields are None
    for augmentations without colour changes.
    """

    theta: torch.Tensor
    noise_seed: torch.Tensor | None = None
    jitter: torch.Tensor | None = None  # (B, 4): brightness, contrast, saturation, hue angle
    apply_jitter: torch.Tensor | None = None  # (B,) bool
    gray: torch.Tensor | None = None  # (B,) bool

    def select(self, index: slice | torch.Tensor) -> AugmentParams:
        """The parameters of a sub-batch."""

        def pick(v: torch.Tensor | None) -> torch.Tensor | None:
            return None if v is None else v[index]

        return AugmentParams(
            theta=self.theta[index],
            noise_seed=pick(self.noise_seed),
            jitter=pick(self.jitter),
            apply_jitter=pick(self.apply_jitter),
            gray=pick(self.gray),
        )

    def __len__(self) -> int:
        return int(self.theta.shape[0])


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 or [0, 1] float images (B, C, H, W) → float32 ``(x/255 − mean)/std`` per channel."""
    xf = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    m, s = _stats_on(tuple(mean), tuple(std), x.device)
    return (xf - m) / s


@functools.lru_cache(maxsize=16)
def _stats_on(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, C, 1, 1) float32 mean and std on ``device``, built once per (mean, std, device)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1).to(device)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1).to(device)
    return m, s


def _check_batch(x: torch.Tensor, channels: int | None = None) -> None:
    if x.ndim != 4:
        raise InputError(f"x: expected a (B, C, H, W) batch, found shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise InputError(f"x: expected uint8 images, found {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise InputError(f"x: expected {channels} channels, found {x.shape[1]}")


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.device, torch.float32), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (B, 1, H, W) of RGB images (B, 3, H, W)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b


@dataclass(frozen=True)
class SimCLRAugment:
    """The SimCLR colour-image recipe, batched (see the module docstring).

    Parameters
    ----------
    mean, std : tuple of float
        Per-channel normalisation (3 channels).
    scale : (float, float)
        Range of the crop's area fraction.
    ratio : (float, float)
        Range of the crop's aspect ratio (sampled log-uniformly).
    flip_p, jitter_p, gray_p : float
        Probabilities of horizontal flip, colour jitter and grayscale.
    brightness, contrast, saturation, hue : float
        Jitter strengths: factors U(1 − s, 1 + s); hue shift U(−hue, hue) turns.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    gray_p: float = 0.2
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1

    def sample(self, n: int, generator: torch.Generator) -> AugmentParams:
        """Draw the parameters of ``n`` views from ``generator``, on the generator's device."""
        dev = generator.device
        u = torch.rand(n, 9, generator=generator, dtype=torch.float64, device=dev)
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(lo + (hi - lo) * u[:, 1])
        # crop width and height as fractions of the side; clipped to the image
        w = torch.sqrt(area * aspect).clamp(max=1.0)
        h = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (2 * u[:, 2] - 1) * (1 - w)
        cy = (2 * u[:, 3] - 1) * (1 - h)
        sign = torch.where(u[:, 4] < self.flip_p, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=dev)
        theta[:, 0, 0] = w * sign
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = h
        theta[:, 1, 2] = cy
        j = torch.rand(n, 4, generator=generator, dtype=torch.float64, device=dev)
        jitter = torch.stack(
            [
                1 + self.brightness * (2 * j[:, 0] - 1),
                1 + self.contrast * (2 * j[:, 1] - 1),
                1 + self.saturation * (2 * j[:, 2] - 1),
                2 * math.pi * self.hue * (2 * j[:, 3] - 1),
            ],
            dim=1,
        )
        return AugmentParams(
            theta=theta.float(),
            jitter=jitter.float(),
            apply_jitter=u[:, 5] < self.jitter_p,
            gray=u[:, 6] < self.gray_p,
        )

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Apply ``params`` to uint8 images (B, 3, H, W); float32 normalised views."""
        _check_batch(x, 3)
        if len(params) != x.shape[0]:
            raise InputError(f"params: expected {x.shape[0]} samples, found {len(params)}")
        assert params.jitter is not None and params.apply_jitter is not None
        assert params.gray is not None
        dev = x.device
        v = _warp(x.float() / 255.0, params.theta)
        jit = params.jitter.to(dev)
        on = params.apply_jitter.to(dev).view(-1, 1, 1, 1)
        b, c, s, hue = (jit[:, k].view(-1, 1, 1, 1) for k in range(4))
        one = torch.ones_like(b)
        b, c, s = torch.where(on, b, one), torch.where(on, c, one), torch.where(on, s, one)
        hue = torch.where(on, hue, torch.zeros_like(hue))
        v = (v * b).clamp(0, 1)
        mean_gray = _gray(v).mean(dim=(1, 2, 3), keepdim=True)
        v = ((v - mean_gray) * c + mean_gray).clamp(0, 1)
        g = _gray(v)
        v = ((v - g) * s + g).clamp(0, 1)
        v = _hue_rotate(v, hue).clamp(0, 1)
        v = torch.where(params.gray.to(dev).view(-1, 1, 1, 1), _gray(v).expand_as(v), v)
        return normalize(v, self.mean, self.std)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw parameters from ``generator`` and apply them to ``x``."""
        return self.apply(x, self.sample(x.shape[0], generator))


#: RGB → YIQ (NTSC); its inverse is computed, so a zero hue shift is the identity exactly
_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
    dtype=torch.float64,
)


def _hue_rotate(v: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma (I, Q) plane of YIQ by ``angle`` (B, 1, 1, 1) radians, per sample.

    The per-sample colour map is M = T⁻¹ R(angle) T with T the RGB → YIQ matrix.
    """
    a = angle.reshape(-1).to(torch.float64)
    rot = torch.zeros(a.shape[0], 3, 3, dtype=torch.float64, device=a.device)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(a), -torch.sin(a)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(a), torch.cos(a)
    yiq, yiq_inv = _yiq_on(a.device)
    mat = yiq_inv @ rot @ yiq
    return torch.einsum("bij,bjhw->bihw", mat.to(v.device, v.dtype), v)


@functools.lru_cache(maxsize=4)
def _yiq_on(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """T and T⁻¹ (RGB ↔ YIQ, float64) on ``device``, built once per device."""
    return _YIQ.to(device), torch.linalg.inv(_YIQ).to(device)


@dataclass(frozen=True)
class DigitsAugment:
    """Small-image recipe for grey digits: random affine (scale, shift) and pixel noise.

    Parameters
    ----------
    mean, std : tuple of float
        Normalisation (1 channel).
    shift : float
        Maximal shift as a fraction of the half-side (0.25 of an 8-pixel image = 1 pixel).
    scale : (float, float)
        Range of the zoom factor.
    noise : float
        Standard deviation of the additive Gaussian noise, in [0, 1] pixel units.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    shift: float = 0.25
    scale: tuple[float, float] = (0.9, 1.1)
    noise: float = 0.05

    def sample(self, n: int, generator: torch.Generator) -> AugmentParams:
        """Draw the parameters of ``n`` views from ``generator``, on the generator's device."""
        dev = generator.device
        u = torch.rand(n, 3, generator=generator, dtype=torch.float64, device=dev)
        zoom = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
        theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=dev)
        theta[:, 0, 0] = 1 / zoom
        theta[:, 1, 1] = 1 / zoom
        theta[:, 0, 2] = self.shift * (2 * u[:, 1] - 1)
        theta[:, 1, 2] = self.shift * (2 * u[:, 2] - 1)
        seeds = torch.randint(0, 2**62, (n,), generator=generator, device=dev)
        return AugmentParams(theta=theta.float(), noise_seed=seeds)

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Apply ``params`` to uint8 images (B, C, H, W); float32 normalised views."""
        _check_batch(x)
        if len(params) != x.shape[0]:
            raise InputError(f"params: expected {x.shape[0]} samples, found {len(params)}")
        assert params.noise_seed is not None
        v = _warp(x.float() / 255.0, params.theta)
        # per-sample noise, reproducible from the per-sample seed whatever the sub-batch
        noise = torch.empty((x.shape[0], *x.shape[1:]), dtype=torch.float32)
        g = torch.Generator()
        for k, s in enumerate(params.noise_seed.tolist()):
            g.manual_seed(int(s))
            noise[k] = torch.randn(x.shape[1:], generator=g)
        v = (v + self.noise * noise.to(v.device)).clamp(0, 1)
        return normalize(v, self.mean, self.std)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw parameters from ``generator`` and apply them to ``x``."""
        return self.apply(x, self.sample(x.shape[0], generator))


def augmentation_for(
    dataset: str, mean: tuple[float, ...], std: tuple[float, ...]
) -> SimCLRAugment | DigitsAugment:
    """The default augmentation of a data set: SimCLR for colour images, digits otherwise."""
    if dataset == "cifar10":
        return SimCLRAugment(mean=mean, std=std)
    if dataset == "digits":
        return DigitsAugment(mean=mean, std=std)
    # Fashion-MNIST: 28×28 grey; shifts of ±2–3 pixels, milder zoom, crop-like scale
    return DigitsAugment(mean=mean, std=std, shift=0.2, scale=(0.85, 1.15), noise=0.05)
