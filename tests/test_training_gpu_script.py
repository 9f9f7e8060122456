"""scripts/gpu_run.py in its CPU smoke mode, without cvxpy and without an installed cldro."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CIFAR_NPZ

ROOT = Path(__file__).resolve().parents[1]
#: blocks cvxpy (the GPU machine has none) and runs the script as `python3 scripts/gpu_run.py`
_RUN = (
    "import runpy, sys; sys.modules['cvxpy'] = None; "
    "sys.argv = ['gpu_run.py'] + sys.argv[1:]; "
    "runpy.run_path('scripts/gpu_run.py', run_name='__main__')"
)


@pytest.mark.skipif(not CIFAR_NPZ.is_file(), reason=f"needs the CIFAR-10 npz at {CIFAR_NPZ}")
def test_smoke_mode_writes_a_record_per_run(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script sets the path
    args = ["--smoke", "--encoder", "cnn-small", "--budget", "300", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "run.json").read_text())
    assert summary["runs"] == {"cnn-small-infonce": "done", "cnn-small-adnce": "done"}
    for name in summary["runs"]:
        rec = json.loads((out / f"{name}.json").read_text())
        assert rec["epochs"] == 2 and len(rec["epoch_seconds"]) == 2
        assert rec["linear_probe_top1"] is not None and rec["device"] == "cpu"
        assert (out / "checkpoints" / f"{name}.pt").is_file()
    assert "cnn-small-adnce epoch 2/2" in proc.stderr
    assert (out / "gpu-knn.png").read_bytes()[:4] == b"\x89PNG"
