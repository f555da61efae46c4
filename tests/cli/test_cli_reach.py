"""The command line as a new user meets it: help and docs agree, errors name the fix,
the banner's command runs as pasted, failures show their traceback, ``top`` quits on q
and says when the control plane is gone. Real processes on loopback."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import trio
from support import wait_until
from test_cli import base_env, fastworker_cli, kill_tree, run_actor_system

from fastworker._cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
HERE = Path(__file__).resolve().parent


def parser_flags() -> dict[str, set[str]]:
    """Every subcommand's visible long flags (``--help`` excluded)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags: dict[str, set[str]] = {}
    for name, command in sub.choices.items():
        flags[name] = {
            option
            for action in command._actions
            if action.help != argparse.SUPPRESS
            for option in action.option_strings
            if option.startswith("--") and option != "--help"
        }
    return flags


def test_help_and_docs_name_the_same_flags() -> None:
    """Every flag of every subcommand is in docs/cli.md, and every flag the page names
    exists: the page and ``--help`` cannot drift apart."""
    documented = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", DOCS.read_text()))
    flags = parser_flags()
    existing = set().union(*flags.values()) | {"--version", "--help"}
    missing = {f"{name} {flag}" for name, fs in flags.items() for flag in fs - documented}
    assert not missing, f"flags without a word in docs/cli.md: {sorted(missing)}"
    assert documented <= existing, f"docs/cli.md names unknown flags: {documented - existing}"


def test_help_shows_defaults_units_and_a_line_per_subcommand() -> None:
    """Flags with a default show it; durations say SECONDS; each subcommand's own
    --help starts with what it does."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.description, f"{name} --help has no description"
    text = sub.choices["run-actor-system"].format_help()
    assert "(default: 8765)" in text and "--shutdown-timeout SECONDS" in text
    assert "(default: 30.0)" in text and "(bytes)" in text
    top = parser.format_help()
    assert all(name in top for name in sub.choices)


async def test_a_port_in_use_names_the_port_and_the_flag_and_exits_2() -> None:
    """The control plane's port is taken: exit 2 (usage), naming the port and --port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = await fastworker_cli(
            "control-plane", "--tasks", "cli_tasks", "--port", str(port), "--no-discovery"
        )
    assert run.code == 2, run
    assert f"port {port}" in run.stderr and "--port" in run.stderr


async def test_an_http_url_is_a_usage_error() -> None:
    """--url http://... is refused as usage (exit 2), saying websocket URLs are needed."""
    run = await fastworker_cli("status", "some-id", "--url", "http://127.0.0.1:8765")
    assert run.code == 2, run
    assert "ws://" in run.stderr and "not HTTP" in run.stderr


async def test_the_banner_command_runs_as_pasted() -> None:
    """The start-up banner's "submit one" line, run exactly as printed, succeeds."""
    with trio.fail_after(60):
        async with run_actor_system(subworkers=0) as server:
            await wait_until(
                lambda: "submit one:" in server.output(),
                timeout=50,
                what="the banner's 'submit one:' line",
                observe=server.output,
            )
            line = next(x for x in server.output().splitlines() if "submit one:" in x)
            words = shlex.split(line.split("submit one:", 1)[1])
            assert words[0] == "fastworker" and "..." not in words
            run = await fastworker_cli(*words[1:])
    assert run.code == 0, (line, run)


async def test_a_failed_task_shows_its_traceback_with_debug_and_in_json() -> None:
    """`submit --wait --debug` and `result --debug` print the remote traceback; without
    --debug they say how to see it; --json carries it."""
    with trio.fail_after(60):
        async with run_actor_system(subworkers=0) as server:
            url = ["--url", server.url]
            plain = await fastworker_cli("submit", "boom", "kaput", "--wait", *url)
            debug = await fastworker_cli("submit", "boom", "kaput", "--wait", "--debug", *url)
            task_id = (await fastworker_cli("submit", "boom", "kaput", *url)).stdout.strip()
            as_json = await fastworker_cli("result", task_id, "--json", *url)
            result_debug = await fastworker_cli("result", task_id, "--debug", *url)
    assert plain.code == 1 and "--debug" in plain.stderr and "Traceback" not in plain.stderr
    for run in (debug, result_debug):
        assert run.code == 1
        assert "Traceback" in run.stderr and "ValueError: kaput" in run.stderr
        assert "cli_tasks.py" in run.stderr
    error = as_json.json()["error"]
    assert error["type"] == "ValueError" and "raise ValueError" in error["traceback"]


async def test_top_quits_on_q_and_says_when_the_control_plane_is_gone() -> None:
    """In a terminal, `top` shows the cluster; when the control plane stops it says so
    (not a stale screen); `q` quits with exit code 0."""
    import pty

    master, slave = pty.openpty()
    output = b""

    async def read_until(needle: bytes) -> None:
        nonlocal output
        while needle not in output:
            chunk = await trio.to_thread.run_sync(os.read, master, 65536)
            output += chunk

    with trio.fail_after(90):
        async with run_actor_system(subworkers=0) as server:
            process = subprocess.Popen(  # noqa: ASYNC220 (a pty child, waited in a thread)
                [
                    sys.executable,
                    "-m",
                    "fastworker",
                    "top",
                    "--url",
                    server.url,
                    "--interval",
                    "0.2",
                ],
                cwd=HERE,
                env=base_env(COLUMNS="160"),
                stdin=slave,
                stdout=slave,
                stderr=slave,
            )
            try:
                await read_until(b"workers")
                await server.kill()
                await read_until(b"is gone")
                os.write(master, b"q")
                code = await trio.to_thread.run_sync(process.wait)
            finally:
                if process.poll() is None:
                    kill_tree(process.pid)
                    process.wait()
                os.close(slave)
                os.close(master)
    assert code == 0, output.decode(errors="replace")
