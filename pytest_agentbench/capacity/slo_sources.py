"""Where an SLO is written down, and which one wins: the command line, models.yaml, the project's ini.

The ``agentbench sweep``, ``load`` and ``replay`` commands take the SLO from, field by field,
the first of:

1. the command line (``--slo-ttft-p50``, ``--slo-tps-p50``, ``--goodput ttft:MS tpot:MS e2el:MS``);
2. the alias's ``slo:`` mapping in models.yaml (``ModelSpec.slo``; seconds);
3. the project's ini key ``agentbench_slo`` (the same ini file pytest reads, found the way pytest
   finds it: from the current folder upwards, the first ``pytest.ini``, ``.pytest.ini``,
   ``pyproject.toml`` with ``[tool.pytest.ini_options]``, ``tox.ini`` with ``[pytest]`` or
   ``setup.cfg`` with ``[tool:pytest]``), written ``key=value`` pairs of the models.yaml keys::

       [pytest]
       agentbench_slo = ttft_p50_s=2 tps_p50=20 ttft_s=4 tpot_s=0.1

:func:`resolve_slo` merges them and says where each field came from, for the report.
pytest-free: the ini is read with ``configparser`` / ``tomllib``.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

from pytest_agentbench.capacity.slo import SLO_KEYS, Slo, slo_from_mapping
from pytest_agentbench.errors import ConfigError

__all__ = ["INI_KEY", "find_ini", "ini_slo", "resolve_slo"]

INI_KEY = "agentbench_slo"
_INI_FILES = (("pytest.ini", "pytest"), (".pytest.ini", "pytest"), ("pyproject.toml", None))
_CFG_FILES = (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest"))


def _ini_section(path: Path, section: str | None) -> dict[str, Any] | None:
    """The pytest section of one candidate file, ``None`` when the file is not pytest's ini."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if section is None:  # pyproject.toml
        try:
            options = tomllib.loads(text).get("tool", {}).get("pytest", {}).get("ini_options")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        return dict(options) if isinstance(options, dict) else None
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid ini file ({exc})") from None
    if not parser.has_section(section):
        return {} if path.name in ("pytest.ini", ".pytest.ini") else None
    return dict(parser.items(section))


def find_ini(start: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The ini file pytest would use from *start* (default: the current folder) and its options."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        for name, section in (*_INI_FILES, *_CFG_FILES):
            path = candidate / name
            if path.is_file():
                options = _ini_section(path, section)
                if options is not None:
                    return path, options
    return None


def _parse_pairs(value: Any, where: str) -> dict[str, float]:
    """``"ttft_p50_s=2 tps_p50=20"`` (or a TOML list of such strings) -> a mapping of numbers."""
    text = " ".join(value) if isinstance(value, list) else str(value)
    out: dict[str, float] = {}
    for item in text.replace(",", " ").split():
        key, sep, number = item.partition("=")
        if not sep:
            raise ConfigError(f"{where}: {item!r} is not key=value; e.g. {INI_KEY} = ttft_p50_s=2 tps_p50=20")
        try:
            out[key.strip()] = float(number)
        except ValueError:
            raise ConfigError(f"{where}: {item!r}: {number!r} is not a number") from None
    return out


def ini_slo(start: Path | None = None) -> tuple[Slo, str | None]:
    """The ini's ``agentbench_slo`` as an Slo, and the file it came from (``None``: none set)."""
    found = find_ini(start)
    if found is None or not found[1].get(INI_KEY):
        return Slo(), None
    path, options = found
    where = f"{path}: {INI_KEY}"
    return slo_from_mapping(_parse_pairs(options[INI_KEY], where), where), str(path)


def resolve_slo(
    command_line: Slo, alias_slo: Slo | None, alias_where: str, ini: Slo, ini_where: str | None
) -> tuple[Slo, tuple[str, ...]]:
    """The SLO to judge by (command line over models.yaml over ini) and where each field came from."""
    layers = [
        (command_line, "the command line"),
        (alias_slo or Slo(), f"{alias_where}.slo"),
        (ini, f"{ini_where}: {INI_KEY}" if ini_where else ""),
    ]
    merged = Slo()
    for slo, _ in layers:
        merged = merged.over(slo)
    sources = []
    for key in SLO_KEYS:
        origin = next((where for slo, where in layers if getattr(slo, key) is not None), None)
        if origin:
            sources.append(f"{key} from {origin}")
    return merged, tuple(sources)
