"""SubworkerSettings: every option of open_subworker but ``tasks`` as one frozen value,
the way ControlPlaneSettings is for open_control_plane (and the CLI builds one)."""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest
import sample_tasks
import trio

import fastworker
from fastworker import ConfigurationError, SubworkerSettings
from fastworker._cli import build_parser
from fastworker._cli._serve import control_plane_settings, subworker_settings

TASKS = ["sample_tasks"]


def _memory_url() -> str:
    return f"memory://subworker-settings-{uuid.uuid4().hex[:8]}"


def test_subworker_settings_mirror_the_options() -> None:
    """SubworkerSettings has exactly open_subworker's options (all but tasks and
    settings, url included), with the same defaults: the two ways cannot drift apart."""
    parameters = inspect.signature(fastworker.open_subworker).parameters
    options = {n: p.default for n, p in parameters.items() if n not in ("tasks", "settings")}
    assert "url" in options and "concurrency" in options
    assert attrs.asdict(SubworkerSettings(), recurse=False) == options


def test_only_url_and_tasks_are_positional() -> None:
    """open_subworker(url, tasks, ...) keeps its two positional parameters (as DESIGN.md
    and the TLS docs call it); every other option is keyword-only."""
    parameters = list(inspect.signature(fastworker.open_subworker).parameters.values())
    assert [p.name for p in parameters[:2]] == ["url", "tasks"]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters[:2])
    assert len(parameters) > 10
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[2:])
    assert parameters[-1].name == "settings"


async def test_open_subworker_runs_with_a_settings_object() -> None:
    """open_subworker(tasks=..., settings=...) joins the control plane named in the
    settings and runs work with its options: its slots, its prefetch, its clock (the
    result is stamped with it) and no watchdog."""
    with trio.fail_after(30):
        async with fastworker.open_control_plane(
            TASKS, url=_memory_url(), discovery=False, local_concurrency=0
        ) as cp:
            settings = SubworkerSettings(
                url=cp.url, concurrency=3, prefetch=1, clock=lambda: 1_000.0, loop_watchdog=None
            )
            async with (
                fastworker.open_subworker(tasks=TASKS, settings=settings) as sw,
                fastworker.open_client(cp.url) as client,
            ):
                result = await client.result(await client.delay("add", 2, 3))
                stats = await client.stats()
    assert result.value == 5
    assert result.completed_at == 1_000.0
    assert [(w.id.split("/")[0], w.slots) for w in stats.workers] == [(sw.node_id[:8], 3)]
    assert sw.executor.prefetch == 1
    assert sw.watchdog is None
    assert sw.url == cp.url


async def test_the_settings_queues_limit_the_work() -> None:
    """A subworker whose settings name only another queue is sent nothing of the
    default queue: the task waits for a worker that has it."""
    with trio.fail_after(30):
        async with fastworker.open_control_plane(
            TASKS, url=_memory_url(), discovery=False, local_concurrency=0
        ) as cp:
            settings = SubworkerSettings(url=cp.url, queues="elsewhere", loop_watchdog=None)
            async with (
                fastworker.open_subworker(tasks=TASKS, settings=settings),
                fastworker.open_client(cp.url) as client,
            ):
                task_id = await client.delay("add", 1, 1)
                stats = await client.stats()
                status = await client.status(task_id)
    assert stats.waiting == {"add": 1}
    assert status is fastworker.TaskStatus.QUEUED
    assert sample_tasks.calls.get("add", 0) == 0


async def test_settings_with_other_options_are_refused() -> None:
    """settings= together with another option (the positional url too) is a
    ConfigurationError that names them and says how to combine them; nothing connects."""
    settings = SubworkerSettings(url=_memory_url())
    with pytest.raises(ConfigurationError, match=r"concurrency, queues: .*attrs\.evolve"):
        async with fastworker.open_subworker(
            tasks=TASKS, settings=settings, concurrency=2, queues="a"
        ):
            pass  # pragma: no cover
    with pytest.raises(ConfigurationError, match="settings= and url"):
        async with fastworker.open_subworker(_memory_url(), TASKS, settings=settings):
            pass  # pragma: no cover


async def test_settings_of_the_wrong_kind_are_refused() -> None:
    """A ControlPlaneSettings given to open_subworker (or the reverse) is refused with
    an error naming the record it takes, before anything starts."""
    with pytest.raises(ConfigurationError, match=r"takes a fastworker\.SubworkerSettings"):
        async with fastworker.open_subworker(
            tasks=TASKS,
            settings=fastworker.ControlPlaneSettings(),  # type: ignore[arg-type]
        ):
            pass  # pragma: no cover
    with pytest.raises(ConfigurationError, match=r"takes a fastworker\.ControlPlaneSettings"):
        async with fastworker.open_control_plane(
            settings=SubworkerSettings(),  # type: ignore[arg-type]
        ):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"prefetch": -1}, "prefetch must be 0 or more"),
        ({"queues": " , "}, "queues must name at least one queue"),
    ],
)
async def test_settings_are_checked_as_the_options_are(
    changes: dict[str, Any], message: str
) -> None:
    """A bad value in the settings is refused with the same error as the keyword."""
    settings = attrs.evolve(SubworkerSettings(url=_memory_url()), **changes)
    with pytest.raises(ConfigurationError, match=message):
        async with fastworker.open_subworker(tasks=TASKS, settings=settings):
            pass  # pragma: no cover


def test_secrets_stay_out_of_the_settings_repr() -> None:
    """Logging a settings record (subworker, control plane or client) does not leak the
    cluster secret or the dashboard token; it still shows whether one is set."""
    sub = SubworkerSettings(secret="hunter2-sub")
    plane = fastworker.ControlPlaneSettings(secret=b"hunter2-cp", dashboard_token="tok-xyz")
    client = fastworker.ClientSettings(secret="hunter2-client")
    for text in (repr(sub), repr(plane), repr(client)):
        assert "hunter2" not in text and "tok-xyz" not in text
        assert "<hidden>" in text
    assert "secret=None" in repr(SubworkerSettings())


def test_the_subworker_command_builds_its_settings(tmp_path: Path) -> None:
    """``fastworker subworker``'s flags become one SubworkerSettings (all but --tasks)."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    args = build_parser().parse_args(
        [
            "subworker",
            "--tasks",
            "sample_tasks",
            "--join",
            "ws://127.0.0.1:9",
            "--concurrency",
            "3",
            "--prefetch",
            "0",
            "--queues",
            "a,b",
            "--cluster",
            "c1",
            "--secret-file",
            str(secret),
            "--discovery-port",
            "9999",
        ]
    )
    assert subworker_settings(args, None) == SubworkerSettings(
        url="ws://127.0.0.1:9",
        concurrency=3,
        prefetch=0,
        queues="a,b",
        cluster="c1",
        secret=b"s3cret",
        discovery_port=9999,
    )


def test_the_control_plane_command_builds_its_settings(tmp_path: Path) -> None:
    """``fastworker control-plane``'s flags become one ControlPlaneSettings (all but
    --tasks), the same record ``open_control_plane(settings=...)`` takes."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    args = build_parser().parse_args(
        [
            "control-plane",
            "--tasks",
            "sample_tasks",
            "--port",
            "9123",
            "--cluster",
            "c2",
            "--secret-file",
            str(secret),
            "--max-queue",
            "50",
            "--no-dashboard",
            "--no-discovery",
        ]
    )
    settings = control_plane_settings(args)
    assert isinstance(settings, fastworker.ControlPlaneSettings)
    assert (settings.port, settings.cluster, settings.secret) == (9123, "c2", b"s3cret")
    assert (settings.max_queue, settings.dashboard, settings.discovery) == (50, None, False)
    assert settings.local_concurrency == 4  # no subworker processes: it runs tasks itself


def test_the_serving_commands_default_to_the_librarys_defaults() -> None:
    """A command line with no tuning flags runs what ``open_control_plane`` /
    ``open_subworker`` would with no options: the flags' defaults are the settings
    records' (one source, so the two cannot drift apart)."""
    args = build_parser().parse_args(["control-plane", "--tasks", "sample_tasks"])
    settings = control_plane_settings(args)
    library = fastworker.ControlPlaneSettings()
    shared = [
        "host",
        "cluster",
        "result_cache_size",
        "result_ttl",
        "result_cache_bytes",
        "max_payload",
        "aging",
        "cancel_timeout",
        "max_queue",
        "local_concurrency",
        "max_worker_losses",
        "discovery_port",
        "broadcast_address",
    ]
    assert {f: getattr(settings, f) for f in shared} == {f: getattr(library, f) for f in shared}
    args = build_parser().parse_args(["subworker", "--tasks", "sample_tasks"])
    assert subworker_settings(args, None) == SubworkerSettings()
