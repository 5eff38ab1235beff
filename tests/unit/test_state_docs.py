"""Every field of the graph state, its inputs and outputs, and the models in `state/` says what it
holds: a comment on its line or the line above, a `Field(description=...)`, or a mention in its
class's docstring. A newcomer reads a state module as the workflow's data dictionary."""

from __future__ import annotations

import ast
import io
import pkgutil
import re
import tokenize
from pathlib import Path

import state
from core.settings import ROOT


def _comment_lines(source: str) -> set[int]:
    return {
        tok.start[0]
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }


def _has_description(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Call) and any(k.arg == "description" for k in value.keywords)


def undocumented(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    comments = _comment_lines(source)
    missing = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        doc = ast.get_docstring(node) or ""
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            end = stmt.end_lineno or stmt.lineno
            above = stmt.lineno - 1
            documented = (
                any(n in comments for n in range(stmt.lineno, end + 1))
                or (above in comments and lines[above - 1].lstrip().startswith("#"))
                or _has_description(stmt.value)
                or re.search(rf"\b{re.escape(name)}\b", doc) is not None
            )
            if not documented:
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                missing.append(f"{where}:{stmt.lineno} {node.name}.{name}")
    return missing


def test_every_state_field_is_documented() -> None:
    modules = [Path(state.__path__[0]) / f"{m.name}.py" for m in pkgutil.iter_modules(state.__path__)]
    assert len(modules) >= 10  # every workflow has one
    missing = [field for path in modules for field in undocumented(path)]
    assert missing == [], "document these fields (a comment, a description, or the docstring):\n" + "\n".join(
        missing
    )


def test_the_check_sees_an_undocumented_field(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        'class S:\n    """Has `a`."""\n\n    a: int\n    b: int  # documented\n    # documented\n'
        "    c: int\n    d: int = Field(description='documented')\n    e: int\n"
    )
    assert undocumented(probe) == ["probe.py:9 S.e"]
