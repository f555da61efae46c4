"""TLS: ``wss://`` links with a standard ssl.SSLContext, in process and through the CLI.

Certificates come from ``trustme`` (a throwaway CA per test module), issued for
127.0.0.1; everything runs on loopback with free ports. A client that does not trust
the CA must fail at once with a ConnectionFailed that says so, not with a timeout.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import support
import trio
import trustme
from security_support import TIMEOUT, alongside_good_client, host_port, serving
from support import free_tcp_port, free_udp_port, wait_until
from support.process import children, kill_if_ours

import fastworker
from actors import ConnectFailed, HandshakeError, open_actor_system

HERE = Path(__file__).resolve().parent
TASKS = "security_tasks"


@attrs.frozen
class Certs:
    """A CA, a server certificate for 127.0.0.1 signed by it, as contexts and PEM files."""

    ca: trustme.CA
    server: ssl.SSLContext
    client: ssl.SSLContext
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certs]:
    """One CA and one server certificate (127.0.0.1, localhost) for the whole module."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issued.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    folder = tmp_path_factory.mktemp("tls")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(cert_file), append=True)
    issued.private_key_pem.write_to_path(str(key_file))
    yield Certs(ca, server, client, ca_file, cert_file, key_file)


def other_ca_client() -> ssl.SSLContext:
    """A client context that trusts some other CA only."""
    context = ssl.create_default_context()
    trustme.CA().configure_trust(context)
    return context


# -- in process ----------------------------------------------------------------------------------


async def test_a_cluster_over_wss_runs_a_task(certs: Certs) -> None:
    """open_control_plane(ssl_context=...) listens on wss://; a subworker and a client
    given a context trusting the CA join over TLS, and a task runs on the subworker."""
    with trio.fail_after(30):
        async with fastworker.open_control_plane(
            TASKS, discovery=False, local_concurrency=0, ssl_context=certs.server
        ) as control_plane:
            assert control_plane.url.startswith("wss://127.0.0.1:")
            async with (
                fastworker.open_subworker(
                    control_plane.url, TASKS, concurrency=2, ssl_context=certs.client
                ) as subworker,
                fastworker.open_client(control_plane.url, ssl_context=certs.client) as client,
            ):
                task_id = await client.delay("security_add", 2, 3)
                result = await client.result(task_id)
                assert result.value == 5
                assert result.worker is not None and result.worker.startswith(subworker.node_id[:8])
                link = client.peer.link
                assert link is not None
                assert link.connection._ws.remote.is_ssl  # type: ignore[attr-defined]


async def test_a_wss_control_plane_found_by_beacon_is_reached_over_tls(certs: Certs) -> None:
    """The beacon of a TLS control plane announces its wss:// URL; a client that finds it
    by discovery connects with its CA (and without the CA gets the TLS error)."""
    port = free_udp_port()
    with trio.fail_after(30):
        async with fastworker.open_control_plane(
            TASKS,
            local_concurrency=1,
            ssl_context=certs.server,
            discovery_port=port,
            beacon_interval=0.1,
        ) as control_plane:
            assert control_plane.url.startswith("wss://")
            async with fastworker.open_client(
                discovery_port=port, ssl_context=certs.client
            ) as client:
                assert client.url == control_plane.url
                assert await client.call("security_add", 2, 2) == 4
            with pytest.raises(fastworker.ConnectionFailed, match="certificate was not accepted"):
                async with fastworker.open_client(discovery_port=port):
                    pass  # pragma: no cover


async def test_a_client_that_does_not_trust_the_ca_fails_at_once_with_a_clear_error(
    certs: Certs,
) -> None:
    """A client or subworker without the CA (the system's CAs, or another CA) gets
    ConnectionFailed naming the TLS handshake and the certificate, well before its
    connect timeout; a certificate for another host name is refused the same way.
    The control plane keeps serving trusted clients."""
    with trio.fail_after(60):
        async with fastworker.open_control_plane(
            TASKS, discovery=False, local_concurrency=1, ssl_context=certs.server
        ) as control_plane:
            url = control_plane.url
            for context in (None, other_ca_client()):
                start = trio.current_time()
                with pytest.raises(fastworker.ConnectionFailed) as info:
                    async with fastworker.open_client(url, ssl_context=context, connect_timeout=20):
                        pass  # pragma: no cover
                assert trio.current_time() - start < 5.0
                text = str(info.value)
                assert f"cannot connect to {url}: TLS handshake with 127.0.0.1:" in text, text
                assert "certificate was not accepted" in text, text
                assert "unable to get local issuer certificate" in text, text
                with pytest.raises(fastworker.ConnectionFailed, match="certificate was not"):
                    async with fastworker.open_subworker(url, TASKS, ssl_context=context):
                        pass  # pragma: no cover
            async with fastworker.open_client(url, ssl_context=certs.client) as client:
                assert await client.call("security_add", 1, 1) == 2
    wrong_host = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs.ca.issue_cert("fastworker.example").configure_cert(wrong_host)
    with trio.fail_after(30):
        async with fastworker.open_control_plane(
            TASKS, discovery=False, local_concurrency=1, ssl_context=wrong_host
        ) as control_plane:
            with pytest.raises(fastworker.ConnectionFailed, match=r"IP address mismatch.*names"):
                async with fastworker.open_client(control_plane.url, ssl_context=certs.client):
                    pass  # pragma: no cover


async def test_plain_and_tls_do_not_mix(certs: Certs) -> None:
    """A TLS client to a plain ws:// server fails at once naming the TLS handshake; a
    plain client to a wss:// server fails within its connect timeout; a TLS context with
    a ws:// URL is refused as a configuration error rather than silently unencrypted."""
    async with serving() as plain:
        wss_url = plain.url.replace("ws://", "wss://")
        async with open_actor_system() as client:
            with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError, match="TLS handshake"):
                await client.connect(wss_url, ssl_context=certs.client, reconnect=False)
        await plain.check_good_client()
    async with serving(
        url="wss://127.0.0.1:0", server_tls=certs.server, client_tls=certs.client
    ) as secure:
        from actors import LinkConfig

        ws_url = secure.url.replace("wss://", "ws://")
        async with open_actor_system(link=LinkConfig(connect_timeout=1.0)) as client:
            with trio.fail_after(TIMEOUT), pytest.raises(ConnectFailed, match=r"within 1\.0s"):
                await client.connect(ws_url, reconnect=False)
        with pytest.raises(fastworker.ConfigurationError, match="is not encrypted"):
            async with fastworker.open_client(ws_url, ssl_context=certs.client):
                pass  # pragma: no cover
        with pytest.raises(fastworker.ConfigurationError, match="is not encrypted"):
            async with fastworker.open_subworker(ws_url, TASKS, ssl_context=certs.client):
                pass  # pragma: no cover
        await secure.check_good_client()


async def test_a_client_that_never_starts_tls_is_dropped_after_the_handshake_timeout(
    certs: Certs,
) -> None:
    """On wss://, a TCP connection that never sends its TLS ClientHello (or stops in the
    middle of it) is dropped after handshake_timeout; the good TLS client is unaffected."""
    async with serving(
        url="wss://127.0.0.1:0",
        server_tls=certs.server,
        client_tls=certs.client,
        handshake_timeout=0.5,
    ) as server:

        async def attack() -> float:
            host, port = host_port(server.url)
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for hello in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):

                    async def silent(first: bytes = hello) -> None:
                        stream = await trio.open_tcp_stream(host, port)
                        if first:
                            await stream.send_all(first)
                        with trio.fail_after(TIMEOUT):
                            try:
                                assert await stream.receive_some(65536) == b""
                            except trio.BrokenResourceError:
                                pass

                    nursery.start_soon(silent)
            return trio.current_time() - start

        waited = await alongside_good_client(server, attack)
    assert 0.5 <= waited < 3.0


# -- the command line -----------------------------------------------------------------------


run_cli = partial(support.run_cli, cwd=HERE)
"""``python -m fastworker ARGS`` in this directory: exit code, stdout, stderr."""


@asynccontextmanager
async def cli_server(*args: str) -> AsyncIterator[tuple[trio.Process, Any]]:
    """A ``fastworker`` server process; SIGINT then SIGKILL (with its children) at the end."""
    log = tempfile.TemporaryFile()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "fastworker", *args],
        cwd=HERE,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    seen: set[int] = set()
    try:
        yield process, log
    finally:
        with trio.CancelScope(shield=True):
            seen |= set(children(process.pid))
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                with trio.move_on_after(15):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            for pid in seen:
                kill_if_ours(pid, "fastworker")
            log.close()


def output(log: Any) -> str:
    """Everything a server process printed so far."""
    log.seek(0)
    return str(log.read().decode(errors="replace"))


async def subworker_joined_over_tls(
    url: str, certs: Certs, processes: list[tuple[trio.Process, Any]]
) -> bool:
    """Whether a TLS client of ``url`` sees a subworker registered (False while the
    server does not answer yet); fails at once with its output if a process exited."""
    for process, log in processes:
        if process.returncode is not None:
            pytest.fail(f"a process exited:\n{output(log)}", pytrace=False)
    joined = False
    try:
        async with fastworker.open_client(
            url, ssl_context=certs.client, connect_timeout=1
        ) as client:
            joined = any(w.id != "local" for w in (await client.stats()).workers)
    except* fastworker.ConnectionFailed:
        pass  # not listening yet
    return joined


async def test_the_cli_serves_wss_with_tls_cert_and_key_and_clients_use_tls_ca(
    certs: Certs,
) -> None:
    """``run-actor-system --tls-cert --tls-key`` serves wss:// and its subworker children
    join over TLS (tasks only run there: --local-concurrency 0); ``submit --tls-ca``
    gets the result; without --tls-ca the client exits 3 with one line about the
    certificate."""
    port = free_tcp_port()
    url = f"wss://127.0.0.1:{port}"
    args = ["--tasks", TASKS, "--port", str(port), "--no-discovery", "--log-level", "warning"]
    tls = ["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)]
    async with cli_server(
        "run-actor-system", *args, *tls, "--subworkers", "1", "--local-concurrency", "0"
    ) as (process, log):
        await wait_until(  # ready once the subworker child registered over wss://
            partial(subworker_joined_over_tls, url, certs, [(process, log)]),
            timeout=60,
            what="a subworker registered over wss://",
        )
        assert f"FastWorker control plane at {url}" in output(log)
        assert f"--tls-ca {certs.cert_file}" in output(log)
        code, out, err = await run_cli(
            "submit",
            "security_add",
            "20",
            "22",
            "--wait",
            "--url",
            url,
            "--tls-ca",
            str(certs.ca_file),
        )
        assert (code, out) == (0, "42\n"), (code, out, err)
        code, out, err = await run_cli(
            "submit", "security_add", "1", "2", "--wait", "--url", url, "--connect-timeout", "20"
        )
        assert code == 3, (code, out, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert "TLS handshake" in err and "certificate was not accepted" in err, err
        code, out, err = await run_cli(
            "status", "nope", "--url", url.replace("wss", "ws"), "--tls-ca", str(certs.ca_file)
        )
        assert code == 2 and "is not encrypted" in err, (code, out, err)


async def test_the_cli_control_plane_and_a_subworker_process_over_wss(certs: Certs) -> None:
    """``control-plane --tls-cert`` (key and chain in one file) and a separate
    ``subworker --join wss://... --tls-ca`` process: a task submitted with the Python
    client runs in the subworker."""
    combined = certs.cert_file.parent / "combined.pem"
    combined.write_bytes(certs.key_file.read_bytes() + certs.cert_file.read_bytes())
    port = free_tcp_port()
    url = f"wss://127.0.0.1:{port}"
    args = ["--tasks", TASKS, "--log-level", "warning"]
    async with (
        cli_server(
            "control-plane", *args, "--port", str(port), "--tls-cert", str(combined),
            "--local-concurrency", "0", "--no-discovery",
        ) as (server, server_log),
        cli_server(
            "subworker", *args, "--join", url, "--tls-ca", str(certs.ca_file),
            "--connect-timeout", "30",
        ) as (subworker, subworker_log),
    ):  # fmt: skip
        await wait_until(
            partial(
                subworker_joined_over_tls,
                url,
                certs,
                [(server, server_log), (subworker, subworker_log)],
            ),
            timeout=60,
            what="the subworker process registered over wss://",
        )
        with trio.fail_after(60):
            async with fastworker.open_client(url, ssl_context=certs.client) as client:
                assert await client.call("security_add", 3, 4) == 7


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--tls-key", "KEY"], "--tls-key needs --tls-cert"),
        (["--tls-cert", "/nonexistent/cert.pem"], "cannot load the TLS certificate"),
        (["--tls-cert", "CA", "--tls-key", "KEY"], "cannot load the TLS certificate"),
    ],
    ids=["key-without-cert", "missing-cert", "key-does-not-match"],
)
async def test_bad_tls_flags_are_usage_errors(certs: Certs, extra: list[str], needle: str) -> None:
    """A key without a certificate, an unreadable certificate, or a key that does not
    belong to the certificate exit 2 with one line naming the flag, before listening."""
    extra = [
        str(certs.key_file) if e == "KEY" else str(certs.ca_file) if e == "CA" else e for e in extra
    ]
    code, out, err = await run_cli(
        "control-plane", "--tasks", TASKS, "--port", "0", "--no-discovery", *extra
    )
    assert code == 2, (code, out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err


async def test_an_unreadable_ca_bundle_is_a_usage_error() -> None:
    """A client's --tls-ca that cannot be read exits 2 naming the file, before connecting."""
    code, out, err = await run_cli(
        "status", "x", "--url", "wss://127.0.0.1:9", "--tls-ca", "/nonexistent/ca.pem"
    )
    assert code == 2, (code, out, err)
    assert "cannot load the CA bundle --tls-ca /nonexistent/ca.pem" in err, err
