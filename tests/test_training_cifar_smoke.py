"""Real-data smoke test (runs in the default suite): the small CNN learns on CIFAR-10.

10k stratified training images, 2k test images, 2 epochs of NT-Xent InfoNCE (τ = 0.2, batch
256, AdamW lr 4e-3) on the CPU; about 40–60 s on 2 idle cores. The weighted-kNN top-1 on the
2k test images must rise by at least 3 points over the untrained encoder (data README: random
init ≈ 32–35 %, a few epochs give ≈ 40 %). The standard error of one accuracy on 2,000 images
is ≈ 1.1 points, so a 3-point rise is well beyond noise; the run is seeded and deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CIFAR_NPZ

from validation.training.loop import TrainConfig, train


@pytest.mark.skipif(not CIFAR_NPZ.is_file(), reason=f"CIFAR-10 npz absent at {CIFAR_NPZ}")
def test_small_cnn_learns_on_cifar10_subset(tmp_path: Path) -> None:
    cfg = TrainConfig(
        dataset="cifar10",
        data=str(CIFAR_NPZ),
        encoder="cnn-small",
        loss="infonce",
        temperature=0.2,
        subset=10_000,
        test_subset=2_000,
        epochs=2,
        batch_size=256,
        lr=4e-3,
        seed=0,
        device="cpu",
        probe=False,
        radius_every=4,
    )
    r = train(cfg)
    assert len(r.knn_top1) == 3
    gain = r.knn_top1[-1] - r.knn_top1[0]
    assert gain >= 3.0, f"kNN top-1 {r.knn_top1}: gain {gain:.1f} < 3 points"
    assert r.loss_curve[-1] < r.loss_curve[0]
