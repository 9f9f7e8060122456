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
    mols = MoleculeSet(load_molecules(FIXTURES / "molecules"))
    tasks = make_tasks(load_wordnet(FIXTURES / "wordnet"), seed=0, held_out=0.5)
    pairs = [
        (MoleculeDomain(mols, cv_folds=3, device=d), SentenceDomain(tasks, device=d))
        for d in (cuda, torch.device("cpu"))
    ]
    for on_gpu_dom, on_cpu_dom in zip(*pairs, strict=True):
        index = torch.arange(6)
        on_gpu = on_gpu_dom.views(index, slice(None), torch.Generator().manual_seed(0))
        on_cpu = on_cpu_dom.views(index, slice(None), torch.Generator().manual_seed(0))
        model, ref = on_gpu_dom.encoder.eval(), on_cpu_dom.encoder.eval()
        with torch.no_grad():
            # same seed → same views and weights; the encoders agree up to float32 kernels
            torch.testing.assert_close(model(on_gpu)[0].cpu(), ref(on_cpu)[0], rtol=1e-4, atol=1e-4)
        model.train()
        z = model(on_gpu)[1]
        loss = nt_xent(z[:6], z[6:], 0.2)
        loss.backward()
        assert torch.isfinite(loss)
        metrics = on_gpu_dom.evaluate(model)
        assert all(0.0 <= v <= 100.0 for v in metrics.values())
