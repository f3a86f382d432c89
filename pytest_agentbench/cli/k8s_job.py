"""``agentbench k8s-job --shards N --image IMG``: the Kubernetes objects that run N shards as one Indexed Job.

What is written and why: :mod:`pytest_agentbench.scale.k8s`; the output is checked against the
Kubernetes API schema where the ``kubernetes`` client is installed (:mod:`pytest_agentbench.scale.k8s_schema`).
Pytest options for every shard follow ``--``: ``agentbench k8s-job --shards 8 --image IMG -- --repeats 5``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_agentbench.scale.k8s import JobOptions


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser(
        "k8s-job",
        help="write a Kubernetes Indexed Job (+ ConfigMap for models.yaml, Secret references, PVC) that runs N shards",
        description="Write the Kubernetes objects that run `pytest --shard K/N` for K = JOB_COMPLETION_INDEX + 1; "
        "pytest options for every shard follow `--`.",
    )
    k.add_argument("--shards", type=int, required=True, metavar="N", help="number of shards (the Job's completions)")
    k.add_argument("--image", required=True, metavar="IMG", help="an image holding the project and pytest-agentbench")
    k.add_argument(
        "--name", default="agentbench", help="name of the Job (the ConfigMap, PVC and Secret derive from it)"
    )
    k.add_argument("--namespace", metavar="NS", help="namespace of every object (default: kubectl's)")
    k.add_argument(
        "--models", metavar="ALIAS[,ALIAS]", help="aliases to run (default: the project's ini agentbench_models)"
    )
    k.add_argument("--models-file", default="models.yaml", metavar="PATH", help="the models.yaml put in the ConfigMap")
    k.add_argument("--secret", metavar="NAME", help="the Secret holding the API keys (default: <name>-api-keys)")
    k.add_argument(
        "--secret-key",
        action="append",
        default=[],
        metavar="ENV",
        help="another environment variable to take from the Secret (the aliases' api_key_env are taken already)",
    )
    k.add_argument("--parallelism", type=int, metavar="P", help="pods at once (default: all shards)")
    k.add_argument("--backoff-limit-per-index", type=int, default=2, metavar="N", help="retries per shard (default 2)")
    k.add_argument("--pvc-size", default="10Gi", metavar="SIZE", help="size of the results claim (default 10Gi)")
    k.add_argument("--storage-class", metavar="CLASS", help="storage class of the claim (one offering ReadWriteMany)")
    k.add_argument("--workdir", default="/app", metavar="PATH", help="the project's folder in the image (default /app)")
    k.add_argument("--results-path", default="/results", metavar="PATH", help="where the claim is mounted")
    k.add_argument("--cpu", metavar="Q", help="CPU per pod (requests = limits), e.g. 2")
    k.add_argument("--memory", metavar="Q", help="memory per pod (requests = limits), e.g. 4Gi")
    k.add_argument(
        "--merge-job", action="store_true", help="write only the Job that merges the shards (apply it after)"
    )
    k.add_argument("-o", "--output", metavar="PATH", help="write the YAML here (default: standard output)")
    k.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS", help="options passed to every shard's pytest")
    k.set_defaults(func=run)


def _options(args: argparse.Namespace) -> JobOptions:
    from pytest_agentbench.errors import ConfigError, UsageError
    from pytest_agentbench.models.registry import load_models
    from pytest_agentbench.scale.k8s import JobOptions

    models_file = Path(args.models_file)
    if not models_file.is_file():
        raise UsageError(
            f"--models-file: {models_file} not found; pass the models.yaml the shards should use "
            "(it goes into the ConfigMap)"
        )
    try:
        specs = load_models(models_file)
    except ConfigError as exc:
        raise UsageError(f"--models-file: {exc}") from None
    aliases = tuple(dict.fromkeys(a for a in (args.models or "").replace(",", " ").split()))
    unknown = [a for a in aliases if a not in specs]
    if unknown:
        raise UsageError(f"--models: {', '.join(unknown)} not in {models_file} (known: {', '.join(specs)})")
    used = [specs[a] for a in aliases] if aliases else list(specs.values())
    keys = [s.api_key_env for s in used if s.api_key_env] + list(args.secret_key)
    return JobOptions(
        shards=args.shards,
        image=args.image,
        name=args.name,
        namespace=args.namespace,
        models=aliases,
        models_yaml=models_file.read_text(encoding="utf-8"),
        api_key_envs=tuple(dict.fromkeys(keys)),
        secret=args.secret,
        parallelism=args.parallelism,
        backoff_limit_per_index=args.backoff_limit_per_index,
        pvc_size=args.pvc_size,
        storage_class=args.storage_class,
        workdir=args.workdir,
        results_path=args.results_path,
        pytest_args=tuple(args.pytest_args),
        cpu=args.cpu,
        memory=args.memory,
    )


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.errors import ConfigError, UsageError
    from pytest_agentbench.scale.k8s import job_manifests, merge_job_manifest, to_yaml
    from pytest_agentbench.scale.k8s_schema import validate_manifests

    try:
        opts = _options(args)
        docs = [merge_job_manifest(opts)] if args.merge_job else job_manifests(opts)
    except UsageError as exc:
        print(f"agentbench k8s-job: error: {exc}", file=sys.stderr)
        return 2
    try:
        checked = f"checked against the Kubernetes API schema ({validate_manifests(docs)} objects)"
    except ImportError as exc:
        checked = f"not checked against the Kubernetes API schema: {exc}"
    except ConfigError as exc:
        print(f"agentbench k8s-job: error: a manifest does not fit the Kubernetes API schema: {exc}", file=sys.stderr)
        return 2
    text = to_yaml(docs)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"written: {args.output} ({checked})", file=sys.stderr)
    else:
        sys.stdout.write(text)
        print(f"# {checked}", file=sys.stderr)
    return 0
