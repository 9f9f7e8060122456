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


# --------------------------------------------------------------------------------------------
# no underscore name crosses a module boundary; private modules stay in their own package
# --------------------------------------------------------------------------------------------
PACKAGES = ("dro_theory", "estimators", "validation")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of this repository."""
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module of a (possibly relative) ``from ... import``."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")[: -node.level]
    return ".".join([*parts, node.module] if node.module else parts)


def _private_module_of_other_package(importer: str, dotted: str) -> bool:
    """``dotted`` has a private component and lies outside the importer's top-level package."""
    parts = dotted.split(".")
    return any(_is_private(p) for p in parts[1:]) and parts[0] != importer.split(".")[0]


def private_uses(module: str, source: str) -> list[str]:
    """Offences in ``source`` (the module ``module``): underscore names imported or used.

    * ``from x import _y`` where ``_y`` is not a module of the importer's own top-level package;
    * ``import a._b`` / ``from a._b import c`` where ``a`` is another top-level package;
    * ``m._y`` where ``m`` is a name bound to a module by an import.
    """
    tree = ast.parse(source)
    found: list[str] = []
    module_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private_module_of_other_package(module, alias.name):
                    found.append(f"{node.lineno}: import {alias.name}")
                module_names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            if src == "__future__":
                continue
            if _private_module_of_other_package(module, src):
                found.append(f"{node.lineno}: from {src} import ...")
            for alias in node.names:
                sub = f"{src}.{alias.name}"
                if _is_module(sub):
                    module_names.add(alias.asname or alias.name)
                    if _private_module_of_other_package(module, sub):
                        found.append(f"{node.lineno}: from {src} import {alias.name}")
                elif _is_private(alias.name):
                    found.append(f"{node.lineno}: from {src} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_names
            and _is_private(node.attr)
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_underscore_name_crosses_a_module() -> None:
    offenders = []
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            module = ".".join(parts)
            for hit in private_uses(module, path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}:{hit}")
    assert offenders == []


@pytest.mark.parametrize(
    ("module", "source", "caught"),
    [
        ("dro_theory.lagrange", "from dro_theory.duals.kl import _expm1_minus_x", True),
        ("dro_theory.lagrange", "from .duals.kl import _expm1_minus_x", True),
        ("estimators.bounds", "from dro_theory._roots import find_increasing_root", True),
        ("estimators.bounds", "import dro_theory._backend", True),
        ("estimators.bounds", "from dro_theory import _backend", True),
        ("dro_theory.lagrange", "from dro_theory.duals import kl\nkl._TAYLOR", True),
        ("dro_theory.lagrange", "import dro_theory.duals.kl as k\nk._SMALL_TILT", True),
        ("dro_theory.duals.kl", "from dro_theory._roots import find_increasing_root", False),
        ("dro_theory.duals.kl", "from __future__ import annotations", False),
        ("dro_theory.lagrange", "x = object()\nx._private", False),
    ],
)
def test_private_use_checker_catches_what_it_should(module: str, source: str, caught: bool) -> None:
    assert bool(private_uses(module, source)) is caught
