"""The aider adapter (agents/external/aider.py): its command line, environment and files for a session,
how it reads aider's exit, and real aider runs in the docker sandbox through the measuring gateway.

The real runs (``docker``, ``slow``) use the image the plugin builds (``ensure_agent_image`` of
``Aider().install``: aider-chat's wheels fetched on the host, installed offline in the image, cached
by recipe hash; the first build takes about 30 s, each run after it seconds). The session runs as
the plugin runs it (``agents.external.session``: the forwarder, the launcher, the sandbox's wall
clock). Their upstream is tests/gateway_doubles.Wire, which logs every request and answers
chat-completion streams with usage; the last test runs aider through the plugin on bugfix-median
against the scripted double (tests/agent_runs.py).
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.external.adapter import Finish, Session
from pytest_agentbench.agents.external.aider import BUDGET_NOTE, DEFAULT_VERSION, Aider
from pytest_agentbench.agents.external.session import new_session, run_session
from pytest_agentbench.agents.external.trial import WORKSPACE
from pytest_agentbench.sandbox.base import ExecResult
from pytest_agentbench.serving.gateway import GatewayClient

from .agent_runs import STATE, agent_session, assert_reconciled, plugin_run
from .conftest import BUGFIX
from .gateway_doubles import Wire, answer, route, running, sse


def session(**kw: Any) -> Session:
    base = {"prompt": "Fix median() for even-length input.", "token": "agb-run-secret-token", "model": "served-model"}
    return agent_session(**(base | {"max_turns": 6} | kw))


# -- command line, environment, files ------------------------------------------------------------------
def test_install_is_the_pinned_pip_package_and_its_one_executable() -> None:
    adapter = Aider()
    assert (adapter.name, adapter.version, adapter.protocol) == ("aider", DEFAULT_VERSION, "chat")
    assert adapter.install is not None
    assert adapter.install.pip == (f"aider-chat=={DEFAULT_VERSION}",) and adapter.install.bins == ("aider",)
    assert Aider(version="0.86.1").install.pip == ("aider-chat==0.86.1",)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="edit_format 'yaml'"):
        Aider(edit_format="yaml")


def test_argv_runs_one_headless_message_that_never_commits_asks_or_fetches() -> None:
    s = session()
    argv = Aider().argv(s)
    assert argv[:2] == ["sh", "-c"] and argv[3] == f"{STATE}/aider/launch.py"
    args = argv[4:]
    assert args[args.index("--message-file") + 1] == s.prompt_file
    assert args[args.index("--model") + 1] == "openai/served-model"
    assert args[args.index("--edit-format") + 1] == "whole"
    for flag in ("--yes-always", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore", "--no-check-update"):
        assert flag in args
    for flag in ("--no-show-release-notes", "--no-analytics", "--no-fancy-input", "--no-suggest-shell-commands"):
        assert flag in args
    assert "--chat-mode" not in args and "--auto-test" not in args
    # every file aider writes is under the state dir, never the workspace; the token is only in the env
    paths = [args[args.index(o) + 1] for o in args if o.endswith("-file") and o != "--message-file"]
    assert len(paths) == 5 and all(p.startswith(f"{STATE}/aider/") for p in paths)
    assert s.token not in " ".join(argv)
    assert Aider().env(s) == {"HOME": f"{STATE}/aider/home", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def test_a_phase_that_can_change_nothing_runs_in_ask_mode() -> None:
    assert Aider().argv(session(tools=("read_file", "list_files", "finish")))[-2:] == ["--chat-mode", "ask"]
    assert "--chat-mode" not in Aider().argv(session(tools=("read_file", "edit", "finish")))
    assert "--chat-mode" not in Aider().argv(session(tools=("run",)))


def _config(files: dict[str, str]) -> dict[str, Any]:
    source = files[f"{STATE}/aider/launch.py"]
    compile(source, "launch.py", "exec")
    line = next(x for x in source.splitlines() if x.startswith("CONFIG = "))
    return json.loads(eval(line.removeprefix("CONFIG = json.loads(").removesuffix(")")))  # a str literal


def test_files_set_the_turn_cap_the_output_cap_and_the_models_metadata() -> None:
    files = Aider().files(session(max_turns=5, max_output_tokens=777))
    assert set(files) == {f"{STATE}/aider/{n}" for n in ("launch.py", "model-settings.yml", "model-metadata.json")}
    config = _config(files)
    assert config["max_reflections"] == 4 and config["tags_cache"] == f"{STATE}/aider/tags-cache"
    settings = json.loads(files[f"{STATE}/aider/model-settings.yml"])
    gateway = {"api_base": "http://127.0.0.1:8765/v1", "api_key": "agb-run-secret-token"}
    assert settings == [{"name": "openai/served-model", "extra_params": gateway | {"max_tokens": 777}}]
    metadata = json.loads(files[f"{STATE}/aider/model-metadata.json"])
    assert metadata["openai/served-model"]["litellm_provider"] == "openai"
    plain = Aider().files(session(max_turns=1))
    assert _config(plain)["max_reflections"] == 0
    assert json.loads(plain[f"{STATE}/aider/model-settings.yml"]) == [
        {"name": "openai/served-model", "extra_params": gateway}
    ]


# -- reading the exit --------------------------------------------------------------------------------
BANNER = "Aider v0.86.2\nModel: openai/m with whole edit format\nGit repo: .git with 2 files\n\n"


def ran(stdout: str, exit_code: int = 0, stderr: str = "", timed_out: bool = False) -> ExecResult:
    return ExecResult(exit_code=exit_code, stdout=stdout, stderr=stderr, duration_s=1.0, timed_out=timed_out)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (ran(BANNER + "Tokens: 862 sent, 70 received.\nApplied edit to src/stats.py\n"),
         Finish(True, note="aider: applied edits to src/stats.py")),
        (ran(BANNER + "src/a.py\nOnly 3 reflections allowed, stopping.\n"),
         Finish(False, ended_by="turns", note="aider: turn limit reached (4 model calls)")),
        (ran(BANNER + f"litellm.APIError: APIError: OpenAIException - spent\n{BUDGET_NOTE}\n"),
         Finish(False, note="aider: the token budget is spent")),
        (ran(BANNER + "litellm.AuthenticationError: AuthenticationError: OpenAIException - run has expired\n"
             "The API provider is not able to authenticate you. Check your API key.\n"),
         Finish(False, note="aider: model call failed: AuthenticationError: AuthenticationError: OpenAIException"
                            " - run has expired")),
        (ran("", exit_code=1, stderr="Message file not found: /tmp/x/prompt.md\n"),
         Finish(False, note="aider: exit 1: Message file not found: /tmp/x/prompt.md")),
        (ran("", exit_code=127, stderr="agentbench: aider is not on PATH\n"),
         Finish(False, note="aider: exit 127: agentbench: aider is not on PATH")),
        (ran(BANNER, exit_code=124, timed_out=True), Finish(False, note="aider: stopped at the wall clock (300 s)")),
        (ran(BANNER + "The change is not needed: median() already handles it.\nTokens: 10 sent, 5 received.\n"),
         Finish(True, note="aider: no edit applied: Tokens: 10 sent, 5 received.")),
    ],
)  # fmt: skip
def test_finish_reads_aiders_output(result: ExecResult, expected: Finish) -> None:
    assert Aider().finish(result, session()) == expected


# -- real aider in the docker sandbox, through the gateway ------------------------------------------------
FIXED = "def median(xs):\n    s = sorted(xs)\n    n = len(s)\n    if n % 2:\n        return s[n // 2]\n"
FIXED += "    return (s[n // 2 - 1] + s[n // 2]) / 2\n"
EDIT = f"I will fix even-length input.\n\nsrc/stats.py\n```python\n{FIXED}```\n"


def streamed(text: str, prompt_tokens: int, completion_tokens: int) -> Any:
    """A chat-completions stream of ``text`` in 20-character chunks, then the usage chunk."""
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "a-model"}
    chunks = [base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [
        base | {"choices": [{"index": 0, "delta": {"content": text[i : i + 20]}}]} for i in range(0, len(text), 20)
    ]
    chunks += [base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    chunks += [base | {"choices": [], "usage": usage | {"total_tokens": prompt_tokens + completion_tokens}}]
    return sse(*chunks, b"data: [DONE]\n\n")


def _workspace(root: Path) -> Path:
    """A packet's workspace folder (the sandbox copies it in and makes it a git repo with one commit)."""
    work = root / "workspace"
    (work / "src").mkdir(parents=True)
    (work / "src" / "stats.py").write_text("def median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]\n")
    (work / "tests").mkdir()
    (work / "tests" / "test_stats.py").write_text("from src.stats import median\n\n\ndef test_odd():\n    assert 1\n")
    # a workspace that would configure aider otherwise: another endpoint, commits, its .gitignore entry
    (work / ".env").write_text(
        "OPENAI_BASE_URL=http://127.0.0.1:9/v1\nOPENAI_API_BASE=http://127.0.0.1:9/v1\nOPENAI_API_KEY=sk-workspace\n"
    )
    (work / ".aider.conf.yml").write_text("auto-commits: true\ndirty-commits: true\ngitignore: true\n")
    return work


@pytest.fixture(scope="module")
def aider_image(docker_engine: None) -> Iterator[str]:
    """The agent image the plugin runs aider in (built once, then found by its recipe hash)."""
    from pytest_agentbench.sandbox.docker.agent_image import ensure_agent_image
    from pytest_agentbench.sandbox.docker.engine import connect

    client = connect()
    try:
        yield ensure_agent_image(client, Aider().install)
    finally:
        client.close()


def _sh(box: Any, command: str) -> str:
    done = box.exec(["sh", "-c", command], timeout=60)
    assert done.exit_code == 0, done.output
    return str(done.stdout)


def _aider(
    tmp_path: Path, wire: Wire, image: str, *, max_turns: int = 6, max_total_tokens: int | None = None
) -> dict[str, Any]:
    """One real aider session in the docker sandbox: its result, the run's calls, the alias's totals,
    and what the workspace and the state folder hold afterwards."""
    from pytest_agentbench.sandbox.docker import DockerSandbox
    from pytest_agentbench.sandbox.patch import take_patch

    work = _workspace(tmp_path)
    config = AgentConfig(max_turns=max_turns, timeout_s=120.0, max_output_tokens=512, max_total_tokens=max_total_tokens)
    adapter = Aider()
    with (
        running(route("a", wire.base_url)) as gw,
        GatewayClient(gw.handle()) as client,
        DockerSandbox(work, image=image, gateway_socket=gw.agent_socket) as box,
    ):
        ticket = client.open_run("a", max_total_tokens=max_total_tokens, ttl_s=300, max_calls=max_turns)
        s = new_session("Fix median() for even-length input.", ticket, "served-model", config, workspace=WORKSPACE,
                        tools=None)  # fmt: skip
        start = time.monotonic()
        run = run_session(adapter, s, box, client, ticket, config)
        wall = time.monotonic() - start
        out = {
            "finish": adapter.finish(run.exec, s),
            "result": run.result,
            "calls": run.calls.calls,
            "totals": client.totals()["a"],
            "status": _sh(box, "git status --short --ignored"),
            "log": _sh(box, "git log --oneline"),
            "stats": box.read_file("src/stats.py").decode(),
            "state": sorted(_sh(box, f"ls -A {STATE}/aider").split()),
            "aider_home": sorted(_sh(box, f"ls -A {STATE}/aider/home/.aider").split()),
            "user_home": sorted(_sh(box, "ls -A $HOME").split()),
            "patch": take_patch(box, work),
            "wall": wall,
            "output": run.exec.output,
            "token": ticket.token,
        }
    return out


@pytest.mark.docker
@pytest.mark.slow
def test_real_aider_edits_through_the_gateway_and_leaves_only_the_edit(tmp_path: Path, aider_image: str) -> None:
    # the first answer names the file (aider adds it to the chat and asks again), the second is applied
    wire = Wire(streamed(EDIT, 900, 70), streamed(EDIT, 1000, 71))
    try:
        run = _aider(tmp_path, wire, aider_image)
    finally:
        wire.close()
    assert run["finish"] == Finish(True, note="aider: applied edits to src/stats.py"), run["output"]
    assert run["result"].outcome == "finished" and len(run["result"].turns) == 2
    assert run["stats"] == FIXED
    assert run["status"] == " M src/stats.py\n"  # no .aider* files, no .gitignore change
    assert len(run["log"].splitlines()) == 1  # no commit, whatever the workspace's .aider.conf.yml says
    assert [f["path"] for f in run["patch"].files] == ["src/stats.py"] and not run["patch"].error
    assert len(wire.requests) == 2 and len(run["calls"]) == 2
    for request in wire.requests:  # the workspace's .env pointed at port 9: aider still came here
        body = request["body"]
        assert request["path"] == "/v1/chat/completions" and body["model"] == "a-model"
        assert body["stream"] is True and "tools" not in body and body["max_tokens"] == 512
        assert body["messages"][0]["role"] == "system" and "file listing" in body["messages"][0]["content"]
        assert run["token"] not in json.dumps(request)  # the gateway sent the alias's key, not the run token
    assert "I added these files to the chat: src/stats.py" in wire.requests[1]["body"]["messages"][-1]["content"]
    assert all(c.stream and c.answered and c.ttft_s is not None for c in run["calls"])
    totals = run["totals"]
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (1900, 141)
    assert run["state"] == [
        "chat.history.md", "home", "launch.py", "llm.history", "model-metadata.json", "model-settings.yml",
        "tags-cache",
    ]  # fmt: skip
    # aider's ~/.aider is under the state dir (HOME); the image user's own home is left as built
    assert run["aider_home"] == ["analytics.json", "installs.json"]  # no caches/: nothing was fetched
    assert ".aider" not in run["user_home"] and ".cache" not in run["user_home"]


@pytest.mark.docker
@pytest.mark.slow
def test_real_aider_stops_at_its_turn_cap(tmp_path: Path, aider_image: str) -> None:
    # each answer names another file not in the chat: a reflection each time, until the cap (2 turns)
    wire = Wire(streamed("Look at src/stats.py first.", 50, 7), streamed("And tests/test_stats.py too.", 60, 7))
    try:
        run = _aider(tmp_path, wire, aider_image, max_turns=2)
    finally:
        wire.close()
    assert run["finish"] == Finish(False, ended_by="turns", note="aider: turn limit reached (2 model calls)")
    assert run["result"].outcome == "max_turns"
    assert len(wire.requests) == len(run["calls"]) == 2
    assert run["status"] == "" and not run["patch"].files


@pytest.mark.docker
@pytest.mark.slow
def test_real_aider_stops_at_once_when_the_gateway_refuses_for_the_budget(tmp_path: Path, aider_image: str) -> None:
    """aider retries LiteLLM's APIError for 60 s; the launcher makes the gateway's 402 final."""
    wire = Wire(streamed("Let me look at src/stats.py.", 900, 70), answer({"never": "reached"}))
    try:
        run = _aider(tmp_path, wire, aider_image, max_total_tokens=500)
    finally:
        wire.close()
    assert run["finish"] == Finish(False, note="aider: the token budget is spent"), run["output"]
    assert run["result"].outcome == "token_budget"
    assert len(wire.requests) == 1  # the second call was refused by the gateway, and not retried
    assert [c.refused for c in run["calls"]] == [None, "token_budget"]
    assert run["wall"] < 40, run["output"]  # aider's own back-off would take over 60 s


# -- aider through the plugin on bugfix-median, against the scripted double ------------------------------
#: aider's requests open with its fixed example exchange: 4 assistant messages before the packet's prompt
#: (the few-shot edit, "Ok.", the repo map's and the file list's acks). The scripted double counts turn N
#: as the request's assistant messages, so aider's first call is turn 4: these plan steps are never sent.
EXAMPLE_TURNS = [{"say": "(turn of aider's example exchange: never asked for)"}] * 4
CORE = (BUGFIX / "repo" / "stats" / "core.py").read_text()
CORE_FIXED = CORE.replace(
    "    mid = len(data) // 2\n    return data[mid]\n",
    "    mid = len(data) // 2\n    if len(data) % 2 == 0:\n        return (data[mid - 1] + data[mid]) / 2\n"
    "    return data[mid]\n",
)
CORE_EDIT = f"The even case needs the mean of the two middle values.\n\nstats/core.py\n```python\n{CORE_FIXED}```\n"
# aider has no tools: an edit is a whole-file listing in the answer's text. The first names stats/core.py
# (not yet in aider's chat: aider adds it and asks again, applying nothing); the second is applied.
GOOD = [*EXAMPLE_TURNS, {"say": CORE_EDIT}, {"say": CORE_EDIT}]
NOOP = [*EXAMPLE_TURNS, {"say": "The median looks right to me; I would change nothing."}]


@pytest.mark.docker
@pytest.mark.slow
def test_aider_fixes_the_bug_on_the_good_plan_and_not_on_the_noop_and_every_token_is_counted(
    pytester: pytest.Pytester, docker_engine: None
) -> None:
    assert CORE_FIXED != CORE
    result, records, totals = plugin_run(pytester, "aider", GOOD, NOOP)
    result.assert_outcomes(passed=1, failed=1)
    good, noop = records["good"], records["noop"]
    assert good["passed"] and good["outcome"] == "finished" and not noop["passed"]
    assert good["agent"] == {"name": "aider", "version": DEFAULT_VERSION}
    assert good["model_calls"] == 2 and noop["model_calls"] == 1
    assert good["sandbox"]["kind"] == "docker" and "agentbench-agent-aider" in good["versions"]["sandbox"]["image"]
    # the patch is the edit alone: no .aider* file, no tags cache, no .gitignore line
    assert [f["path"] for f in good["patch"]["files"]] == ["stats/core.py"] and not noop["patch"]["files"]
    assert "+        return (data[mid - 1] + data[mid]) / 2" in good["patch"]["diff"]
    assert [t["content"].strip() for t in good["trajectory"]] == [CORE_EDIT.strip()] * 2  # as the gateway saw it
    assert_reconciled(records, totals)
