"""GIN encoder (Xu et al., 2019) in plain torch, and the molecule domain (GraphCL-style).

Encoder as in the authors' graph code (``reference/paper.md`` §3.3): 3 GIN layers of width 32,
each ``h ← BN(ReLU(MLP((1 + ε)·h + Σ_{j∈N(i)} h_j)))`` with MLP = Linear → ReLU → Linear and
ε = 0; the graph embedding is the concatenation of each layer's global *sum* pooling (96-d);
the projection head Linear(96, 96) → ReLU → Linear(96, 96) is used only in the loss.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from validation.training.domains.graph_augment import graphcl_view
from validation.training.domains.molecules import SOLUBILITY_CLASSES, GraphBatch, MoleculeSet
from validation.training.domains.protocols import cv_linear_accuracy
from validation.training.encoders import ContrastiveModel
from validation.training.evaluate import knn_top1

__all__ = ["GIN", "MoleculeDomain"]

#: GraphCL / ADNCE graph defaults: 3 layers of width 32
GIN_LAYERS, GIN_WIDTH = 3, 32
#: graphs per evaluation forward pass
_EVAL_CHUNK = 512
#: GraphCL's protocol: 10-fold cross-validation
CV_FOLDS = 10
#: kNN monitor: neighbours and vote temperature (a few hundred memory molecules)
_KNN_K, _KNN_T = 20, 0.1
#: seed of the fixed memory / query halves of the kNN monitor (the same for every run)
_KNN_SPLIT = 0


class GIN(nn.Module):
    """``forward(GraphBatch) -> (num_graphs, layers · width)``, sum-pooled per layer.

    Message passing sums neighbour features with ``index_add_`` over ``edge_index`` (src → dst),
    so the output is invariant to a relabelling of the nodes inside each graph.
    """

    def __init__(self, in_features: int, width: int = GIN_WIDTH, layers: int = GIN_LAYERS):
        super().__init__()
        dims = [in_features] + [width] * layers
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b))
            for a, b in itertools.pairwise(dims)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(layers))
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        h, (src, dst) = batch.x, batch.edge_index
        pooled = []
        for mlp, norm in zip(self.mlps, self.norms, strict=True):
            agg = h.index_add(0, dst, h[src])
            h = norm(torch.relu(mlp(agg)))
            out = h.new_zeros(batch.num_graphs, h.shape[1])
            pooled.append(out.index_add(0, batch.graph, h))
        return torch.cat(pooled, dim=1)


class MoleculeDomain:
    """Solubility molecules, GraphCL views, GIN, 10-fold CV evaluation (a
    :class:`~validation.training.domain.TrainingDomain`).

    Parameters
    ----------
    molecules : MoleculeSet
        Every molecule: GraphCL trains without labels on the whole set and evaluates by
        cross-validation on the frozen embeddings of the same set.
    augment_both : bool
        False (the authors' code): view 1 is the graph itself, view 2 a GraphCL ``random4``
        view; True: both views augmented independently.
    cv_folds : int
        Folds of the cross-validated linear classifier.
    seed : int
        Seeds the GIN and head weights.
    device : torch.device, optional
        Where the encoder lives and the views are made (default CPU).
    """

    name = "molecules"
    #: the authors' graph code: B × B cross-view matrix (``reference/paper.md`` §3.3)
    layout = "cross"

    def __init__(
        self,
        molecules: MoleculeSet,
        *,
        augment_both: bool = False,
        cv_folds: int = CV_FOLDS,
        seed: int = 0,
        device: torch.device | None = None,
    ) -> None:
        self.data = molecules
        self.cv_folds = cv_folds
        self.augment_both = augment_both
        self.num_train = len(molecules)
        self.device = device if device is not None else torch.device("cpu")
        self.model = self.build_encoder(seed).to(self.device)
        self._labels = molecules.labels.to(self.device)
        half = torch.randperm(len(molecules), generator=torch.Generator().manual_seed(_KNN_SPLIT))
        self._knn_memory, self._knn_query = half[::2], half[1::2]

    @property
    def train_size(self) -> int:
        """Number of molecules."""
        return self.num_train

    @property
    def train_labels(self) -> torch.Tensor:
        """Solubility classes on the device (used only by the "unbiased" negatives)."""
        return self._labels

    @property
    def encoder(self) -> nn.Module:
        """GIN with its projection head, on the device."""
        return self.model

    def views(
        self, index: torch.Tensor, local: slice, generator: torch.Generator
    ) -> tuple[GraphBatch, GraphBatch]:
        """(graphs, GraphCL views) of the molecules ``index[local]``, on the device, as a pair:
        the encoder sees each view alone (BatchNorm statistics per view, as the authors'
        graph code). The augmentation draws follow the local graphs' sizes (under DDP each
        rank draws its own)."""
        batch = self.data.batch(index[local]).to(self.device)
        first = graphcl_view(batch, generator) if self.augment_both else batch
        return first, graphcl_view(batch, generator)

    def build_encoder(self, seed: int) -> ContrastiveModel:
        """GIN + projection head, initialised from ``seed`` (global RNG left untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            gin = GIN(self.data.num_features)
            dim = GIN_LAYERS * GIN_WIDTH
            head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        return ContrastiveModel(gin, head, dim, "gin")

    @torch.no_grad()
    def embed(self, model: nn.Module) -> torch.Tensor:
        """Frozen (eval-mode) embeddings h of every molecule, (n, 96) float32 on CPU."""
        was_training = model.training
        model.eval()
        try:
            n = len(self.data)
            chunks = (
                self.data.batch(torch.arange(s, min(s + _EVAL_CHUNK, n)))
                for s in range(0, n, _EVAL_CHUNK)
            )
            out = [model.features(c.to(self.device)).float().cpu() for c in chunks]  # type: ignore[operator]
        finally:
            model.train(was_training)
        return torch.cat(out)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """k-fold CV accuracy (%) of a logistic regression on the frozen embeddings (mean,
        std), and kNN top-1 (%) of a fixed half of the molecules against the other half."""
        h, y = self.embed(model), self.data.labels
        cv = cv_linear_accuracy(h, y, folds=self.cv_folds)
        m, q = self._knn_memory, self._knn_query
        knn = knn_top1(
            h[m],
            y[m],
            h[q],
            y[q],
            k=_KNN_K,
            temperature=_KNN_T,
            num_classes=len(SOLUBILITY_CLASSES),
        )
        return {"cv_accuracy": cv.mean, "cv_accuracy_std": cv.std, "knn_top1": knn}

    def probe(self, model: nn.Module) -> None:
        """None: the cross-validated linear classifier of :meth:`evaluate` is the probe."""
        return None
