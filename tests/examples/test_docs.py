"""The documentation cannot rot: its code examples run, and its links lead somewhere."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import trio
from examples_support import PYTHON, REPO, run

DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS, *sorted((REPO / "examples").glob("*/README.md"))]
MARKER = "<!-- test: run -->"
BLOCK = re.compile(re.escape(MARKER) + r"\s*```python\n(.*?)```", re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def runnable_blocks() -> list[tuple[str, str]]:
    """(id, code) of every Python block marked ``<!-- test: run -->`` in docs/."""
    blocks = []
    for page in DOCS:
        for number, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
            blocks.append((f"{page.name}#{number}", match.group(1)))
    return blocks


def anchors(page: Path) -> set[str]:
    """The anchors a code host makes for the headings of a Markdown page."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            found.add(slug)
    return found


def test_there_are_runnable_examples() -> None:
    """The marker is in use (a renamed marker would silently test nothing)."""
    assert len(runnable_blocks()) >= 8


@pytest.mark.parametrize(("name", "code"), runnable_blocks())
async def test_documented_example_runs(name: str, code: str) -> None:
    """Each marked example in docs/ runs to completion as a program, exit code 0."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "example.py"
        script.write_text(code)
        with trio.fail_after(60):
            done = await run([PYTHON, str(script)], cwd=Path(tmp))
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{name} printed nothing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link (and #anchor) in the README, docs/ and the examples' READMEs
    points at a file or heading that exists."""
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading for {target}"
