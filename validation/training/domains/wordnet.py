"""WordNet 3.0 (the Debian ``wordnet-base`` files): glosses, examples, topics, held-out tasks.

A line of ``data.noun`` / ``data.verb`` / ``data.adj`` / ``data.adv`` (``wndb(5WN)``) reads
``offset lex_filenum ss_type w_cnt word lex_id … p_cnt pointers … | gloss``; the gloss is the
definition followed by ``; "example"`` quotations. ``lex_filenum`` (00–44) names one of the 45
lexicographer files (``noun.animal``, ``verb.motion`` …): the synset's *topic*.

Evaluation uses held-out synsets only: a seeded split puts a fraction of synsets aside; their
sentences never enter training. Two tasks are made from them (``docs/domains.md``):

* gloss ↔ example retrieval among held-out synsets with at least one example;
* topic kNN: held-out glosses labelled by lexicographer file, half as memory, half as queries.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dro_theory.errors import InputError
from validation.training.domains.base import DATA_LOCAL, resolve_data_dir

__all__ = [
    "INSTALL_WORDNET",
    "NUM_TOPICS",
    "Synset",
    "WordNetTasks",
    "find_wordnet",
    "load_wordnet",
    "make_tasks",
    "parse_data_line",
]

#: how to get the files (``make data`` runs this and copies them into data-local/wordnet)
INSTALL_WORDNET = "apt-get install -y wordnet-base   (or: make data)"
#: lexicographer files 00–44 (``lexnames(5WN)``)
NUM_TOPICS = 45
#: the parts of speech and their data files
_POS_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
#: a double-quoted example inside a gloss
_QUOTED = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class Synset:
    """One synset: id ``"<offset>-<pos>"``, topic (lexicographer file), gloss and examples."""

    synset_id: str
    topic: int
    gloss: str
    examples: tuple[str, ...]


def parse_data_line(line: str) -> Synset | None:
    """Parse one line of a WordNet ``data.*`` file; None for the licence header (two spaces).

    Raises
    ------
    InputError
        If a non-header line lacks the ``|`` gloss separator or a valid topic number.
    """
    if line.startswith("  ") or not line.strip():
        return None
    head, sep, gloss = line.partition(" | ")
    fields = head.split()
    if not sep or len(fields) < 4:
        raise InputError(f"line: expected 'offset lex_filenum ss_type … | gloss', found {line!r}")
    topic = int(fields[1]) if fields[1].isdigit() else -1
    if not 0 <= topic < NUM_TOPICS:
        raise InputError(f"lex_filenum: expected 00–44, found {fields[1]!r} in {line[:40]!r}")
    gloss = gloss.strip()
    examples = tuple(e.strip() for e in _QUOTED.findall(gloss) if e.strip())
    definition = _QUOTED.sub("", gloss)
    definition = re.sub(r"[;\s]+$", "", definition).strip()
    return Synset(f"{fields[0]}-{fields[2]}", topic, definition, examples)


def parse_lines(lines: Iterable[str]) -> list[Synset]:
    """Every synset of an iterable of ``data.*`` lines (headers skipped)."""
    return [s for s in (parse_data_line(line) for line in lines) if s is not None]


def find_wordnet(path: str | os.PathLike[str] | None = None) -> Path:
    """The WordNet folder: ``path``, else ``data-local/wordnet``, else ``/usr/share/wordnet``."""
    candidates = (DATA_LOCAL / "wordnet", Path("/usr/share/wordnet"))
    return resolve_data_dir(path, candidates, "data.noun", INSTALL_WORDNET)


def load_wordnet(path: str | os.PathLike[str] | None = None) -> list[Synset]:
    """Every synset of the four ``data.*`` files under :func:`find_wordnet` (``path``)."""
    folder = find_wordnet(path)
    out: list[Synset] = []
    for name in _POS_FILES:
        file = folder / name
        if file.is_file():
            with file.open(encoding="utf-8", errors="replace") as fh:
                out.extend(parse_lines(fh))
    return out


@dataclass(frozen=True)
class WordNetTasks:
    """Training sentences and the held-out evaluation tasks.

    Attributes
    ----------
    train_sentences : tuple of str
        Glosses and examples of the training synsets.
    query_glosses, key_examples : tuple of str
        Retrieval pairs: held-out synset i's gloss and its first example (aligned).
    memory_glosses, memory_topics, probe_glosses, probe_topics
        Topic kNN: held-out glosses with their lexicographer file, memory and query halves.
    """

    train_sentences: tuple[str, ...]
    query_glosses: tuple[str, ...]
    key_examples: tuple[str, ...]
    memory_glosses: tuple[str, ...]
    memory_topics: tuple[int, ...]
    probe_glosses: tuple[str, ...]
    probe_topics: tuple[int, ...]


def make_tasks(
    synsets: list[Synset],
    *,
    seed: int = 0,
    held_out: float = 0.1,
    max_retrieval: int = 1000,
    max_topic: int = 4000,
    max_train: int | None = None,
) -> WordNetTasks:
    """Split synsets (seeded) into training and held-out, and build the evaluation tasks.

    Parameters
    ----------
    synsets : list of Synset
        From :func:`load_wordnet`.
    seed : int
        Seed of the synset permutation.
    held_out : float
        Fraction of synsets put aside, in (0, 1).
    max_retrieval, max_topic : int
        Caps on the number of retrieval pairs and of topic-kNN glosses (memory + queries).
    max_train : int, optional
        Cap on the number of training sentences (the first ones in permuted order).

    Raises
    ------
    InputError
        If ``held_out`` is outside (0, 1) or too few synsets are held out to build both tasks.
    """
    if not 0.0 < held_out < 1.0:
        raise InputError(f"held_out: expected a fraction in (0, 1), found {held_out!r}")
    order = np.random.default_rng(seed).permutation(len(synsets))
    n_test = round(held_out * len(synsets))
    test = [synsets[i] for i in order[:n_test]]
    train = [synsets[i] for i in order[n_test:]]
    sentences = [s for syn in train for s in (syn.gloss, *syn.examples) if s]
    if max_train is not None:
        sentences = sentences[:max_train]
    pairs = [(s.gloss, s.examples[0]) for s in test if s.examples and s.gloss][:max_retrieval]
    topical = [(s.gloss, s.topic) for s in test if s.gloss][:max_topic]
    if len(pairs) < 2 or len(topical) < 4:
        raise InputError(
            f"synsets: expected enough held-out synsets for both tasks (>= 2 with examples, >= 4 "
            f"glosses), found {len(pairs)} and {len(topical)}"
        )
    half = len(topical) // 2
    return WordNetTasks(
        train_sentences=tuple(sentences),
        query_glosses=tuple(g for g, _ in pairs),
        key_examples=tuple(e for _, e in pairs),
        memory_glosses=tuple(g for g, _ in topical[:half]),
        memory_topics=tuple(t for _, t in topical[:half]),
        probe_glosses=tuple(g for g, _ in topical[half:]),
        probe_topics=tuple(t for _, t in topical[half:]),
    )
