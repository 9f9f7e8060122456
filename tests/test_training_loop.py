"""The training loop on digits (tiny): resume = uninterrupted, schedule, masks, radius log,
configuration errors, and the ``cldro train`` command."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from dro_theory.errors import InputError
from estimators.losses import adnce, negative_mask, nt_xent_from_sim
from validation.cli import main
from validation.training.distributed import local_nt_xent_index
from validation.training.loop import (
    TrainConfig,
    _lr_at,
    train,
    true_negative_mask,
)
from validation.training.monitor import radius_stats

TINY = TrainConfig(
    dataset="digits",
    encoder="mlp",
    subset=400,
    epochs=3,
    batch_size=64,
    lr=2e-3,
    radius_anchors=8,
    radius_every=2,
    device="cpu",
)


def test_resume_gives_the_uninterrupted_run(tmp_path: Path) -> None:
    full = train(TINY)
    ckpt = tmp_path / "run.pt"
    cfg = replace(TINY, checkpoint=str(ckpt), resume=True)
    part = train(cfg, stop_after=1)
    assert part.epochs_done == 1 and part.linear_probe_top1 is None and ckpt.is_file()
    rest = train(cfg)
    assert rest.epochs_done == 3
    assert rest.knn_top1 == full.knn_top1
    assert rest.loss_curve == full.loss_curve
    assert [b.loss for b in rest.batch_log] == [b.loss for b in full.batch_log]
    assert rest.linear_probe_top1 == full.linear_probe_top1
    assert len(full.knn_top1) == 4  # entry 0 = before training
    # the run learns something: the loss falls
    assert full.loss_curve[-1] < full.loss_curve[0]


def test_resume_with_another_configuration_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    cfg = replace(TINY, epochs=1, checkpoint=str(ckpt), resume=True, probe=False)
    train(cfg)
    with pytest.raises(
        InputError,
        match="checkpoint: expected a checkpoint of the same "
        "configuration, found one that differs in temperature",
    ):
        train(replace(cfg, temperature=0.3))
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(InputError, match="checkpoint: expected a cldro training checkpoint"):
        train(replace(cfg, checkpoint=str(bad)))


@pytest.mark.parametrize("loss", ["adnce", "dcl", "hcl"])
def test_every_loss_trains(loss: str) -> None:
    r = train(replace(TINY, loss=loss, epochs=1, probe=False, temperature=0.4))
    assert len(r.loss_curve) == 1 and math.isfinite(r.loss_curve[0])
    assert len(r.knn_top1) == 2


def test_unbiased_negatives_run_and_differ_from_all() -> None:
    a = train(replace(TINY, epochs=1, probe=False))
    u = train(replace(TINY, epochs=1, probe=False, negatives="unbiased"))
    # removing same-class negatives lowers every NT-Xent term (fewer positive summands)
    assert u.batch_log[0].loss < a.batch_log[0].loss


def test_lr_schedule_warmup_then_cosine() -> None:
    lrs = [_lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lrs[10] == pytest.approx(1.0)
    assert all(b <= a for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[55] == pytest.approx(0.5)  # half-way through the cosine
    assert _lr_at(100, 100, 10, 1.0) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("loss", ["infonce", "adnce"])
def test_unbiased_negatives_equal_a_loop_reference(loss: str) -> None:
    g = torch.Generator().manual_seed(0)
    b, tau = 6, 0.3
    z = torch.nn.functional.normalize(torch.randn(2 * b, 5, generator=g), dim=1)
    sim = z @ z.T
    y = torch.tensor([0, 1, 0, 2, 1, 0])
    idx = local_nt_xent_index(b, rank_=0, world_size_=1)
    neg = negative_mask(idx, 2 * b)
    keep = true_negative_mask(torch.cat([y, y]), torch.cat([y, y]), neg)
    mu, sigma = 0.7, 0.5
    if loss == "infonce":
        got = nt_xent_from_sim(sim, tau, neg_mask=keep, reduction="none").double()
    else:
        got = adnce(sim, tau, mu=mu, sigma=sigma, neg_mask=keep, reduction="none").double()
    yy = torch.cat([y, y])
    for i in range(2 * b):
        p = (i + b) % (2 * b)
        keys = [j for j in range(2 * b) if j not in (i, p) and yy[j] != yy[i]]
        s = [float(sim[i, j]) for j in keys]
        g = [math.exp(-((v - mu) ** 2) / (2 * sigma**2)) for v in s]
        w = [gi / (sum(g) / len(g)) for gi in g] if loss == "adnce" else [1.0] * len(s)
        terms = [math.exp(float(sim[i, p]) / tau)] + [
            wj * math.exp(v / tau) for wj, v in zip(w, s, strict=True)
        ]
        expected = -float(sim[i, p]) / tau + math.log(sum(terms))
        assert float(got[i]) == pytest.approx(expected, rel=1e-5)


def test_radius_stats_extract_each_anchors_negatives() -> None:
    """Loop reference: per-anchor KL(q_τ‖uniform) over the 2B − 2 negatives, by hand."""
    g = torch.Generator().manual_seed(1)
    b, tau = 5, 0.4
    z = torch.nn.functional.normalize(torch.randn(2 * b, 4, generator=g), dim=1)
    sim = z @ z.T
    idx = local_nt_xent_index(b, rank_=0, world_size_=1)
    neg = negative_mask(idx, 2 * b)
    r = radius_stats(sim, neg, tau, anchors=3)
    eta, approx, var = r.eta_exact, r.eta_approx, r.neg_variance
    etas, variances = [], []
    s_all = sim.double().numpy()
    for i in range(3):
        s = np.array([s_all[i, j] for j in range(2 * b) if j not in (i, (i + b) % (2 * b))])
        assert s.size == 2 * b - 2
        logq = s / tau - logsumexp(s / tau)
        etas.append(float(np.sum(np.exp(logq) * (logq + np.log(s.size)))))
        variances.append(float(s.var()))
    assert eta == pytest.approx(np.mean(etas), rel=1e-6)
    assert var == pytest.approx(np.mean(variances), rel=1e-6)
    assert approx == pytest.approx(np.mean(variances) / (2 * tau**2), rel=1e-6)


def test_batch_log_has_radius_on_the_requested_steps() -> None:
    r = train(replace(TINY, epochs=1, probe=False))
    steps = [b.step for b in r.batch_log]
    assert steps == list(range(r.steps_per_epoch))
    for b in r.batch_log:
        assert math.isfinite(b.eta_exact) == (b.step % 2 == 0)
        if b.step % 2 == 0:
            assert b.eta_exact > 0 and b.eta_approx > 0 and b.neg_variance > 0
    assert len(r.implied_radius) == 1 and math.isfinite(r.implied_radius[0].eta_exact_mean)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loss": "nce"}, "loss: expected one of infonce, adnce, dcl, hcl, found 'nce'"),
        ({"negatives": "some"}, "negatives: expected one of all, unbiased"),
        ({"temperature": 0.0}, "temperature: expected a finite number > 0, found 0.0"),
        ({"epochs": 0}, "epochs: expected an integer >= 1, found 0"),
        ({"resume": True}, "resume: expected a --checkpoint path"),
        ({"encoder": "vit"}, "encoder: expected one of cnn-small, resnet18, mlp"),
        ({"tau_plus": 1.0}, r"tau_plus: expected a number in \[0, 1\)"),
        ({"batch_size": 4096}, "batch_size: expected at most the"),
    ],
)
def test_configuration_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        train(replace(TINY, **change))  # type: ignore[arg-type]


def test_cli_train_writes_the_json_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.json"
    rc = main(
        [
            "train",
            "--dataset",
            "digits",
            "--subset",
            "300",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--loss",
            "adnce",
            "--temperature",
            "0.4",
            "--no-progress",
            "--device",
            "cpu",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    rec = json.loads(out.read_text())
    for key in (
        "dataset",
        "encoder",
        "loss",
        "epochs",
        "device",
        "seconds",
        "knn_top1",
        "loss_curve",
        "implied_radius",
        "linear_probe_top1",
        "config",
        "seed",
    ):
        assert key in rec
    assert rec["encoder"] == "mlp" and rec["loss"] == "adnce" and len(rec["knn_top1"]) == 2
    assert rec["config"]["mu"] == 0.7 and rec["config"]["sigma"] == 0.5
    assert "kNN top-1" in capsys.readouterr().out


def test_cli_train_bad_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--dataset", "digits", "--loss", "nce", "--no-progress"]) == 2
    assert "loss: expected one of" in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_run_with_bf16_and_channels_last() -> None:
    r = train(replace(TINY, device="cuda", epochs=2, encoder="cnn-small"))
    assert r.device.startswith("cuda")
    assert all(math.isfinite(v) for v in r.loss_curve)
    assert r.loss_curve[-1] < r.loss_curve[0]
    assert r.linear_probe_top1 is not None
