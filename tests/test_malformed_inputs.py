"""Malformed inputs never crash the tools: each bad packet or models.yaml is rejected naming the file, the key
and the fix (never a traceback), and the good packet beside them is still validated, checked and collected.

One folder holds the good packet and every bad packet variant side by side; `agentbench validate`,
`agentbench check-packets` and pytest's collection each run over it once, and every variant is then looked
up in that one output.
"""

from __future__ import annotations

import copy
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.cli import main as agentbench
from pytest_agentbench.errors import ConfigError, ModelsFileError, PacketError, PacketWarning
from pytest_agentbench.models.registry import load_models
from pytest_agentbench.packets.schema import PACKET_FILE, find_packet_files, load_each, load_packet
from pytest_agentbench.packets.selfcheck import check_paths, format_table
from pytest_agentbench.sandbox import LocalSandbox

pytest_plugins = ["pytester"]

GOOD = """\
id: {id}
kind: bug-fix
title: Fix add()
prompt: add(2, 3) returns -1; it should return 5.
workspace: repo/
limits: {{max_turns: 5, timeout_s: 60}}
gates:
  - id: fixed
    run: PYTHONPATH=. python .gates/check.py
    add: {{hidden/check.py: .gates/check.py}}
  - id: imports
    run: python -c 'import calc'
    guard: true
reference: solution.patch
"""
PATCH = """\
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""


def write_packet(root: Path, text: str | bytes) -> Path:
    """A small valid-but-for-``text`` packet in ``root``: a workspace, a hidden check, a reference."""
    (root / "repo").mkdir(parents=True)
    (root / "repo" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "hidden").mkdir()
    (root / "hidden" / "check.py").write_text("from calc import add\n\nassert add(2, 3) == 5\n")
    (root / "solution.patch").write_text(PATCH)
    (root / "docs").mkdir()
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    (root / PACKET_FILE).write_bytes(data)
    return root


@dataclass(frozen=True)
class Variant:
    name: str  # also the packet's folder and id
    key: str  # the key (or line) the message must name
    fix: str  # words of the fix the message must give
    text: Callable[[str], str | bytes]  # the good packet.yaml -> the bad one
    setup: Callable[[Path], None] = lambda root: None  # extra files in the packet folder


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def fifo(root: Path) -> None:
    os.mkfifo(root / "PROMPT.md")  # reading it would block forever


PROMPT_FILE = replace("prompt: add(2, 3) returns -1; it should return 5.", "prompt_file: PROMPT.md")
PACKET_VARIANTS = [
    Variant("nul-in-run", "gates[0].run", "remove it", replace("run: PYTHONPATH", 'run: "\\0"\n    # ')),
    Variant("nul-in-run-middle", "gates[1].run", "NUL byte", replace("python -c 'import calc'", '"python\\0 -V"')),
    Variant(
        "prompt-not-utf8",
        "prompt_file",
        "save it as UTF-8",
        PROMPT_FILE,
        lambda root: (root / "PROMPT.md").write_bytes(b"Fix add()\n\xff\xfe\n"),
    ),
    Variant(
        "prompt-is-folder",
        "prompt_file",
        "give the file",
        replace("prompt: add(2, 3) returns -1; it should return 5.", "prompt_file: docs"),
    ),
    Variant("prompt-is-fifo", "prompt_file", "give the file", PROMPT_FILE, fifo),
    Variant(
        "prompt-empty",
        "prompt_file",
        "write the task in it",
        PROMPT_FILE,
        lambda root: (root / "PROMPT.md").write_text("\n \n"),
    ),
    Variant(
        "prompt-outside",
        "prompt_file",
        "outside the packet folder",
        PROMPT_FILE,
        lambda root: (root / "PROMPT.md").symlink_to("/etc/hostname"),
    ),
    Variant(
        "prompt-path-nul",
        "prompt_file",
        "remove it",
        replace("prompt: add(2, 3) returns -1; it should return 5.", 'prompt_file: "P\\0.md"'),
    ),
    Variant(
        "yaml-not-utf8",
        "line 3, column 15",
        "save the file as UTF-8",
        lambda t: t.encode().replace(b"add()", b"add\xe9()"),
    ),
    Variant("yaml-control-char", "line 3", "remove it", replace("Fix add()", "Fix \x01add()")),
    Variant("yaml-syntax", "line 9", "check the indentation", replace("gates:\n", "gates:\n  - id: [oops\n")),
    Variant("yaml-top-level-list", "packet.yaml", "lines of 'key: value'", lambda t: "- a\n- b\n"),
    Variant("duplicate-key", "duplicate key 'title'", "remove or rename", append("title: Another\n")),
    Variant(
        "duplicate-gate-key",
        "duplicate key 'run'",
        "remove or rename",
        replace("    guard: true\n", "    guard: true\n    run: 'true'\n"),
    ),
    Variant("alias-cycle", "line", "write the value out", append("tags: &t [*t]\n")),
    Variant(
        "alias-bomb",
        "line",
        "write the values out",
        append(
            "description: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"x{i}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
                for i, (p, c) in enumerate(zip("abcd", "bcde", strict=True))
            )
        ),
    ),
    Variant("nan-limit", "limits.timeout_s", "write a plain number", replace("timeout_s: 60", "timeout_s: .nan")),
    Variant(
        "inf-gate-timeout", "gates[0].timeout_s", "finite", replace("    add: {", "    timeout_s: .inf\n    add: {")
    ),
    Variant("huge-timeout", "limits.timeout_s", "<= 604800", replace("timeout_s: 60", "timeout_s: 1.0e+12")),
    Variant(
        "exit-over-255", "gates[0].expect_exit", "<= 255", replace("    add: {", "    expect_exit: 256\n    add: {")
    ),
    Variant("zero-turns", "limits.max_turns", ">= 1", replace("max_turns: 5", "max_turns: 0")),
    Variant("unknown-key", "unknown key(s) 'gate'", "allowed keys", append("gate: []\n")),
    Variant("bad-kind", "kind", "expected one of bug-fix", replace("kind: bug-fix", "kind: bugfix")),
    Variant("no-title", "missing required key(s) 'title'", "title", replace("title: Fix add()\n", "")),
    Variant("bad-id-chars", "id", "use lowercase letters", lambda t: t.replace("id: bad-id-chars", "id: Bad Id", 1)),
    Variant("no-workspace", "workspace", "does not exist", replace("workspace: repo/", "workspace: src/")),
    Variant("hidden-is-folder", "gates[0].add.hidden", "must be a file", replace("{hidden/check.py: ", "{hidden: ")),
    Variant("hidden-dest-nul", "gates[0].add.hidden/check.py", "remove it", replace(".gates/check.py}", '"a\\0b"}')),
    Variant(
        "hidden-dest-escapes", "gates[0].add.hidden/check.py", "without '..'", replace(".gates/check.py}", "../x.py}")
    ),
    Variant(
        "reference-is-folder",
        "reference",
        "give the patch file",
        replace("reference: solution.patch", "reference: docs"),
    ),
    Variant("run-not-a-string", "gates[1].run", "expected a string", replace("python -c 'import calc'", "5")),
    Variant("tags-not-a-list", "tags", "expected a list of strings", append("tags: fast\n")),
    Variant("duplicate-gate-id", "gates[1].id", "must be unique", replace("  - id: imports", "  - id: fixed")),
    Variant(
        "zz-duplicate-packet-id",
        "duplicate packet id 'good'",
        "must be unique",
        lambda t: t.replace("id: zz-duplicate-packet-id", "id: good", 1),
    ),
]
IDS = [v.name for v in PACKET_VARIANTS]


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


def build_suite(base: Path) -> Path:
    """``base/good`` and one folder per variant (folder name = variant name = packet id)."""
    write_packet(base / "good", GOOD.format(id="good"))
    for v in PACKET_VARIANTS:
        root = base / v.name
        write_packet(root, v.text(GOOD.format(id=v.name)))
        v.setup(root)
    return base


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_suite(tmp_path_factory.mktemp("suite") / "packets")


def variant_file(suite: Path, name: str) -> Path:
    return suite / name / PACKET_FILE


# -- loading, one variant at a time --------------------------------------------------------------------------------


def test_there_are_at_least_30_variants() -> None:
    assert len(PACKET_VARIANTS) + len(MODELS_VARIANTS) >= 30
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("variant", PACKET_VARIANTS, ids=IDS)
def test_packet_variant_is_rejected_naming_file_key_and_fix(suite: Path, variant: Variant) -> None:
    good, bad = load_each([variant_file(suite, "good"), variant_file(suite, variant.name)])
    assert good.packet is not None and good.packet.id == "good", good.error
    assert bad.packet is None, f"{variant.name} loaded"
    assert str(variant_file(suite, variant.name)) in bad.error
    assert variant.key in bad.error and variant.fix in bad.error, bad.error
    no_traceback(bad.error)


# -- the three entry points over the whole folder ------------------------------------------------------------------


@pytest.fixture(scope="module")
def validate_output(suite: Path) -> tuple[int, str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = agentbench(["validate", str(suite), "--models-file", str(suite / "none.yaml")])
    return rc, out.getvalue()


@pytest.mark.parametrize("variant", PACKET_VARIANTS, ids=IDS)
def test_validate_gives_each_variant_its_verdict(
    validate_output: tuple[int, str], suite: Path, variant: Variant
) -> None:
    rc, out = validate_output
    lines = [line for line in out.splitlines() if line.startswith(f"FAIL {variant_file(suite, variant.name)}")]
    assert len(lines) == 1, out
    assert variant.key in lines[0] and variant.fix in lines[0], lines[0]
    assert rc == 1


def test_validate_lists_the_good_packet_and_counts(validate_output: tuple[int, str], suite: Path) -> None:
    rc, out = validate_output
    no_traceback(out)
    assert f"ok   {(suite / 'good' / PACKET_FILE).resolve()}: good (bug-fix, 2 gate(s))" in out
    n = len(PACKET_VARIANTS)
    assert f"{n + 1} packet(s): 1 ok, {n} invalid" in out
    assert "FAIL" in out.splitlines()[0] and "none.yaml: file not found" in out.splitlines()[0]


@pytest.fixture(scope="module")
def checks(suite: Path) -> dict[str, Any]:
    return {c.path.name: c for c in check_paths([suite], LocalSandbox, jobs=2)}


@pytest.mark.parametrize("variant", PACKET_VARIANTS, ids=IDS)
def test_check_packets_refuses_each_variant(checks: dict[str, Any], variant: Variant) -> None:
    check = checks[variant.name]
    assert not check.valid
    (problem,) = check.problems
    assert problem.startswith("does not load:") and variant.key in problem and variant.fix in problem, problem


def test_check_packets_still_checks_the_good_packet(checks: dict[str, Any]) -> None:
    good = checks["good"]
    assert good.valid, format_table([good])
    assert [(g.id, g.before.passed, g.after.passed) for g in good.gates] == [
        ("fixed", False, True),
        ("imports", True, True),
    ]
    table = format_table(list(checks.values()))
    no_traceback(table)
    assert f"{len(PACKET_VARIANTS) + 1} packet(s) checked: 1 valid, {len(PACKET_VARIANTS)} invalid" in table


def test_pytest_collects_the_good_packet_and_reports_each_bad_one(pytester: pytest.Pytester, suite: Path) -> None:
    build_suite(pytester.path / "packets")
    pytester.path.joinpath("models.yaml").write_text("models:\n  m: {model: x, base_url: 'http://127.0.0.1:9/v1'}\n")
    result = pytester.runpytest("--models=m", "--packets", "packets", "--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    no_traceback(out)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "packets/good/packet.yaml::test_packet[good-m]" in out
    sections = out.split("ERROR collecting ")
    for variant in PACKET_VARIANTS:
        (section,) = [s for s in sections if s.startswith(f"packets/{variant.name}/packet.yaml")]
        assert variant.key in section and variant.fix in section, section
        assert f"--ignore=packets/{variant.name}" in section  # how to run the rest meanwhile
    # ... and, as the message says, the good packet runs with the broken ones left out
    result = pytester.runpytest(
        "--models=m", "--packets", "packets", "--continue-on-collection-errors", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(["packets/good/packet.yaml::test_packet[good-m]", "*This packet is left out*"])


# -- models.yaml ---------------------------------------------------------------------------------------------------

SECRET = "sk-proj-Ab12Cd34Ef56Gh78Ij90"
MODELS_GOOD = """\
models:
  local:
    model: my-model
    base_url: http://127.0.0.1:8000/v1
    timeout_s: 30
    retries: {timeout: {attempts: 1, backoff_s: 1}}
  other:
    model: other-model
    base_url: http://127.0.0.1:8001/v1
"""
MODELS_VARIANTS = [
    (
        "duplicate-alias",
        "duplicate key 'local'",
        "remove or rename",
        append("  local:\n    model: x\n    base_url: http://h/v1\n"),
    ),
    ("port-out-of-range", "models.local.base_url", "port from 1 to 65535", replace(":8000/", ":99999/")),
    ("port-zero", "models.local.base_url", "port from 1 to 65535", replace(":8000/", ":0/")),
    ("port-not-a-number", "models.local.base_url", "port from 1 to 65535", replace(":8000/", ":80x0/")),
    ("no-host", "models.local.base_url", "such as http://127.0.0.1:8000/v1", replace("127.0.0.1:8000", ":8000")),
    (
        "key-as-api-key-env",
        "models.local.api_key_env",
        "NAME of an environment variable",
        replace("    timeout_s: 30\n", f"    timeout_s: 30\n    api_key_env: {SECRET}\n"),
    ),
    (
        "key-as-a-number",
        "models.local.max_tokens",
        "expected an integer",
        replace("    timeout_s: 30\n", f"    timeout_s: 30\n    max_tokens: {SECRET}\n"),
    ),
    (
        "nan-temperature",
        "models.local.temperature",
        "finite",
        replace("    timeout_s: 30\n", "    timeout_s: 30\n    temperature: .nan\n"),
    ),
    ("inf-timeout", "models.local.timeout_s", "finite", replace("timeout_s: 30", "timeout_s: .inf")),
    ("nan-backoff", "models.local.retries.timeout.backoff_s", "finite", replace("backoff_s: 1", "backoff_s: .nan")),
    ("nul-in-model", "models.local.model", "remove it", replace("my-model", '"my\\0model"')),
    ("not-utf8", "line 3", "save the file as UTF-8", lambda t: t.encode().replace(b"my-model", b"my\xe9model")),
    (
        "alias-not-a-name",
        "alias 1 is an integer",
        "such as local-coder",
        append("  1: {model: x, base_url: 'http://h/v1'}\n"),
    ),
]
MODELS_IDS = [v[0] for v in MODELS_VARIANTS]


@pytest.mark.parametrize(("name", "key", "fix", "edit"), MODELS_VARIANTS, ids=MODELS_IDS)
def test_models_variant_is_rejected_naming_file_key_and_fix_without_the_key(
    tmp_path: Path, name: str, key: str, fix: str, edit: Callable[[str], str | bytes]
) -> None:
    path = tmp_path / "models.yaml"
    text = edit(MODELS_GOOD)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ModelsFileError) as exc:
        load_models(path)
    message = str(exc.value)
    assert str(path) in message and key in message and fix in message, message
    assert SECRET not in message and "Ab12Cd34" not in message, message
    no_traceback(message)


def test_validate_with_a_bad_models_file_still_validates_the_packets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_packet(tmp_path / "packets" / "good", GOOD.format(id="good"))
    models = tmp_path / "models.yaml"
    models.write_text(MODELS_GOOD.replace("    timeout_s: 30\n", f"    timeout_s: 30\n    api_key_env: {SECRET}\n"))
    assert agentbench(["validate", "--packets", str(tmp_path / "packets"), "--models-file", str(models)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "models.local.api_key_env" in out and SECRET not in out
    assert ": good (bug-fix, 2 gate(s))" in out and "1 packet(s): 1 ok, 0 invalid" in out


# -- folders, CI, and the prompt size cap --------------------------------------------------------------------------


def test_validate_takes_folders_positionally_and_refuses_missing_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_packet(tmp_path / "a" / "one", GOOD.format(id="one"))
    write_packet(tmp_path / "b" / "two", GOOD.format(id="two"))
    assert agentbench(["validate", str(tmp_path / "a"), "--packets", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert ": one (bug-fix" in out and ": two (bug-fix" in out
    (tmp_path / "empty").mkdir()
    assert agentbench(["validate", str(tmp_path / "a"), str(tmp_path / "nope"), str(tmp_path / "empty")]) == 2
    out = capsys.readouterr().out
    assert f"FAIL {tmp_path / 'nope'}: no such folder" in out
    assert f"FAIL {tmp_path / 'empty'}: no packet.yaml found" in out
    assert ": one (bug-fix" in out  # the folder that exists is still validated


def test_check_packets_checks_the_folders_that_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_packet(tmp_path / "a" / "one", GOOD.format(id="one"))
    assert agentbench(["check-packets", str(tmp_path / "nope"), str(tmp_path / "a"), "--sandbox", "local"]) == 2
    captured = capsys.readouterr()
    assert "no such folder" in captured.err and "1 packet(s) checked: 1 valid" in captured.out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--packets", "nope"], "*--packets: */nope does not exist; pass the folder that holds your packets*"),
        (["--packets", "empty"], "*--packets: */empty holds no packet.yaml*packet-template*"),
    ],
)
def test_packets_option_naming_no_packets_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    (pytester.path / "empty").mkdir()
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_ini_packets_naming_a_missing_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nagentbench_packets = gone\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini agentbench_packets: */gone does not exist*"])


def test_ci_without_models_is_a_usage_error_not_a_green_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_packet(pytester.path / "packets" / "good", GOOD.format(id="good"))
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("--packets", "packets")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*CI=true: this run would collect 1 packet(s)*selects no model alias*--models=ALIAS*"])
    # listing the packets is fine, and so is a CI job that collects no packet at all
    assert pytester.runpytest("--packets", "packets", "--collect-only").ret == pytest.ExitCode.OK
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    assert pytester.runpytest("test_plain.py").ret == pytest.ExitCode.OK
    monkeypatch.delenv("CI")
    pytester.runpytest("--packets", "packets").assert_outcomes(passed=1, skipped=1)


def test_a_large_prompt_warns_where_the_cap_is_configured(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_packet(
        pytester.path / "packets" / "big", GOOD.format(id="big").replace("prompt: add", "prompt_file: P.md\n#")
    )
    (root / "P.md").write_text("Fix add(). " + "x" * 70 * 1024)
    with pytest.warns(PacketWarning, match=r"packet.yaml: prompt_file: the prompt is 70 KiB.*over the 64 KiB"):
        load_packet(root)
    load_packet(root, prompt_warn_bytes=128 * 1024)  # under a raised cap: no warning (warnings are errors here)
    assert agentbench(["validate", str(pytester.path / "packets")]) == 0  # no models.yaml here: packets only
    assert "warn " in capsys.readouterr().out
    assert agentbench(["validate", str(pytester.path / "packets"), "--prompt-warn-kb", "0"]) == 0
    assert "warn " not in capsys.readouterr().out
    result = pytester.runpytest("--packets", "packets", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*PacketWarning*the prompt is 70 KiB*agentbench_prompt_warn_kb*"])
    pytester.makeini("[pytest]\nagentbench_prompt_warn_kb = 100\n")
    assert "PacketWarning" not in pytester.runpytest("--packets", "packets", "--collect-only", "-q").stdout.str()


# -- nothing a value can hold crashes the loaders ------------------------------------------------------------------

WEIRD = [".nan", ".inf", "-1", "[]", "{}", "null", '"a\\0b"', "true", "2020-01-01", "!!binary aGk=", "{1: 2}",
         "[[[]]]", "'../../etc/passwd'", "'/etc/passwd'", "'.'", "''", "'hidden'", "'http://h:99999/v1'", "&a [*a]",
         "99999999999999999999999"]  # fmt: skip


def _key_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        out += [prefix + (key,), *_key_paths(value, prefix + (key,))]
    return out


def _mutants(good: dict[str, Any]) -> list[str]:
    texts = []
    for path in _key_paths(good):
        for weird in WEIRD:
            data = copy.deepcopy(good)
            target = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = "@@"
            texts.append(yaml.safe_dump(data).replace("'@@'", weird))
    return texts


def test_no_value_in_any_key_crashes_the_packet_loader(tmp_path: Path) -> None:
    root = write_packet(tmp_path / "p", "")
    good = yaml.safe_load(GOOD.format(id="fuzz"))
    for text in _mutants(good):
        (root / PACKET_FILE).write_text(text)
        try:
            load_packet(root)
        except PacketError as exc:
            assert str(root / PACKET_FILE) in str(exc), text
        except Exception as exc:  # pragma: no cover - the failure message is the report
            pytest.fail(f"{type(exc).__name__}: {exc} for:\n{textwrap.indent(text, '    ')}")


def test_no_value_in_any_key_crashes_the_models_loader(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    good = yaml.safe_load(MODELS_GOOD)
    good["models"]["other"].update(serve={"engine": "vllm", "model_path": "m", "devices": "0", "args": {"a": 1}})
    for text in _mutants(good):
        path.write_text(text)
        try:
            load_models(path)
        except ConfigError as exc:
            assert str(path) in str(exc), text
        except Exception as exc:  # pragma: no cover
            pytest.fail(f"{type(exc).__name__}: {exc} for:\n{textwrap.indent(text, '    ')}")


def test_find_packet_files_sees_every_variant(suite: Path) -> None:
    assert len(find_packet_files([suite])) == len(PACKET_VARIANTS) + 1


def test_a_path_inside_a_packet_is_a_usage_error_with_the_fix(pytester: pytest.Pytester) -> None:
    root = write_packet(pytester.path / "packets" / "good", GOOD.format(id="good"))
    (root / "repo" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_sub():\n    assert add(3, 2) == 1\n"
    )
    result = pytester.runpytest("packets/good/repo", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*packets/good/repo is inside the task packet*pytest -p no:agentbench packets/good/repo"]
    )
    pytester.runpytest(
        "-p", "no:agentbench", "-p", "no:cacheprovider", "--rootdir", str(root / "repo"), str(root / "repo")
    ).assert_outcomes(passed=1)
