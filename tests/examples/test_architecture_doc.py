"""The module maps in the docs name exactly the modules that exist.

docs/architecture.md ("Module map") lists every module of ``fastworker/`` by path, and
docs/runtime.md ("File layout") every module of ``actors/`` by name: a module added,
renamed or removed without its line in the map fails here, so the map a newcomer reads
is the tree they find.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section(doc: str, heading: str) -> str:
    text = (ROOT / "docs" / doc).read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _modules(package: str) -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }


def test_architecture_module_map_lists_every_fastworker_module() -> None:
    """Every ``fastworker/**.py`` file has a line in the module map of
    docs/architecture.md, and every path the map names exists."""
    block = _section("architecture.md", "Module map")
    listed = set(re.findall(r"^\s*(fastworker/[\w/]+\.py)\b", block, flags=re.MULTILINE))
    actual = _modules("fastworker")
    assert sorted(actual - listed) == [], "modules missing from docs/architecture.md's Module map"
    assert sorted(listed - actual) == [], "the Module map names modules that do not exist"


def test_runtime_file_layout_names_every_actors_module() -> None:
    """Every module of ``actors/`` is named in docs/runtime.md's File layout table, and
    every module the table names exists."""
    block = _section("runtime.md", "File layout")
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    actual: set[str] = set()
    for path in _modules("actors"):
        parts = Path(path).relative_to("actors").with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            actual.add(parts[0])
    assert sorted(actual - named) == [], "actors modules missing from docs/runtime.md's File layout"
    assert sorted(named - actual) == [], "the File layout names modules that do not exist"
