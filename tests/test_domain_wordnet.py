"""WordNet parser and held-out task construction, on committed fixtures and (if installed) the
real Debian files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dro_theory.errors import InputError
from validation.training.domains.wordnet import (
    INSTALL_WORDNET,
    find_wordnet,
    load_wordnet,
    make_tasks,
    parse_data_line,
)

FIXTURE = Path(__file__).parent / "fixtures" / "wordnet"

CHOKE = (
    "00002724 29 v 01 choke 0 002 @ 00001740 v 0000 + 14058252 n 0101 01 + 02 00 | breathe with "
    'great difficulty, as when experiencing a strong emotion; "She choked with emotion when she '
    'spoke about her deceased husband"  \n'
)


def _real_wordnet() -> Path:
    try:
        return find_wordnet()
    except InputError:
        pytest.skip(f"WordNet data absent; install: {INSTALL_WORDNET}")


def test_parse_line_splits_gloss_examples_and_topic() -> None:
    syn = parse_data_line(CHOKE)
    assert syn is not None
    assert syn.synset_id == "00002724-v"
    assert syn.topic == 29  # verb.body
    assert syn.gloss == "breathe with great difficulty, as when experiencing a strong emotion"
    assert syn.examples == ("She choked with emotion when she spoke about her deceased husband",)


def test_header_lines_are_skipped_and_malformed_lines_rejected() -> None:
    assert parse_data_line("  1 This software and database is being provided\n") is None
    with pytest.raises(InputError, match="line: expected 'offset lex_filenum"):
        parse_data_line("00002724 29 v 01 choke 0 no gloss separator\n")
    with pytest.raises(InputError, match="lex_filenum: expected 00–44, found '77'"):
        parse_data_line(CHOKE.replace(" 29 v ", " 77 v "))


def test_fixture_files_parse_completely() -> None:
    synsets = load_wordnet(FIXTURE)
    assert len(synsets) == 24 + 12  # 3 per topic: 8 noun files, 4 verb files (fixtures/README)
    assert {s.topic for s in synsets} == set(range(3, 11)) | set(range(29, 33))
    assert all(s.examples and s.gloss and '"' not in s.gloss for s in synsets)
    assert len({s.synset_id for s in synsets}) == len(synsets)


def test_tasks_use_held_out_synsets_only_and_are_seeded() -> None:
    synsets = load_wordnet(FIXTURE)
    tasks = make_tasks(synsets, seed=3, held_out=0.5)
    held = set(tasks.query_glosses) | set(tasks.key_examples) | set(tasks.memory_glosses)
    held |= set(tasks.probe_glosses)
    assert held.isdisjoint(tasks.train_sentences)
    assert len(tasks.query_glosses) == len(tasks.key_examples) == 18
    by_gloss = {s.gloss: s for s in synsets}
    for gloss, example in zip(tasks.query_glosses, tasks.key_examples, strict=True):
        assert by_gloss[gloss].examples[0] == example
    for gloss, topic in zip(tasks.memory_glosses, tasks.memory_topics, strict=True):
        assert by_gloss[gloss].topic == topic
    assert make_tasks(synsets, seed=3, held_out=0.5) == tasks
    assert make_tasks(synsets, seed=4, held_out=0.5) != tasks


def test_task_errors() -> None:
    synsets = load_wordnet(FIXTURE)
    with pytest.raises(InputError, match=r"held_out: expected a fraction in \(0, 1\), found 1.5"):
        make_tasks(synsets, held_out=1.5)
    with pytest.raises(InputError, match="expected enough held-out synsets"):
        make_tasks(synsets[:3], held_out=0.34)


def test_missing_folder_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="apt-get install -y wordnet-base"):
        find_wordnet(tmp_path)


def test_real_wordnet_counts() -> None:
    # the Debian wordnet-base 3.0 counts of the data README: 117,659 glosses, 48,339 examples
    synsets = load_wordnet(_real_wordnet())
    assert len(synsets) == 117_659
    assert sum(len(s.examples) for s in synsets) == 48_339
    assert {s.topic for s in synsets} == set(range(45))
