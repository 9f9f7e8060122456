"""The sentence and molecule domains through the one training loop and ``cldro train``.

CI runs without ``make data``: the smoke runs use the committed fixtures (``tests/fixtures/``:
39 WordNet lines, 18 SDF records); the real-data runs skip with the install command.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from dro_theory.errors import InputError
from estimators.losses import AnchorIndex, adnce, negative_mask
from validation.cli import main
from validation.training.domain import TrainingDomain
from validation.training.domains.molecules import INSTALL_MOLECULES, find_molecules
from validation.training.domains.registry import make_domain
from validation.training.loop import TrainConfig, batch_loss, cross_index, train

FIXTURES = Path(__file__).parent / "fixtures"
CPU = torch.device("cpu")
#: a fixture run: 2 epochs at batch 8 (18 molecules: 2 steps; the fixture's training sentences)
FIX: dict[str, Any] = {
    "epochs": 2,
    "batch_size": 8,
    "device": "cpu",
    "threads": 1,
    "radius_anchors": 4,
}
MOLS = TrainConfig(dataset="molecules", encoder="gin", data=str(FIXTURES / "molecules"), **FIX)
WORDS = TrainConfig(dataset="wordnet", encoder="small", data=str(FIXTURES / "wordnet"), **FIX)


def _cli(cfg: TrainConfig, out: Path, *extra: str) -> dict:
    argv = ["train", "--dataset", cfg.dataset, "--data", str(cfg.data), "--epochs", "2"]
    argv += ["--batch-size", "8", "--device", "cpu", "--threads", "1", "--no-progress"]
    assert main([*argv, "--radius-anchors", "4", "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    ("cfg", "keys"),
    [
        (MOLS, {"cv_accuracy", "cv_accuracy_std", "knn_top1"}),
        (WORDS, {"recall_at_1", "recall_at_10", "knn_top1"}),
    ],
    ids=["molecules", "wordnet"],
)
@pytest.mark.parametrize("loss", ["infonce", "adnce"])
def test_cli_smoke_run_on_the_fixtures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cfg: TrainConfig, keys: set, loss: str
) -> None:
    positive = "weighted" if cfg.dataset == "wordnet" else "unweighted"
    rec = _cli(cfg, tmp_path / "r.json", "--loss", loss, "--adnce-positive", positive)
    err = capsys.readouterr().err
    assert err.count("[epoch ") == 2 and "knn_top1" in err  # one line per epoch
    assert rec["dataset"] == cfg.dataset and rec["epochs"] == 2 and rec["loss"] == loss
    assert len(rec["metrics"]) == 3 and all(set(m) == keys for m in rec["metrics"])
    assert rec["knn_top1"] == [m["knn_top1"] for m in rec["metrics"]]
    assert all(0.0 <= v <= 100.0 for m in rec["metrics"] for v in m.values())
    assert len(rec["implied_radius"]) == 2
    assert all(math.isfinite(r["eta_exact_mean"]) for r in rec["implied_radius"])
    assert all(math.isfinite(v) for v in rec["loss_curve"])
    assert rec["linear_probe_top1"] is None  # these domains have no image probe


def test_molecule_run_resumed_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    full = train(MOLS)
    cfg = replace(MOLS, checkpoint=str(tmp_path / "m.pt"), resume=True)
    assert train(cfg, stop_after=1).epochs_done == 1
    rest = train(cfg)
    assert rest.metrics == full.metrics and rest.loss_curve == full.loss_curve
    assert [b.loss for b in rest.batch_log] == [b.loss for b in full.batch_log]


def test_domains_satisfy_the_one_interface() -> None:
    for cfg in (MOLS, WORDS):
        dom = make_domain(cfg, CPU)
        assert isinstance(dom, TrainingDomain) and dom.layout == "cross"
        assert dom.name == cfg.dataset and dom.train_size > cfg.batch_size
    assert make_domain(replace(WORDS, subset=10), CPU).train_size == 10  # --subset caps


def test_unbiased_negatives_need_labels() -> None:
    with pytest.raises(InputError, match="negatives: expected 'all' for the unlabelled wordnet"):
        train(replace(WORDS, negatives="unbiased"))
    assert train(replace(MOLS, negatives="unbiased", epochs=1)).epochs_done == 1


@pytest.mark.parametrize("positive", ["weighted", "unweighted", "none"])
def test_cross_layout_loss_equals_a_per_row_loop(positive: str) -> None:
    """The loop's B × B cross-view ADNCE against the formula of docs/domains.md, row by row."""
    b, tau, mu, sigma = 6, 0.1, 0.4, 1.0
    z = torch.randn(2 * b, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cfg = replace(WORDS, loss="adnce", temperature=tau, mu=mu, sigma=sigma)
    layout = cross_index(b)
    neg = negative_mask(layout, b)
    got = batch_loss(replace(cfg, adnce_positive=positive), z, layout, neg, cross=True)
    u = F.normalize(z, dim=1)
    c = u[:b] @ u[b:].T  # raw cosine c_ij = cos(z1_i, z2_j); the positive on the diagonal
    rows = []
    for i in range(b):
        others = [j for j in range(b) if j != i]
        norm_set = list(range(b)) if positive == "weighted" else others
        g = {j: math.exp(-((float(c[i, j]) - mu) ** 2) / (2 * sigma**2)) for j in range(b)}
        mean_g = sum(g[j] for j in norm_set) / len(norm_set)
        e = {j: math.exp(float(c[i, j]) / tau) for j in range(b)}
        s = sum(g[j] / mean_g * e[j] for j in norm_set)
        if positive == "unweighted":
            s += e[i]
        if positive == "none":
            s /= len(others)
        rows.append(-math.log(e[i] / s))
    # float32 similarities (batch_loss casts z) on O(10) logits: ~1e-6 relative rounding
    assert float(got.loss) == pytest.approx(sum(rows) / b, rel=1e-5)
    ref = adnce(c.float(), tau, mu=mu, sigma=sigma, positive=positive, layout="population")
    assert float(got.loss) == pytest.approx(float(ref), rel=1e-6)
    assert got.sim.shape == (b, b) and got.keep.shape == (b, b)


def test_cross_index_is_the_population_layout() -> None:
    idx = cross_index(4)
    ref = AnchorIndex.population(4, 4)
    assert torch.equal(idx.pos_index, ref.pos_index) and idx.self_index is None


def test_bad_json_path_fails_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import validation.training.loop as loop

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started before the output check")

    monkeypatch.setattr(loop, "train", never)
    rc = main(["train", "--dataset", "molecules", "--json", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "--json" in err and "folder" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset": "molecules", "encoder": "small"}, "encoder: expected one of gin"),
        ({"dataset": "wordnet", "encoder": "gin"}, "encoder: expected one of small, minilm"),
        ({"subset": 100}, "subset: expected none for molecules"),
        ({"dataset": "wordnet", "encoder": "small", "test_subset": 5}, "test_subset: expected"),
        ({"adnce_positive": "both"}, "adnce_positive: expected one of unweighted, none"),
    ],
)
def test_domain_configuration_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        replace(MOLS, **change).validate()  # type: ignore[arg-type]


def test_molecules_real_data_one_epoch(tmp_path: Path) -> None:
    try:
        find_molecules()
    except InputError:
        pytest.skip(f"molecule data absent; install: {INSTALL_MOLECULES}")
    cfg = TrainConfig(
        dataset="molecules", encoder="gin", epochs=1, batch_size=128, lr=1e-2, device="cpu"
    )
    res = train(replace(cfg, threads=1, temperature=0.2))
    # 1,282 molecules, batch 128: 10 steps; 10-fold CV well above the majority class 40.5 %
    assert res.steps_per_epoch == 10 and res.metrics[-1]["cv_accuracy"] > 60.0
