"""Tool-call and reasoning parsers, on output shaped the way the real models emit it.

Longer samples live in ``tests/data/parsers/``; each is the raw ``content`` of one
assistant message, written to the format of the model's chat template.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.calls import ParsedMessage
from pytest_agentbench.models.parsers import (
    REASONING_PARSERS,
    TOOL_PARSERS,
    parse_message,
    validate_parser_names,
)
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.serving.scripted import ScriptedServer

DATA = Path(__file__).parent / "data" / "parsers"


def sample(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def parse(
    content: Any, tool_parser: str, reasoning_parser: str | None = None, tools: Any = None, **fields: Any
) -> ParsedMessage:
    return parse_message(
        {"role": "assistant", "content": content, **fields},
        tool_parser=tool_parser,
        reasoning_parser=reasoning_parser,
        tools=tools,
    )


def calls(parsed: ParsedMessage) -> list[tuple[str, str, dict[str, Any]]]:
    return [(c.id, c.name, c.parsed_arguments()) for c in parsed.tool_calls]


def tool(name: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the {name} tool",
            "parameters": {"type": "object", "properties": properties},
        },
    }


# -- registries and names --------------------------------------------------------------------------


def test_registries_hold_the_documented_names() -> None:
    assert {"openai", "hermes", "qwen3_xml", "glm47", "json_block"} <= set(TOOL_PARSERS)
    assert {"deepseek_v31", "deepseek_v32", "deepseek_v4", "minimax_m2", "kimi_k2"} <= set(TOOL_PARSERS)
    assert set(REASONING_PARSERS) == {"think_tags", "qwen3"}
    assert TOOL_PARSERS["qwen3_coder"] is TOOL_PARSERS["qwen3_xml"]
    assert TOOL_PARSERS["glm45"] is TOOL_PARSERS["glm47"]
    assert TOOL_PARSERS["deepseek_v3"] is TOOL_PARSERS["deepseek_v31"]
    assert TOOL_PARSERS["deepseek_v4"] is TOOL_PARSERS["deepseek_v32"]


def test_unknown_tool_parser_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown tool_parser 'qwen'; expected one of: .*hermes.*qwen3_xml"):
        parse("hi", "qwen")


def test_unknown_reasoning_parser_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown reasoning_parser 'deepseek_r1'; .*think_tags or null"):
        parse("hi", "openai", "deepseek_r1")


def test_validate_parser_names_prefixes_where() -> None:
    validate_parser_names("hermes", None, "models.yaml: models.local-coder")
    validate_parser_names("glm47", "think_tags", "models.yaml: models.glm")
    with pytest.raises(ConfigError, match=r"^models\.yaml: models\.x: unknown tool_parser 'vllm'"):
        validate_parser_names("vllm", None, "models.yaml: models.x")
    with pytest.raises(ConfigError, match=r"^m\.yaml: models\.x: unknown reasoning_parser 'think'"):
        validate_parser_names("openai", "think", "m.yaml: models.x")
    with pytest.raises(ConfigError, match="unknown tool_parser 3"):
        validate_parser_names(3, None, "m.yaml")


# -- openai: native calls ---------------------------------------------------------------------------


def native(call_id: str | None, name: Any, arguments: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
    return call


def test_native_tool_calls_keep_their_ids_and_raw_arguments() -> None:
    raw = '{"path": "src/stats.py", "limit": 40}'
    parsed = parse(
        None,
        "openai",
        tool_calls=[native("call_Xy12", "read_file", raw), native("call_Zz34", "run", '{"command": "ls -la"}')],
    )
    assert parsed.content == ""
    assert [c.id for c in parsed.tool_calls] == ["call_Xy12", "call_Zz34"]
    assert parsed.tool_calls[0].arguments == raw
    assert parsed.invalid_tool_calls == ()


def test_native_calls_without_ids_get_deterministic_ones() -> None:
    message = {
        "content": "",
        "tool_calls": [
            native(None, "list_files", ""),
            native("", "run", {"command": "ls"}),
            native(None, "done", None),
        ],
    }
    first = parse_message(message, tool_parser="openai", reasoning_parser=None)
    again = parse_message(message, tool_parser="openai", reasoning_parser=None)
    assert first == again
    assert calls(first) == [("call_0", "list_files", {}), ("call_1", "run", {"command": "ls"}), ("call_2", "done", {})]


def test_generated_ids_do_not_collide_with_native_ones() -> None:
    parsed = parse("", "hermes", tool_calls=[native(None, "a", "{}"), native("call_0", "b", "{}")])
    assert [c.id for c in parsed.tool_calls] == ["call_0_1", "call_0"]


def test_native_call_with_bad_json_arguments_is_invalid_and_the_others_stay() -> None:
    parsed = parse(
        "Editing.",
        "openai",
        tool_calls=[
            native("c1", "write_file", '{"path": "a.py", "content": "x'),
            native("c2", "run", '{"command": "pytest"}'),
        ],
    )
    assert [c.id for c in parsed.tool_calls] == ["c2"]
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith("arguments are not valid JSON (Unterminated string")
    assert "write_file" in invalid


def test_native_call_problems_are_reported_not_raised() -> None:
    parsed = parse(
        "",
        "openai",
        tool_calls=[
            native("c1", "", "{}"),
            native("c2", "run", "[1, 2]"),
            "garbage",
            native("c3", "ok", '"{\\"a\\": 1}"'),
        ],
    )
    assert calls(parsed) == [("c3", "ok", {"a": 1})]  # double-encoded arguments are unwrapped
    assert [i.split(":")[0] for i in parsed.invalid_tool_calls] == [
        "missing function name",
        "arguments must be a JSON object, got list",
        "tool call is not an object",
    ]


def test_legacy_function_call_is_a_native_call() -> None:
    parsed = parse(None, "openai", function_call={"name": "run", "arguments": '{"command": "ls"}'})
    assert calls(parsed) == [("call_0", "run", {"command": "ls"})]


def test_content_parts_are_joined() -> None:
    parsed = parse(
        [
            {"type": "text", "text": "Done. "},
            {"type": "text", "text": "All tests pass."},
            {"type": "image_url", "image_url": {"url": "x"}},
        ],
        "openai",
    )
    assert parsed.content == "Done. All tests pass."


def test_message_is_not_mutated() -> None:
    message = {"content": sample("hermes_qwen25_two_calls.txt"), "tool_calls": None, "reasoning_content": "hm"}
    before = copy.deepcopy(message)
    parse_message(message, tool_parser="hermes", reasoning_parser="think_tags")
    assert message == before


def test_openai_client_objects_are_accepted() -> None:
    class Message:  # the shape of openai's pydantic ChatCompletionMessage
        def model_dump(self) -> dict[str, Any]:
            return {"content": "ok", "tool_calls": [native("c", "run", "{}")], "reasoning_content": "because"}

    parsed = parse_message(Message(), tool_parser="openai", reasoning_parser=None)  # type: ignore[arg-type]
    assert (parsed.content, calls(parsed), parsed.reasoning) == ("ok", [("c", "run", {})], "because")


# -- openai: recovering calls that leaked into the content -------------------------------------------


def test_openai_recovers_leaked_hermes_calls() -> None:
    parsed = parse(sample("hermes_qwen25_two_calls.txt"), "openai")
    assert [(c.id, c.name) for c in parsed.tool_calls] == [("call_0", "read_file"), ("call_1", "run")]
    assert parsed.content.startswith("I'll start by reading the failing test")


def test_openai_recovers_leaked_qwen3_xml_calls() -> None:
    parsed = parse(sample("qwen3_coder_write_and_run.txt"), "openai")
    assert [c.name for c in parsed.tool_calls] == ["write_file", "run"]


def test_openai_recovers_leaked_glm_calls() -> None:
    parsed = parse(sample("glm45_two_calls.txt"), "openai", "think_tags")
    assert [c.name for c in parsed.tool_calls] == ["list_files", "grep"]
    assert parsed.content == "I'll explore the repository."


def test_openai_recovers_leaked_json_block_to_a_declared_tool_only() -> None:
    text = sample("json_block_qwen25_coder.txt")
    parsed = parse(text, "openai", tools=[tool("run", command={"type": "string"})])
    assert calls(parsed) == [("call_0", "run", {"command": "python -m wordcount --help"})]
    assert '"name": "wordcount"' in parsed.content  # package metadata is not a call
    undeclared = parse(text, "openai", tools=[tool("read_file")])
    assert undeclared.tool_calls == () and undeclared.content == text.strip()


def test_openai_leaves_ordinary_prose_and_code_alone() -> None:
    text = (
        "Here is the fix:\n\n```python\ndef median(xs):\n    return sorted(xs)[len(xs) // 2]\n```\n\n"
        'And a config example:\n```json\n{"name": "demo", "version": 1\n```\n'
        "Models such as Qwen wrap calls in <tool_call> tags."
    )
    parsed = parse(text, "openai")
    assert parsed == ParsedMessage(content=text.strip())


def test_openai_reports_a_leaked_call_it_cannot_decode() -> None:
    parsed = parse('Running it.\n<tool_call>\n{"name": "run", "arguments": {"command": "ls",}}\n</tool_call>', "openai")
    assert parsed.tool_calls == ()
    assert parsed.content == "Running it."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith("invalid JSON in <tool_call>") and '"command": "ls",' in invalid


def test_openai_does_not_recover_when_native_calls_exist() -> None:
    text = '<tool_call>\n{"name": "run", "arguments": {}}\n</tool_call>'
    parsed = parse(text, "openai", tool_calls=[native("c1", "read_file", '{"path": "a"}')])
    assert [c.name for c in parsed.tool_calls] == ["read_file"]
    assert parsed.content == text


def test_text_parsers_also_take_native_calls() -> None:
    """A vLLM started with --tool-call-parser hermes decodes the calls itself."""
    parsed = parse("Checking.", "hermes", tool_calls=[native("chatcmpl-tool-1", "run", '{"command": "ls"}')])
    assert calls(parsed) == [("chatcmpl-tool-1", "run", {"command": "ls"})]
    assert parsed.content == "Checking."


# -- hermes -------------------------------------------------------------------------------------------


def test_hermes_two_calls_after_prose() -> None:
    parsed = parse(sample("hermes_qwen25_two_calls.txt"), "hermes")
    assert calls(parsed) == [
        ("call_0", "read_file", {"path": "tests/test_median.py"}),
        ("call_1", "run", {"command": "python -m pytest -q tests -k 'median and not slow'", "timeout_s": 120}),
    ]
    assert parsed.content == ("I'll start by reading the failing test, then run the suite to see the current state.")
    assert parsed.invalid_tool_calls == ()


def test_hermes_nested_arguments_code_and_unicode() -> None:
    parsed = parse(sample("hermes_write_file_unicode.txt"), "hermes")
    ((_, name, arguments),) = calls(parsed)
    assert name == "write_file"
    assert arguments["path"] == "docs/naïve.md"
    assert "`len(xs) < 3 && xs`" in arguments["content"]
    assert "<tool_call>...</tool_call> blocks; AT&T" in arguments["content"]  # tags inside a JSON string
    assert arguments["options"] == {"mode": "w", "encoding": "utf-8", "tags": ["docs", "ünïcode"]}
    assert "ünïcode" in parsed.tool_calls[0].arguments  # not \u-escaped
    assert parsed.content == ""


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name": "run", "arguments": {"command": "ls"}}</tool_call>',
        '<tool_call>\n  {"name":"run","arguments":{"command":"ls"}}  \n</tool_call>\n',
        '<tool_call>\n{"name": "run", "arguments": "{\\"command\\": \\"ls\\"}"}\n</tool_call>',
        '<tool_call>\n{"name": "run", "parameters": {"command": "ls"}}\n</tool_call>',
        '<tool_call>\n```json\n{"name": "run", "arguments": {"command": "ls"}}\n```\n</tool_call>',
        '<tool_call>\n{"name": "run", "arguments": {"command": "ls"}}',  # </tool_call> was a stop sequence
    ],
    ids=["compact", "padded", "string-arguments", "parameters-key", "fenced-inside", "no-closing-tag"],
)
def test_hermes_variations(text: str) -> None:
    parsed = parse(text, "hermes")
    assert calls(parsed) == [("call_0", "run", {"command": "ls"})]
    assert (parsed.content, parsed.invalid_tool_calls) == ("", ())


def test_hermes_no_arguments_means_empty_object() -> None:
    assert calls(parse('<tool_call>{"name": "list_files"}</tool_call>', "hermes")) == [("call_0", "list_files", {})]


def test_hermes_text_between_calls_is_content() -> None:
    text = (
        'First the file.\n<tool_call>{"name": "a", "arguments": {}}</tool_call>\nThen the tests.\n'
        '<tool_call>{"name": "b", "arguments": {}}</tool_call>\nThat should do it.'
    )
    parsed = parse(text, "hermes")
    assert [c.name for c in parsed.tool_calls] == ["a", "b"]
    assert parsed.content == "First the file.\nThen the tests.\nThat should do it."


def test_hermes_bad_json_is_invalid_and_the_good_call_stays() -> None:
    text = (
        "<tool_call>\n{'name': 'run', 'arguments': {'command': 'ls'}}\n</tool_call>\n"
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>'
    )
    parsed = parse(text, "hermes")
    assert calls(parsed) == [("call_0", "read_file", {"path": "a.py"})]
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith("invalid JSON in <tool_call> (Expecting property name enclosed in double quotes")
    assert "{'name': 'run'" in invalid
    assert parsed.content == ""


def test_hermes_truncated_at_max_tokens() -> None:
    text = (
        'Writing the file now.\n<tool_call>\n{"name": "write_file", "arguments": {"path": "src/stats.py", '
        '"content": "def median(xs):\\n    s = sorted(xs)\\n    if len(s) %'
    )
    parsed = parse(text, "hermes")
    assert parsed.tool_calls == ()
    assert parsed.content == "Writing the file now."
    (invalid,) = parsed.invalid_tool_calls
    assert "Unterminated string" in invalid and "the output ends before </tool_call> (truncated?)" in invalid
    assert invalid.endswith("if len(s) %")  # the raw text is kept


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"arguments": {"command": "ls"}}', "missing function name"),
        ('{"name": "", "arguments": {}}', "missing function name"),
        ('{"name": "run", "arguments": [1]}', "arguments must be a JSON object, got list"),
        ('{"name": "run", "arguments": "ls -la"}', "arguments are not valid JSON"),
        ('"run"', "a tool call must be a JSON object, got str"),
        ('{"name": "run", "arguments": {}}}', "unexpected text after the JSON object in <tool_call>"),
        ("", "invalid JSON in <tool_call> (Expecting value"),
    ],
)
def test_hermes_malformed_blocks(body: str, reason: str) -> None:
    parsed = parse(f"Calling.\n<tool_call>\n{body}\n</tool_call>", "hermes")
    assert parsed.tool_calls == ()
    assert parsed.content == "Calling."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)
    assert invalid.endswith("</tool_call>")


def test_hermes_list_of_calls_in_one_block() -> None:
    text = '<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]</tool_call>'
    assert calls(parse(text, "hermes")) == [("call_0", "a", {}), ("call_1", "b", {"x": 1})]


def test_hermes_without_calls_returns_the_text() -> None:
    assert parse("  All 12 tests pass now.\n", "hermes") == ParsedMessage(content="All 12 tests pass now.")


# -- qwen3_xml ---------------------------------------------------------------------------------------


def test_qwen3_xml_write_then_run() -> None:
    parsed = parse(sample("qwen3_coder_write_and_run.txt"), "qwen3_xml")
    (write, run) = calls(parsed)
    assert write[:2] == ("call_0", "write_file")
    assert write[2]["path"] == "src/stats.py"
    content = write[2]["content"]
    assert content.startswith('def median(xs):\n    """Median of a non-empty sequence')
    assert 's[mid] < float("inf") and n & 1:' in content
    assert content.endswith("return (s[mid - 1] + s[mid]) / 2\n")  # one template newline removed, one kept
    assert run == ("call_1", "run", {"command": "python -m pytest -q tests 2>&1 | tail -n 20"})
    assert parsed.content.startswith("The bug is in the even-length branch")
    assert parsed.content.endswith("Let me fix it and run the tests.")


def test_qwen3_xml_values_stay_strings_without_a_schema() -> None:
    ((_, _, arguments),) = calls(parse(sample("qwen3_coder_typed.txt"), "qwen3_xml"))
    assert arguments == {
        "pattern": "def median\\(",
        "max_results": "20",
        "case_sensitive": "False",
        "paths": '["src", "tests"]',
        "options": '{"context_lines": 2, "regex": true}',
        "threshold": "0.75",
        "note": "null",
    }


def test_qwen3_xml_converts_by_declared_type() -> None:
    search = tool(
        "search",
        pattern={"type": "string"},
        max_results={"type": "integer"},
        case_sensitive={"type": "boolean"},
        paths={"type": "array", "items": {"type": "string"}},
        options={"type": "object"},
        threshold={"type": "number"},
        note={"anyOf": [{"type": "string"}, {"type": "null"}]},
    )
    ((_, _, arguments),) = calls(parse(sample("qwen3_coder_typed.txt"), "qwen3_xml", tools=[search]))
    assert arguments == {
        "pattern": "def median\\(",
        "max_results": 20,
        "case_sensitive": False,
        "paths": ["src", "tests"],
        "options": {"context_lines": 2, "regex": True},
        "threshold": 0.75,
        "note": None,
    }


@pytest.mark.parametrize(
    ("schema", "raw", "expected"),
    [
        ({"type": "integer"}, "twenty", "twenty"),  # does not fit: the string stays
        ({"type": "integer"}, "3.0", 3),
        ({"type": "integer"}, "-7", -7),
        ({"type": "number"}, "1e3", 1000.0),
        ({"type": "number"}, "nan", "nan"),
        ({"type": "number"}, "4", 4),
        ({"type": "boolean"}, "TRUE", True),
        ({"type": "boolean"}, "yes", "yes"),
        ({"type": "array"}, "['a', 'b']", ["a", "b"]),  # a Python repr
        ({"type": "object"}, "{'a': None, 'b': True}", {"a": None, "b": True}),
        ({"type": "object"}, '"{\\"a\\": 1}"', {"a": 1}),  # double-encoded
        ({"type": "object"}, "[1, 2]", "[1, 2]"),
        ({"type": "object"}, "{1, 2}", "{1, 2}"),  # a set is not JSON
        ({"type": ["integer", "null"]}, "None", None),
        ({"type": ["integer", "string"]}, "12", "12"),  # string in the union wins
        ({"type": "string"}, "null", "null"),
        ({"description": "untyped"}, "5", "5"),
    ],
)
def test_qwen3_xml_type_conversion(schema: dict[str, Any], raw: str, expected: Any) -> None:
    text = f"<tool_call>\n<function=f>\n<parameter=x>\n{raw}\n</parameter>\n</function>\n</tool_call>"
    ((_, _, arguments),) = calls(parse(text, "qwen3_xml", tools=[tool("f", x=schema)]))
    assert arguments == {"x": expected}


def test_qwen3_xml_parameter_not_in_schema_stays_a_string() -> None:
    text = "<tool_call>\n<function=f>\n<parameter=extra>\n5\n</parameter>\n</function>\n</tool_call>"
    assert calls(parse(text, "qwen3_xml", tools=[tool("f", x={"type": "integer"})])) == [
        ("call_0", "f", {"extra": "5"})
    ]


def test_qwen3_xml_literal_closing_tags_inside_a_value() -> None:
    code = (
        'TEMPLATE = "<parameter=path>\\n{value}\\n</parameter>"\n'
        "# the parser must not stop at the </parameter> above, nor at </function> here\n"
        "assert a < b and b > c & 1\n"
    )
    text = (
        "<tool_call>\n<function=write_file>\n<parameter=path>\ngen.py\n</parameter>\n"
        f"<parameter=content>\n{code}\n</parameter>\n</function>\n</tool_call>"
    )
    assert calls(parse(text, "qwen3_xml")) == [("call_0", "write_file", {"path": "gen.py", "content": code})]


def test_qwen3_xml_compact_template_without_newlines() -> None:
    text = (
        "<tool_call><function=run><parameter=command>ls -la</parameter><parameter=cwd> src </parameter>"
        "</function></tool_call>"
    )
    assert calls(parse(text, "qwen3_xml")) == [("call_0", "run", {"command": "ls -la", "cwd": " src "})]


def test_qwen3_xml_missing_closing_parameter_tags_are_tolerated() -> None:
    text = "<tool_call>\n<function=edit>\n<parameter=path>\nsrc/a.py\n<parameter=line>\n12\n</function>\n</tool_call>"
    parsed = parse(text, "qwen3_xml", tools=[tool("edit", path={"type": "string"}, line={"type": "integer"})])
    assert calls(parsed) == [("call_0", "edit", {"path": "src/a.py", "line": 12})]


def test_qwen3_xml_function_without_tool_call_wrapper() -> None:
    text = "Reading it.\n<function=read_file>\n<parameter=path>\nREADME.md\n</parameter>\n</function>"
    parsed = parse(text, "qwen3_xml")
    assert calls(parsed) == [("call_0", "read_file", {"path": "README.md"})]
    assert parsed.content == "Reading it."


def test_qwen3_xml_unicode_and_no_parameters() -> None:
    text = (
        "Je regarde.\n<tool_call>\n<function=list_files>\n</function>\n</tool_call>\n<tool_call>\n"
        "<function=write_file>\n<parameter=content>\nprint('héllo, 世界 ✓')\n</parameter>\n</function>\n"
        "</tool_call>"
    )
    parsed = parse(text, "qwen3_xml")
    assert calls(parsed) == [
        ("call_0", "list_files", {}),
        ("call_1", "write_file", {"content": "print('héllo, 世界 ✓')"}),
    ]
    assert "世界" in parsed.tool_calls[1].arguments


def test_qwen3_xml_truncated_at_max_tokens_keeps_the_complete_call() -> None:
    parsed = parse(sample("qwen3_coder_truncated.txt"), "qwen3_xml")
    assert calls(parsed) == [("call_0", "read_file", {"path": "src/stats.py"})]
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith("the output ends inside <parameter=content> (truncated?): <tool_call>")
    assert "<function=write_file>" in invalid
    assert parsed.content == ""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "<tool_call>\n<function=>\n<parameter=a>\n1\n</parameter>\n</function>\n</tool_call>",
            "missing function name in <function=>",
        ),
        ("<tool_call>\n<function={{ tool.name }}>\n</function>\n</tool_call>", "invalid function name"),
        ("<tool_call>\nrun ls\n</tool_call>", "expected <function=NAME> after <tool_call>"),
        ("<tool_call>\n<function=run>\nls -la\n</function>\n</tool_call>", "unexpected text in <function=run>"),
        (
            "<tool_call>\n<function=run>\n<parameter=>\nls\n</parameter>\n</function>\n</tool_call>",
            "missing parameter name",
        ),
        ("<tool_call>\n<function=run>\n<parameter=command>\nls\n</parameter>\n", "<function=run> is not closed"),
        ("<tool_call>\n<function=run", "the output ends inside <function="),
    ],
)
def test_qwen3_xml_malformed_blocks(text: str, reason: str) -> None:
    parsed = parse("Next step.\n" + text, "qwen3_xml")
    assert parsed.tool_calls == ()
    assert parsed.content == "Next step."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)


def test_qwen3_xml_accepts_a_hermes_json_call() -> None:
    text = '<tool_call>\n{"name": "run", "arguments": {"command": "ls"}}\n</tool_call>'
    assert calls(parse(text, "qwen3_coder")) == [("call_0", "run", {"command": "ls"})]


# -- glm47 -------------------------------------------------------------------------------------------


def test_glm47_output_that_starts_mid_reasoning() -> None:
    """GLM-4.7's generation prompt ends in <think>: the output has only </think>."""
    tools = [
        tool("read_file", path={"type": "string"}),
        tool(
            "edit_file",
            path={"type": "string"},
            old={"type": "string"},
            new={"type": "string"},
            count={"type": "integer"},
        ),
    ]
    parsed = parse(sample("glm47_thinking_call.txt"), "glm47", "think_tags", tools=tools)
    assert parsed.reasoning is not None
    assert parsed.reasoning.startswith("The user wants the median fixed for even-length input.")
    assert parsed.content == "Let me look at the implementation first."
    (read, edit) = calls(parsed)
    assert read == ("call_0", "read_file", {"path": "src/stats.py"})
    assert edit[1] == "edit_file"
    assert edit[2]["old"] == "    return s[n // 2]"
    assert edit[2]["new"] == (
        "    if n % 2 == 0 and n > 0:\n        return (s[n // 2 - 1] + s[n // 2]) / 2"
        '  # a < b && "</arg_value>" stays text\n    return s[n // 2]'
    )
    assert edit[2]["count"] == 1


def test_glm45_newline_format_with_full_think_block() -> None:
    parsed = parse(sample("glm45_two_calls.txt"), "glm45", "think_tags")
    assert parsed.reasoning == "I need to list the files and then grep for the CLI entry point."
    assert parsed.content == "I'll explore the repository."
    assert calls(parsed) == [
        ("call_0", "list_files", {"path": ".", "recursive": "true"}),
        ("call_1", "grep", {"pattern": "argparse.ArgumentParser(", "globs": '["*.py", "src/**/*.py"]'}),
    ]


def test_glm_converts_by_declared_type_and_keeps_json_looking_strings() -> None:
    tools = [
        tool("grep", pattern={"type": "string"}, globs={"type": "array"}),
        tool("list_files", path={"type": "string"}, recursive={"type": "boolean"}),
    ]
    parsed = parse(sample("glm45_two_calls.txt"), "glm47", "think_tags", tools=tools)
    assert calls(parsed)[0][2] == {"path": ".", "recursive": True}
    assert calls(parsed)[1][2]["globs"] == ["*.py", "src/**/*.py"]
    text = '<tool_call>write_file<arg_key>content</arg_key><arg_value>{"a": 1}\n</arg_value></tool_call>'
    written = parse(text, "glm47", tools=[tool("write_file", content={"type": "string"})])
    assert calls(written)[0][2] == {"content": '{"a": 1}\n'}  # a string stays exactly the string


def test_glm_call_without_arguments() -> None:
    parsed = parse("Listing.<tool_call>list_files</tool_call>", "glm47")
    assert calls(parsed) == [("call_0", "list_files", {})]
    assert parsed.content == "Listing."


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "<tool_call><arg_key>path</arg_key><arg_value>a</arg_value></tool_call>",
            "missing function name after <tool_call>",
        ),
        (
            "<tool_call>read file<arg_key>path</arg_key><arg_value>a</arg_value></tool_call>",
            "unexpected text in <tool_call>: expected <arg_key> or </tool_call>",
        ),
        ('<tool_call>"read_file"<arg_key>path</arg_key><arg_value>a</arg_value></tool_call>', "invalid function name"),
        ("<tool_call>read_file<arg_key>path</arg_key></tool_call>", "<arg_key>path</arg_key> is not followed by"),
        ("<tool_call>read_file<arg_key></arg_key><arg_value>a</arg_value></tool_call>", "empty <arg_key>"),
        ("<tool_call>read_file path=a</tool_call>", "unexpected text in <tool_call>"),
        ("<tool_call>read_file\npath=a</tool_call>", "unexpected text in <tool_call>"),
        (
            "<tool_call>write_file<arg_key>content</arg_key><arg_value>def f(x):\n    return x <",
            "the output ends inside the <arg_value> of 'content'",
        ),
        ("<tool_call>write_file<arg_key>path</arg_key><arg_value>a</arg_value>", "the output ends before </tool_call>"),
        ("<tool_call>write_fi", "the output ends after the function name 'write_fi'"),
        ("<tool_call>run<arg_key>cmd", "the output ends inside <arg_key>"),
    ],
)
def test_glm_malformed_blocks(text: str, reason: str) -> None:
    parsed = parse("On it." + text, "glm47")
    assert parsed.tool_calls == ()
    assert parsed.content == "On it."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)
    assert text.strip() in invalid


def test_glm_truncated_call_is_marked_truncated() -> None:
    parsed = parse(
        "<tool_call>read_file<arg_key>path</arg_key><arg_value>a</arg_value></tool_call>"
        "<tool_call>run<arg_key>command</arg_key><arg_value>pytest -q",
        "glm47",
    )
    assert [c.name for c in parsed.tool_calls] == ["read_file"]
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith("the output ends inside the <arg_value> of 'command' (truncated?): <tool_call>run")


# -- json_block -------------------------------------------------------------------------------------


def test_json_block_call_among_other_blocks() -> None:
    parsed = parse(sample("json_block_qwen25_coder.txt"), "json_block")
    assert calls(parsed) == [("call_0", "run", {"command": "python -m wordcount --help"})]
    assert parsed.content.startswith(
        "To see what the CLI currently supports, I'll print its help text.\nAfter that I will add the `--top N` option."
    )
    assert parsed.content.endswith(
        '{"name": "wordcount", "version": "0.3.0", "scripts": {"wc": "wordcount.cli:main"}}\n```'
    )
    assert parsed.invalid_tool_calls == ()


@pytest.mark.parametrize(
    "block",
    [
        '```json\n{"name": "run", "arguments": {"command": "ls"}}\n```',
        '```json {"name": "run", "arguments": {"command": "ls"}}```',
        '```\n{"tool": "run", "args": {"command": "ls"}}\n```',
        '```json\n{"tool_name": "run", "tool_input": {"command": "ls"}}\n```',
        '```json\n{"name": "run", "parameters": {"command": "ls"}}\n```',
        '```json\n{"type": "function", "function": {"name": "run", "arguments": "{\\"command\\": \\"ls\\"}"}}\n```',
        '```tool_call\n{"function": "run", "input": {"command": "ls"}}\n```',
        '```JSON\n  {\n    "name": "run",\n    "arguments": {"command": "ls"}\n  }\n```',
    ],
    ids=[
        "json",
        "inline",
        "tool-args",
        "tool_name-tool_input",
        "parameters",
        "openai-shape",
        "tool_call-fence",
        "upper-case-indented",
    ],
)
def test_json_block_variants(block: str) -> None:
    parsed = parse(f"Let me check.\n\n{block}\n", "json_block")
    assert calls(parsed) == [("call_0", "run", {"command": "ls"})]
    assert parsed.content == "Let me check."


def test_json_block_list_of_calls_and_code_fences_in_values() -> None:
    text = (
        '```json\n[{"name": "write_file", "arguments": {"path": "README.md", "content": '
        '"# Demo\\n\\n```bash\\npip install demo\\n```\\n"}}, {"name": "run", "arguments": {"command": "ls"}}]'
        "\n```\nBoth done."
    )
    parsed = parse(text, "json_block")
    assert calls(parsed) == [
        ("call_0", "write_file", {"path": "README.md", "content": "# Demo\n\n```bash\npip install demo\n```\n"}),
        ("call_1", "run", {"command": "ls"}),
    ]
    assert parsed.content == "Both done."


def test_json_block_message_that_is_only_json() -> None:
    parsed = parse('  {"name": "read_file", "parameters": {"path": "setup.cfg"}}\n', "json_block")
    assert calls(parsed) == [("call_0", "read_file", {"path": "setup.cfg"})]
    assert parsed.content == ""


def test_json_block_leaves_code_and_data_alone() -> None:
    text = (
        "```python\nprint({'name': 1, 'arguments': 2})\n```\n```json\n[1, 2, 3]\n```\n"
        '```\n{ int x = 0; }\n```\n```json\n{"name": "pkg", "dependencies": {}}\n```'
    )
    assert parse(text, "json_block") == ParsedMessage(content=text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('```json\n{"name": "run", "arguments": {"command": "ls"}\n```', "invalid JSON in fenced block"),
        (
            '```json\n{"name": "run", "arguments": {"command": "ls"}} // run it\n```',
            "unexpected text after the JSON in fenced block",
        ),
        ('```json\n{"name": "", "arguments": {}}\n```', "missing function name"),
        ('```json\n{"name": "run", "arguments": {"command": "pytest -q tes', "invalid JSON in fenced block"),
    ],
)
def test_json_block_malformed(text: str, reason: str) -> None:
    parsed = parse(f"Running.\n{text}", "json_block")
    assert parsed.tool_calls == ()
    assert parsed.content == "Running."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)


def test_json_block_truncated_fence_says_so() -> None:
    parsed = parse('```json\n{"name": "run", "arguments": {"command": "pytest -q tes', "json_block")
    (invalid,) = parsed.invalid_tool_calls
    assert "the output ends before ``` (truncated?)" in invalid


# -- reasoning -----------------------------------------------------------------------------------------


def test_think_tags_full_block() -> None:
    parsed = parse(
        "<think>\nThe mean of the middle pair.\n</think>\n\nFixed: `median` now averages.", "openai", "think_tags"
    )
    assert (parsed.reasoning, parsed.content) == ("The mean of the middle pair.", "Fixed: `median` now averages.")


def test_think_tags_when_the_template_opened_the_block() -> None:
    parsed = parse("Okay, so the user wants X.\nLet me think.\n</think>\n\nHere is X.", "openai", "think_tags")
    assert (parsed.reasoning, parsed.content) == ("Okay, so the user wants X.\nLet me think.", "Here is X.")


def test_think_tags_truncated_mid_thought() -> None:
    parsed = parse("<think>\nFirst I will read the file, then", "hermes", "think_tags")
    assert (parsed.reasoning, parsed.content) == ("First I will read the file, then", "")


def test_think_tags_empty_block_means_no_reasoning() -> None:
    parsed = parse("<think>\n\n</think>\n\nAll tests pass.", "openai", "think_tags")  # Qwen3 /no_think
    assert (parsed.reasoning, parsed.content) == (None, "All tests pass.")


def test_think_tags_without_tags_leaves_content() -> None:
    assert parse("Done.", "openai", "think_tags") == ParsedMessage(content="Done.")


def test_a_tool_call_inside_reasoning_is_not_a_call() -> None:
    text = (
        '<think>Maybe <tool_call>{"name": "rm", "arguments": {}}</tool_call>? No.</think>\n'
        '<tool_call>{"name": "run", "arguments": {"command": "ls"}}</tool_call>'
    )
    parsed = parse(text, "hermes", "think_tags")
    assert [c.name for c in parsed.tool_calls] == ["run"]
    assert parsed.reasoning is not None and "rm" in parsed.reasoning


def test_without_a_reasoning_parser_think_tags_stay_in_content() -> None:
    parsed = parse("<think>hm</think>Answer.", "openai")
    assert (parsed.reasoning, parsed.content) == (None, "<think>hm</think>Answer.")


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("tool_parser", sorted(TOOL_PARSERS))
def test_reasoning_field_is_taken_whatever_the_parser(key: str, tool_parser: str) -> None:
    parsed = parse("The answer.", tool_parser, **{key: "  Because the middle pair.\n"})
    assert (parsed.reasoning, parsed.content) == ("Because the middle pair.", "The answer.")


def test_reasoning_field_and_think_tags_together() -> None:
    parsed = parse("more thought</think>Answer.", "openai", "think_tags", reasoning_content="server-side thought")
    assert parsed.reasoning == "server-side thought\n\nmore thought"
    assert parsed.content == "Answer."


# -- every parser, every sample: never raises, always accounts for the calls -------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.txt")))
@pytest.mark.parametrize("tool_parser", sorted(TOOL_PARSERS))
@pytest.mark.parametrize("reasoning_parser", sorted(REASONING_PARSERS))
def test_any_sample_cut_anywhere_with_any_parser_is_handled(name: str, tool_parser: str, reasoning_parser: str) -> None:
    """As max_tokens would cut it, at every few characters: no exception, only sound results."""
    full = sample(name)
    for cut in [*range(0, len(full), 3), len(full)]:
        parsed = parse(full[:cut], tool_parser, reasoning_parser)
        for call in parsed.tool_calls:
            assert isinstance(json.loads(call.arguments), dict)
            assert call.name and call.id
        assert all(": " in invalid for invalid in parsed.invalid_tool_calls)
        assert parsed.content == parsed.content.strip()


def test_a_tag_mentioned_in_prose_does_not_swallow_the_real_call() -> None:
    text = (
        "I will wrap the call in a <tool_call> tag as asked.\n"
        '<tool_call>\n{"name": "run", "arguments": {"command": "ls"}}\n</tool_call>'
    )
    parsed = parse(text, "hermes")
    assert calls(parsed) == [("call_0", "run", {"command": "ls"})]
    (invalid,) = parsed.invalid_tool_calls
    assert invalid == "invalid JSON in <tool_call> (Expecting value at char 0): <tool_call> tag as asked."


def test_flat_tool_schemas_are_understood_too() -> None:
    flat = {"name": "f", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}}}
    text = "<tool_call>\n<function=f>\n<parameter=n>\n7\n</parameter>\n</function>\n</tool_call>"
    assert calls(parse(text, "qwen3_xml", tools=[flat, "not a tool"])) == [("call_0", "f", {"n": 7})]


# -- deepseek_v31 (and deepseek_v3: the fenced V3 / R1 spelling) --------------------------------------

BEGIN, CALL, SEP, END, CLOSE = (
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁call▁begin｜>",
    "<｜tool▁sep｜>",
    "<｜tool▁call▁end｜>",
    ("<｜tool▁calls▁end｜>"),
)


def test_deepseek_v31_two_calls_after_prose() -> None:
    parsed = parse(
        sample("deepseek_v31_two_calls.txt"), "deepseek_v31", tools=[tool("run", timeout_s={"type": "integer"})]
    )
    assert calls(parsed) == [
        ("call_0", "read_file", {"path": "tests/test_median.py"}),
        ("call_1", "run", {"command": "python -m pytest -q tests -k 'median and not slow'", "timeout_s": 120}),
    ]
    assert parsed.content == "I'll read the failing test first, then run the suite."
    assert parsed.invalid_tool_calls == ()


def test_deepseek_r1_fenced_call_after_a_template_opened_thought() -> None:
    parsed = parse(sample("deepseek_r1_fenced_call.txt"), "deepseek_v3", "think_tags")
    assert calls(parsed) == [("call_0", "read_file", {"path": "src/stats.py"})]
    assert parsed.reasoning == "The even branch returns the upper middle element; I should look at it."
    assert parsed.content == ""


@pytest.mark.parametrize(
    "text",
    [
        f'{BEGIN}{CALL}run{SEP}{{"command": "ls"}}{END}{CLOSE}',
        f'{CALL}run{SEP}{{"command": "ls"}}{END}',  # no section tokens
        f'{BEGIN}{CALL}run{SEP}{{"command": "ls"}}',  # the end tokens were stop tokens
        f'{BEGIN}\n{CALL} run {SEP}\n{{"command": "ls"}}\n{END}\n{CLOSE}\n',
        '<|tool▁calls▁begin|><|tool▁call▁begin|>run<|tool▁sep|>{"command": "ls"}<|tool▁call▁end|>',  # ASCII bars
        f'{CALL}function{SEP}run\n```json\n{{"command": "ls"}}\n```{END}',
        f'{CALL}function{SEP}run\n{{"command": "ls"}}{END}',  # V3 without the fence
        f'{CALL}run{SEP}"{{\\"command\\": \\"ls\\"}}"{END}',  # double-encoded: a JSON string holding the object
    ],
    ids=["full", "no-section", "stop-tokens", "whitespace", "ascii-bars", "v3-fenced", "v3-bare", "dbl"],
)
def test_deepseek_variations(text: str) -> None:
    parsed = parse(text, "deepseek_v31")
    if "dbl" in text or text.count('\\"'):
        assert parsed.tool_calls == ()  # a JSON string is not an object: invalid, not guessed
        assert parsed.invalid_tool_calls[0].startswith("arguments must be a JSON object, got str")
        return
    assert calls(parsed) == [("call_0", "run", {"command": "ls"})]
    assert (parsed.content, parsed.invalid_tool_calls) == ("", ())


def test_deepseek_end_token_inside_a_json_string_is_text() -> None:
    value = f"print('{END}')"
    text = f"{CALL}write_file{SEP}{json.dumps({'path': 'a.py', 'content': value}, ensure_ascii=False)}{END}"
    assert calls(parse(text, "deepseek_v31")) == [("call_0", "write_file", {"path": "a.py", "content": value})]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f'{CALL}run{{"command": "ls"}}', "the output ends before <｜tool▁sep｜> (truncated?)"),
        (f'{CALL}run{SEP}{{"command": "ls",}}{END}', "invalid JSON arguments (Expecting property name"),
        (f"{CALL}run{SEP}[1, 2]{END}", "arguments must be a JSON object, got list"),
        (f'{CALL}run{SEP}{{"command": "ls"}} and more{END}', "unexpected text after the arguments"),
        (f"{CALL}{SEP}{{}}{END}", "missing function name"),
        (f'{CALL}read file{SEP}{{"path": "a"}}{END}', "invalid function name 'read file'"),
        (f"{CALL}run{SEP}", "the output ends before the arguments (truncated?)"),
        (f'{CALL}run{SEP}{{"command": "pytest -q tes', "invalid JSON arguments (Unterminated string"),
        (f"{BEGIN}", "the output ends after the section begin token (truncated?)"),
        (f"{BEGIN}I will call run now.{CLOSE}", "a tool-call section without a call in it"),
    ],
)
def test_deepseek_malformed_calls(text: str, reason: str) -> None:
    parsed = parse("Next.\n" + text, "deepseek_v31")
    assert parsed.tool_calls == ()
    assert parsed.content == "Next."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)


def test_deepseek_a_call_cut_by_the_next_one_is_invalid_and_the_next_stays() -> None:
    text = f'{BEGIN}{CALL}read_file{SEP}{{"path": "a.py"{CALL}run{SEP}{{"command": "ls"}}{END}{CLOSE}'
    parsed = parse(text, "deepseek_v31")
    assert calls(parsed) == [("call_0", "run", {"command": "ls"})]
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith("invalid JSON arguments") and "read_file" in invalid


def test_deepseek_unknown_tool_names_are_kept_for_the_agent_to_refuse() -> None:
    """The parser decodes; whether the tool exists is the agent's call (it answers 'unknown tool')."""
    parsed = parse(f'{CALL}rm_rf{SEP}{{"path": "/"}}{END}', "deepseek_v31", tools=[tool("run")])
    assert calls(parsed) == [("call_0", "rm_rf", {"path": "/"})]


def test_openai_recovers_leaked_deepseek_calls() -> None:
    parsed = parse(sample("deepseek_v31_two_calls.txt"), "openai")
    assert [c.name for c in parsed.tool_calls] == ["read_file", "run"]
    assert parsed.content == "I'll read the failing test first, then run the suite."


# -- dsml: deepseek_v32 / deepseek_v4 --------------------------------------------------------------------


def test_dsml_v4_after_thinking() -> None:
    parsed = parse(sample("dsml_v4_thinking_calls.txt"), "deepseek_v4", "qwen3")
    assert parsed.reasoning is not None and parsed.reasoning.startswith("The median of an even-length list")
    assert parsed.content == "I'll fix the even-length branch."
    read, edit = calls(parsed)
    assert read == ("call_0", "read_file", {"path": "src/stats.py"})
    assert edit[1] == "edit_file"
    assert edit[2]["old"] == "    return s[n // 2]"
    assert edit[2]["new"] == (
        "    if n % 2 == 0:\n        return (s[n // 2 - 1] + s[n // 2]) / 2"
        '  # "</｜DSML｜parameter>" in a comment stays text\n    return s[n // 2]'
    )
    assert edit[2]["count"] == 1 and edit[2]["options"] == {"backup": False, "encoding": "utf-8"}


def test_dsml_v32_function_calls_block() -> None:
    parsed = parse(sample("dsml_v32_function_calls.txt"), "deepseek_v32")
    assert calls(parsed) == [
        ("call_0", "list_files", {"path": ".", "recursive": True}),
        ("call_1", "grep", {"pattern": "argparse.ArgumentParser(", "globs": ["*.py", "src/**/*.py"]}),
    ]
    assert parsed.content == "Let me list the files and search for the CLI entry point."


DS = "｜DSML｜"


def dsml_call(*params: str, name: str = "f", block: str = "tool_calls") -> str:
    body = "".join(f"<{DS}parameter {p}</{DS}parameter>\n" for p in params)
    return f'<{DS}{block}>\n<{DS}invoke name="{name}">\n{body}</{DS}invoke>\n</{DS}{block}>'


@pytest.mark.parametrize(
    ("param", "schema", "expected"),
    [
        ('name="x" string="true">5', None, "5"),  # a string, as written
        ('name="x" string="false">5', None, 5),
        ('name="x" string="false">not json', None, "not json"),
        ('name="x" string="false">[1, 2]', {"type": "array"}, [1, 2]),
        ('name="x">7', {"type": "integer"}, 7),  # no attribute: typed from the schema
        ('name="x">7', {"type": "string"}, "7"),
        ('name="x">{"a": 1}', None, {"a": 1}),  # no attribute, no schema: JSON if it is JSON
        ('name="x">a b', None, "a b"),
        ('name="x" string="true">  spaced\n', None, "  spaced\n"),  # kept exactly
    ],
)
def test_dsml_values(param: str, schema: dict[str, Any] | None, expected: Any) -> None:
    tools = [tool("f", x=schema)] if schema else None
    assert calls(parse(dsml_call(param), "deepseek_v4", tools=tools)) == [("call_0", "f", {"x": expected})]


@pytest.mark.parametrize("block", ["function_calls", "tool_calls", "toolcalls", "tool"])
def test_dsml_block_spellings_all_parse_under_both_names(block: str) -> None:
    text = dsml_call('name="command" string="true">ls', name="run", block=block)
    for name in ("deepseek_v32", "deepseek_v4"):
        assert calls(parse(text, name)) == [("call_0", "run", {"command": "ls"})]


def test_dsml_ascii_bars_and_no_block() -> None:
    text = (
        '<|DSML|invoke name="run">\n<|DSML|parameter name="command" string="true">ls</|DSML|parameter>\n</|DSML|invoke>'
    )
    assert calls(parse("Running.\n" + text, "deepseek_v4")) == [("call_0", "run", {"command": "ls"})]


def test_dsml_missing_closing_tags_are_tolerated() -> None:
    text = (
        f'<{DS}tool_calls>\n<{DS}invoke name="edit">\n<{DS}parameter name="path" string="true">a.py\n'
        f'<{DS}parameter name="line" string="false">12</{DS}parameter>\n</{DS}tool_calls>'
    )
    assert calls(parse(text, "deepseek_v4")) == [("call_0", "edit", {"path": "a.py", "line": 12})]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (dsml_call('name="x" string="true">1', 'name="x" string="true">2'), "parameter 'x' given twice"),
        (f"<{DS}tool_calls>\n<{DS}invoke>\n</{DS}invoke>", 'expected name="..."> in <invoke'),
        (f'<{DS}invoke name="">\n</{DS}invoke>', "missing name in <invoke>"),
        (f'<{DS}invoke name="f">\nx = 1\n</{DS}invoke>', "unexpected text in <invoke name='f'>"),
        (f'<{DS}invoke name="f">\n<{DS}parameter name="code" string="true">def g():', "the output ends inside <para"),
        (f'<{DS}invoke name="f">\n<{DS}parameter string="true">1</{DS}parameter>', 'expected name="..."> in <param'),
        (
            f'<{DS}invoke name="f">\n<{DS}parameter name="a" string="true">1</{DS}parameter>',
            "the output ends inside <inv",
        ),
        (f"<{DS}tool_calls>", "the output ends after the tool-call block tag (truncated?)"),
        (f"<{DS}tool_calls>\nI will call f.\n</{DS}tool_calls>", "a tool-call block without an <invoke>"),
        (f'<{DS}invoke name="a b">\n</{DS}invoke>', "invalid function name 'a b'"),
    ],
)
def test_dsml_malformed(text: str, reason: str) -> None:
    parsed = parse("On it.\n" + text, "deepseek_v4")
    assert parsed.tool_calls == ()
    assert parsed.content == "On it."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)


def test_dsml_an_invoke_opened_inside_a_value_ends_the_call_there() -> None:
    text = (
        f'<{DS}invoke name="write_file">\n<{DS}parameter name="content" string="true">see <{DS}invoke name="x">'
        f'</{DS}parameter>\n</{DS}invoke>\n<{DS}invoke name="run">\n<{DS}parameter name="command" string="true">ls'
        f"</{DS}parameter>\n</{DS}invoke>"
    )
    parsed = parse(text, "deepseek_v4")
    assert [c.name for c in parsed.tool_calls] == ["run"]
    assert parsed.invalid_tool_calls[0].startswith("<parameter name='content'> is not closed before the next <invoke>")
    assert len(parsed.invalid_tool_calls) == 2  # and the stray <invoke name="x"> is reported, not run


def test_openai_recovers_leaked_dsml_calls() -> None:
    parsed = parse(sample("dsml_v32_function_calls.txt"), "openai")
    assert [c.name for c in parsed.tool_calls] == ["list_files", "grep"]


# -- minimax_m2 ------------------------------------------------------------------------------------------


def test_minimax_m2_calls_after_thinking_kept_in_the_text() -> None:
    """vLLM's minimax_m2_append_think keeps <think>...</think> in the content: the client splits it."""
    tools = [
        tool("write_file", path={"type": "string"}, content={"type": "string"}),
        tool("run", timeout_s={"type": "integer"}),
    ]
    parsed = parse(sample("minimax_m2_thinking_calls.txt"), "minimax_m2", "qwen3", tools=tools)
    assert parsed.reasoning == "The user wants a --top N option. I'll write the new CLI module and run its tests."
    assert parsed.content == ""
    (write, run) = calls(parsed)
    assert write[2]["path"] == "src/wordcount/cli.py"
    assert write[2]["content"].startswith("import argparse\n\n\ndef main(argv=None):\n")
    assert "# '</parameter>' here is code, not a tag\n    return parser.parse_args(argv)\n" in write[2]["content"]
    assert run == ("call_1", "run", {"command": "python -m pytest -q tests/test_cli.py", "timeout_s": 120})


def test_minimax_values_stay_strings_without_a_schema() -> None:
    parsed = parse(sample("minimax_m2_thinking_calls.txt"), "minimax_m2", "think_tags")
    assert calls(parsed)[1][2]["timeout_s"] == "120"


@pytest.mark.parametrize(
    "opening",
    ['<invoke name="run">', "<invoke name='run'>", "<invoke name=run>", '<invoke  name = "run" >'],
)
def test_minimax_name_quoting(opening: str) -> None:
    text = f'<minimax:tool_call>\n{opening}\n<parameter name="command">ls</parameter>\n</invoke>\n</minimax:tool_call>'
    assert calls(parse(text, "minimax_m2")) == [("call_0", "run", {"command": "ls"})]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '<minimax:tool_call>\n<invoke name="f">\n<parameter name="a">1</parameter>\n<parameter name="a">2'
            "</parameter>\n</invoke>\n</minimax:tool_call>",
            "parameter 'a' given twice",
        ),
        ('<minimax:tool_call>\n<invoke name="f">\n<parameter name="code">x = [', "the output ends inside <parameter"),
        ("<minimax:tool_call>", "the output ends after the tool-call block tag (truncated?)"),
        ("<minimax:tool_call>\nrun ls\n</minimax:tool_call>", "a tool-call block without an <invoke>"),
        ('<minimax:tool_call>\n<invoke name="{{ tool.name }}">\n</invoke>', "invalid function name"),
        ('<minimax:tool_call>\n<invoke name="f">\n<arg>1</arg>\n</invoke>', "unexpected text in <invoke name='f'>"),
    ],
)
def test_minimax_malformed(text: str, reason: str) -> None:
    parsed = parse("Okay.\n" + text, "minimax_m2")
    assert parsed.tool_calls == ()
    assert parsed.content == "Okay."
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)


def test_openai_recovers_leaked_minimax_calls_but_not_a_bare_invoke_in_prose() -> None:
    parsed = parse(sample("minimax_m2_thinking_calls.txt"), "openai", "qwen3")
    assert [c.name for c in parsed.tool_calls] == ["write_file", "run"]
    prose = 'An MCP server answers <invoke name="x"> elements; see the spec.'
    assert parse(prose, "openai") == ParsedMessage(content=prose)


# -- kimi_k2 ---------------------------------------------------------------------------------------------


def test_kimi_k2_keeps_its_own_call_ids() -> None:
    parsed = parse(sample("kimi_k2_two_calls.txt"), "kimi_k2")
    assert calls(parsed) == [
        ("functions.read_file:0", "read_file", {"path": "tests/test_median.py"}),
        ("functions.read_file:1", "read_file", {"path": "src/stats.py"}),
    ]
    assert parsed.content == "I'll look at the test and the implementation."


@pytest.mark.parametrize(
    ("header", "name", "call_id"),
    [
        ("functions.run:3", "run", "functions.run:3"),
        ("run", "run", "call_0"),  # a bare name: the id is ours
        ("functions.run", "run", "functions.run"),
        ("functions.shell.run:0", "run", "functions.shell.run:0"),  # namespaced, the tool is declared as run
    ],
)
def test_kimi_headers(header: str, name: str, call_id: str) -> None:
    text = (
        f"<|tool_call_section_begin|><|tool_call_begin|>{header}<|tool_call_argument_begin|>"
        '{"command": "ls"}<|tool_call_end|>'
    )
    assert calls(parse(text, "kimi_k2", tools=[tool("run")])) == [(call_id, name, {"command": "ls"})]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '<|tool_call_begin|>functions.run:0{"command": "ls"}<|tool_call_end|>',
            "the output ends before <|tool_call_argu",
        ),
        ("<|tool_call_begin|>functions.:0<|tool_call_argument_begin|>{}<|tool_call_end|>", "missing function name"),
        (
            "<|tool_call_begin|>functions.run:0<|tool_call_argument_begin|>{'command': 'ls'}<|tool_call_end|>",
            "invalid JSON",
        ),
        ("<|tool_calls_section_begin|>", "the output ends after the section begin token"),
    ],
)
def test_kimi_malformed(text: str, reason: str) -> None:
    parsed = parse("Hm.\n" + text, "kimi_k2")
    assert parsed.tool_calls == ()
    (invalid,) = parsed.invalid_tool_calls
    assert invalid.startswith(reason)


def test_kimi_ids_and_native_ids_together() -> None:
    text = '<|tool_call_begin|>functions.run:0<|tool_call_argument_begin|>{"command": "ls"}<|tool_call_end|>'
    parsed = parse(text, "kimi_k2", tool_calls=[native(None, "read_file", '{"path": "a"}')])
    assert [(c.id, c.name) for c in parsed.tool_calls] == [("call_0", "read_file"), ("functions.run:0", "run")]


def test_deepseek_and_kimi_tokens_are_told_apart() -> None:
    """DeepSeek's tokens with ASCII bars and underscores would be Kimi's: each parser takes only its own."""
    kimi = sample("kimi_k2_two_calls.txt")
    assert parse(kimi, "deepseek_v31") == ParsedMessage(content=kimi.strip())
    assert parse(sample("deepseek_v31_two_calls.txt"), "kimi_k2").tool_calls == ()


def test_openai_recovers_leaked_kimi_calls_with_their_ids() -> None:
    parsed = parse(sample("kimi_k2_two_calls.txt"), "openai")
    assert [c.id for c in parsed.tool_calls] == ["functions.read_file:0", "functions.read_file:1"]


# -- qwen3 reasoning -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        ("<think>\nmiddle pair\n</think>\n\nFixed.", "middle pair", "\n\nFixed."),
        ("the template opened it\n</think>\nFixed.", "the template opened it", "\nFixed."),
        ("<think>\n\n</think>\n\nAll pass.", None, "\n\nAll pass."),  # /no_think
        ("<think>first I read the file, then", "first I read the file, then", ""),  # truncated
        ("Plain answer.", None, "Plain answer."),
        ("<think><think>doubled</think></think>\nOK", "doubled", "\nOK"),  # repeated markers absorbed
        ("thought</think>\n</think>\nOK", "thought", "\nOK"),
        ("Note: <think>x</think>y", "x", "Note: y"),
    ],
)
def test_qwen3_reasoning_split(text: str, reasoning: str | None, content: str) -> None:
    assert REASONING_PARSERS["qwen3"](text) == (reasoning, content)


def test_qwen3_a_tool_call_ends_an_unclosed_thought_where_think_tags_loses_it() -> None:
    text = '<think>I need the file.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>'
    qwen3 = parse(text, "hermes", "qwen3")
    assert (qwen3.reasoning, calls(qwen3)) == ("I need the file.", [("call_0", "read_file", {"path": "a.py"})])
    lost = parse(text, "hermes", "think_tags")
    assert lost.tool_calls == () and lost.reasoning is not None and "read_file" in lost.reasoning


def test_qwen3_a_think_close_inside_a_tool_value_is_not_the_end_of_a_thought() -> None:
    text = (
        "<tool_call>\n<function=write_file>\n<parameter=content>\nTAG = '</think>'\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    parsed = parse(text, "qwen3_coder", "qwen3")
    assert parsed.reasoning is None
    assert calls(parsed) == [("call_0", "write_file", {"content": "TAG = '</think>'"})]


# -- hostile output: linear time ---------------------------------------------------------------------------


HOSTILE = {
    # qwen3_xml and glm47 were cubic / quadratic here (5,000 unclosed blocks took 550 s): now linear
    "qwen3_xml": [
        "<tool_call>\n<function=f>\n<parameter=a>\nx" * 20_000,
        "<function=f>\n<parameter=a>\nx</parameter>y" * 20_000,
        "<function=f" * 100_000,
    ],
    "glm47": [
        "<tool_call>f<arg_key>a</arg_key><arg_value>x" * 20_000,
        "<tool_call>f<arg_key>a</arg_key><arg_value>x</arg_value>y" * 20_000,
        "<tool_call>f<arg_key>a" * 50_000,
    ],
    "deepseek_v31": [CALL * 100_000, (CALL + "f" + SEP + '{"a": "') * 50_000, BEGIN * 200_000],
    "kimi_k2": ["<|tool_call_begin|>" * 100_000, "<|tool_calls_section_begin|>x" * 100_000],
    "deepseek_v4": [
        f'<{DS}invoke name="' * 100_000,
        f'<{DS}invoke name="f">\n' + f'<{DS}parameter name="a" string="true">x\n' * 50_000,
        f'<{DS}invoke name="f">\n<{DS}parameter name="a" string="true">' + f"</{DS}parameter>x" * 100_000,
        f"<{DS}tool_calls>x" * 100_000,
        f"</{DS}invoke>" * 200_000,
    ],
    "minimax_m2": [
        '<invoke name="' + "a" * 2_000_000,
        "<minimax:tool_call>" * 100_000,
        '<invoke name="f">\n' + '<parameter name="a">' * 100_000,
    ],
}


@pytest.mark.parametrize(("tool_parser", "text"), [(name, text) for name, texts in HOSTILE.items() for text in texts])
def test_hostile_output_parses_in_linear_time(tool_parser: str, text: str) -> None:
    """Megabytes of repeated openings: a quadratic scan would take hours; ours about a second (20 s: a busy CI box)."""
    start = time.perf_counter()
    parsed = parse(text, tool_parser)
    assert time.perf_counter() - start < 20.0
    assert all(": " in i for i in parsed.invalid_tool_calls)
    again = parse(text, "openai")  # the leak recovery must not be the slow path either
    assert time.perf_counter() - start < 40.0
    assert isinstance(again, ParsedMessage)


def test_a_huge_argument_value_is_kept_whole() -> None:
    big = "x = 1\n" * 500_000  # 3 MB
    text = f'<minimax:tool_call>\n<invoke name="write_file">\n<parameter name="content">{big}</parameter>\n</invoke>'
    start = time.perf_counter()
    ((_, _, arguments),) = calls(parse(text, "minimax_m2"))
    assert arguments["content"] == big and time.perf_counter() - start < 20.0


# -- streamed or whole: the same message ---------------------------------------------------------------

STREAM_CASES = [
    ("deepseek_v31_two_calls.txt", "deepseek_v31", None),
    ("deepseek_r1_fenced_call.txt", "deepseek_v3", "think_tags"),
    ("dsml_v4_thinking_calls.txt", "deepseek_v4", "qwen3"),
    ("dsml_v32_function_calls.txt", "deepseek_v32", None),
    ("minimax_m2_thinking_calls.txt", "minimax_m2", "qwen3"),
    ("kimi_k2_two_calls.txt", "kimi_k2", None),
    ("kimi_k2_two_calls.txt", "openai", None),
    ("minimax_m2_thinking_calls.txt", "openai", "qwen3"),
]


@pytest.fixture(scope="module")
def leaking_server() -> Any:
    """A scripted server (test double) that answers each sample as plain content, over real HTTP."""
    names = sorted({name for name, _, _ in STREAM_CASES})
    script = {"conversations": [{"match": f"[{n}]", "responses": [{"content": sample(n)}]} for n in names]}
    with ScriptedServer(script) as server:
        yield server


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("name", "tool_parser", "reasoning_parser"), STREAM_CASES)
def test_streamed_and_whole_answers_parse_alike(
    leaking_server: ScriptedServer, name: str, tool_parser: str, reasoning_parser: str | None, stream: bool
) -> None:
    """Streamed, the special tokens arrive split across 8-character chunks; the message must not change."""
    spec = ModelSpec(
        alias="t",
        model="scripted",
        source=Path("models.yaml"),
        tool_parser=tool_parser,
        reasoning_parser=reasoning_parser,
        stream=stream,
    )
    with ModelAdapter(spec, base_url=leaking_server.base_url) as adapter:
        done = adapter.complete([{"role": "user", "content": f"[{name}]"}])
    assert done.message == parse(sample(name), tool_parser, reasoning_parser)
    assert done.tool_calls and done.extra["native_tool_calls"] == 0
    assert (done.ttft_s is not None) == stream
