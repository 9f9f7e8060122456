"""The WordNet sentence domain: unsupervised SimCSE (Gao et al., 2021; ``reference/paper.md``
§3.2) on WordNet glosses and examples, evaluated on held-out synsets.

Both views of a batch are the same token batch; the encoder runs in training mode, so the two
forward passes differ by their dropout masks. The head is SimCSE's Linear + tanh, used only in
the loss; evaluation uses the pooled features h.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dro_theory.errors import InputError
from validation.training.domains.protocols import recall_at_k
from validation.training.domains.text import MiniLM, SmallTransformer, TokenBatch, WordTokenizer
from validation.training.domains.wordnet import NUM_TOPICS, WordNetTasks
from validation.training.encoders import ContrastiveModel
from validation.training.evaluate import knn_top1

__all__ = ["SENTENCE_ENCODERS", "SentenceDomain"]

#: encoder names: trained from scratch, or the pretrained all-MiniLM-L6-v2
SENTENCE_ENCODERS = ("small", "minilm")
#: neighbours and vote temperature of the topic kNN (a few thousand memory glosses)
_KNN_K, _KNN_T = 20, 0.1
#: sentences per evaluation forward pass
_EVAL_CHUNK = 512


class SentenceDomain:
    """WordNet SimCSE domain (a :class:`~validation.training.domain.TrainingDomain`).

    Parameters
    ----------
    tasks : WordNetTasks
        Training sentences and held-out tasks (:func:`~.wordnet.make_tasks`).
    encoder : {"small", "minilm"}
        ``small``: :class:`~.text.SmallTransformer` on a :class:`~.text.WordTokenizer` fitted to
        the training sentences; ``minilm``: the pretrained :class:`~.text.MiniLM`.
    max_vocab : int
        Vocabulary size of the small encoder's tokenizer.
    seed : int
        Seeds the encoder's fresh weights (and its head).
    device : torch.device, optional
        Where the encoder lives and the views are made (default CPU).

    Raises
    ------
    InputError
        For an unknown encoder, or ``minilm`` without its optional packages.
    """

    name = "wordnet"
    #: SimCSE's B × B cross-view matrix (``reference/paper.md`` §3.2)
    layout = "cross"

    def __init__(
        self,
        tasks: WordNetTasks,
        *,
        encoder: str = "small",
        max_vocab: int = 20000,
        seed: int = 0,
        device: torch.device | None = None,
    ):
        key = str(encoder).strip().lower()
        if key not in SENTENCE_ENCODERS:
            raise InputError(
                f"encoder: expected one of {', '.join(SENTENCE_ENCODERS)}, found {encoder!r}"
            )
        self.encoder_name = key
        self.tasks = tasks
        self.device = device if device is not None else torch.device("cpu")
        self._minilm = MiniLM() if key == "minilm" else None
        self._words = None if self._minilm else WordTokenizer(tasks.train_sentences, max_vocab)
        self.tokens = self.tokenize(tasks.train_sentences)
        self.num_train = len(tasks.train_sentences)
        self.model = self.build_encoder(seed).to(self.device)

    @property
    def train_size(self) -> int:
        """Number of training sentences."""
        return self.num_train

    @property
    def train_labels(self) -> None:
        """None: the training sentences are unlabelled (no "unbiased" negatives)."""
        return None

    @property
    def encoder(self) -> nn.Module:
        """The encoder with its SimCSE head, on the device."""
        return self.model

    def tokenize(self, sentences: Sequence[str]) -> TokenBatch:
        """The encoder's token batch of ``sentences`` (CPU)."""
        if self._minilm is not None:
            return self._minilm.tokenize(sentences)
        assert self._words is not None
        return self._words(sentences)

    def views(self, index: torch.Tensor, local: slice, generator: torch.Generator) -> TokenBatch:
        """The local token batch twice, stacked (SimCSE: dropout makes the two views);
        ``generator`` unused (dropout draws from the global generator of the device)."""
        batch = self.tokens[index[local].cpu()]
        return TokenBatch(batch.ids.repeat(2, 1), batch.mask.repeat(2, 1)).to(self.device)

    def build_encoder(self, seed: int) -> ContrastiveModel:
        """Encoder + Linear/tanh head; fresh weights (and the head) drawn from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone: nn.Module
            if self._words is None:
                backbone = pretrained = MiniLM()
                width = pretrained.width
            else:
                backbone = small = SmallTransformer(len(self._words))
                width = small.embed.embedding_dim
            head = nn.Sequential(nn.Linear(width, width), nn.Tanh())
        return ContrastiveModel(backbone, head, int(width), f"sentence-{self.encoder_name}")

    @torch.no_grad()
    def encode(self, model: nn.Module, sentences: Sequence[str]) -> torch.Tensor:
        """Frozen features h of ``sentences`` in eval mode, (n, feature_dim) float32 on CPU."""
        was_training = model.training
        model.eval()
        try:
            tokens = self.tokenize(sentences)
            out = []
            for start in range(0, len(sentences), _EVAL_CHUNK):
                rows = torch.arange(start, min(start + _EVAL_CHUNK, len(sentences)))
                batch = tokens[rows].to(self.device)
                out.append(model.features(batch).float().cpu())  # type: ignore[operator]
        finally:
            model.train(was_training)
        return torch.cat(out)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out gloss→example recall@1/@10 (%) and topic kNN top-1 (%, ``knn_top1``)."""
        t = self.tasks
        recall = recall_at_k(
            self.encode(model, t.query_glosses), self.encode(model, t.key_examples)
        )
        knn = knn_top1(
            self.encode(model, t.memory_glosses),
            torch.tensor(t.memory_topics),
            self.encode(model, t.probe_glosses),
            torch.tensor(t.probe_topics),
            k=_KNN_K,
            temperature=_KNN_T,
            num_classes=NUM_TOPICS,
        )
        return {"recall_at_1": recall[1], "recall_at_10": recall[10], "knn_top1": knn}

    def probe(self, model: nn.Module) -> None:
        """None: the sentence domain's evaluation is retrieval and topic kNN only."""
        return None
