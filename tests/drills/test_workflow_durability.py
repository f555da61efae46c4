"""Crash drill for workflows: a journaled workflow across a SIGKILL of the control plane.

Real processes on loopback (``fastworker run-actor-system --journal``); members log each
start to a file, so the drill can count how often each one ran across the crash.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio
from drill_support import POLL, System, free_port, start_system, wait_for_subworkers
from test_durability import unfinished_in

import fastworker
from fastworker import TaskStatus, chain, chord, group, sig


def started(log: Path) -> list[str]:
    """The member tags logged so far, in start order."""
    try:
        return log.read_text().split()
    except FileNotFoundError:
        return []


def workflows_in(journal: Path) -> int:
    """How many unfinished workflows the journal file records."""
    db = sqlite3.connect(journal)
    try:
        return int(db.execute("SELECT count(*) FROM workflows").fetchone()[0])
    finally:
        db.close()


async def test_a_journaled_workflow_survives_a_sigkill_of_the_control_plane(
    tmp_path: Path,
) -> None:
    """chain(m0..m3, chord(group(g0..g2), sum)) is SIGKILLed while m2 runs. Started again
    on the same journal and port, the flow completes under its id with the right value;
    m0 and m1 (finished and journaled) never run again; m2 (running at the crash) is
    redelivered; every later member runs once; the journal keeps nothing unfinished."""
    log = tmp_path / "members.log"
    journal = tmp_path / "journal.db"
    port = free_port()
    members = [sig("flow_step", 0, "m0", str(log), 0.3)]
    members += [sig("flow_step", f"m{i}", str(log), 0.3) for i in (1, 2, 3)]
    fan_out = group(sig("flow_step", f"g{i}", str(log), 0.1) for i in range(3))
    flow = chain(*members, chord(fan_out, sig("flow_sum", "sum", str(log))))
    first = await start_system(tmp_path, journal=journal, port=port, name="first")
    second: System | None = None
    try:
        async with fastworker.open_client(
            first.url, connect_timeout=30, reconnect_timeout=60
        ) as client:
            with trio.fail_after(120):
                await wait_for_subworkers(client, first, 2)
                flow_id = await client.delay(flow)
                while "m2" not in started(log):  # noqa: ASYNC110 (a file, no event)
                    await trio.sleep(POLL)
                # m1's outcome is on disk: m2 runs only once its own record is committed,
                # and the journal records m1's outcome no later than m2's admission.
                at_crash = started(log)
                await first.crash()
                second = await start_system(tmp_path, journal=journal, port=port, name="second")
                await wait_for_subworkers(client, second, 2)
                result = await client.result(flow_id)
                member = await client.result(f"{flow_id}:2")
            with trio.fail_after(30):
                while unfinished_in(journal) or workflows_in(journal):  # noqa: ASYNC110
                    await trio.sleep(POLL)
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
    runs = started(log)
    print(f"workflow drill: started before the crash {at_crash}; all starts {runs}")
    assert at_crash == ["m0", "m1", "m2"]
    assert (result.status, result.value) == (TaskStatus.SUCCESS, 15)
    assert member.status is TaskStatus.SUCCESS and member.value == 2
    assert runs.count("m0") == 1 and runs.count("m1") == 1
    assert runs.count("m2") == 2  # running at the crash: redelivered
    assert sorted(runs[3:]) == sorted(["m2", "m3", "g0", "g1", "g2", "sum"])
    assert runs[-1] == "sum"
