"""The training domain of a configuration: images, WordNet sentences or molecules.

:func:`make_domain` is what :func:`validation.training.loop.train` calls when no domain is
given; :data:`DOMAIN_ENCODERS` lists the encoders of the non-image data sets (the image ones are
:data:`validation.training.encoders.ENCODERS`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import torch

from validation.training.domain import TrainingDomain, image_domain

if TYPE_CHECKING:
    from validation.training.config import TrainConfig

__all__ = ["DOMAIN_ENCODERS", "EVAL_TASK_SEED", "MIN_FOLDS", "make_domain"]

#: non-image data set → its encoders (the first is the default)
DOMAIN_ENCODERS = MappingProxyType({"wordnet": ("small", "minilm"), "molecules": ("gin",)})
#: seed of the WordNet held-out split: the same evaluation tasks for every training seed, so
#: that runs of different seeds are paired on one test set
EVAL_TASK_SEED = 0
#: fewest cross-validation folds: GraphCL's 10, fewer only when a class has fewer members
#: (the committed 18-molecule fixture), never under 2
MIN_FOLDS = 2


def _sentences(cfg: TrainConfig, device: torch.device) -> TrainingDomain:
    from validation.training.domains.sentences import SentenceDomain
    from validation.training.domains.wordnet import load_wordnet, make_tasks

    tasks = make_tasks(load_wordnet(cfg.data), seed=EVAL_TASK_SEED, max_train=cfg.subset)
    return SentenceDomain(tasks, encoder=cfg.encoder, seed=cfg.seed, device=device)


def _molecules(cfg: TrainConfig, device: torch.device) -> TrainingDomain:
    from validation.training.domains.gin import CV_FOLDS, MoleculeDomain
    from validation.training.domains.molecules import MoleculeSet, load_molecules

    mols = MoleculeSet(load_molecules(cfg.data))
    smallest = int(torch.bincount(mols.labels).min())
    folds = max(MIN_FOLDS, min(CV_FOLDS, smallest))
    return MoleculeDomain(mols, cv_folds=folds, seed=cfg.seed, device=device)


def make_domain(cfg: TrainConfig, device: torch.device) -> TrainingDomain:
    """The :class:`~validation.training.domain.TrainingDomain` of ``cfg.dataset`` on ``device``.

    ``wordnet``: :class:`~.sentences.SentenceDomain` (``subset`` caps the training sentences;
    the held-out tasks use :data:`EVAL_TASK_SEED`); ``molecules``:
    :class:`~.gin.MoleculeDomain` on every molecule, 10-fold CV (as many folds as the
    smallest class has members when that is fewer, at least :data:`MIN_FOLDS`); anything
    else: the image domain.

    Raises
    ------
    InputError
        Missing data (the message names the install command).
    """
    if cfg.dataset == "wordnet":
        return _sentences(cfg, device)
    if cfg.dataset == "molecules":
        return _molecules(cfg, device)
    return image_domain(cfg, device)
