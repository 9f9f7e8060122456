"""The domains' views and encoders on CUDA with a CPU generator (opt-in: -m gpu)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from estimators.losses import nt_xent
from validation.training.domains.gin import MoleculeDomain
from validation.training.domains.molecules import MoleculeSet, load_molecules
from validation.training.domains.sentences import SentenceDomain
from validation.training.domains.wordnet import load_wordnet, make_tasks

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.gpu
def test_views_and_encoders_on_cuda_match_the_cpu() -> None:
    cuda = torch.device("cuda")
    mol = MoleculeDomain(MoleculeSet(load_molecules(FIXTURES / "molecules")), cv_folds=3)
    sent = SentenceDomain(make_tasks(load_wordnet(FIXTURES / "wordnet"), seed=0, held_out=0.5))
    for dom in (mol, sent):
        index = torch.arange(6)
        on_gpu = dom.views(index, cuda, torch.Generator().manual_seed(0))
        on_cpu = dom.views(index, torch.device("cpu"), torch.Generator().manual_seed(0))
        model = dom.build_encoder(0).to(cuda).eval()
        ref = dom.build_encoder(0).eval()
        with torch.no_grad():
            # same seed → same views; the encoders agree up to float32 kernel differences
            for g, c in zip(on_gpu, on_cpu, strict=True):
                torch.testing.assert_close(model(g)[0].cpu(), ref(c)[0], rtol=1e-4, atol=1e-4)
        model.train()
        loss = nt_xent(model(on_gpu[0])[1], model(on_gpu[1])[1], 0.2)
        loss.backward()
        assert torch.isfinite(loss)
        metrics = dom.evaluate(model, cuda)
        assert all(0.0 <= v <= 100.0 for v in metrics.values())
