"""agentbench k8s-job: an Indexed Job (+ ConfigMap, Secret references, PVC) valid against the Kubernetes API schema."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.cli import main
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.results.jsonl import RESULTS_FILE
from pytest_agentbench.scale.k8s import JobOptions, job_manifests, merge_job_manifest
from pytest_agentbench.scale.k8s_schema import validate_manifest, validate_manifests

from .conftest import REPO, importorskip_extra

SECRET_VALUE = "sk-test-0123456789abcdefghijklmnop"
MODELS_YAML = (
    "models:\n"
    "  a:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
    "  gpt:\n    model: gpt-5-mini\n    base_url: http://127.0.0.1:9/v1\n    api_key_env: OPENAI_API_KEY\n"
)


@pytest.fixture
def k8s() -> Any:
    return importorskip_extra("kubernetes", "k8s")


def _opts(**kw: Any) -> JobOptions:
    base: dict[str, Any] = dict(
        shards=4, image="example/agentbench:1", models=("a", "gpt"), models_yaml=MODELS_YAML, api_key_envs=("K",)
    )
    return JobOptions(**{**base, **kw})


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def test_the_objects_validate_and_fit_together(k8s: Any) -> None:
    docs = job_manifests(_opts(namespace="bench", storage_class="nfs", cpu="2", memory="4Gi"))
    assert [d["kind"] for d in docs] == ["ConfigMap", "PersistentVolumeClaim", "Job"]
    assert validate_manifests([*docs, merge_job_manifest(_opts())]) == 4
    kinds = _by_kind(docs)
    job = kinds["Job"]["spec"]
    assert job["completionMode"] == "Indexed" and job["completions"] == 4 and job["parallelism"] == 4
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    script = container["command"][-1]
    assert "K=$((JOB_COMPLETION_INDEX + 1))" in script and '--shard "$K/4"' in script
    assert '--resume "$DIR"' in script and "--models a,gpt" in script
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert (
        volumes["results"]["persistentVolumeClaim"]["claimName"] == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    )
    assert volumes["models"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
    assert kinds["ConfigMap"]["data"] == {"models.yaml": MODELS_YAML}
    assert kinds["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert all(d["metadata"]["namespace"] == "bench" for d in docs)
    env = {e["name"]: e for e in container["env"]}
    assert env["K"]["valueFrom"] == {"secretKeyRef": {"name": "agentbench-api-keys", "key": "K"}}
    assert "annotations['batch.kubernetes.io/job-completion-index']" in json.dumps(env["JOB_COMPLETION_INDEX"])
    # Round trip through the client's own model: the Job it builds is the one we wrote.
    model = k8s.client.ApiClient().deserialize(json.dumps(kinds["Job"]), "V1Job", "application/json")
    assert model.spec.completion_mode == "Indexed" and model.spec.template.spec.containers[0].image == _opts().image


def _job() -> dict[str, Any]:
    return copy.deepcopy(job_manifests(_opts())[2])


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]["containers"][0]


def _typo(doc: dict[str, Any]) -> None:
    doc["spec"]["completionmode"] = doc["spec"].pop("completionMode")


def _snake(doc: dict[str, Any]) -> None:
    _container(doc)["working_dir"] = _container(doc).pop("workingDir")


def _no_name(doc: dict[str, Any]) -> None:
    del _container(doc)["name"]


def _no_template(doc: dict[str, Any]) -> None:
    del doc["spec"]["template"]


def _count_as_text(doc: dict[str, Any]) -> None:
    doc["spec"]["completions"] = "4"


def _bool_for_int(doc: dict[str, Any]) -> None:
    doc["spec"]["parallelism"] = True


def _env_as_map(doc: dict[str, Any]) -> None:
    _container(doc)["env"] = {"CI": "true"}


def _wrong_group(doc: dict[str, Any]) -> None:
    doc["apiVersion"] = "v1"


def _unknown_kind(doc: dict[str, Any]) -> None:
    doc["kind"] = "Jobb"
    doc["apiVersion"] = "batch/v1"


def _nested_unknown(doc: dict[str, Any]) -> None:
    doc["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["exitCodes"] = [4]


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_typo, "Job.spec.completionmode: not a field of V1JobSpec; did you mean 'completionMode'?"),
        (_snake, "containers[0].working_dir: not a field of V1Container; did you mean 'workingDir'?"),
        (_no_name, "containers[0].name: required by V1Container, missing"),
        (_no_template, "Job.spec.template: required by V1JobSpec, missing"),
        (_count_as_text, "Job.spec.completions: expected int, found str '4'"),
        (_bool_for_int, "Job.spec.parallelism: expected int, found bool True"),
        (_env_as_map, "containers[0].env: expected a list, found dict"),
        (_wrong_group, "apiVersion 'v1': a Job is served by 'batch/v1'"),
        (_unknown_kind, "knows no Jobb in batch/v1"),
        (_nested_unknown, "onExitCodes.exitCodes: not a field of V1PodFailurePolicyOnExitCodesRequirement"),
    ],
)
def test_an_invalid_manifest_is_caught(k8s: Any, break_it: Any, message: str) -> None:
    doc = _job()
    validate_manifest(doc)  # valid before
    break_it(doc)
    with pytest.raises(ConfigError) as err:
        validate_manifest(doc)
    assert message in str(err.value)


def _write_models(folder: Path) -> Path:
    (folder / "models.yaml").write_text(MODELS_YAML)
    shutil.copytree(REPO / "examples" / "scripted" / "good", folder / "scripts" / "good")
    return folder / "models.yaml"


def test_cli_writes_secret_references_never_the_key(
    k8s: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_VALUE)
    models = _write_models(tmp_path)
    out = tmp_path / "job.yaml"
    args = ["k8s-job", "--shards", "3", "--image", "img:1", "--models-file", str(models), "--models", "gpt"]
    assert main([*args, "-o", str(out), "--", "--repeats", "5", "-k", "median"]) == 0
    assert "checked against the Kubernetes API schema (3 objects)" in capsys.readouterr().err
    text = out.read_text()
    assert SECRET_VALUE not in text
    docs = list(yaml.safe_load_all(text))
    assert validate_manifests(docs) == 3
    container = _container(_by_kind(docs)["Job"])
    env = {e["name"]: e for e in container["env"]}
    assert env["OPENAI_API_KEY"] == {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "agentbench-api-keys", "key": "OPENAI_API_KEY"}},
    }
    assert "--repeats 5 -k median" in container["command"][-1]
    assert main(["k8s-job", "--shards", "3", "--image", "img:1", "--models-file", str(models), "--merge-job"]) == 0
    (merge,) = yaml.safe_load_all(capsys.readouterr().out)
    assert merge["metadata"]["name"] == "agentbench-merge"
    assert (
        "agentbench merge /results/shard1of3 /results/shard2of3 /results/shard3of3" in _container(merge)["command"][-1]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shards", "0"], "--shards: expected a whole number >= 1, found 0"),
        (["--shards", "2", "--name", "Bench_1"], "--name: 'Bench_1' is not a Kubernetes name"),
        (["--shards", "2", "--models", "a,nope"], "--models: nope not in"),
        (["--shards", "2", "--models-file", "missing.yaml"], "--models-file: missing.yaml not found"),
        (["--shards", "2", "--pvc-size", "ten gigs"], "--pvc-size: 'ten gigs' is not a Kubernetes quantity"),
        (["--shards", "2", "--workdir", "app"], "--workdir: expected an absolute path"),
        (["--shards", "2", "--secret-key", "MY-KEY"], "--secret-key: 'MY-KEY' is not an environment variable name"),
    ],
)
def test_cli_bad_values_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_models(tmp_path)
    assert main(["k8s-job", "--image", "img:1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentbench k8s-job: error: ") and message in err, err


@pytest.mark.slow
def test_the_pods_scripts_run_the_shards_and_the_merge(tmp_path: Path) -> None:
    """Each pod's script, run here with its JOB_COMPLETION_INDEX, then the merge Job's: one merged folder of 6."""
    project = tmp_path / "app"
    project.mkdir()
    shutil.copytree(REPO / "task_packets" / "bugfix-median", project / "packets" / "bugfix-median")
    _write_models(project)
    (project / "models.yaml").unlink()  # what the pod sees there is the ConfigMap's copy (subPath mount)
    opts = _opts(
        shards=3,
        models=("a",),
        api_key_envs=(),
        workdir=str(project),
        results_path=str(tmp_path / "results"),
        pytest_args=("--packets", "packets", "--sandbox=local", "--repeats=6"),
    )
    config, _, job = job_manifests(opts)
    (project / "models.yaml").write_text(config["data"]["models.yaml"])
    container = _container(job)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(REPO)
    env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    for index in range(3):
        done = subprocess.run(
            container["command"],
            cwd=container["workingDir"],
            env={**env, "JOB_COMPLETION_INDEX": str(index), "HOSTNAME": f"agentbench-{index}-x"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    merge = _container(merge_job_manifest(opts))
    done = subprocess.run(merge["command"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "results" / "merged" / RESULTS_FILE).read_text().splitlines()]
    assert sorted(r["repeat"] for r in records) == [1, 2, 3, 4, 5, 6] and all(r["passed"] for r in records)
    assert len(list((tmp_path / "results").glob("shard*of3/junit-agentbench-*-x-*.xml"))) == 3
