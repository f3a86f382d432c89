"""The contract's hostile commands: each must be contained, and the session must go on.

A fork bomb, 1 GB of output, endless output, ``sleep 100000``, a command that
ignores SIGTERM, a 10 GB allocation, writing /usr or outside the workspace,
and the network. The ``unsafe-local`` backend cannot contain some of them: those
are its gaps (:class:`~pytest_agentbench.sandbox.contract.trial.Gap`), not run
where running them would harm the host (the fork bomb; the 10 GB allocation unless
``AGENTBENCH_HOSTILE_ON_HOST=1``). ``local`` (bubblewrap) and ``docker`` contain them all.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP
from pytest_agentbench.sandbox.contract.asserts import (
    BEATING,
    assert_head_and_tail,
    assert_stopped_beating,
    assert_usable,
    sh,
)
from pytest_agentbench.sandbox.contract.trial import Checks, Gap, Trial

CHECKS = Checks()


UNSAFE = "unsafe-local"


def _local_gap(reason: str, *, run: bool = True) -> Gap:
    return Gap(f"unsafe-local backend: {reason}", run=run)


def _fork_bomb_gap(t: Trial) -> Gap | None:
    if t.kind != UNSAFE:
        return None
    reason = "no pids limit (root ignores RLIMIT_NPROC, no cgroup); not run: it would exhaust the host's pids"
    return _local_gap(reason, run=False)


@CHECKS.add(gap=_fork_bomb_gap)
def check_hostile_fork_bomb(t: Trial) -> None:
    sandbox = t.sandbox
    before = sh(sandbox, "ls /proc | grep -c '^[0-9]'").stdout
    r = sandbox.exec(["bash", "-c", "f() { f | f & }; f; sleep 100"], 5)
    assert r.timed_out and r.exit_code == 124
    assert r.duration_s < 5 + 8
    # every fork is gone: killed processes may take a moment to be reaped by the sandbox's init
    deadline, now = time.monotonic() + 3.0, None
    while (now := sh(sandbox, "ls /proc | grep -c '^[0-9]'").stdout) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert now == before, f"{before.strip()} processes before the fork bomb, {now.strip()} after"
    assert_usable(sandbox)


@CHECKS.add()
def check_hostile_a_gigabyte_of_output(t: Trial) -> None:
    r = sh(t.sandbox, "yes | head -c 1000000000", timeout=60)
    assert (r.exit_code, r.truncated, r.timed_out) == (0, True, False)
    assert_head_and_tail(r.stdout, DEFAULT_OUTPUT_CAP, "y\ny\n", "y\ny\n", total=1_000_000_000)
    assert r.duration_s < 30
    assert_usable(t.sandbox)


@CHECKS.add()
def check_hostile_endless_output(t: Trial) -> None:
    r = t.sandbox.exec(["yes"], 3)
    assert r.timed_out and r.truncated
    assert r.stdout.startswith("y\ny\n") and "bytes of output dropped" in r.stdout
    assert len(r.stdout) < DEFAULT_OUTPUT_CAP + 100
    assert r.duration_s < 3 + 8
    assert_usable(t.sandbox)


@CHECKS.add()
def check_hostile_sleep_forever(t: Trial) -> None:
    r = t.sandbox.exec(["sleep", "100000"], 2)
    assert (r.exit_code, r.timed_out) == (124, True)
    assert r.duration_s < 2 + 6
    assert_usable(t.sandbox)


@CHECKS.add()
def check_hostile_ignores_sigterm(t: Trial) -> None:
    sandbox = t.sandbox
    r = sandbox.exec(["bash", "-c", f"trap '' TERM; {BEATING}"], 2)
    assert (r.exit_code, r.timed_out) == (124, True)
    assert r.duration_s < 2 + 6
    assert_stopped_beating(sandbox)
    assert_usable(sandbox)


def _mem_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def _allocation_gap(t: Trial) -> Gap | None:
    if t.kind != UNSAFE:
        return None
    if not os.environ.get("AGENTBENCH_HOSTILE_ON_HOST") or _mem_available_gib() < 16:
        return _local_gap(
            "no memory limit without cgroups; not run: it takes 10 GB of the host's memory "
            "for ~30 s (AGENTBENCH_HOSTILE_ON_HOST=1 runs it, with 16 GiB available)",
            run=False,
        )
    return _local_gap("no memory limit without cgroups: the allocation succeeds on the host")


@CHECKS.add(gap=_allocation_gap)
def check_hostile_ten_gigabyte_allocation(t: Trial) -> None:
    script = "b = bytearray(10 * 1024**3); print('allocated', len(b))"
    r = t.sandbox.exec(["python3", "-c", script], 60)
    assert r.exit_code != 0 and "allocated" not in r.stdout, r
    assert r.exit_code in (137, 1)  # OOM-killed, or MemoryError
    assert_usable(t.sandbox)


def _write_outside_gap(t: Trial) -> Gap | None:
    if t.kind == UNSAFE and (str(t.param).startswith("..") or os.geteuid() == 0):
        return _local_gap("commands run as the invoking user, who can write here")
    return None


@CHECKS.add(params=["/usr/agentbench-evil", "../agentbench-evil"], gap=_write_outside_gap)
def check_hostile_write_outside_the_workspace(t: Trial) -> None:
    sandbox = t.sandbox
    local = "root" in sandbox.info.details  # a host-side backend: its workspace is a host folder
    name = f"{t.param}-{uuid.uuid4().hex[:8]}"
    host_path = Path(name) if name.startswith("/") else None
    if local and host_path is None:
        host_path = (Path(sandbox.info.details["root"]) / name).resolve()
    try:
        r = sh(sandbox, f"echo pwned > {name}")
        assert r.exit_code != 0 and r.stderr, r
        assert sh(sandbox, f"test -e {name}").exit_code != 0
        if local and host_path is not None:
            assert not host_path.exists()
    finally:
        if local and host_path is not None:
            host_path.unlink(missing_ok=True)
    assert_usable(sandbox)


class _LoopbackServer:
    """A host-side TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


# Inside the sandbox. Only loopback is ever contacted: the route to 1.1.1.1 is
# probed with a UDP connect(), which sends nothing; a TCP connect is tried only
# when that probe showed there is no route, so no packet can leave the machine.
_NET_PROBE = """
import socket, sys, time
port = int(sys.argv[1])
t = time.monotonic()
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    print("LOOPBACK-CONNECTED")
except OSError as e:
    print("loopback refused:", e)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.connect(("1.1.1.1", 53))
    print("ROUTE-TO-INTERNET")
    sys.exit(3)
except OSError as e:
    print("no route:", e)
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3).close()
    print("INTERNET-CONNECTED")
except OSError as e:
    print("internet refused:", e)
print("took %.2fs" % (time.monotonic() - t))
"""


def _network_gap(t: Trial) -> Gap | None:
    if t.kind == UNSAFE and "unshare" not in t.sandbox.info.details.get("network", ""):
        return _local_gap("no network namespace here (unshare -n needs root or user namespaces)")
    return None


@CHECKS.add(gap=_network_gap)
def check_hostile_network_access(t: Trial) -> None:
    server = _LoopbackServer()
    try:
        started = time.monotonic()
        r = t.sandbox.exec(["python3", "-c", _NET_PROBE, str(server.port)], 20)
        took = time.monotonic() - started
    finally:
        server.close()
    assert server.accepted == 0, "the sandbox reached a host-side server on 127.0.0.1"
    assert "LOOPBACK-CONNECTED" not in r.stdout and "ROUTE-TO-INTERNET" not in r.stdout, r
    assert "INTERNET-CONNECTED" not in r.stdout and "internet refused" in r.stdout, r
    assert r.exit_code == 0 and took < 5, r  # fails at once: no route, no waiting on a timeout
    assert_usable(t.sandbox)
