"""The licence row: what the weights' licence is, where that was found, and whether it rules them out.

Evidence, in order: the model folder's licence and terms files (by their titles),
its README front matter (``license:``, ``license_name:``), ``config.json``'s
``license``; then the alias's ``license:`` in models.yaml: ``{package: NAME}`` has
the installed distribution's metadata read (``License-Expression``, ``License``,
licence classifiers, model-card front matter and terms files among its files),
``{id: ...}`` is a *declaration* and is reported as one.

Each licence id falls into a class (:data:`LICENCE_CLASSES`): permissive (pass),
open weights with use terms (warn: read the terms), non-commercial or research-only
(fail: the disqualifier), a hosted model's terms of service (warn). No evidence at
all is ``unknown``; sources that disagree are reported with the strictest class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.screening.folder import ModelFolder, licence_from_text
from pytest_agentbench.screening.installed import PackageInfo
from pytest_agentbench.screening.rows import Row, Verdict

__all__ = ["LICENCE_CLASSES", "Claim", "licence_claims", "licence_row", "normalise_licence"]

DISQUALIFIER = "no licence found, or terms that forbid commercial use (non-commercial, research-only)"

_PERMISSIVE = "permissive"
_TERMS = "open weights with use terms"
_NON_COMMERCIAL = "non-commercial or research-only"
_HOSTED = "a hosted model's terms of service"
_UNREVIEWED = "a licence this table does not know: read it"

#: licence id -> (class, what to know about it)
LICENCE_CLASSES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        **{k: (_PERMISSIVE, "permissive") for k in ("apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "isc")},
        **{k: (_PERMISSIVE, "permissive") for k in ("unlicense", "cc0-1.0", "cc-by-4.0", "mpl-2.0", "bsl-1.0")},
        "modified-mit": (_TERMS, "MIT with a clause requiring the model's name on large commercial products"),
        "gemma": (_TERMS, "Gemma Terms of Use: a prohibited-use policy passed on to every user"),
        **{
            k: (_TERMS, "Llama community licence: a monthly-user cap and an acceptable-use policy")
            for k in ("llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4")
        },
        "deepseek": (_TERMS, "DeepSeek Model License: use restrictions in its Attachment A"),
        **{
            k: (_TERMS, "a responsible-AI licence: use restrictions passed on to every user")
            for k in ("openrail", "openrail++", "bigscience-openrail-m", "creativeml-openrail-m", "bigcode-openrail-m")
        },
        "qwen": (_TERMS, "Qwen licence: a commercial monthly-user cap"),
        "tongyi-qianwen": (_TERMS, "Tongyi Qianwen licence: a commercial monthly-user cap"),
        "other": (_UNREVIEWED, "a custom licence (license: other): read it"),
        **{
            k: (_NON_COMMERCIAL, "non-commercial use only")
            for k in ("cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-nc-3.0", "cc-by-nc-sa-3.0")
        },
        "mnpl": (_NON_COMMERCIAL, "Mistral Non-Production License: no production use"),
        "mrl": (_NON_COMMERCIAL, "Mistral Research License: research use only"),
        "research-only": (_NON_COMMERCIAL, "research use only"),
        "proprietary": (_HOSTED, "no weights: the provider's terms of service and data policy apply"),
    }
)
_VERDICT: Mapping[str, Verdict] = MappingProxyType(
    {_PERMISSIVE: "pass", _TERMS: "warn", _UNREVIEWED: "warn", _HOSTED: "warn", _NON_COMMERCIAL: "fail"}
)
_STRICTNESS = (_PERMISSIVE, _HOSTED, _TERMS, _UNREVIEWED, _NON_COMMERCIAL)
_SPELLINGS = {
    "apache 2.0": "apache-2.0",
    "apache2": "apache-2.0",
    "apache license 2.0": "apache-2.0",
    "apache software license": "apache-2.0",
    "apache license, version 2.0": "apache-2.0",
    "mit license": "mit",
    "bsd license": "bsd-3-clause",
}


def normalise_licence(text: str) -> str:
    """A licence id as the tables know it: ``Apache-2.0``, ``Apache Software License`` -> ``apache-2.0``."""
    key = re.sub(r"\s+", " ", text.strip().lower())
    key = key.removeprefix("license :: osi approved :: ").removeprefix("license :: ")
    if key in LICENCE_CLASSES:
        return key
    return _SPELLINGS.get(key) or licence_from_text(text) or key


@dataclass(frozen=True)
class Claim:
    """One statement of the licence and where it was read."""

    licence: str
    source: str
    declared: bool = False  # written in models.yaml (a statement, not a finding)


def _folder_claims(folder: ModelFolder) -> list[Claim]:
    claims = [Claim(ident, f"{folder.path / name} (its title)") for name, ident in folder.license_files() if ident]
    card = folder.readme
    if isinstance(card.get("license"), str):
        ident = card["license"]
        if ident.lower() == "other" and isinstance(card.get("license_name"), str):
            ident = card["license_name"]
        claims.append(Claim(normalise_licence(ident), f"{folder.path / 'README.md'} front matter (license: {ident})"))
    config_licence = (folder.config or {}).get("license")
    if isinstance(config_licence, str):
        claims.append(Claim(normalise_licence(config_licence), f"{folder.path / 'config.json'} (license)"))
    return claims


def _package_claims(info: PackageInfo) -> list[Claim]:
    where = f"package {info.name} {info.version}"
    claims = []
    if info.license_expression:
        claims.append(Claim(normalise_licence(info.license_expression), f"{where}: License-Expression"))
    if info.license and len(info.license) < 80:  # a whole licence text pasted into License is not an id
        claims.append(Claim(normalise_licence(info.license), f"{where}: License metadata"))
    for classifier in info.classifiers:
        claims.append(Claim(normalise_licence(classifier), f"{where}: classifier {classifier!r}"))
    for card in info.front_matter:
        ident = card.get("license_name") if card.get("license") == "other" else card.get("license")
        if ident:
            claims.append(Claim(normalise_licence(ident), f"{where}: {card.get('file')} front matter"))
    return claims


def licence_claims(spec: ModelSpec, folder: ModelFolder | None, packages: Sequence[PackageInfo]) -> list[Claim]:
    """Every statement of the licence found for ``spec``, files first, declarations last."""
    claims = _folder_claims(folder) if folder is not None and folder.exists else []
    for info in packages:
        if info.error is None:
            claims += _package_claims(info)
    if spec.license is not None and spec.license.id is not None:
        claims.append(Claim(normalise_licence(spec.license.id), f"{spec.where}.license (declared)", declared=True))
    return claims


def _looked_in(spec: ModelSpec, folder: ModelFolder | None, packages: Sequence[PackageInfo]) -> list[str]:
    looked = []
    if folder is not None:
        state = "" if folder.exists else " (not found)"
        looked.append(f"{folder.path}{state}: LICENSE / terms files, README front matter, config.json")
    for info in packages:
        looked.append(f"package {info.name}: {info.error or 'metadata and files'}")
    if spec.license is None:
        looked.append(f"{spec.where}: no license: key")
    return looked


def licence_row(spec: ModelSpec, folder: ModelFolder | None, packages: Sequence[PackageInfo]) -> Row:
    """The licence row for one candidate."""
    claims = licence_claims(spec, folder, packages)
    evidence = tuple(f"{c.licence}: {c.source}" for c in claims) or tuple(_looked_in(spec, folder, packages))
    if not claims:
        if spec.test_double:
            return Row("licence", "n/a", "a scripted test double: no weights to license", DISQUALIFIER, evidence)
        return Row("licence", "unknown", "no licence found (unknown is a finding, not a pass)", DISQUALIFIER, evidence)
    classes = {c.licence: LICENCE_CLASSES.get(c.licence, (_UNREVIEWED, _UNREVIEWED)) for c in claims}
    strictest = max(classes, key=lambda ident: _STRICTNESS.index(classes[ident][0]))
    kind, note = classes[strictest]
    finding = f"{strictest} ({note})"
    if len(classes) > 1:
        finding += f"; the sources disagree: {', '.join(sorted(classes))}"
    if all(c.declared for c in claims):
        finding += "; declared in models.yaml, not found in the files"
    facts = {
        "licence": strictest,
        "class": kind,
        "licences": sorted(classes),
        "declared_only": all(c.declared for c in claims),
    }
    return Row("licence", _VERDICT[kind], finding, DISQUALIFIER, evidence, facts)
