"""The layers import only downward: dro_theory (no torch) <- estimators <- validation."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fresh_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(out.stdout.split())


def test_import_dro_theory_loads_neither_torch_nor_cvxpy() -> None:
    mods = _fresh_modules(
        "import dro_theory, dro_theory.divergences, dro_theory.duals, "
        "dro_theory.lagrange, dro_theory.expansions"
    )
    assert "torch" not in mods
    assert "cvxpy" not in mods


def _imported_packages(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("dro_theory", {"torch", "estimators", "validation", "matplotlib"}),
        ("estimators", {"validation", "matplotlib"}),
    ],
)
def test_layers_import_only_downward(package: str, forbidden: set[str]) -> None:
    assert not (_imported_packages(package) & forbidden)


def test_only_plotting_imports_matplotlib() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for pkg in ("dro_theory", "estimators", "validation")
        for path in (ROOT / pkg).rglob("*.py")
        if "matplotlib" in path.read_text(encoding="utf-8")
        and path.name != "plotting.py"
        and "import matplotlib" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_cvxpy_is_imported_lazily() -> None:
    """No module imports cvxpy at module level (only inside functions of the primal)."""
    offenders = []
    for pkg in ("dro_theory", "estimators", "validation"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n.split(".")[0] == "cvxpy" for n in names):
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_print_outside_cli() -> None:
    offenders = []
    for pkg in ("dro_theory", "estimators", "validation"):
        for path in (ROOT / pkg).rglob("*.py"):
            if "cli" in path.relative_to(ROOT).parts[:2]:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "print"
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
