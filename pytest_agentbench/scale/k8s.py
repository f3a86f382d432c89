"""``agentbench k8s-job``: one Kubernetes Indexed Job runs the N shards of a benchmark. pytest-free.

    docs = job_manifests(JobOptions(shards=8, image="our-org/our-bench:1", models=("local-coder",),
                                    models_yaml=Path("models.yaml").read_text()))
    print(to_yaml(docs))

Four kinds of object, in the order ``kubectl apply -f`` needs them:

- a **ConfigMap** ``<name>-models`` holding ``models.yaml``, mounted (``subPath``) as
  ``<workdir>/models.yaml``, so the paths inside it resolve against the project in the image;
- a **PersistentVolumeClaim** ``<name>-results`` (``ReadWriteMany``: the shards' pods run on several
  nodes at once) mounted at ``/results``; shard K writes ``/results/shard<K>of<N>`` (its
  ``shard.json``, JSONL, benchmark JSON and one JUnit file per pod attempt);
- the **Job** ``<name>``: ``completionMode: Indexed``, ``completions: N``; its pod runs
  ``pytest --shard K/N`` with ``K = JOB_COMPLETION_INDEX + 1`` and ``--resume`` of its own folder, so
  a retried pod (a node lost, a pod evicted) runs only the trials that have no record yet. Gate
  failures (pytest exit 1) and an empty shard (exit 5) are results, so the pod succeeds; a usage
  error (exit 4) fails the index at once (``podFailurePolicy`` ``FailIndex``); a disruption
  (node drained, preempted) is retried without counting against ``backoffLimitPerIndex``;
- API keys by **Secret reference** only: one ``secretKeyRef`` per ``api_key_env`` of the aliases
  (secret ``<name>-api-keys`` unless told), never a key's value. Create the Secret yourself
  (``kubectl create secret generic ...``, docs/scale-out.md).

:func:`merge_job_manifest` is the follow-up Job that runs ``agentbench merge`` on the claim once the
shards are done. The objects are plain dicts; :mod:`pytest_agentbench.scale.k8s_schema` checks them
against the Kubernetes API schema.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.errors import UsageError
from pytest_agentbench.scale.shards import Shard

__all__ = ["CONTAINER", "JobOptions", "job_manifests", "merge_job_manifest", "shard_script", "to_yaml"]

#: The container's name in every pod (the ``podFailurePolicy`` rules name it).
CONTAINER = "agentbench"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # an RFC 1123 label, as Job / ConfigMap / PVC names must be
_MAX_NAME = 50  # 63 (a label value: the Job's pods carry job-name) less room for "-results", "-merge"
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|[kMGTPE]i?|[eE][0-9]+)?$")


@dataclass(frozen=True)
class JobOptions:
    """What ``agentbench k8s-job`` was asked for (checked by :meth:`check`)."""

    shards: int
    image: str
    name: str = "agentbench"
    namespace: str | None = None
    models: tuple[str, ...] = ()  # --models for pytest; empty: the project's ini agentbench_models
    models_yaml: str = ""  # the ConfigMap's models.yaml
    api_key_envs: tuple[str, ...] = ()  # environment variables taken from the Secret
    secret: str | None = None  # default: <name>-api-keys
    parallelism: int | None = None  # pods at once; default: all shards
    backoff_limit_per_index: int = 2
    pvc_size: str = "10Gi"
    storage_class: str | None = None
    workdir: str = "/app"  # the project (packets, models' relative paths) inside the image
    results_path: str = "/results"
    pytest_args: tuple[str, ...] = ()
    cpu: str | None = None  # per pod, requests = limits
    memory: str | None = None

    @property
    def secret_name(self) -> str:
        return self.secret or f"{self.name}-api-keys"

    def check(self) -> None:
        """Every value a cluster would refuse, as a :class:`UsageError` naming the flag and the fix."""
        if self.shards < 1:
            raise UsageError(f"--shards: expected a whole number >= 1, found {self.shards}")
        if self.backoff_limit_per_index < 0:
            raise UsageError(
                f"--backoff-limit-per-index: expected a whole number >= 0, found {self.backoff_limit_per_index}"
            )
        if self.parallelism is not None and self.parallelism < 1:
            raise UsageError(f"--parallelism: expected a whole number >= 1, found {self.parallelism}")
        if not self.image.strip():
            raise UsageError("--image: required, the image that holds the project and pytest-agentbench")
        for flag, value, limit in (("--name", self.name, _MAX_NAME), ("--secret", self.secret_name, 253)):
            if not _NAME.match(value) or len(value) > limit:
                raise UsageError(
                    f"{flag}: {value!r} is not a Kubernetes name: lower-case letters, digits and '-', starting and "
                    f"ending with a letter or digit, at most {limit} characters; e.g. agentbench-nightly"
                )
        for env in self.api_key_envs:
            if not _ENV.match(env):
                raise UsageError(f"--secret-key: {env!r} is not an environment variable name; e.g. OPENAI_API_KEY")
        for flag, value in (("--pvc-size", self.pvc_size), ("--cpu", self.cpu), ("--memory", self.memory)):
            if value is not None and not _QUANTITY.match(value):
                raise UsageError(f"{flag}: {value!r} is not a Kubernetes quantity; e.g. 10Gi, 500m, 2")
        for flag, path in (("--workdir", self.workdir), ("--results-path", self.results_path)):
            if not path.startswith("/"):
                raise UsageError(f"{flag}: expected an absolute path inside the container, found {path!r}")


def _meta(opts: JobOptions, name: str, component: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {
            "app.kubernetes.io/name": "agentbench",
            "app.kubernetes.io/instance": opts.name,
            "app.kubernetes.io/component": component,
        },
    }
    if opts.namespace:
        meta["namespace"] = opts.namespace
    return meta


def shard_script(opts: JobOptions) -> str:
    """The pod's ``sh -c`` script: shard K = JOB_COMPLETION_INDEX + 1 into its own folder on the claim."""
    n = opts.shards
    folder = f"{opts.results_path.rstrip('/')}/shard${{K}}of{n}"
    args = ["-p", "no:cacheprovider", "--models-file", "models.yaml"]
    if opts.models:
        args += ["--models", ",".join(opts.models)]
    extra = " ".join(shlex.quote(a) for a in [*args, *opts.pytest_args])
    return "\n".join(
        [
            "set -u",
            "K=$((JOB_COMPLETION_INDEX + 1))",
            f'DIR="{folder}"',
            'mkdir -p "$DIR"',
            "rc=0",
            f'pytest {extra} --shard "$K/{n}" --agentbench-results "$DIR" --resume "$DIR" '
            '--junitxml "$DIR/junit-$HOSTNAME-$(date +%s).xml" || rc=$?',
            "# 0: every gate held, 1: some gates missed, 5: an empty shard - all results; others fail the pod",
            'case "$rc" in 0|1|5) exit 0 ;; *) exit "$rc" ;; esac',
        ]
    )


def _container(opts: JobOptions, command: Sequence[str], env: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The one container; ``env`` None: the merge's, which needs neither keys nor models.yaml."""
    mounts = [{"name": "results", "mountPath": opts.results_path}]
    if env is not None:
        mounts.append(
            {"name": "models", "mountPath": f"{opts.workdir.rstrip('/')}/models.yaml", "subPath": "models.yaml"}
        )
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": opts.image,
        "workingDir": opts.workdir,
        "command": list(command),
        **({"env": env} if env else {}),
        "volumeMounts": mounts,
    }
    resources = {k: v for k, v in (("cpu", opts.cpu), ("memory", opts.memory)) if v}
    if resources:
        container["resources"] = {"requests": dict(resources), "limits": dict(resources)}
    return container


def _volumes(opts: JobOptions, *, models: bool = True) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "results", "persistentVolumeClaim": {"claimName": f"{opts.name}-results"}}
    ]
    if models:
        volumes.append({"name": "models", "configMap": {"name": f"{opts.name}-models"}})
    return volumes


def _env(opts: JobOptions) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {  # the Job controller sets it too; from the annotation it is the same value on every cluster version
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        },
        {"name": "CI", "value": "true"},  # a run that selects no alias is refused, not passed having run nothing
    ]
    for key in opts.api_key_envs:
        env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": opts.secret_name, "key": key}}})
    return env


def _job(opts: JobOptions) -> dict[str, Any]:
    pod_spec = {
        "restartPolicy": "Never",  # a failed pod is replaced by the Job (podFailurePolicy needs Never)
        "containers": [_container(opts, ["/bin/sh", "-c", shard_script(opts)], _env(opts))],
        "volumes": _volumes(opts),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(opts, opts.name, "shards"),
        "spec": {
            "completionMode": "Indexed",
            "completions": opts.shards,
            "parallelism": opts.parallelism or opts.shards,
            "backoffLimitPerIndex": opts.backoff_limit_per_index,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailIndex",
                        "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [4]},
                    },
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {"metadata": {"labels": _meta(opts, opts.name, "shards")["labels"]}, "spec": pod_spec},
        },
    }


def job_manifests(opts: JobOptions) -> list[dict[str, Any]]:
    """ConfigMap, PersistentVolumeClaim and the Indexed Job, in ``kubectl apply`` order."""
    opts.check()
    claim: dict[str, Any] = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": opts.pvc_size}}}
    if opts.storage_class:
        claim["storageClassName"] = opts.storage_class
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(opts, f"{opts.name}-models", "config"),
            "data": {"models.yaml": opts.models_yaml},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(opts, f"{opts.name}-results", "results"),
            "spec": claim,
        },
        _job(opts),
    ]


def merge_job_manifest(opts: JobOptions) -> dict[str, Any]:
    """A one-pod Job that merges the shards' folders on the claim into ``/results/merged`` (apply after the shards)."""
    opts.check()
    base = opts.results_path.rstrip("/")
    folders = " ".join(f"{base}/{Shard(k, opts.shards).suffix}" for k in range(1, opts.shards + 1))
    script = f"exec agentbench merge {folders} --out {base}/merged"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(opts, f"{opts.name}-merge", "merge"),
        "spec": {
            "backoffLimit": 0,  # a refusal (a shard missing) is not fixed by trying again
            "template": {
                "metadata": {"labels": _meta(opts, f"{opts.name}-merge", "merge")["labels"]},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [_container(opts, ["/bin/sh", "-c", script], None)],
                    "volumes": _volumes(opts, models=False),
                },
            },
        },
    }


def to_yaml(docs: Sequence[Mapping[str, Any]]) -> str:
    """The objects as one multi-document YAML stream (keys in the order built)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:  # scripts as literal blocks, readable in the file
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump_all([dict(d) for d in docs], Dumper=_Dumper, sort_keys=False, default_flow_style=False)
