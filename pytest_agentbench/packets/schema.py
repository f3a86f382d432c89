"""Task packets: schema, strict loading and discovery.

A packet is a folder with ``packet.yaml`` (see DESIGN.md / docs/packets.md).
Loading is strict: unknown keys, wrong types, missing files and duplicate ids
are errors that name the file, the key and what was expected. So are a file
that is not UTF-8 (the line of the first bad byte), a duplicate YAML key, a NUL
byte in any string (a gate command could not run), a non-finite number and a
prompt file that is a folder or not text.

A packet may give ``phases:`` instead of one session: an ordered list of fresh agent
sessions on the same workspace (plan, implement, ...), each a :class:`Phase` with its own
prompt, tools and turn budget; the gates run after the last (how they run:
``agents.phases``). With phases the top-level ``prompt`` is optional; when given it is
the task every phase sees first (a phase's session prompt is the packet's prompt, a blank
line, then the phase's own). Bad phase values name their key (``phases[1].tools``).

A prompt larger than ``prompt_warn_bytes`` (default :data:`PROMPT_WARN_BYTES`)
loads, with a :class:`~pytest_agentbench.errors.PacketWarning`: it may not fit
a model's context, but whether it does depends on the alias, not the packet.
pytest reads the cap from the ini key ``agentbench_prompt_warn_kb``;
``agentbench validate`` and ``check-packets`` from ``--prompt-warn-kb``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_agentbench._schema import (
    Where,
    check_keys,
    check_no_nul,
    get_bool,
    get_mapping,
    get_number,
    get_str,
    load_yaml_mapping,
    type_name,
)
from pytest_agentbench.agents.tools import TOOL_NAMES
from pytest_agentbench.errors import ConfigError, PacketError, PacketWarning

PACKET_FILE = "packet.yaml"
KINDS = ("bug-fix", "refactor", "test-generation", "docs-update", "cli-feature")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: A prompt above this many bytes (UTF-8) loads with a warning: ~16,000 tokens, half of a 32k context
#: that the system prompt, the tool schemas and every later turn share.
PROMPT_WARN_BYTES = 64 * 1024
#: Smallest ``max_total_tokens`` accepted: the system prompt and the tool schemas alone take ~500 tokens
#: of every call, so a smaller budget ends any run after its first call (likely a unit slip: 200 for 200k).
MIN_TOTAL_TOKENS = 1_000
#: Longest timeout accepted (a week): larger values overflow the OS's timers, and no gate needs them.
MAX_TIMEOUT_S = 7 * 24 * 3600.0

_PACKET_KEYS = {
    "id",
    "kind",
    "version",
    "title",
    "prompt",
    "prompt_file",
    "workspace",
    "limits",
    "gates",
    "reference",
    "description",
    "tags",
    "protect",
    "allow",
    "phases",
}
_PHASE_KEYS = {"id", "prompt", "prompt_file", "tools", "max_turns", "description"}
#: The tool every phase offers whatever its ``tools`` say: a session must be able to end itself.
ALWAYS_OFFERED = "finish"
_LIMIT_KEYS = {"max_turns", "timeout_s", "max_output_tokens", "max_total_tokens"}
_GATE_KEYS = {"id", "run", "expect_exit", "timeout_s", "add", "guard", "description"}


@dataclass(frozen=True)
class Limits:
    """The agent's budgets (what each means, and ``--budget``: ``agents.config``, docs/packets.md "Budgets")."""

    max_turns: int = 30
    timeout_s: float = 600.0
    max_output_tokens: int = 4096  # per model call
    max_total_tokens: int | None = None  # prompt + completion over the run; None: none (a default in tokens mode)


@dataclass(frozen=True)
class Gate:
    id: str
    run: str
    expect_exit: int = 0
    timeout_s: float = 120.0
    #: packet-relative source file -> workspace-relative destination, copied at gate time.
    add: tuple[tuple[str, str], ...] = ()
    guard: bool = False
    description: str = ""


@dataclass(frozen=True)
class Phase:
    """One headless agent session of a multi-phase packet, on the workspace the phases before it left."""

    id: str
    #: What the session receives as its first user message: the packet's prompt (when it has one),
    #: a blank line, then the phase's own ``prompt`` / ``prompt_file``.
    prompt: str
    #: The built-in tools offered (in ``agents.tools.TOOL_NAMES`` order, ``finish`` always among them);
    #: None: every tool.
    tools: tuple[str, ...] | None
    max_turns: int  # this phase's own turn budget (default: the packet's limits.max_turns)
    description: str = ""


@dataclass(frozen=True)
class Packet:
    id: str
    kind: str
    version: int
    title: str
    prompt: str
    root: Path  # the packet folder
    workspace: Path  # absolute
    limits: Limits
    gates: tuple[Gate, ...]
    reference: Path | None = None
    tags: tuple[str, ...] = ()
    #: Workspace globs put back before the gates (restored if changed, removed if new): see packets.integrity.
    protect: tuple[str, ...] = ()
    #: Workspace globs the agent may create or change although they are test configuration or shadow a module.
    allow: tuple[str, ...] = ()
    #: The sessions the agent runs in order (empty: one session on ``prompt``, as packets without phases).
    phases: tuple[Phase, ...] = ()

    @property
    def file(self) -> Path:
        return self.root / PACKET_FILE


def _inside(root: Path, rel: str, where: Where, *, must_exist: bool, what: str) -> Path:
    """Resolve a packet-relative path; refuse absolute paths and escapes from the packet."""
    if PurePosixPath(rel).is_absolute():
        raise where.fail(f"{what} must be a path relative to the packet folder, found absolute {rel!r}")
    path = (root / rel).resolve()
    if path != root.resolve() and root.resolve() not in path.parents:
        raise where.fail(f"{what} {rel!r} points outside the packet folder {root}")
    if must_exist and not path.exists():
        raise where.fail(f"{what} {rel!r} does not exist (looked for {path})")
    return path


def _load_gate(raw: Any, where: Where, root: Path) -> Gate:
    if not isinstance(raw, dict):
        raise where.fail(f"expected a mapping with at least 'id' and 'run', found {type_name(raw)}")
    check_keys(raw, where, required={"id", "run"}, optional=_GATE_KEYS - {"id", "run"})
    gid = get_str(raw, "id", where, required=True)
    assert gid is not None
    if not _ID_RE.match(gid):
        raise (where / "id").fail(f"{gid!r} is not a valid gate id: use lowercase letters, digits, '-', '_', '.'")
    run = get_str(raw, "run", where, required=True)
    assert run is not None
    add_raw = get_mapping(raw, "add", where)
    add: list[tuple[str, str]] = []
    for src, dst in add_raw.items():
        if not isinstance(src, str) or not isinstance(dst, str) or not dst.strip():
            raise (where / "add").fail(
                f"expected 'packet/relative/src: workspace/relative/dst' strings, found {src!r}: {dst!r}"
            )
        check_no_nul(src, where / "add")
        check_no_nul(dst, where / "add" / src)
        source = _inside(root, src, where / "add" / src, must_exist=True, what="hidden file")
        if not source.is_file():
            raise (where / "add" / src).fail(f"hidden file {src!r} must be a file, found a folder or a special file")
        if PurePosixPath(dst).is_absolute() or ".." in PurePosixPath(dst).parts:
            raise (where / "add" / src).fail(f"destination {dst!r} must be relative to the workspace, without '..'")
        add.append((src, dst))
    return Gate(
        id=gid,
        run=run,
        expect_exit=get_number(raw, "expect_exit", where, 0, integer=True, minimum=0, maximum=255),
        timeout_s=float(get_number(raw, "timeout_s", where, 120.0, minimum=0.1, maximum=MAX_TIMEOUT_S)),
        add=tuple(add),
        guard=get_bool(raw, "guard", where, False),
        description=get_str(raw, "description", where, "") or "",
    )


def load_packet(path: Path | str, *, prompt_warn_bytes: int | None = PROMPT_WARN_BYTES) -> Packet:
    """Load and validate one packet from its folder or its ``packet.yaml``.

    A prompt over ``prompt_warn_bytes`` (None: no cap) warns with :class:`PacketWarning`.
    """
    path = Path(path)
    file = path if path.name == PACKET_FILE else path / PACKET_FILE
    root = file.parent
    where = Where(file, error=PacketError)
    data = load_yaml_mapping(file, where)
    check_keys(
        data,
        where,
        required={"id", "kind", "title", "workspace", "gates"},
        optional=_PACKET_KEYS - {"id", "kind", "title", "workspace", "gates"},
    )
    pid = get_str(data, "id", where, required=True)
    assert pid is not None
    if not _ID_RE.match(pid):
        raise (where / "id").fail(
            f"{pid!r} is not a valid packet id: use lowercase letters, digits, "
            "'-', '_', '.' (it becomes part of test ids)"
        )
    kind = get_str(data, "kind", where, required=True)
    if kind not in KINDS:
        raise (where / "kind").fail(f"expected one of {', '.join(KINDS)}, found {kind!r}")
    version = get_number(data, "version", where, 1, integer=True, minimum=1)
    title = get_str(data, "title", where, required=True)
    prompt = _load_task(data, where, root, prompt_warn_bytes)  # checked in file order: the first problem is reported
    workspace = _load_workspace(data, where, root)
    limits = _load_limits(data, where)
    phases = _load_phases(data, where, root, prompt, limits, prompt_warn_bytes)
    gates = _load_gates(data, where, root)
    reference = None
    if data.get("reference") is not None:
        reference = _inside(
            root, get_str(data, "reference", where) or "", where / "reference", must_exist=True, what="reference"
        )
        if not reference.is_file():
            raise (where / "reference").fail(
                f"{reference} is not a file: give the patch file (`git diff` of the workspace)"
            )
    tags = _strings(data, "tags", where)
    get_str(data, "description", where, "")
    return Packet(
        id=pid,
        kind=kind or "",
        version=version,
        title=title or "",
        prompt=prompt,
        root=root.resolve(),
        workspace=workspace,
        limits=limits,
        gates=gates,
        reference=reference,
        tags=tags,
        protect=_globs(data, "protect", where),
        allow=_globs(data, "allow", where),
        phases=phases,
    )


def _strings(data: dict[str, Any], key: str, where: Where) -> tuple[str, ...]:
    values = data.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise (where / key).fail(f"expected a list of strings, found {type_name(values)}")
    return tuple(values)


def _globs(data: dict[str, Any], key: str, where: Where) -> tuple[str, ...]:
    """Workspace-relative globs (``tests/**``, ``conftest.py``): relative, no ``..``."""
    globs = _strings(data, key, where)
    for glob in globs:
        if not glob or PurePosixPath(glob).is_absolute() or ".." in PurePosixPath(glob).parts:
            raise (where / key).fail(
                f"expected globs relative to the workspace (e.g. 'tests/**'), found {glob!r}: "
                "no absolute paths, no '..'"
            )
    return globs


def _load_task(data: dict[str, Any], where: Where, root: Path, cap: int | None) -> str:
    """The packet's prompt ("" for a packet with phases that gives none), warned about when large."""
    prompt = _load_prompt(data, where, root, required=data.get("phases") is None)
    if prompt:
        _warn_if_large(prompt, cap, where / ("prompt" if "prompt" in data else "prompt_file"))
    return prompt


def _load_prompt(data: dict[str, Any], where: Where, root: Path, *, required: bool = True) -> str:
    """The text of ``prompt`` or of the file ``prompt_file`` names (a packet's or a phase's); "" when
    neither is given and none is ``required``."""
    has_prompt, has_file = data.get("prompt") is not None, data.get("prompt_file") is not None
    if not required and not has_prompt and not has_file:
        return ""
    if has_prompt == has_file:
        if not required:
            raise where.fail("give at most one of 'prompt' (the text) or 'prompt_file' (a file in the packet)")
        raise where.fail("give exactly one of 'prompt' (the text) or 'prompt_file' (a file in the packet)")
    if has_prompt:
        return get_str(data, "prompt", where, required=True) or ""
    at = where / "prompt_file"
    pfile = _inside(
        root, get_str(data, "prompt_file", where, required=True) or "", at, must_exist=True, what="prompt file"
    )
    if not pfile.is_file():  # a folder, or a FIFO that would block the read forever
        raise at.fail(f"{pfile} is not a regular file: give the file that holds the prompt (e.g. PROMPT.md)")
    raw = pfile.read_bytes()
    try:
        prompt = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise at.fail(
            f"{pfile} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} cannot be read; save it as UTF-8"
        ) from None
    if not prompt.strip():
        raise at.fail(f"{pfile} is empty: write the task in it, or use 'prompt'")
    check_no_nul(prompt, at)
    return prompt


def _warn_if_large(prompt: str, cap: int | None, where: Where) -> None:
    size = len(prompt.encode("utf-8"))
    if cap is not None and size > cap:
        warnings.warn(
            PacketWarning(
                f"{where}: the prompt is {size / 1024:,.0f} KiB (about {size // 4:,} tokens), over the "
                f"{cap / 1024:,.0f} KiB warning cap: it may not fit a model's context; shorten it, or raise "
                "the cap (ini agentbench_prompt_warn_kb, or --prompt-warn-kb) if that is intended"
            ),
            stacklevel=3,
        )


def _load_workspace(data: dict[str, Any], where: Where, root: Path) -> Path:
    ws_rel = get_str(data, "workspace", where, required=True) or ""
    workspace = _inside(root, ws_rel, where / "workspace", must_exist=True, what="workspace folder")
    if not workspace.is_dir():
        raise (where / "workspace").fail(f"{ws_rel!r} must be a folder (the repo copied into the sandbox)")

    return workspace


def _load_limits(data: dict[str, Any], where: Where) -> Limits:
    lim_raw = get_mapping(data, "limits", where)
    check_keys(lim_raw, where / "limits", required=set(), optional=_LIMIT_KEYS)
    d = Limits()
    return Limits(
        max_turns=get_number(lim_raw, "max_turns", where / "limits", d.max_turns, integer=True, minimum=1),
        timeout_s=float(
            get_number(lim_raw, "timeout_s", where / "limits", d.timeout_s, minimum=1, maximum=MAX_TIMEOUT_S)
        ),
        max_output_tokens=get_number(
            lim_raw, "max_output_tokens", where / "limits", d.max_output_tokens, integer=True, minimum=1
        ),
        max_total_tokens=get_number(
            lim_raw, "max_total_tokens", where / "limits", None, integer=True, minimum=MIN_TOTAL_TOKENS
        ),
    )


def _load_phases(
    data: dict[str, Any], where: Where, root: Path, task: str, limits: Limits, prompt_warn_bytes: int | None
) -> tuple[Phase, ...]:
    """``phases:``: a non-empty list of sessions with unique ids (rules: docs/packets.md "Phases"); () if none."""
    raw = data.get("phases")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise (where / "phases").fail(
            f"expected a non-empty list of phases (each with 'id' and 'prompt' or 'prompt_file'), "
            f"found {type_name(raw)}; leave 'phases' out for a packet of one session"
        )
    phases: list[Phase] = []
    for i, item in enumerate(raw):
        at = where / "phases" / i
        phase = _load_phase(item, at, root, task, limits)
        if any(p.id == phase.id for p in phases):
            raise (at / "id").fail(f"duplicate phase id {phase.id!r}: phase ids must be unique within the packet")
        _warn_if_large(phase.prompt, prompt_warn_bytes, at)
        phases.append(phase)
    return tuple(phases)


def _load_phase(raw: Any, where: Where, root: Path, task: str, limits: Limits) -> Phase:
    if not isinstance(raw, dict):
        raise where.fail(f"expected a mapping with 'id' and 'prompt' or 'prompt_file', found {type_name(raw)}")
    check_keys(raw, where, required={"id"}, optional=_PHASE_KEYS - {"id"})
    pid = get_str(raw, "id", where, required=True) or ""
    if not _ID_RE.match(pid):
        raise (where / "id").fail(
            f"{pid!r} is not a valid phase id: use lowercase letters, digits, '-', '_', '.' (e.g. plan, implement)"
        )
    own = _load_prompt(raw, where, root)
    return Phase(
        id=pid,
        prompt=f"{task.rstrip()}\n\n{own}" if task.strip() else own,
        tools=_phase_tools(raw, where),
        max_turns=get_number(raw, "max_turns", where, limits.max_turns, integer=True, minimum=1),
        description=get_str(raw, "description", where, "") or "",
    )


def _phase_tools(raw: dict[str, Any], where: Where) -> tuple[str, ...] | None:
    """A phase's ``tools``: built-in tool names, each once; ``finish`` is added (always offered)."""
    if raw.get("tools") is None:
        return None
    at = where / "tools"
    names = raw["tools"]
    known = ", ".join(TOOL_NAMES)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise at.fail(f"expected a non-empty list of tool names out of {known}, found {type_name(names)}")
    for name in names:
        if name not in TOOL_NAMES:
            raise at.fail(f"unknown tool {name!r}: the built-in tools are {known}")
        if names.count(name) > 1:
            raise at.fail(f"tool {name!r} is listed twice: name each tool once")
    return tuple(n for n in TOOL_NAMES if n in names or n == ALWAYS_OFFERED)


def _load_gates(data: dict[str, Any], where: Where, root: Path) -> tuple[Gate, ...]:
    gates_raw = data.get("gates")
    if not isinstance(gates_raw, list) or not gates_raw:
        raise (where / "gates").fail(f"expected a non-empty list of gates, found {type_name(gates_raw)}")
    gates = tuple(_load_gate(g, where / "gates" / i, root) for i, g in enumerate(gates_raw))
    seen: set[str] = set()
    for i, gate in enumerate(gates):
        if gate.id in seen:
            raise (where / "gates" / i / "id").fail(f"duplicate gate id {gate.id!r}: gate ids must be unique")
        seen.add(gate.id)
    return gates


def find_packet_files(folders: Iterable[Path]) -> list[Path]:
    """Every ``packet.yaml`` below the folders, sorted; folders inside a packet are not searched."""
    found: list[Path] = []
    for folder in folders:
        if (folder / PACKET_FILE).is_file():
            found.append(folder / PACKET_FILE)
            continue
        for file in sorted(folder.rglob(PACKET_FILE)):
            if not any(
                (parent / PACKET_FILE).is_file()
                for parent in file.parent.parents
                if folder in parent.parents or parent == folder
            ):
                found.append(file)
    return sorted(set(found))


@dataclass(frozen=True)
class Loaded:
    """One ``packet.yaml`` loaded on its own: the packet, or why it does not load; its warnings either way."""

    file: Path
    packet: Packet | None = None
    error: str = ""
    warnings: tuple[str, ...] = ()


def load_each(files: Iterable[Path], *, prompt_warn_bytes: int | None = PROMPT_WARN_BYTES) -> list[Loaded]:
    """Load every file on its own, in order: one that does not load, or repeats an id, never stops the rest."""
    out: list[Loaded] = []
    seen: dict[str, Path] = {}
    for file in files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PacketWarning)
            try:
                packet: Packet | None = load_packet(file, prompt_warn_bytes=prompt_warn_bytes)
                error = ""
            except ConfigError as exc:
                packet, error = None, str(exc)
        notes = tuple(str(w.message) for w in caught if issubclass(w.category, PacketWarning))
        for other in caught:
            if not issubclass(other.category, PacketWarning):
                warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
        if packet is not None and packet.id in seen:
            packet, error = (
                None,
                (
                    f"{file}: id: duplicate packet id {packet.id!r}, also used by {seen[packet.id]}; "
                    "packet ids must be unique"
                ),
            )
        elif packet is not None:
            seen[packet.id] = file
        out.append(Loaded(file, packet, error, notes))
    return out


def discover_packets(folders: Iterable[Path | str]) -> list[Packet]:
    """Load every packet below ``folders``, sorted by id; duplicate ids are an error."""
    dirs = [Path(f) for f in folders]
    for d in dirs:
        if not d.is_dir():
            raise PacketError(f"packets folder {str(d)!r} does not exist: check --packets / agentbench_packets")
    packets = [load_packet(f) for f in find_packet_files(dirs)]
    by_id: dict[str, Packet] = {}
    for p in packets:
        if p.id in by_id:
            raise PacketError(
                f"{p.file}: id: duplicate packet id {p.id!r}, also used by {by_id[p.id].file}; "
                "packet ids must be unique"
            )
        by_id[p.id] = p
    return sorted(packets, key=lambda p: p.id)


def packet_root_of(path: Path, stop: Path | None = None) -> Path | None:
    """The packet folder that contains ``path`` (not counting ``path`` itself), if any."""
    for parent in path.parents:
        if (parent / PACKET_FILE).is_file():
            return parent
        if stop is not None and parent == stop:
            break
    return None
