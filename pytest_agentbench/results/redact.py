"""Secrets kept out of everything a run writes: one :class:`Redactor` per session, URLs stripped of credentials.

What counts as a secret (:meth:`Redactor.from_environment`, read once when the
session starts):

* the value of every ``api_key_env`` named in ``models.yaml`` - every alias, not
  only the selected ones (a transcript may print another provider's key);
* the value of every environment variable whose *name* looks secret: it contains
  ``KEY``, ``TOKEN``, ``SECRET``, ``PASSWORD`` or ``PASSWD`` (any case).

The noise rule: a value is a secret only if it has at least
:data:`MIN_SECRET_LEN` (8) characters and at least 4 distinct ones (after
stripping blanks). ``TOKENIZERS_PARALLELISM=false``, ``MAX_TOKENS=4096``,
``KEYBOARD=us`` or a placeholder key such as ``EMPTY`` or ``xxxxxxxx`` would
otherwise turn common words and numbers all over the reports into ``***``; a
real provider key is far longer. Each secret is replaced by ``***`` as written
and in its JSON-, HTML- and URL-escaped forms (the longest first, so a secret
that contains another is hidden whole).

The output boundaries, each applying the session's redactor (``AgentbenchSession.redactor``):

* :func:`pytest_agentbench.results.record.record_to_dict` - the JSONL records; benchmark JSON,
  the HTML report and the terminal summary are built from these;
* ``AgentbenchSession.finish`` - the merged records again (older or ``--resume`` lines) before
  benchmark JSON, HTML and summary; :func:`pytest_agentbench.reports.html.write_html` - the page text;
* ``plugin.reporting.pytest_runtest_makereport`` - every test report: the failure text, the report
  sections ("agentbench transcript", "agentbench gates", captured output and logs) and the
  user properties; terminal output (``-rA``), JUnit XML and xdist all read those reports;
* ``plugin.fixtures`` - pytest-benchmark's ``extra_info``;
* ``plugin.reporting.pytest_terminal_summary`` - every line of the agentbench summary;
* :class:`pytest_agentbench.serving.vllm.process.VLLMServer` - the command line it logs, and the
  whole server log rewritten when the server stops (so start errors quoting its tail are clean).

:func:`public_url` keeps only ``scheme://host:port/path`` of a URL, dropping a
``user:password@`` or a ``?key=`` that could carry a secret. :func:`mask_secrets` works where the
values are not known (a models.yaml error message, before any session): it masks text that *looks*
like a key (known prefixes such as ``sk-``, long random tokens). pytest-free.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

__all__ = [
    "MASKED",
    "MIN_SECRET_LEN",
    "REDACTED",
    "Redactor",
    "looks_like_secret",
    "looks_secret_name",
    "mask_secrets",
    "public_url",
    "worth_redacting",
]

#: What a secret is replaced by.
REDACTED = "***"
#: Shorter values are never treated as secrets (see the noise rule above).
MIN_SECRET_LEN = 8
_MIN_DISTINCT_CHARS = 4
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD", re.IGNORECASE)


class _HasKeyEnv(Protocol):
    api_key_env: str | None


def looks_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (``*KEY*``, ``*TOKEN*``, ...)."""
    return bool(_SECRET_NAME.search(name))


def worth_redacting(value: str) -> bool:
    """The noise rule: at least 8 characters, at least 4 distinct ones (blanks stripped)."""
    value = value.strip()
    return len(value) >= MIN_SECRET_LEN and len(set(value)) >= _MIN_DISTINCT_CHARS


class Redactor:
    """Replaces every known secret by ``***`` in text and in JSON-like data. Build it once per session."""

    def __init__(self, secrets: Iterable[str] = (), *, names: Iterable[str] = ()) -> None:
        values = {s.strip() for s in secrets if s and worth_redacting(s)}
        forms = {form for s in values for form in _forms(s)}
        #: the variables the secrets came from (names only, for diagnostics; never the values)
        self.names: tuple[str, ...] = tuple(sorted(set(names)))
        self._count = len(values)
        self._pattern = (
            re.compile("|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f)))) if forms else None
        )

    @classmethod
    def from_environment(cls, specs: Iterable[_HasKeyEnv] = (), environ: Mapping[str, str] | None = None) -> Redactor:
        """The secrets of a session: every alias's ``api_key_env`` value plus every secret-looking variable."""
        environ = os.environ if environ is None else environ
        names = {spec.api_key_env for spec in specs if getattr(spec, "api_key_env", None)}
        names |= {name for name in environ if looks_secret_name(name)}
        found = {name for name in names if worth_redacting(environ.get(name, ""))}
        return cls((environ[name] for name in found), names=found)

    def __len__(self) -> int:
        """How many distinct secret values it hides."""
        return self._count

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:
        return f"<Redactor: {self._count} secret(s) from {', '.join(self.names) or 'explicit values'}>"

    def finds(self, text: str) -> bool:
        """Whether ``text`` holds any secret (in any of its escaped forms)."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def __call__(self, obj: Any) -> Any:
        """``obj`` (dicts, lists, tuples, strings; keys too) with every secret replaced; other values as they are."""
        if self._pattern is None:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self(k): self(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self(v) for v in obj)
        return obj

    def file(self, path: Path | str) -> bool:
        """Rewrite a text file with its secrets replaced (atomically); True if it held any."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return False
        if not self.finds(text):
            return False
        tmp = path.with_name(path.name + ".redacting")
        tmp.write_text(self.text(text), encoding="utf-8", errors="surrogateescape")
        os.replace(tmp, path)
        return True


def _forms(secret: str) -> set[str]:
    """A secret as written and as JSON, HTML and URLs escape it."""
    as_json = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return {secret, html.escape(secret), quote(secret, safe=""), *as_json}


def public_url(url: str) -> str:
    """scheme://host:port/path only: no user:password@ or ?key= that could carry a secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


# -- key-looking text, where the values are not known (e.g. a models.yaml error message) ----

_KEY_PREFIX = re.compile(
    r"(?:sk|pk|rk)[-_][A-Za-z0-9_-]{6,}|gh[pousr]_[A-Za-z0-9]{10,}|github_pat_[A-Za-z0-9_]{10,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{12,}|AIza[0-9A-Za-z_-]{20,}|hf_[A-Za-z0-9]{10,}"
    r"|glpat-[A-Za-z0-9_-]{10,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_.-]+"
)
_KEY_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_+=-])(?:" + _KEY_PREFIX.pattern + ")")
_TOKEN = re.compile(r"[A-Za-z0-9_+=-]{20,}")
MASKED = "<redacted: looks like a key>"


def looks_like_secret(token: str) -> bool:
    """A known key prefix (``sk-``, ``ghp_``, ``AKIA``, ...), or a long random-looking token.

    Random-looking: 20+ characters mixing upper case, lower case and digits (base62/64
    keys), or 32+ hex digits. Words joined by ``_``/``-`` (file names, aliases) are not.
    """
    if _KEY_PREFIX.fullmatch(token):
        return True
    if len(token) >= 32 and re.fullmatch(r"[0-9a-fA-F]+", token) and re.search(r"\d", token):
        return bool(re.search(r"[a-fA-F]", token))
    if len(token) < 20:
        return False
    classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"\d"))
    return classes == 3 and max(len(part) for part in re.split(r"[_-]", token)) >= 12


def mask_secrets(text: str, keep: Iterable[str] = ()) -> str:
    """``text`` with every key-looking token replaced by :data:`MASKED`; the strings in ``keep`` stay as
    they are (a file path in the message)."""
    kept = [k for k in keep if k]
    if kept:
        pattern = "(" + "|".join(re.escape(k) for k in sorted(kept, key=len, reverse=True)) + ")"
        return "".join(part if part in kept else mask_secrets(part) for part in re.split(pattern, text))
    text = _KEY_IN_TEXT.sub(MASKED, text)
    return _TOKEN.sub(lambda m: MASKED if looks_like_secret(m.group(0)) else m.group(0), text)
