"""Kubernetes manifests checked against the API schema, as the ``kubernetes`` client's models know it. pytest-free.

    validate_manifests(job_manifests(opts))   # raises ConfigError naming the object, the field and what was wrong

No cluster is needed. Two passes per object:

1. a strict walk of the dict against the client's ``openapi_types`` / ``attribute_map``: every key
   must be a field of that API type *as the API spells it* (``completionMode``, not
   ``completion_mode`` or ``completionmode``: the client's ``from_dict`` would quietly accept the first
   and drop the second, the API server rejects both), every value of the field's type (a string, a
   whole number that is not a bool, a list, a map, a nested object);
2. the client's own deserialisation (``ApiClient().deserialize``), whose pydantic models refuse a
   missing required field (a container without ``name``) and values of the wrong type.

``apiVersion`` must be the group/version that serves the kind (``batch/v1`` for a Job). What the
models do not encode (enum values such as ``completionMode``, quantities) is not checked here; the
manifests' builder (``scale.k8s``) checks those of its own inputs. Needs the ``kubernetes`` client
(>= 37, whose models are pydantic; extra ``pytest-agentbench[k8s]``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_agentbench.errors import ConfigError

__all__ = ["K8S_INSTALL_HINT", "validate_manifest", "validate_manifests"]

K8S_INSTALL_HINT = (
    "checking manifests against the Kubernetes API schema needs the kubernetes client (>= 37): "
    "pip install 'pytest-agentbench[k8s]'"
)
#: The group/version that serves each kind these manifests use (the client's models do not say).
_API_VERSIONS = {
    "ConfigMap": "v1",
    "PersistentVolumeClaim": "v1",
    "Secret": "v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}
_LIST = re.compile(r"^(?:List|list)\[(.+)\]$")
_DICT = re.compile(r"^(?:Dict\[str, (.+)\]|dict\(str, (.+)\))$")


def _client() -> Any:
    try:
        import kubernetes.client as client
    except ImportError:
        raise ImportError(K8S_INSTALL_HINT) from None
    if not hasattr(client.V1Job, "model_validate"):
        raise ImportError(f"{K8S_INSTALL_HINT} (found an older client without pydantic models)")
    return client


def _primitive(value: Any, type_name: str) -> str | None:
    """Why ``value`` is not of the primitive ``type_name`` (None: it is)."""
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "datetime": isinstance(value, str),
        "date": isinstance(value, str),
        "bytes": isinstance(value, str),
        "object": True,
    }[type_name]
    return None if ok else f"expected {type_name}, found {type(value).__name__} {value!r}"


def _walk(client: Any, value: Any, type_name: str, path: str) -> None:
    """Raise ``ValueError("path: why")`` at the first key or value that is not of ``type_name``."""
    if type_name in ("str", "int", "float", "bool", "datetime", "date", "bytes", "object"):
        why = _primitive(value, type_name)
        if why:
            raise ValueError(f"{path}: {why}")
        return
    if m := _LIST.match(type_name):
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected a list, found {type(value).__name__}")
        for i, v in enumerate(value):
            _walk(client, v, m.group(1), f"{path}[{i}]")
        return
    if m := _DICT.match(type_name):
        if not isinstance(value, dict):
            raise ValueError(f"{path}: expected a map, found {type(value).__name__}")
        for k, v in value.items():
            _walk(client, v, m.group(1) or m.group(2), f"{path}.{k}")
        return
    model = getattr(client, type_name)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected an object ({type_name}), found {type(value).__name__}")
    fields = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, v in value.items():
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; {type_name} has: {', '.join(sorted(fields))}"
            raise ValueError(f"{path}.{key}: not a field of {type_name}{hint}")
        _walk(client, v, model.openapi_types[fields[key]], f"{path}.{key}")
    for attr, info in model.model_fields.items():
        if info.is_required() and model.attribute_map.get(attr, attr) not in value:
            raise ValueError(f"{path}.{model.attribute_map.get(attr, attr)}: required by {type_name}, missing")


def validate_manifest(doc: Mapping[str, Any]) -> None:
    """Check one object (the module docstring); a :class:`ConfigError` names it, the field and the problem."""
    client = _client()
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    where = f"{kind or '?'} {name or '(no name)'}"
    if not isinstance(kind, str) or not isinstance(api_version, str):
        raise ConfigError(f"{where}: apiVersion and kind are required strings")
    expected = _API_VERSIONS.get(kind)
    if expected is not None and api_version != expected:
        raise ConfigError(f"{where}: apiVersion {api_version!r}: a {kind} is served by {expected!r}")
    model = f"{api_version.split('/')[-1].capitalize()}{kind}"
    if not hasattr(client, model):
        raise ConfigError(f"{where}: the Kubernetes client knows no {kind} in {api_version} (no {model})")
    if not name:
        raise ConfigError(f"{where}: metadata.name is required")
    try:
        _walk(client, dict(doc), model, kind)
        client.ApiClient().deserialize(json.dumps(dict(doc)), model, "application/json")
    except ValueError as exc:  # the walk's, and pydantic's ValidationError (a ValueError)
        text = " ".join(str(exc).split())
        raise ConfigError(f"{where}: {text}") from None


def validate_manifests(docs: Iterable[Mapping[str, Any]]) -> int:
    """:func:`validate_manifest` on each; returns how many were checked."""
    count = 0
    for doc in docs:
        validate_manifest(doc)
        count += 1
    return count
