"""The Ray executor: each trial of a pytest session as one Ray task on a cluster. pytest-free.

    executor = RayExecutor.connect("local")       # or "auto", "HOST:PORT", "ray://HOST:PORT"
    executor.submit(TrialTask(...), packet)      # one task per item, all at collection end
    result = executor.result(key, on_arrival)    # an item waits for its own; others arrive meanwhile
    executor.close()

What a task carries is plain, picklable data: the packet as a :class:`PacketBundle` (its
folder as a tar, put in the object store once per packet; a node unpacks it into a cache
keyed by its digest, so nodes need no copy of the packets), the alias's ``ModelSpec`` for
the repeat, the base URL and the :class:`TaskSettings` (sandbox kind, Docker engine,
budgets). On the node, :func:`run_trial` loads the packet, builds the default adapter and
sandbox - the kind resolved *on the node*: ``auto`` is docker where an engine answers,
else the local bubblewrap one - and calls :func:`~pytest_agentbench.runner.run_packet`.
It returns a :class:`TrialResult`: the ``RunRecord``, or the ``AgentbenchError`` that
stopped the trial (say ``SandboxUnavailable`` on that node), and where it ran.

Resources (:func:`task_resources`): one CPU per task, the sandbox's CPU limit. An alias
whose endpoint is *node-local* - a loopback ``base_url``, no ``serve:`` block, on a cluster
with nodes on other machines, so each node's 127.0.0.1 is its own server - also asks for
``1 / cost.concurrency`` of the custom resource ``gpu``: its tasks run only on nodes that
declare it (``ray start --resources='{"gpu": 1}'``), never more at once than its server
serves. Where every node is on this machine, 127.0.0.1 is the same server for all: no
``gpu`` is asked. :meth:`RayExecutor.check_placement` refuses, before anything is
submitted, a demand no node can meet (it would wait forever) and a server this process
started on 127.0.0.1 that nodes on other machines cannot reach.

Failures: a task whose worker or node dies is retried by Ray (:data:`MAX_RETRIES`, system
failures only); an exception inside the trial is a result, returned, never retried. A task
lost for good raises :class:`~pytest_agentbench.errors.InfrastructureError` naming the item.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_agentbench.agents.config import DEFAULT_SAFETY_FACTOR, BudgetMode
from pytest_agentbench.errors import AgentbenchError, ConfigError, InfrastructureError
from pytest_agentbench.packets.schema import PACKET_FILE, Packet, load_packet

if TYPE_CHECKING:
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.results.record import RunRecord

__all__ = [
    "CACHE_DIR",
    "INSTALL_HINT",
    "MAX_RETRIES",
    "ONE_MACHINE_ENV",
    "TASK_CPUS",
    "PacketBundle",
    "RayExecutor",
    "TaskSettings",
    "TrialResult",
    "TrialTask",
    "check_address",
    "import_ray",
    "is_loopback",
    "node_local",
    "pack_packet",
    "run_trial",
    "task_resources",
    "unpack_packet",
]

INSTALL_HINT = "pip install 'pytest-agentbench[ray]'"
#: Ray retries a task this many times when its worker or node dies (not when the trial raised).
MAX_RETRIES = 3
#: CPUs a task asks for: the sandbox's CPU limit (DockerSandbox's cpus=1.0).
TASK_CPUS = 1.0
#: Where a node unpacks packets (``<tmp>/agentbench-ray-packets/<digest>``), shared by its tasks.
CACHE_DIR = "agentbench-ray-packets"
_ADDRESS_RE = re.compile(r"^(ray://)?[A-Za-z0-9._-]+(:\d{1,5})$|^(ray://)?\[[0-9A-Fa-f:]+\](:\d{1,5})$")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
#: Set to 0 before Ray is imported, nodes started from this process advertise 127.0.0.1 (Ray reads it at import).
ONE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def check_address(text: str, where: str = "--ray") -> str:
    """``auto``, ``local``, ``HOST:PORT`` or ``ray://HOST:PORT``; else ConfigError naming ``where`` and the forms."""
    address = text.strip()
    if address in ("auto", "local") or _ADDRESS_RE.match(address):
        return address
    raise ConfigError(
        f"{where}: {text!r} is not a Ray address; expected auto (the cluster RAY_ADDRESS or `ray start` names), "
        "HOST:PORT (its GCS, e.g. 127.0.0.1:6379), ray://HOST:PORT (Ray Client) or local (start one here)"
    )


def import_ray() -> Any:
    """The ``ray`` module, or ConfigError with the install hint (Ray is an optional dependency)."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray, which is not importable here ({exc}): {INSTALL_HINT}") from None


# --------------------------------------------------------------------------- what a task carries


@dataclass(frozen=True)
class PacketBundle:
    """A packet folder as a gzipped tar, and its digest (the node-side cache key)."""

    packet_id: str
    digest: str
    data: bytes


def pack_packet(packet: Packet) -> PacketBundle:
    """The packet's whole folder (workspace, hidden files, reference) as a :class:`PacketBundle`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.add(str(packet.root), arcname=".")
    data = raw.getvalue()
    return PacketBundle(packet.id, hashlib.sha256(data).hexdigest(), gzip.compress(data, mtime=0))


def unpack_packet(bundle: PacketBundle, cache: Path | None = None) -> Path:
    """The folder holding ``bundle`` on this node, unpacked once per digest (concurrent tasks: one wins)."""
    root = cache or Path(tempfile.gettempdir()) / CACHE_DIR
    dest = root / bundle.digest[:24]
    if (dest / PACKET_FILE).is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".unpack-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle.data)), mode="r") as tar:
            tar.extractall(tmp, filter="data")
        os.rename(tmp, dest)
    except OSError:
        if not (dest / PACKET_FILE).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@dataclass(frozen=True)
class TaskSettings:
    """The session's settings a trial needs on the node (the rest stay with the controller)."""

    sandbox: str = "auto"
    docker_host: str | None = None
    agent_timeout: float | None = None
    budget: BudgetMode = "wall"
    max_total_tokens: int | None = None
    safety_timeout_factor: float = DEFAULT_SAFETY_FACTOR


@dataclass(frozen=True)
class TrialTask:
    """One trial: the item's ``key`` (its node id), the alias for the repeat, where its endpoint is."""

    key: str
    spec: ModelSpec
    repeat: int
    base_url: str
    endpoint: str  # base_url without credentials, as records show it
    settings: TaskSettings
    metrics_root: str | None = None  # a vLLM server's root URL this session started: /metrics is scraped


@dataclass
class TrialResult:
    """What came back: the record, or the error that stopped the trial; and where it ran.

    ``error`` is an ``AgentbenchError`` the trial raised (a result, e.g. SandboxUnavailable on that node), an
    ``InfrastructureError`` for a task Ray lost for good, or Ray's ``RayTaskError`` for a bug in the trial's code
    (its remote traceback is the report); the item that waits for this trial raises it.
    """

    key: str
    record: RunRecord | None
    error: Exception | None = None
    node: dict[str, str] = field(default_factory=dict)  # node_id, node_ip, pid


# --------------------------------------------------------------------------- on the node


def _where() -> dict[str, str]:
    """This node's id and address inside a Ray worker; the host name elsewhere (a direct call, the benchmark)."""
    where = {"node_ip": socket.gethostname(), "pid": str(os.getpid())}
    ray = sys.modules.get("ray")  # a Ray worker has it; asking a process without Ray would start one
    if ray is not None and ray.is_initialized():
        where["node_id"] = ray.get_runtime_context().get_node_id()
        where["node_ip"] = ray.util.get_node_ip_address()
    return where


def run_trial(bundle: PacketBundle, task: TrialTask) -> TrialResult:
    """Run one trial here (the body of the Ray task): unpack, load, run_packet with the defaults."""
    where = _where()
    try:
        packet = load_packet(unpack_packet(bundle), prompt_warn_bytes=None)
        record = _run(packet, task)
    except AgentbenchError as exc:
        return TrialResult(task.key, None, exc, where)
    node = where.get("node_id", "")[:8] or where["node_ip"]
    record.extra.update(
        {"nodeid": task.key, "endpoint": task.endpoint, "worker": f"ray-{node}", "ray_node": where["node_ip"]}
    )
    return TrialResult(task.key, record, None, where)


def _run(packet: Packet, task: TrialTask) -> RunRecord:
    """run_packet with the default adapter and sandbox; the server's /metrics window around it."""
    from pytest_agentbench.models.adapter import ModelAdapter
    from pytest_agentbench.runner import run_packet
    from pytest_agentbench.sandbox import make_sandbox
    from pytest_agentbench.serving.vllm.metrics import open_window

    s = task.settings
    model = ModelAdapter(task.spec, base_url=task.base_url)
    try:
        window = open_window(task.metrics_root, task.spec.model)
        record = run_packet(
            packet,
            task.spec,
            model,
            lambda p: make_sandbox(s.sandbox, p.workspace, s.docker_host),
            agent_timeout=s.agent_timeout,
            budget=s.budget,
            max_total_tokens=s.max_total_tokens,
            safety_factor=s.safety_timeout_factor,
        )
        record.repeat = task.repeat
        delta = window.close()
        if delta is not None:
            delta["shared_with_other_workers"] = True  # other tasks use the server at the same time
            record.extra["server_metrics"] = delta
    finally:
        model.close()
    return record


# --------------------------------------------------------------------------- placement


def is_loopback(url: str | None) -> bool:
    """Whether ``url``'s host is this machine's loopback (each node's own, seen from a node)."""
    host = (urlsplit(url).hostname or "") if url else ""
    return host in _LOOPBACK or host.startswith("127.")


def node_local(spec: ModelSpec, *, spans_machines: bool) -> bool:
    """The alias's endpoint is each node's own: a loopback base_url, no server of ours, nodes elsewhere."""
    return spans_machines and spec.serve is None and is_loopback(spec.base_url)


def task_resources(spec: ModelSpec, *, spans_machines: bool) -> dict[str, Any]:
    """Ray options for a task of ``spec``: ``num_cpus``, and ``resources={"gpu": 1/concurrency}`` when node-local."""
    options: dict[str, Any] = {"num_cpus": TASK_CPUS}
    if node_local(spec, spans_machines=spans_machines):
        concurrency = float(getattr(spec.cost, "concurrency", 1) or 1)
        options["resources"] = {"gpu": round(1 / max(1.0, concurrency), 4)}
    return options


# --------------------------------------------------------------------------- the executor


def _this_machine() -> set[str]:
    names = {*_LOOPBACK, socket.gethostname()}
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return names


class RayExecutor:
    """A connection to a Ray cluster and the trials submitted to it (see the module docstring)."""

    def __init__(self, ray: Any, address: str, *, owns: bool) -> None:
        self.ray, self.address, self._owns = ray, address, owns
        self._remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(run_trial)
        self._bundles: dict[Path, Any] = {}  # packet folder -> ObjectRef of its bundle
        self._refs: dict[str, Any] = {}  # key -> ObjectRef, until it arrives
        self._keys: dict[Any, str] = {}
        self._packets: dict[str, Packet] = {}
        self._done: dict[str, TrialResult] = {}
        self.nodes_used: set[str] = set()

    @classmethod
    def connect(cls, address: str) -> RayExecutor:
        """Join the cluster at ``address`` (``local``: start one on this machine that names itself 127.0.0.1)."""
        if address == "local" and "ray" not in sys.modules:
            # Ray's one-machine mode (meant for macOS/Windows): nodes advertise 127.0.0.1, not the LAN address.
            os.environ.setdefault(ONE_MACHINE_ENV, "0")
        ray = import_ray()
        if ray.is_initialized():  # the caller connected already (a script around pytest.main)
            return cls(ray, address, owns=False)
        options: dict[str, Any] = {"address": address, "log_to_driver": False, "namespace": "agentbench"}
        if address == "local":
            options["include_dashboard"] = False
        try:
            ray.init(**options)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ... for a bad cluster
            raise ConfigError(
                f"--ray {address}: cannot join the cluster ({type(exc).__name__}: {exc}); start it (`ray start "
                "--head` on its head node), check the address, or use --ray local to try it on this machine"
            ) from None
        return cls(ray, address, owns=True)

    def alive_nodes(self) -> list[Mapping[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def spans_machines(self) -> bool:
        """Whether some node is on another machine (then 127.0.0.1 is not the same server everywhere)."""
        here = _this_machine()
        try:
            here.add(self.ray.util.get_node_ip_address())
        except Exception:
            pass
        return any(str(n.get("NodeManagerAddress", "")) not in here for n in self.alive_nodes())

    def check_placement(self, demands: Mapping[str, Mapping[str, Any]], urls: Mapping[str, str]) -> None:
        """Refuse what would wait forever or miss its server: per alias, its task options and its URL."""
        spans = self.spans_machines()
        for alias, options in demands.items():
            if spans and is_loopback(urls.get(alias)) and alias in urls:
                raise ConfigError(
                    f"--ray {self.address}: alias {alias!r} is served by this process on {urls[alias]}, which nodes "
                    "on other machines cannot reach; give the alias a base_url the nodes reach (a server on the "
                    "network, or one on every node at 127.0.0.1 with no serve: block), or use a one-machine cluster"
                )
            wanted = {"CPU": float(options.get("num_cpus", 0)), **dict(options.get("resources", {}))}
            if not any(
                all(n.get("Resources", {}).get(k, 0) >= v for k, v in wanted.items()) for n in self.alive_nodes()
            ):
                raise ConfigError(
                    f"--ray {self.address}: no node can run a trial of alias {alias!r}, which asks for {wanted}; "
                    + (
                        "its endpoint is node-local (a loopback base_url on a multi-machine cluster): start the "
                        "nodes that run its server with ray start --resources='{\"gpu\": 1}'"
                        if "gpu" in wanted
                        else "add a node with a free CPU"
                    )
                )

    def submit(self, task: TrialTask, packet: Packet, options: Mapping[str, Any]) -> None:
        """Send one trial to the cluster; its packet is put in the object store once."""
        bundle = self._bundles.get(packet.root)
        if bundle is None:
            bundle = self._bundles[packet.root] = self.ray.put(pack_packet(packet))
        ref = self._remote.options(name=f"agentbench {task.key}", **options).remote(bundle, task)
        self._refs[task.key], self._keys[ref], self._packets[task.key] = ref, task.key, packet

    @property
    def pending(self) -> int:
        return len(self._refs)

    def result(self, key: str, on_arrival: Callable[[TrialResult], None]) -> TrialResult:
        """Wait for ``key``'s trial; every trial that finishes meanwhile goes through ``on_arrival`` at once."""
        if key not in self._refs and key not in self._done:
            raise InfrastructureError(f"--ray: no Ray task was submitted for {key}")
        while key not in self._done:
            ready, _ = self.ray.wait(list(self._refs.values()), num_returns=1, timeout=1.0)
            for ref in ready:
                self._arrive(ref, on_arrival)
        return self._done.pop(key)

    def _arrive(self, ref: Any, on_arrival: Callable[[TrialResult], None]) -> None:
        key = self._keys.pop(ref)
        del self._refs[key]
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # a bug in the trial's own code: raised by its own item
            result = TrialResult(key, None, exc)
        except self.ray.exceptions.RayError as exc:  # the worker or node died more than MAX_RETRIES times
            error = InfrastructureError(
                f"--ray {self.address}: the Ray task of {key} was lost after {MAX_RETRIES} retries "
                f"({type(exc).__name__}: {exc}); nodes kept dying: check them (ray status)"
            )
            result = TrialResult(key, None, error)
        if result.record is not None:
            result.record.packet = self._packets[key]  # the controller's copy, not the node's unpacked one
        self._packets.pop(key, None)
        self.nodes_used.add(result.node.get("node_id") or result.node.get("node_ip") or "?")
        self._done[key] = result
        on_arrival(result)

    def close(self) -> None:
        """Cancel what is still pending and leave the cluster (shut it down if we started it)."""
        for ref in list(self._refs.values()):
            try:
                self.ray.cancel(ref)
            except Exception:  # already finished or gone: nothing to cancel
                pass
        self._refs.clear()
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
