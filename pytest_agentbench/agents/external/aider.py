"""The aider adapter (PyPI ``aider-chat``, the ``aider`` CLI). pytest-free.

aider speaks chat completions through LiteLLM, streams, declares no tools: the model edits by
answering in an *edit format* (``whole``: the file's path on a line, then the whole new file in a
fence) and aider applies it to the working tree. Headless here means one ``--message-file``
(measured with 0.86.2; figures and known limits: docs/agents.md, "aider")::

    PY STATE/aider/launch.py --message-file PROMPT --yes-always --model openai/MODEL --edit-format whole
        --no-auto-commits --no-dirty-commits --no-gitignore --no-check-update ... (see :meth:`Aider.argv`)

run by aider's own interpreter (the ``python`` beside the resolved ``aider`` executable, as in any
venv) through a small launcher (:data:`LAUNCHER`) that sets, for this aider version only:

* ``Coder.max_reflections`` - aider's only turn limit, a class attribute with no option;
* ``RepoMap.TAGS_CACHE_DIR`` - the repo map's sqlite cache, otherwise ``.aider.tags.cache.v4/`` in
  the workspace root (and so in the patch: no option moves it);
* a 402 (the gateway's ``token_budget_exceeded``) as final: LiteLLM raises it as ``APIError``,
  which aider retries with back-off for 60 s (measured: 9 refused calls, 71 s).

==================  ==========================================================================
packet budget       aider
==================  ==========================================================================
max_turns           one user message makes 1 + ``max_reflections`` model calls at most (a
                    reflection: files the reply named were added to the chat, an edit failed
                    to apply, lint errors); ``max_reflections = max_turns - 1``. At the cap aider
                    prints ``Only N reflections allowed, stopping.``: ended by ``turns``.
                    History summarization calls (after an applied edit, when the chat passes
                    ``max_chat_history_tokens``) go through the gateway too and count as turns
                    there, not against aider's cap.
max_total_tokens    the gateway (a call past the budget is refused 402; the launcher stops there)
timeout_s           the sandbox's wall clock on the whole command; ``--timeout`` per API call
max_output_tokens   ``extra_params.max_tokens`` in a model settings file (sent as ``max_tokens``)
tools               aider has none of its own; a phase whose tools can change nothing
                    (none of ``write_file``, ``edit``, ``run``) runs in ``--chat-mode ask``
==================  ==========================================================================

No file is named on the command line: aider sees the repo map (``git ls-files`` + tree-sitter
tags) and adds the files the model's answer mentions, so editing a file the model has not seen
costs two calls (mention, then edit). It never runs shell commands headless
(``--yes-always`` does not confirm them; ``--no-suggest-shell-commands`` keeps them out of the
prompt) and never runs tests (no ``--test-cmd``). Everything aider writes besides the edits goes
under ``STATE/aider`` (chat, input and LLM histories, model settings and metadata, tags cache) and
``HOME=STATE/aider/home`` (``~/.aider``); nothing is committed. A model metadata file for
``openai/MODEL`` and ``LITELLM_LOCAL_MODEL_COST_MAP`` keep it from fetching price maps at start.
The gateway's URL and the run token are also ``extra_params`` (``api_base``, ``api_key``) of the
model settings file, which LiteLLM takes over any environment: aider loads a ``.env`` from the
workspace over the environment (and LiteLLM prefers ``OPENAI_BASE_URL`` to aider's
``--openai-api-base``), so without them a packet's ``.env`` could point aider elsewhere. aider also
reads ``.aider.conf.yml`` and ``.aider.model.settings.yml`` from the workspace; the command line
and the settings file given there win over them.

aider exits 0 after ``--message-file`` whatever happened to the model (errors are printed and
counted by the gateway); exit 1 is a start-up failure (bad option, unreadable prompt).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pytest_agentbench.agents.external.adapter import AgentInstall, Finish, Protocol_, Session, last_line
from pytest_agentbench.sandbox.base import ExecResult

__all__ = ["DEFAULT_VERSION", "EDIT_FORMATS", "LAUNCHER", "WRITE_TOOLS", "Aider"]

DEFAULT_VERSION = "0.86.2"
#: Edit formats aider's own coders accept (``--edit-format``).
EDIT_FORMATS = ("whole", "diff", "diff-fenced", "udiff", "editor-whole", "editor-diff")
#: Built-in tool names that can change the workspace: a phase without any of them gets ``--chat-mode ask``.
WRITE_TOOLS = frozenset({"write_file", "edit", "run"})
#: The line aider prints when its reflection cap ends the message.
_REFLECTIONS = re.compile(r"^Only (\d+) reflections allowed, stopping\.", re.MULTILINE)
#: How aider prints a failed model call (after its own retries): ``litellm.AuthenticationError: ...``.
_API_ERROR = re.compile(r"^litellm\.(\w+Error): ?(.*)$", re.MULTILINE)
#: The line the launcher's 402 handling makes aider print.
BUDGET_NOTE = "agentbench: the run's token budget is spent"

#: Runs aider's ``main`` with the session's settings (``CONFIG`` is filled in per session).
LAUNCHER = '''"""agentbench's launcher for aider {version}: the turn cap, the tags cache, a 402 as final."""
import json
import sys

CONFIG = json.loads({config!r})
from aider import __version__
from aider.coders import base_coder
from aider.exceptions import ExInfo, LiteLLMExceptions
from aider.main import main
from aider.repomap import RepoMap

if not __version__.startswith(CONFIG["version"]):
    sys.exit(f"agentbench: this launcher is for aider {{CONFIG['version']}}, found {{__version__}}")
base_coder.Coder.max_reflections = CONFIG["max_reflections"]
RepoMap.TAGS_CACHE_DIR = CONFIG["tags_cache"]
_info = LiteLLMExceptions.get_ex_info


def get_ex_info(self, ex):
    info = _info(self, ex)
    if getattr(ex, "status_code", None) == 402:
        return ExInfo(info.name, False, CONFIG["budget_note"])
    return info


LiteLLMExceptions.get_ex_info = get_ex_info
sys.exit(main())
'''

#: Finds aider's interpreter (its venv's ``python`` beside the resolved ``aider``) and runs the launcher ($0).
_WRAPPER = (
    'bin=$(command -v aider) || { echo "agentbench: aider is not on PATH" >&2; exit 127; }; '
    'py="$(dirname "$(readlink -f "$bin")")/python"; '
    '[ -x "$py" ] || { echo "agentbench: no python beside $bin (looked for $py)" >&2; exit 127; }; '
    'exec "$py" -I "$0" "$@"'
)


@dataclass(frozen=True)
class Aider:
    """aider, headless (see the module docstring)."""

    version: str = DEFAULT_VERSION
    name: str = "aider"
    protocol: Protocol_ = "chat"
    edit_format: str = "whole"  # aider's default for a model it does not know

    @property
    def install(self) -> AgentInstall:
        """What the image needs: this version, pinned."""
        return AgentInstall(name="aider", pip=(f"aider-chat=={self.version}",), bins=("aider",))

    def __post_init__(self) -> None:
        if self.edit_format not in EDIT_FORMATS:
            raise ValueError(f"aider edit_format {self.edit_format!r}: expected one of {', '.join(EDIT_FORMATS)}")

    def home(self, session: Session) -> str:
        """aider's own folder for this session (under the state dir, outside the workspace)."""
        return f"{session.state_dir}/aider"

    def model(self, session: Session) -> str:
        """The model as LiteLLM names it (``openai/``: an OpenAI-compatible endpoint; LiteLLM strips it)."""
        return f"openai/{session.model}"

    def files(self, session: Session) -> dict[str, str]:
        home, model = self.home(session), self.model(session)
        extra: dict[str, object] = {"api_base": session.base_url, "api_key": session.token}
        if session.max_output_tokens:
            extra["max_tokens"] = session.max_output_tokens
        settings = {"name": model, "extra_params": extra}
        metadata = {model: {"litellm_provider": "openai", "mode": "chat"}}
        metadata[model] |= {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
        config = {
            "version": self.version,
            "max_reflections": max(0, session.max_turns - 1),
            "tags_cache": f"{home}/tags-cache",
            "budget_note": BUDGET_NOTE,
        }
        return {
            f"{home}/launch.py": LAUNCHER.format(version=self.version, config=json.dumps(config)),
            # JSON is YAML: aider reads the settings file with yaml.safe_load
            f"{home}/model-settings.yml": json.dumps([settings], indent=1),
            f"{home}/model-metadata.json": json.dumps(metadata, indent=1),
        }

    def env(self, session: Session) -> dict[str, str]:
        return {"HOME": f"{self.home(session)}/home", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}

    def argv(self, session: Session) -> list[str]:
        home = self.home(session)
        argv = ["sh", "-c", _WRAPPER, f"{home}/launch.py", "--message-file", session.prompt_file, "--yes-always"]
        argv += ["--model", self.model(session), "--edit-format", self.edit_format]
        argv += [
            "--no-auto-commits",
            "--no-dirty-commits",
            "--no-gitignore",
            "--no-check-update",
            "--no-show-release-notes",
            "--no-analytics",
            "--no-show-model-warnings",
            "--no-pretty",
            "--no-fancy-input",
            "--no-detect-urls",
            "--no-suggest-shell-commands",
            "--no-restore-chat-history",
        ]
        argv += ["--model-settings-file", f"{home}/model-settings.yml"]
        argv += ["--model-metadata-file", f"{home}/model-metadata.json"]
        argv += ["--chat-history-file", f"{home}/chat.history.md", "--input-history-file", f"{home}/input.history"]
        argv += ["--llm-history-file", f"{home}/llm.history", "--encoding", "utf-8"]
        argv += ["--timeout", f"{max(1.0, session.timeout_s):g}"]
        if session.tools is not None and not WRITE_TOOLS & set(session.tools):
            argv += ["--chat-mode", "ask"]
        return argv

    def finish(self, result: ExecResult, session: Session) -> Finish:
        output = result.output
        if result.timed_out:
            return Finish(False, note=f"aider: stopped at the wall clock ({session.timeout_s:g} s)")
        capped = _REFLECTIONS.findall(output)
        if capped:
            calls = int(capped[-1]) + 1
            return Finish(False, ended_by="turns", note=f"aider: turn limit reached ({calls} model calls)")
        if result.exit_code != 0:
            detail = last_line(result.stderr) or last_line(output)
            return Finish(False, note=f"aider: exit {result.exit_code}: {detail}")
        if BUDGET_NOTE in output:
            return Finish(False, note="aider: the token budget is spent")
        applied = sorted(set(re.findall(r"^Applied edit to (.+)$", output, re.MULTILINE)))
        if applied:
            return Finish(True, note=f"aider: applied edits to {', '.join(applied)}"[:300])
        failed = _API_ERROR.findall(output)
        if failed:
            kind, message = failed[-1]
            return Finish(False, note=f"aider: model call failed: {kind}: {message}"[:300])
        return Finish(True, note=f"aider: no edit applied: {last_line(output)}")
