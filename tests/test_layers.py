"""The layers of the tree (README "Layout"): framework <- algorithms <- analysis <- paper_figures.

Read from the source with ``ast`` (every import statement, at any depth, including the ones inside
functions), so a lazy import that reaches up a layer is caught as well as a top-level one.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["framework", "algorithms", "analysis", "paper_figures"]  # each imports only from those before it
# the one place framework reaches algorithms: the policy registry's discovery imports the package by name
DISCOVERY = {("framework/policy.py", "algorithms")}
MAX_LINES = 400


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Top-level package of every module ``path`` imports (relative imports stay in their package)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("layer", LAYERS)
def test_no_import_reaches_a_later_layer(layer):
    later = set(LAYERS[LAYERS.index(layer) + 1:])
    bad = sorted((str(p.relative_to(ROOT)), m) for p in _modules(layer) for m in _imports(p) & later)
    assert [b for b in bad if b not in DISCOVERY] == []


def test_framework_reaches_algorithms_only_through_discovery_by_name():
    """framework/policy.py imports the package for its path and each module with importlib, by name."""
    src = (ROOT / "framework" / "policy.py").read_text()
    tree = ast.parse(src)
    froms = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
             and n.module.startswith("algorithms")]
    assert froms == [] and 'importlib.import_module(f"algorithms.{mod.name}")' in src


def test_no_source_module_over_the_limit():
    big = {str(p.relative_to(ROOT)): n for pkg in [*LAYERS, "benchmarks", "hydra_plugins"]
           for p in _modules(pkg) if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}


def test_the_checker_sees_a_lazy_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef f():\n    from analysis.metrics import x\n    import paper_figures._style\n")
    assert _imports(f) == {"os", "analysis", "paper_figures"}
