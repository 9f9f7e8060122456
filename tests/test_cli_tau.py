"""`cldro tau` on scores, embeddings and a checkpoint; JSON, plot; bad input exits 2, one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dro_theory.advisor import advise_radius, advise_temperature
from estimators.similarity import negative_scores
from validation.cli import main
from validation.training.loop import TrainConfig, train


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    z1 = rng.normal(size=(20, 5))
    paths = {
        "scores": tmp_path / "s.npy",
        "vector": tmp_path / "v.npy",
        "z1": tmp_path / "z1.npy",
        "z2": tmp_path / "z2.npy",
        "nan": tmp_path / "nan.npy",
        "short": tmp_path / "short.npy",
        "text": tmp_path / "s.txt",
    }
    np.save(paths["scores"], 0.3 * rng.normal(size=(10, 30)))
    np.save(paths["vector"], 0.3 * rng.normal(size=30))
    np.save(paths["z1"], z1)
    np.save(paths["z2"], z1 + 0.2 * rng.normal(size=z1.shape))
    np.save(paths["nan"], np.array([[0.1, np.nan, 0.2]]))
    np.save(paths["short"], rng.normal(size=(7, 5)))
    paths["text"].write_text("0.1 0.2\n")
    return paths


def test_scores_radius_json_and_plot(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "o" / "tau.json", tmp_path / "tau.png"
    argv = ["tau", "--scores", str(files["scores"]), "--radius", "0.3"]
    assert main([*argv, "--json", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "τ exact" in text and "√(Var/2η)" in text and "matched τ" in text
    rec = json.loads(out.read_text())
    ref = advise_radius(np.load(files["scores"]), 0.3)
    assert rec["mode"] == "radius" and rec["anchors"] == 10 and rec["negatives"] == 30
    np.testing.assert_array_equal(rec["per_anchor"]["temperature"], ref.temperature)
    assert rec["matched_temperature"] == ref.matched_temperature
    assert f"{ref.matched_temperature:.10g}" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_vector_scores_temperature(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tau", "--scores", str(files["vector"]), "--temperature", "0.25"]) == 0
    text = capsys.readouterr().out
    ref = advise_temperature(np.load(files["vector"]), 0.25)
    assert "anchors 1," in text and "Var/(2τ²)" in text
    assert f"{ref.mean_radius:.10g}" in text


@pytest.mark.parametrize("style", ["two-after-one-flag", "flag-twice"])
def test_two_view_embeddings(
    files: dict[str, Path], tmp_path: Path, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    z1, z2 = str(files["z1"]), str(files["z2"])
    views = ["--embeddings", z1, z2] if style == "two-after-one-flag" else [
        "--embeddings", z1, "--embeddings", z2
    ]  # fmt: skip
    out = tmp_path / "e.json"
    assert main(["tau", *views, "--radius", "0.5", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    neg = negative_scores(np.load(z1), np.load(z2)).negatives
    assert rec["anchors"] == 40 and rec["negatives"] == 38
    assert rec["matched_temperature"] == advise_radius(neg, 0.5).matched_temperature


def test_one_view_embeddings_beyond_point_mass(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tau", "--embeddings", str(files["z1"]), "--radius", "10"]) == 0
    text = capsys.readouterr().out
    assert "anchors 20, negatives per anchor 19" in text
    assert "matched τ (mean radius over anchors = η): 0" in text
    assert "note:" in text and "point-mass" in text


def test_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "run.pt"
    cfg = TrainConfig(
        dataset="digits",
        encoder="mlp",
        subset=300,
        epochs=1,
        batch_size=64,
        radius_anchors=0,
        probe=False,
        device="cpu",
        checkpoint=str(ckpt),
    )
    train(cfg)
    argv = ["tau", "--checkpoint", str(ckpt), "--batch-size", "16", "--temperature", "0.2"]
    assert main(argv) == 0
    assert "anchors 32, negatives per anchor 30" in capsys.readouterr().out
    assert main([*argv[:-2], "--dataset", "fashion-mnist", "--radius", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: dataset:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scores", "{nan}", "--radius", "0.1"], "scores: expected finite"),
        (["--scores", "{scores}"], "exactly one of --radius and --temperature, found neither"),
        (["--scores", "{scores}", "--radius", "1", "--temperature", "1"], "found both"),
        (["--radius", "0.1"], "--scores/--embeddings/--checkpoint: expected exactly one"),
        (["--scores", "{scores}", "--embeddings", "{z1}", "--radius", "0.1"], "found --scores"),
        (["--embeddings", "{z1}", "{short}", "--radius", "0.1"], "same shape"),
        (["--embeddings", "{z1}", "{z2}", "{z1}", "--radius", "0.1"], "one or two .npy"),
        (["--scores", "{scores}", "{z2}", "--radius", "0.1"], "--embeddings: expected the second"),
        (["--scores", "{scores}", "--radius", "-1"], "radius: expected a finite number > 0"),
        (["--scores", "{scores}", "--radius", "inf"], "radius: expected a finite number > 0"),
        (["--scores", "{scores}", "--temperature", "nan"], "temperature: expected a finite"),
        (["--scores", "{text}", "--radius", "0.1"], "--scores"),
        (["--scores", "{missing}", "--radius", "0.1"], "--scores"),
        (["--checkpoint", "{text}", "--radius", "0.1"], "checkpoint: expected a cldro"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    files: dict[str, Path],
    tmp_path: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = {k: str(v) for k, v in files.items()} | {"missing": str(tmp_path / "no.npy")}
    assert main(["tau", *(a.format(**names) for a in args)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ") and message in err[0]
