"""The package's layers (docs/design.md, "The Python package"): a module imports only from its
own subpackage, from the subpackages before its own, and from the top-level modules."""

from __future__ import annotations

import ast
from pathlib import Path

import nanochart

LAYERS = ["core", "simulation", "data", "model", "chart", "cli", "testing"]
PACKAGE = Path(nanochart.__file__).parent


def _imported_subpackages(text: str, own: tuple[str, ...]) -> set[str]:
    """The nanochart subpackages that a module's source imports, at any depth; ``own`` is the
    module's package path below nanochart (("core",) for nanochart/core/rdf.py)."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = [*own[: len(own) - node.level + 1], *(node.module or "").split(".")]
            elif (node.module or "").startswith("nanochart."):
                parts = node.module.split(".")[1:]
            else:
                continue
            parts = [p for p in parts if p]
            if parts and parts[0] in LAYERS:
                found.add(parts[0])
    return found


def test_no_module_imports_a_later_layer() -> None:
    checked = 0
    for layer in LAYERS:
        for path in sorted((PACKAGE / layer).glob("*.py")):
            imported = _imported_subpackages(path.read_text(), (layer,))
            later = imported - set(LAYERS[: LAYERS.index(layer) + 1])
            assert not later, f"{path.relative_to(PACKAGE)} imports the later layer(s) {sorted(later)}"
            checked += 1
    assert checked >= 25, "the layers hold the package's modules"


def test_the_check_sees_upward_imports() -> None:
    assert _imported_subpackages("from ..model.features import featurize\n", ("core",)) == {"model"}
    assert _imported_subpackages("def f():\n    from nanochart.cli import main\n", ("data",)) == {"cli"}
    assert _imported_subpackages("from .rdf import RdfSettings\nfrom .. import plots\n", ("core",)) == {
        "core"
    }
