"""Small strict-validation helpers shared by the packet and models loaders.

Every failure raises the caller's ``ConfigError`` subclass with *where* (file
and key path), *what was found* and *what was expected*. The YAML reader here
is stricter than ``yaml.safe_load``: a file must be UTF-8 (an error gives the
line of the first bad byte), a key may appear only once in a mapping (YAML
would keep the last value silently), and ``*alias`` references may neither
form a cycle nor expand the file past :data:`MAX_VALUES` values (a "billion
laughs" file would otherwise hang every consumer that walks the data). Strings may not hold a NUL
byte (no command, path or URL can carry one), numbers must be finite.

(Masking key-looking text in models.yaml errors is ``results.redact.mask_secrets``,
beside the rest of the package's secret handling.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from pytest_agentbench.errors import ConfigError

E = TypeVar("E", bound=ConfigError)

#: Values one YAML file may expand to through ``*alias`` references; far above any real packet or models.yaml.
MAX_VALUES = 100_000


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


# -- reading YAML ------------------------------------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, cycles and documents that expand past :data:`MAX_VALUES`."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, set())
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *base' then overriding a key of base is not a duplicate
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: the base constructor says so
                if first is not key_node.start_mark:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first at line {first.line + 1}): YAML would keep only "
                        "the last value, silently; remove or rename one of them",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int], open_: set[int]) -> int:
    """How many values ``node`` stands for once every alias is expanded; a cycle or too many is a YAML error."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in open_:
        cycle = "an '*alias' refers to a value that contains it (a cycle): write the value out instead"
        raise ComposerError(None, None, cycle, node.start_mark)
    open_.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, open_) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo, open_) + _expanded_size(v, memo, open_) for k, v in node.value)
    open_.discard(key)
    if size > MAX_VALUES:
        bomb = f"'*alias' references expand this to more than {MAX_VALUES:,} values: write the values out"
        raise ComposerError(None, None, bomb, node.start_mark)
    memo[key] = size
    return size


def _decode(raw: bytes, where: Where) -> str:
    """UTF-8 text, or an error naming the line and column of the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise where.fail(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column} cannot be read; "
            "save the file as UTF-8"
        ) from None


def _yaml_error(exc: yaml.YAMLError, text: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        loc = f" at line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return (
            f"invalid YAML at line {line}: character #x{exc.character:04x} is not allowed in YAML "
            "(a control character?); remove it"
        )
    else:
        loc = ""
    problem = getattr(exc, "problem", None) or str(exc)
    hint = ""
    if isinstance(exc, (yaml.scanner.ScannerError, yaml.parser.ParserError)):
        hint = "; check the indentation, colons and quotes on that line and the one before"
    return f"invalid YAML{loc}: {problem}{hint}"


def load_yaml_mapping(path: Path, where: Where) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise where.fail("file not found") from None
    except IsADirectoryError:
        raise where.fail("is a folder, not a file") from None
    except OSError as exc:
        raise where.fail(f"cannot read it: {exc}") from None
    text = _decode(raw, where)
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise where.fail(_yaml_error(exc, text)) from None
    except RecursionError:
        raise where.fail("invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise where.fail(f"expected a mapping at the top level (lines of 'key: value'), found {type_name(data)}")
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
    check_no_nul(value, where / key)
    return value


def check_no_nul(value: str, where: Where) -> None:
    """No command, path, URL or HTTP header can carry a NUL byte: refuse one at load, not mid-run."""
    if "\0" in value:
        raise where.fail(
            f"contains a NUL byte (\\0) at character {value.index(chr(0)) + 1}: no command, path or URL "
            'can hold one; remove it (a stray "\\0" or "\\x00" in a double-quoted string?)'
        )


def get_number(
    data: Mapping[str, Any],
    key: str,
    where: Where,
    default: float | None,
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    if key not in data or data[key] is None:
        return default
    value = data[key]
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise (where / key).fail(f"expected {kind}, found {type_name(value)} ({value!r})")
    if not math.isfinite(value):
        raise (where / key).fail(f"expected a finite number, found {value!r}; write a plain number such as 10")
    if minimum is not None and value < minimum:
        raise (where / key).fail(f"expected {kind} >= {minimum}, found {value!r}")
    if maximum is not None and value > maximum:
        raise (where / key).fail(f"expected {kind} <= {maximum:g}, found {value!r}")
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
