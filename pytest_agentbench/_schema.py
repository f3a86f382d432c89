"""Small strict-validation helpers shared by the packet and models loaders.

Every failure raises the caller's ``ConfigError`` subclass with *where* (file
and key path), *what was found* and *what was expected*.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pytest_agentbench.errors import ConfigError

E = TypeVar("E", bound=ConfigError)


class Where:
    """A position in a config file: ``file: key.sub[2].key``."""

    def __init__(self, file: Path | str, keys: tuple[str, ...] = (), error: type[ConfigError] = ConfigError):
        self.file = str(file)
        self.keys = keys
        self.error = error

    def __truediv__(self, key: str | int) -> Where:
        part = f"[{key}]" if isinstance(key, int) else str(key)
        return Where(self.file, self.keys + (part,), self.error)

    def __str__(self) -> str:
        path = ".".join(self.keys).replace(".[", "[")
        return f"{self.file}: {path}" if path else self.file

    def fail(self, message: str) -> ConfigError:
        return self.error(f"{self}: {message}")


def type_name(value: object) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "nothing (null)",
    }.get(type(value), type(value).__name__)


def load_yaml_mapping(path: Path, where: Where) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise where.fail("file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise where.fail(f"cannot read it: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise where.fail(f"invalid YAML{loc}: {problem}") from None
    if not isinstance(data, dict):
        raise where.fail(f"expected a mapping at the top level, found {type_name(data)}")
    return data


def check_keys(data: Mapping[str, Any], where: Where, *, required: set[str], optional: set[str]) -> None:
    allowed = required | optional
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise where.fail(f"unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise where.fail(f"missing required key(s) {', '.join(map(repr, missing))}")


def get_str(
    data: Mapping[str, Any],
    key: str,
    where: Where,
    default: str | None = None,
    *,
    required: bool = False,
    nonempty: bool = True,
) -> str | None:
    if key not in data or data[key] is None:
        if required:
            raise (where / key).fail("is required: expected a string")
        return default
    value = data[key]
    if not isinstance(value, str):
        raise (where / key).fail(f"expected a string, found {type_name(value)} ({value!r})")
    if nonempty and not value.strip():
        raise (where / key).fail("must not be empty")
    return value


def get_number(
    data: Mapping[str, Any],
    key: str,
    where: Where,
    default: float | None,
    *,
    integer: bool = False,
    minimum: float | None = None,
) -> Any:
    if key not in data or data[key] is None:
        return default
    value = data[key]
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise (where / key).fail(f"expected {kind}, found {type_name(value)} ({value!r})")
    if minimum is not None and value < minimum:
        raise (where / key).fail(f"expected {kind} >= {minimum}, found {value!r}")
    return value


def get_bool(data: Mapping[str, Any], key: str, where: Where, default: bool) -> bool:
    if key not in data or data[key] is None:
        return default
    value = data[key]
    if not isinstance(value, bool):
        raise (where / key).fail(f"expected true or false, found {type_name(value)} ({value!r})")
    return value


def get_mapping(data: Mapping[str, Any], key: str, where: Where) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise (where / key).fail(f"expected a mapping, found {type_name(value)}")
    return value
