"""models.yaml: strict loading, environment expansion, alias selection, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_agentbench.errors import ModelsFileError
from pytest_agentbench.models.registry import load_models, select

GOOD = """\
models:
  local:
    model: my-model
    base_url: http://127.0.0.1:8000/v1
    tool_parser: hermes
    cost: {gpu_hourly_usd: 4.5, concurrency: 4}
  cloud:
    model: gpt-5-mini
    base_url: ${AB_TEST_BASE_URL}
    api_key_env: AB_TEST_KEY
    cost: {input_per_mtok: 3.0, output_per_mtok: 15.0}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_good_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AB_TEST_BASE_URL", "http://127.0.0.1:9/v1")
    specs = load_models(write(tmp_path, GOOD))
    assert list(specs) == ["local", "cloud"]
    assert specs["local"].tool_parser == "hermes"
    assert specs["cloud"].base_url == "http://127.0.0.1:9/v1"
    assert specs["cloud"].unresolved == ()


def test_unset_variable_fails_only_when_the_alias_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AB_TEST_BASE_URL", raising=False)
    specs = load_models(write(tmp_path, GOOD))
    specs["local"].check_usable()
    with pytest.raises(ModelsFileError, match=r"models\.cloud: environment variable\(s\) AB_TEST_BASE_URL"):
        specs["cloud"].check_usable()


def test_default_in_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AB_TEST_BASE_URL", raising=False)
    text = GOOD.replace("${AB_TEST_BASE_URL}", "${AB_TEST_BASE_URL:-http://127.0.0.1:1/v1}")
    specs = load_models(write(tmp_path, text))
    assert specs["cloud"].base_url == "http://127.0.0.1:1/v1"


def test_missing_key_names_the_variable_not_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AB_TEST_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("AB_TEST_KEY", raising=False)
    specs = load_models(write(tmp_path, GOOD))
    with pytest.raises(ModelsFileError, match="export AB_TEST_KEY"):
        specs["cloud"].check_usable()


def test_unknown_alias_lists_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ModelsFileError, match="unknown alias\\(es\\) 'nope' .* defines: local, cloud"):
        select(load_models(path), ["local", "nope"], path)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("models: {}\n", "models", "non-empty mapping"),
        ("model:\n  a: {model: x, base_url: 'http://h/v1'}\n", "models.yaml", "unknown key(s) 'model'"),
        ("models:\n  a: {base_url: 'http://h/v1'}\n", "models.a", "missing required key(s) 'model'"),
        ("models:\n  a: {model: x}\n", "models.a", "needs 'base_url'"),
        ("models:\n  a: {model: x, base_url: 'ftp://h'}\n", "models.a.base_url", "http(s) URL"),
        (
            "models:\n  a: {model: x, base_url: 'http://h/v1', tool_parser: magic}\n",
            "models.a",
            "unknown tool_parser 'magic'",
        ),
        (
            "models:\n  a: {model: x, base_url: 'http://h/v1', reasoning_parser: r1}\n",
            "models.a",
            "unknown reasoning_parser",
        ),
        (
            "models:\n  a: {model: x, base_url: 'http://h/v1', temprature: 0}\n",
            "models.a",
            "unknown key(s) 'temprature'",
        ),
        (
            "models:\n  a: {model: x, base_url: 'http://h/v1', api_key_env: sk-123}\n",
            "models.a.api_key_env",
            "NAME of an environment variable",
        ),
        (
            "models:\n  a: {model: x, base_url: 'http://h/v1', cost: {input_per_mtok: -1, output_per_mtok: 1}}\n",
            "models.a.cost.input_per_mtok",
            "cannot be negative",
        ),
        ("models:\n  a: {model: x, serve: {engine: sglang}}\n", "models.a.serve.engine", "expected one of vllm"),
        (
            "models:\n  a: {model: x, serve: {engine: scripted, script: nope.yaml}}\n",
            "models.a.serve.script",
            "not found",
        ),
        ("models:\n  'bad alias': {model: x, base_url: 'http://h/v1'}\n", "models.bad alias", "is not valid"),
        ("models:\n  a: {model: x, base_url: 'http://h/v1', stream: maybe}\n", "models.a.stream", "true or false"),
        ("models: [a, b]\n", "models", "non-empty mapping"),
        ("models:\n  a: {model: x, base_url: 'http://h/v1'\n", "models.yaml", "invalid YAML"),
    ],
)
def test_malformed_models_file(tmp_path: Path, text: str, key: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ModelsFileError) as exc:
        load_models(path)
    message = str(exc.value)
    assert str(path) in message
    assert key in message
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="file not found"):
        load_models(tmp_path / "models.yaml")


def test_repo_models_yaml_marks_scripted_aliases_as_test_doubles() -> None:
    specs = load_models(Path(__file__).resolve().parent.parent / "models.yaml")
    scripted = [s for s in specs.values() if s.serve and s.serve.engine == "scripted"]
    assert scripted and all(s.test_double for s in scripted)
