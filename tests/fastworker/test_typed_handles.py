"""Typed task handles: mypy checks the arguments of call/delay given the @task function
and infers call's result type, for the trio, asyncio and blocking clients alike."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

HEADER = """
from typing import assert_type
import fastworker
from fastworker import task

@task
def add(x: int, y: int) -> int:
    return x + y

@task
async def greet(name: str, *, loud: bool = False) -> str:
    return name
"""

GOOD = """
async def use(client: fastworker.Client) -> None:
    assert_type(await client.call(add, 1, 2), int)
    assert_type(await client.call(greet, "a", loud=True), str)
    assert_type(await client.delay(add, 1, y=2), str)
    await client.delay(add, 1, 2, priority="high")
    await client.call("add", 1, "anything")
    await client.delay(add, 1, 2, unique_key="add:1:2")
    await client.delay(fastworker.chain(fastworker.sig(add, 1, 2), fastworker.sig(add, 3)))

def sync(client: fastworker.BlockingClient) -> None:
    assert_type(client.call(add, 1, 2), int)
    assert_type(client.call(greet, "b"), str)
    client.call(add, 1, 2, timeout=3.0)
    client.delay(add, 1, 2, priority="high")
    assert_type(add(1, 2), int)
"""

BAD = """
async def use(client: fastworker.Client) -> None:
    await client.call(add, 1, "two")
    await client.delay(add, 1)
    await client.call(greet, 3)

def sync(client: fastworker.BlockingClient) -> None:
    client.call(add, "one", 2)
    x: str = client.call(add, 1, 2)
"""


def run_mypy(tmp_path: Path, body: str) -> tuple[str, int]:
    """mypy (strict) on HEADER + body; its report and exit status."""
    api = pytest.importorskip("mypy.api")
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent(HEADER) + textwrap.dedent(body))
    os.environ["MYPYPATH"] = str(REPO)
    out, err, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            "--config-file",
            os.devnull,
            "--ignore-missing-imports",
            str(sample),
        ]
    )
    return out + err, status


def test_mypy_accepts_a_well_typed_sample(tmp_path: Path) -> None:
    """Right arguments pass; call's result has the task's return type."""
    report, status = run_mypy(tmp_path, GOOD)
    assert status == 0, report


def test_mypy_refuses_wrong_arguments(tmp_path: Path) -> None:
    """Wrong argument types, a missing argument and a wrong result type are each an
    error at their own line."""
    report, status = run_mypy(tmp_path, BAD)
    assert status == 1, report
    header_lines = len(textwrap.dedent(HEADER).splitlines())
    lines = {
        int(line.split(":")[1]) - header_lines for line in report.splitlines() if ": error:" in line
    }
    assert {3, 4, 5, 8, 9} <= lines, report
