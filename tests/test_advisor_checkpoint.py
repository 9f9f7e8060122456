"""The advisor on a `cldro train` checkpoint (digits, tiny run): scores, round trip, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dro_theory.advisor import advise_radius
from dro_theory.errors import InputError
from estimators.similarity import negative_scores
from validation.advisor import advise_from_checkpoint, checkpoint_scores, load_encoder
from validation.training.data import load_dataset
from validation.training.loop import TrainConfig, train

#: relative tolerance of the τ → η → τ round trip (the advisor's own roots, float64)
RTOL = 1e-8


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "run.pt"
    cfg = TrainConfig(
        dataset="digits",
        encoder="mlp",
        subset=400,
        epochs=1,
        batch_size=64,
        radius_anchors=0,
        probe=False,
        device="cpu",
        checkpoint=str(path),
    )
    train(cfg)
    return path


def test_scores_have_the_nt_xent_shape_and_default_batch(ckpt: Path) -> None:
    enc = load_encoder(ckpt)
    assert enc.config["dataset"] == "digits" and enc.epoch == 1
    s = checkpoint_scores(enc, batch_size=16, seed=3)
    assert s.negatives.shape == (32, 30)
    assert s.positives is not None and s.positives.shape == (32,)
    assert checkpoint_scores(enc).negatives.shape == (128, 126)  # the checkpoint's batch 64
    again = checkpoint_scores(enc, batch_size=16, seed=3)
    np.testing.assert_array_equal(s.negatives, again.negatives)  # seeded
    other = checkpoint_scores(enc, batch_size=16, seed=4)
    assert not np.allclose(s.negatives, other.negatives)


def test_eval_mode_scores_are_the_encoder_on_the_images(ckpt: Path) -> None:
    """With running statistics the model is a fixed map: recompute the cosines by hand."""
    enc = load_encoder(ckpt)
    s = checkpoint_scores(enc, batch_size=8, seed=0, batch_stats=False)
    assert enc.model.training is False
    data = load_dataset("digits", subset=400, seed=0)
    from validation.training.augment import augmentation_for

    gen = torch.Generator().manual_seed(0)
    pick = torch.randperm(data.x_train.shape[0], generator=gen)[:8]
    aug = augmentation_for("digits", data.mean, data.std)
    x = data.x_train[pick]
    views = torch.cat([aug.apply(x, aug.sample(8, gen)), aug.apply(x, aug.sample(8, gen))])
    with torch.no_grad():
        z = enc.model(views)[1].double().numpy()
    ref = negative_scores(z[:8], z[8:])
    np.testing.assert_allclose(s.negatives, ref.negatives, rtol=1e-6, atol=1e-6)


def test_round_trip_temperature_radius_temperature(ckpt: Path) -> None:
    at_tau = advise_from_checkpoint(ckpt, temperature=0.3, batch_size=32, seed=1)
    back = advise_from_checkpoint(ckpt, radius=at_tau.mean_radius, batch_size=32, seed=1)
    assert back.matched_temperature == pytest.approx(0.3, rel=RTOL)
    enc = load_encoder(ckpt)
    neg = checkpoint_scores(enc, batch_size=32, seed=1).negatives
    np.testing.assert_array_equal(
        back.temperature, advise_radius(neg, at_tau.mean_radius).temperature
    )


def test_checkpoint_errors(ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="checkpoint: expected an existing file"):
        load_encoder(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(InputError, match="checkpoint: expected a cldro training checkpoint"):
        load_encoder(junk)
    with pytest.raises(InputError, match="dataset: expected images the checkpoint"):
        load_encoder(ckpt, dataset="fashion-mnist")
    with pytest.raises(InputError, match="dataset: expected one of"):
        load_encoder(ckpt, dataset="imagenet")
    with pytest.raises(InputError, match="batch_size: expected 2"):
        checkpoint_scores(load_encoder(ckpt), batch_size=1)
    with pytest.raises(InputError, match="exactly one of --radius"):
        advise_from_checkpoint(ckpt)
