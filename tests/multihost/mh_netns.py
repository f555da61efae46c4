"""Fake hosts for multi-host tests: Linux network namespaces on one private bridge.

Topology (nothing is added to the root network namespace, so no test traffic can
leave the machine or touch its real interfaces)::

    netns TAG-sw : bridge br0 (no address), one port p-HOST per host
    netns TAG-H  : lo + eth0 = SUBNET.I/24 (broadcast SUBNET.255), default route on eth0
    veth pair    : p-HOST (in TAG-sw, on br0) <-> eth0 (in TAG-H); made inside TAG-sw
                   with its peer born in TAG-H, so it never appears in the root namespace

``TAG`` is random per lab, so parallel runs never share a namespace; the bridge and
interface names live inside the lab's own namespaces and cannot collide either.
Needs root and iproute2; :func:`NetnsLab.create` skips the test with the reason when
namespaces cannot be made. :meth:`NetnsLab.destroy` removes everything, and is safe to
call on a half-built lab.

Failure modes a test can inject:

* :meth:`cut` / :meth:`heal`: the switch-side port down / up. The host's processes
  live on, its NIC has no carrier; packets to and from it are dropped (a partition).
* :meth:`unplug` then killing the host's processes then :meth:`remove_host`: power
  loss. The cable goes first, so no FIN or RST ever leaves the dying host.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress

import pytest

SUBNET = "10.77.0"  # a private /24 that only exists inside the lab's namespaces
_PDEATHSIG = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []


class LabError(RuntimeError):
    """An ``ip`` command failed while the lab was being used."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
    )
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


class NetnsLab:
    """Hosts ``names`` on one bridge; host i (from 0) gets address SUBNET.(i+1)."""

    def __init__(self, names: Sequence[str], subnet: str = SUBNET) -> None:
        self.tag = "fwmh" + secrets.token_hex(4)
        self.switch = f"{self.tag}-sw"
        self.netns = {name: f"{self.tag}-{name}" for name in names}
        self.address = {name: f"{subnet}.{i + 1}" for i, name in enumerate(names)}
        self.broadcast = f"{subnet}.255"
        self._made: list[str] = []  # namespaces created, in order

    # -- building and tearing down ---------------------------------------------------

    @classmethod
    def create(cls, names: Sequence[str], subnet: str = SUBNET) -> NetnsLab:
        """Build the lab, or skip the calling test saying why namespaces are unavailable."""
        if os.geteuid() != 0:
            pytest.skip("multi-host tests need root (network namespaces, veth, bridge)")
        if shutil.which("ip") is None:
            pytest.skip("multi-host tests need iproute2's `ip` (apt-get install iproute2)")
        lab = cls(names, subnet)
        try:
            lab._probe()
        except (LabError, OSError, subprocess.TimeoutExpired) as exc:
            lab.destroy()
            pytest.skip(f"cannot build network namespaces here: {exc}")
        try:
            for name in names:
                lab._add_host(name)
            lab._wait_links_up()
        except BaseException:
            lab.destroy()
            raise
        return lab

    def _probe(self) -> None:
        """The switch namespace with its bridge: what a restricted environment refuses."""
        self._add_netns(self.switch)
        _ip("-n", self.switch, "link", "set", "lo", "up")
        # STP off and forward_delay 0: a port forwards as soon as it is up.
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge",
            "stp_state", "0", "forward_delay", "0")  # fmt: skip
        _ip("-n", self.switch, "link", "set", "br0", "up")
        _ip("netns", "exec", self.switch, "true")  # needs mount namespaces too

    def _add_netns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._made.append(ns)

    def _add_host(self, name: str) -> None:
        ns, port = self.netns[name], self.port(name)
        self._add_netns(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", port, "type", "veth",
            "peer", "name", "eth0", "netns", ns)  # fmt: skip
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", ns, "addr", "add", f"{self.address[name]}/24",
            "broadcast", self.broadcast, "dev", "eth0")  # fmt: skip
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "replace", "default", "dev", "eth0")

    def _wait_links_up(self, limit: float = 5.0) -> None:
        deadline = time.monotonic() + limit
        for name, ns in self.netns.items():
            while " UP " not in _ip("-n", ns, "-br", "link", "show", "eth0").stdout + " ":
                if time.monotonic() > deadline:
                    raise LabError(f"eth0 of {name} did not come up within {limit}s")
                time.sleep(0.02)

    def destroy(self) -> list[int]:
        """Remove every namespace of the lab (and with them the bridge and veths).

        A process still inside one would keep it alive: any found (necessarily started
        by this test, the names being random) is SIGKILLed by PID; their PIDs are returned.
        """
        leftovers: list[int] = []
        for ns in reversed(self._made):
            pids = [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split()]
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            leftovers += pids
            _ip("netns", "del", ns, check=False)
        self._made.clear()
        return leftovers

    # -- using it --------------------------------------------------------------------

    def port(self, name: str) -> str:
        """The switch-side interface of host ``name``'s cable."""
        return f"p-{name}"[:15]

    def command(self, name: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside host ``name``; ``ip netns exec`` (and ``setpriv``) exec it, so
        it keeps the PID the caller sees. With util-linux ``setpriv`` it also gets SIGKILL
        when the process that started it dies, so a killed test run leaves no process
        behind (only, at worst, empty namespaces named ``fwmh*``)."""
        return ["ip", "netns", "exec", self.netns[name], *_PDEATHSIG, *argv]

    def netns_id(self, name: str) -> str:
        """Host ``name``'s namespace as ``/proc/PID/ns/net`` of a process inside reads it."""
        return f"net:[{os.stat(f'/run/netns/{self.netns[name]}').st_ino}]"

    def cut(self, name: str) -> None:
        """Partition host ``name``: its switch port goes down, its processes live on."""
        _ip("-n", self.switch, "link", "set", self.port(name), "down")

    def heal(self, name: str) -> None:
        """Reconnect a host cut by :meth:`cut`."""
        _ip("-n", self.switch, "link", "set", self.port(name), "up")

    def unplug(self, name: str) -> None:
        """Destroy host ``name``'s cable (the veth pair): nothing leaves it any more."""
        _ip("-n", self.switch, "link", "del", self.port(name))

    def remove_host(self, name: str) -> None:
        """Delete host ``name``'s namespace (after its processes are gone)."""
        ns = self.netns[name]
        _ip("netns", "del", ns)
        self._made.remove(ns)

    def pids(self, name: str) -> list[int]:
        """PIDs of the processes inside host ``name``."""
        return [int(p) for p in _ip("netns", "pids", self.netns[name]).stdout.split()]
