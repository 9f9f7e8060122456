"""A few InfoNCE steps on each domain: the interface's pieces work together and the encoder
learns (the full loop through ``cldro train`` is tested in ``tests/test_training_domains.py``).

The check: on fixed views (seeded), the NT-Xent loss after ``STEPS`` Adam steps on fresh views
is below the loss before training, and every parameter has moved. A broken piece (views that do
not depend on the item, no gradient reaching the encoder, a model that ignores its input) fails.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from dro_theory.errors import InputError
from estimators.losses import nt_xent
from validation.training.domain import TrainingDomain
from validation.training.domains.gin import MoleculeDomain
from validation.training.domains.molecules import INSTALL_MOLECULES, MoleculeSet, load_molecules
from validation.training.domains.sentences import SentenceDomain
from validation.training.domains.wordnet import INSTALL_WORDNET, load_wordnet, make_tasks
from validation.training.loop import projections

FIXTURES = Path(__file__).parent / "fixtures"
#: a few steps: enough for Adam to move a freshly initialised encoder on a tiny set
STEPS, BATCH, TAU, LR = 15, 8, 0.2, 1e-3
#: on the real molecules: GraphCL's batch 128 and learning rate 0.01, three passes of the data
REAL_GRAPH_STEPS, REAL_GRAPH_BATCH, REAL_GRAPH_LR = 30, 128, 1e-2
CPU = torch.device("cpu")


def _two_view_loss(
    domain: TrainingDomain, model: torch.nn.Module, index: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """NT-Xent of the two views ``cat(v1, v2)`` the domain makes of ``index``."""
    z = projections(model, domain.views(index, slice(None), gen))
    b = z.shape[0] // 2
    return nt_xent(z[:b], z[b:], TAU)


def _loss_on(
    domain: TrainingDomain, model: torch.nn.Module, index: torch.Tensor, seed: int
) -> float:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)  # the dropout masks of the sentence views
        return float(_two_view_loss(domain, model, index, torch.Generator().manual_seed(seed)))


def _smoke(
    domain: TrainingDomain, steps: int = STEPS, batch: int = BATCH, lr: float = LR
) -> dict[str, float]:
    model = domain.encoder
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    probe = torch.arange(min(batch, domain.train_size))
    before = _loss_on(domain, model, probe, seed=123)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        for _ in range(steps):
            index = torch.randperm(domain.train_size, generator=gen)[:batch]
            loss = _two_view_loss(domain, model, index, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = _loss_on(domain, model, probe, seed=123)
    assert math.isfinite(before) and math.isfinite(after)
    assert after < before, (before, after)
    frozen = [n for n, p in model.named_parameters() if torch.equal(p.detach(), start[n])]
    assert not frozen  # the gradient reaches every parameter of encoder and head
    metrics = domain.evaluate(model)
    assert model.training  # evaluate restores the mode
    return metrics


def test_sentence_domain_smoke_on_fixtures() -> None:
    dom = SentenceDomain(make_tasks(load_wordnet(FIXTURES / "wordnet"), seed=0, held_out=0.5))
    assert isinstance(dom, TrainingDomain)
    m = _smoke(dom)
    assert set(m) == {"recall_at_1", "recall_at_10", "knn_top1"}
    assert all(0.0 <= v <= 100.0 for v in m.values())
    assert m["recall_at_1"] <= m["recall_at_10"]


def test_molecule_domain_smoke_on_fixtures() -> None:
    mols = MoleculeSet(load_molecules(FIXTURES / "molecules"))
    dom = MoleculeDomain(mols, cv_folds=3)  # 6 molecules per class in the fixture
    assert isinstance(dom, TrainingDomain)
    m = _smoke(dom)
    assert set(m) == {"cv_accuracy", "cv_accuracy_std", "knn_top1"}
    assert 0.0 <= m["cv_accuracy"] <= 100.0 and m["cv_accuracy_std"] >= 0.0
    with pytest.raises(InputError, match="every class to have >= 10 members, found 6"):
        MoleculeDomain(mols).evaluate(dom.build_encoder(0))


def test_molecule_domain_smoke_on_real_data() -> None:
    try:
        mols = MoleculeSet(load_molecules())
    except InputError:
        pytest.skip(f"molecule data absent; install: {INSTALL_MOLECULES}")
    dom = MoleculeDomain(mols)  # the authors' views: the graph and one GraphCL view
    m = _smoke(dom, REAL_GRAPH_STEPS, REAL_GRAPH_BATCH, REAL_GRAPH_LR)
    assert set(m) == {"cv_accuracy", "cv_accuracy_std", "knn_top1"}
    # three classes of sizes 519/517/246: a linear model on GIN features beats the majority
    # class (519/1282 = 40.5%) by far more than its CV standard error
    assert m["cv_accuracy"] > 100.0 * 519 / 1282 + 3 * m["cv_accuracy_std"] / math.sqrt(10)


def test_sentence_domain_smoke_on_real_data() -> None:
    try:
        synsets = load_wordnet()
    except InputError:
        pytest.skip(f"WordNet data absent; install: {INSTALL_WORDNET}")
    tasks = make_tasks(synsets, seed=0, max_train=2000, max_retrieval=300, max_topic=600)
    m = _smoke(SentenceDomain(tasks, max_vocab=5000))
    assert 0.0 <= m["recall_at_1"] <= m["recall_at_10"] <= 100.0
