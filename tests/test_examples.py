"""examples/models.yaml is valid against the schema and gives the commands we document.

The recipes are validated by command construction: each alias builds the vLLM command
line with the flags docs/models.md lists, and (tests marked ``vllm``: they need the vLLM
interpreter, no server is started) that command line parses in the installed vLLM's own
argument parser, its parser names are registered there, and the chat template we ship
renders a tool conversation.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.parsers import REASONING_PARSERS, TOOL_PARSERS, parse_message
from pytest_agentbench.models.registry import check_disjoint_devices, load_models
from pytest_agentbench.serving.vllm.command import build_command
from pytest_agentbench.serving.vllm.spec import spec_from_alias

from .conftest import REPO

EXAMPLES = REPO / "examples" / "models.yaml"
TEMPLATE = REPO / "examples" / "templates" / "deepseek-coder-v2-tools.jinja"

#: alias -> (devices, TP, flags the command must carry, the architecture its config.json names)
RECIPES = {
    "local-coder": (
        "0",
        "1",
        ["--tool-call-parser hermes", "--chat-template " + str(TEMPLATE.relative_to(REPO)), "--trust-remote-code"],
        "DeepseekV2ForCausalLM",
    ),
    "qwen3-coder": (
        "0,1,2,3,4,5,6,7",
        "8",
        ["--tool-call-parser qwen3_coder", "--enable-expert-parallel", "--max-model-len 262144"],
        "Qwen3MoeForCausalLM",
    ),
    "qwen3-coder-next": (
        "0,1",
        "2",
        ["--tool-call-parser qwen3_coder", "--max-model-len 262144"],
        "Qwen3NextForCausalLM",
    ),
    "deepseek-v4-flash": (
        "0,1,2,3",
        "4",
        [
            "--tool-call-parser deepseek_v4",
            "--reasoning-parser deepseek_v4",
            "--tokenizer-mode deepseek_v4",
            "--max-model-len 1048576",
            "--enable-expert-parallel",
        ],
        "DeepseekV4ForCausalLM",
    ),
    "deepseek-v4-pro": (
        "0,1,2,3,4,5,6,7",
        "8",
        [
            "--tool-call-parser deepseek_v4",
            "--reasoning-parser deepseek_v4",
            "--tokenizer-mode deepseek_v4",
            "--gpu-memory-utilization 0.95",
        ],
        "DeepseekV4ForCausalLM",
    ),
    "glm-4.7": ("0,1,2,3,4,5,6,7", "8", ["--tool-call-parser glm47", "--reasoning-parser glm45"], "Glm4MoeForCausalLM"),
    "glm-5.1": (
        "0,1,2,3,4,5,6,7",
        "8",
        ["--tool-call-parser glm47", "--reasoning-parser glm45", "--kv-cache-dtype fp8"],
        "GlmMoeDsaForCausalLM",
    ),
    "minimax-m2": (
        "0,1,2,3",
        "4",
        ["--tool-call-parser minimax_m2", "--reasoning-parser minimax_m2_append_think", "--trust-remote-code"],
        "MiniMaxM2ForCausalLM",
    ),
    "kimi-k2": (
        "0,1,2,3,4,5,6,7",
        "8",
        ["--tool-call-parser kimi_k2", "--reasoning-parser kimi_k2", "--trust-remote-code"],
        "DeepseekV3ForCausalLM",
    ),
    "mig-coder-a": ("MIG-4f9e1c2a-0000-0000-0000-000000000001", "1", ["--tool-call-parser hermes"], "Qwen2ForCausalLM"),
    "mig-coder-b": ("MIG-4f9e1c2a-0000-0000-0000-000000000002", "1", [], "LlamaForCausalLM"),
}


def argv_env(alias: str) -> tuple[list[str], dict[str, str]]:
    spec = load_models(EXAMPLES)[alias]
    return build_command(spec_from_alias(spec), 8000, base_env={})


def test_every_course_alias_loads() -> None:
    specs = load_models(EXAMPLES)
    assert set(specs) == {*RECIPES, "gpt-baseline"}
    assert specs["gpt-baseline"].api_key_env == "OPENAI_API_KEY" and specs["gpt-baseline"].temperature is None
    assert all(s.license is not None for s in specs.values()), "every recipe states its licence"


@pytest.mark.parametrize("alias", sorted(RECIPES))
def test_recipe_command_has_its_layout_and_flags(alias: str) -> None:
    devices, tp, flags, _ = RECIPES[alias]
    argv, env = argv_env(alias)
    assert env["CUDA_VISIBLE_DEVICES"] == devices
    assert argv[argv.index("--tensor-parallel-size") + 1] == tp
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    line = " ".join(argv)
    for flag in flags:
        assert flag in line, f"{alias}: {flag!r} missing from {line}"
    if "--tool-call-parser" in argv:
        assert "--enable-auto-tool-choice" in argv


@pytest.mark.parametrize("alias", sorted(RECIPES))
def test_recipe_client_parsers_match_the_servers_format(alias: str) -> None:
    """Our recovery parser for each format that can leak: registered, and the same family as vLLM's."""
    spec = load_models(EXAMPLES)[alias]
    assert spec.tool_parser in TOOL_PARSERS
    assert spec.reasoning_parser is None or spec.reasoning_parser in REASONING_PARSERS
    server = dict(spec.serve.args if spec.serve else {}).get("tool_call_parser")
    if server in TOOL_PARSERS and server != "openai":
        assert TOOL_PARSERS[spec.tool_parser] is TOOL_PARSERS[server] or spec.tool_parser == server


def test_mig_aliases_can_run_together_but_not_two_servers_on_one_gpu(tmp_path: Path) -> None:
    specs = load_models(EXAMPLES)
    check_disjoint_devices([specs["mig-coder-a"], specs["mig-coder-b"]])
    check_disjoint_devices([specs["local-coder"], specs["mig-coder-a"]])
    with pytest.raises(ConfigError, match="'local-coder' and 'qwen3-coder' would both start a server on device '0'"):
        check_disjoint_devices([specs["local-coder"], specs["qwen3-coder"]])


def test_commercial_alias_needs_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    spec = load_models(EXAMPLES)["gpt-baseline"]
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        spec.check_usable()


# -- against the installed vLLM (its interpreter; no server is started) ---------------------------------

_PARSE_ARGS = r"""
import json, sys
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.tool_parsers import ToolParserManager
from vllm.reasoning import ReasoningParserManager
from vllm.model_executor.models.registry import ModelRegistry
out = {"tool": ToolParserManager.list_registered(), "reasoning": ReasoningParserManager.list_registered(),
       "archs": sorted(ModelRegistry.get_supported_archs()), "errors": {}}
for alias, argv in json.loads(sys.argv[1]).items():
    try:
        validate_parsed_serve_args(make_arg_parser(FlexibleArgumentParser()).parse_args(argv))
    except BaseException as exc:  # argparse exits with SystemExit on an unknown flag
        out["errors"][alias] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@pytest.mark.vllm
@pytest.mark.slow
def test_recipes_parse_in_the_installed_vllm(vllm_python: str) -> None:
    """Every recipe's flags are flags of this vLLM, its parser names are registered, its architecture is known."""
    argvs = {alias: argv_env(alias)[0][3:] for alias in RECIPES}  # after "python -m <module>"
    done = subprocess.run(
        [vllm_python, "-c", _PARSE_ARGS, json.dumps(argvs)], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    for alias in RECIPES:
        args = dict(load_models(EXAMPLES)[alias].serve.args)  # type: ignore[union-attr]
        if "tool_call_parser" in args:
            assert args["tool_call_parser"] in found["tool"], alias
        if "reasoning_parser" in args:
            assert args["reasoning_parser"] in found["reasoning"], alias
        assert RECIPES[alias][3] in found["archs"], alias


_RENDER = r"""
import json, sys, jinja2
env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
template = env.from_string(open(sys.argv[1], encoding="utf-8").read())
tokens = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}
print(template.render(add_generation_prompt=True, **tokens, **json.loads(sys.argv[2])))
"""


@pytest.mark.vllm
def test_the_deepseek_coder_v2_template_renders_a_tool_conversation(vllm_python: str) -> None:
    """Rendered with the jinja2 of vLLM's interpreter: tools listed, the call Hermes-style, the result back."""
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
    call = {"id": "c0", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}
    messages = [
        {"role": "system", "content": "You fix bugs."},
        {"role": "user", "content": "Read a.py."},
        {"role": "assistant", "content": "Reading.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c0", "content": "x = 1"},
    ]
    done = subprocess.run(
        [vllm_python, "-c", _RENDER, str(TEMPLATE), json.dumps({"messages": messages, "tools": tools})],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout.removesuffix("\n")  # print's
    assert text.startswith("<｜begin▁of▁sentence｜>You fix bugs.\n\n# Tools")
    assert '\n{"type": "function", "function": {"name": "read_file"' in text.split("\n</tools>")[0]
    assistant = text.split("Assistant: ", 1)[1].split("<｜end▁of▁sentence｜>")[0]
    parsed = parse_message({"content": assistant}, tool_parser="hermes", reasoning_parser=None)
    assert [(c.name, c.parsed_arguments()) for c in parsed.tool_calls] == [("read_file", {"path": "a.py"})]
    assert "User: <tool_response>\nx = 1\n</tool_response>\n" in text and text.endswith("Assistant:")
