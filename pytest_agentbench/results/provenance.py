"""Provenance: what exactly produced a run - server, model, sandbox, agent, packet. pytest-free.

A record's ``versions`` (:func:`run_versions`)::

    {"agentbench": "0.1.0", "python": "3.11.9",
     "agent": {"name": "builtin", "version": "0.1.0", "system_prompt_sha256": "3f2a..."},
     "packet": {"id": "bugfix-median", "version": 1, "sha256": "..."},
     "sandbox": {"kind": "docker", "image": "agentbench-base:adb2c74912b0", "image_id": "sha256:..."},
     "server": {"endpoint": "http://127.0.0.1:8000/v1", "engine": "vllm", "vllm": "0.8.5", "vllm_why": "",
                "model": "served-name", "model_path": "/models/x", "model_sha256": "...",
                "model_revision": null, "model_why": "", "args": ["--model", "/models/x", ...]}}

``agent`` is the record's own ``agent`` (its name and version); for the built-in loop also the hash of
its system prompt (records written before agents could be chosen call it ``agentbench-loop``).
``sandbox`` is ``{"kind": "local", "bwrap": "bubblewrap 0.8.0"}`` for bubblewrap and
``{"kind": "unsafe-local", "isolation": "none"}`` for unsafe-local. Where a value could not be
had it is the string ``"unknown"`` and a ``..._why`` beside it says why (a broken server, junk, a
timeout, a hub name that is not in the local cache, ...): never a guess.

The server part is made once per session per endpoint (:func:`endpoint_provenance`, in the
process that owns the servers; xdist workers receive it), never per run: one ``GET /version``
(vLLM's) under a total deadline and a size cap, and for a server that answers it one
``GET /v1/models`` for the model path vLLM reports. The model's content hash is cheap by design:
sha256 of ``config.json``, the weights index and the weight files' names and sizes - not of the
weights (re-hashing gigabytes per session would cost more than the run). Server arguments are the
command line the harness ran, with every known secret replaced (the session's
:class:`~pytest_agentbench.results.redact.Redactor`) and the value of a flag that names a secret
(``--api-key``) masked. The packet hash covers every file of the packet folder (prompt, workspace,
hidden files, reference), caches excluded.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_agentbench.results.cells import BUILTIN_AGENT
from pytest_agentbench.results.redact import REDACTED, Redactor, looks_secret_name, public_url

__all__ = [
    "AGENT_NAME",
    "UNKNOWN",
    "agentbench_version",
    "endpoint_provenance",
    "fetch_json",
    "model_fingerprint",
    "packet_sha256",
    "run_versions",
    "sandbox_provenance",
    "server_args",
]

UNKNOWN = "unknown"
AGENT_NAME = BUILTIN_AGENT
#: Seconds one provenance request may take in all (connect, headers, body).
FETCH_TIMEOUT_S = 3.0
#: Bytes read of a provenance answer at most.
FETCH_MAX_BYTES = 64 * 1024
_CACHE_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"}
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")


# --------------------------------------------------------------------------- the server (once per session)


def fetch_json(url: str, timeout_s: float = FETCH_TIMEOUT_S) -> tuple[Any, str]:
    """``(parsed JSON, "")`` or ``(None, why)``: one GET under a total deadline, at most FETCH_MAX_BYTES read."""
    from pytest_agentbench.serving.http import ReadTimeout, TooLarge, request

    box: dict[str, Any] = {}

    def get() -> None:
        try:
            box["answer"] = request(url, timeout=timeout_s, max_bytes=FETCH_MAX_BYTES)
        except Exception as exc:  # anything a broken server can cause is a reason, not a crash
            box["error"] = exc

    worker = threading.Thread(target=get, daemon=True, name="agentbench-provenance")
    worker.start()
    worker.join(timeout_s + 0.5)
    error = box.get("error")
    if worker.is_alive() or isinstance(error, (TimeoutError, ReadTimeout)):
        return None, f"GET {url} took over {timeout_s:g} s"
    if isinstance(error, TooLarge):
        return None, f"GET {url} answered more than {FETCH_MAX_BYTES} bytes (not a version document)"
    if error is not None:
        return None, f"GET {url} failed: {error}"
    answer = box["answer"]
    if answer.status != 200:
        return None, f"GET {url} answered HTTP {answer.status}"
    if len(answer.body) > FETCH_MAX_BYTES:
        return None, f"GET {url} answered more than {FETCH_MAX_BYTES} bytes (not a version document)"
    try:
        return json.loads(answer.body), ""
    except ValueError:
        return None, f"GET {url} answered something that is not JSON: {answer.text()[:80]!r}"


def _root_of(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def _vllm_version(root: str, timeout_s: float) -> tuple[str, str]:
    data, why = fetch_json(f"{root}/version", timeout_s)
    if why:
        return UNKNOWN, why
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        return UNKNOWN, f"GET {root}/version answered no version string: {json.dumps(data)[:80]}"
    return version, ""


def _served_root(root: str, model: str, timeout_s: float) -> str | None:
    """The model path vLLM reports for ``model`` in ``/v1/models`` (its ``root``), if it does."""
    data, _ = fetch_json(f"{root}/v1/models", timeout_s)
    entries = data.get("data") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("id") == model and isinstance(entry.get("root"), str):
            return entry["root"]
    return None


def server_args(argv: Sequence[str], redactor: Redactor | None = None) -> list[str]:
    """The command line with known secrets replaced and the value of a secret-named flag masked."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(REDACTED)
            mask_next = False
            continue
        flag, eq, _ = arg.partition("=")
        secret_flag = arg.startswith("--") and looks_secret_name(flag)
        if secret_flag and eq:
            out.append(f"{flag}={REDACTED}")
            continue
        mask_next = secret_flag
        out.append(arg)
    return redactor(out) if redactor is not None else out


def endpoint_provenance(
    spec: Any,
    base_url: str | None,
    *,
    command: Sequence[str] | None = None,
    redactor: Redactor | None = None,
    timeout_s: float = FETCH_TIMEOUT_S,
) -> dict[str, Any]:
    """What serves one alias: engine, vLLM version, model path and fingerprint, server arguments."""
    serve = getattr(spec, "serve", None)
    engine = serve.engine if serve is not None else None
    out: dict[str, Any] = {
        "endpoint": public_url(base_url) if base_url else None,
        "engine": engine or "external",
        "vllm": UNKNOWN,
        "vllm_why": "",
        "model": spec.model,
        "args": None,
    }
    if engine == "scripted":
        out.update(engine="scripted", vllm="n/a", vllm_why="a scripted test double, not a model server")
        out.update(model_path=None, model_why="a scripted test double serves no model")
        return out
    if base_url is None:
        out["vllm_why"] = "no endpoint: the server did not start"
    else:
        out["vllm"], out["vllm_why"] = _vllm_version(_root_of(base_url), timeout_s)
    path = _model_path(spec)
    if path is None and out["vllm"] != UNKNOWN and base_url is not None:
        path = _served_root(_root_of(base_url), spec.model, timeout_s)
    out.update(model_fingerprint(path) if path else _no_model_path(engine))
    if command:
        out["args"] = server_args(command, redactor)
    elif engine is None:
        out["args_why"] = "an existing endpoint: its arguments are not known to the harness"
    return redactor(out) if redactor is not None else out


def _model_path(spec: Any) -> str | None:
    """What a ``serve: {engine: vllm}`` alias loads (``serve.model_path``, else the model name)."""
    serve = getattr(spec, "serve", None)
    if serve is None or serve.engine != "vllm":
        return None
    return str(serve.model_path or spec.model)


def _no_model_path(engine: str | None) -> dict[str, Any]:
    why = "the server does not report its model path" if engine is None else "no model path configured"
    return {"model_path": None, "model_sha256": UNKNOWN, "model_revision": None, "model_why": why}


@lru_cache(maxsize=64)
def model_fingerprint(path: str) -> dict[str, Any]:
    """``model_path``, ``model_sha256`` (config + weights index + weight names and sizes) and
    ``model_revision`` (a hub cache snapshot's), or ``"unknown"`` and why."""
    out: dict[str, Any] = {"model_path": path, "model_sha256": UNKNOWN, "model_revision": None, "model_why": ""}
    folder = Path(path).expanduser()
    if not folder.is_dir():
        folder = _hub_snapshot(path) or folder
    match = re.search(r"/snapshots/([0-9a-f]{7,64})(?:/|$)", folder.as_posix())
    if match:
        out["model_revision"] = match.group(1)
    if not folder.is_dir():
        out["model_why"] = "not a local folder, nor in the local hub cache: vLLM resolved it itself"
        return out
    try:
        out["model_sha256"] = _folder_fingerprint(folder)
    except OSError as exc:
        out["model_why"] = f"cannot read {folder}: {exc}"
    return out


def _folder_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in (
        "config.json",
        "model.safetensors.index.json",
        "pytorch_model.bin.index.json",
        "generation_config.json",
    ):
        if (folder / name).is_file():
            digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    for item in sorted(folder.iterdir()):
        if item.name.endswith(_WEIGHTS) and item.is_file():
            digest.update(f"{item.name}\0{item.stat().st_size}\0".encode())
    return digest.hexdigest()


def _hub_snapshot(name: str) -> Path | None:
    """The local hub cache's snapshot of ``org/name`` at ``refs/main``, if there is one (read, never fetched)."""
    if "/" not in name or name.startswith(("/", ".", "~")):
        return None
    roots = [os.environ.get("HF_HUB_CACHE"), os.environ.get("HF_HOME") and f"{os.environ['HF_HOME']}/hub"]
    roots.append(str(Path.home() / ".cache" / "huggingface" / "hub"))
    for root in filter(None, roots):
        repo = Path(root) / f"models--{name.replace('/', '--')}"
        ref = repo / "refs" / "main"
        if ref.is_file():
            snapshot = repo / "snapshots" / ref.read_text().strip()
            if snapshot.is_dir():
                return snapshot
    return None


# --------------------------------------------------------------------------- per run (cached per process)


@lru_cache(maxsize=256)
def packet_sha256(root: Path) -> str:
    """sha256 over every file of the packet folder (relative path, kind, bytes), caches left out."""
    paths: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _CACHE_DIRS]
        paths += [Path(folder) / name for name in files if not name.endswith(".pyc")]
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L\0{rel}\0{os.readlink(path)}\0".encode())
        elif path.is_file():
            digest.update(f"F\0{rel}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _bwrap_version() -> str:
    from pytest_agentbench.sandbox.bwrap import bwrap_binary

    exe = bwrap_binary()
    if exe is None:
        return UNKNOWN
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return done.stdout.strip()[:80] or UNKNOWN


def sandbox_provenance(kind: str, details: Mapping[str, str]) -> dict[str, Any]:
    """The docker image (ref and id), the bubblewrap version, or that unsafe-local isolates nothing."""
    if kind == "docker":
        return {"kind": kind, "image": details.get("image", UNKNOWN), "image_id": details.get("image_id", UNKNOWN)}
    if kind == "local":
        return {"kind": kind, "bwrap": _bwrap_version()}
    if kind == "unsafe-local":
        return {"kind": kind, "isolation": "none"}
    return {"kind": kind, **{k: v for k, v in details.items() if k in ("image", "image_id", "version")}}


@lru_cache(maxsize=1)
def agentbench_version() -> str:
    """This package's installed version (the built-in agent's version); ``unknown`` where it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-agentbench")
    except PackageNotFoundError:
        return UNKNOWN


@lru_cache(maxsize=1)
def _builtin_prompt_sha256() -> str:
    from pytest_agentbench.agents.loop import SYSTEM_PROMPT

    return hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()


def _agent(record: Any) -> dict[str, str]:
    """The record's agent (name, version); the built-in loop's also with its system prompt's hash."""
    name = getattr(record, "agent_name", AGENT_NAME)
    version = getattr(record, "agent_version", None) or agentbench_version()
    out = {"name": name, "version": version}
    if name == AGENT_NAME:
        out["system_prompt_sha256"] = _builtin_prompt_sha256()
    return out


def run_versions(record: Any) -> dict[str, Any]:
    """The record's ``versions`` (see the module docstring); ``record.provenance`` holds the server part."""
    packet, sandbox = record.packet, record.sandbox
    try:
        packet_hash = packet_sha256(Path(packet.root))
    except OSError as exc:
        packet_hash = f"{UNKNOWN}: {exc}"
    server = dict(record.provenance) if record.provenance else {"vllm": UNKNOWN, "vllm_why": "not recorded"}
    return {
        "agentbench": agentbench_version(),
        "python": platform.python_version(),
        "agent": _agent(record),
        "packet": {"id": packet.id, "version": packet.version, "sha256": packet_hash},
        "sandbox": sandbox_provenance(sandbox.kind, sandbox.details or {}),
        "server": server,
    }
