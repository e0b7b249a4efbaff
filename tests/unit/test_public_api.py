"""Every `__all__` under gateway/ names things that exist and are public (as httpx checks its own)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"


def _modules_with_all() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declares = any(
            isinstance(node, (ast.Assign, ast.AnnAssign))
            and any(isinstance(t, ast.Name) and t.id == "__all__"
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
            for node in tree.body
        )
        if declares:
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_all()


def test_core_modules_declare_all() -> None:
    """The modules this suite covers keep a public `__all__` (so the table below cannot silently shrink)."""
    assert {"gateway.tools.catalog", "gateway.tools.rewrite", "gateway.refusal", "gateway.identity",
            "gateway.passwords", "gateway.inspection", "gateway.policy", "gateway.metrics", "gateway.ca",
            "gateway.decision", "gateway.errors"} <= set(MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_all_names_exist_and_are_public(module_name: str) -> None:
    """Each name in `__all__` is defined, public and listed once."""
    module = importlib.import_module(module_name)
    exported = list(module.__all__)
    assert exported, f"{module_name}.__all__ is empty"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"{module_name}.__all__ names undefined {missing}"
    private = [name for name in exported if name.startswith("_")]
    assert private == [], f"{module_name}.__all__ exports private {private}"
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ lists a name twice"
