"""Scale-out: run one benchmark as N pieces on engines users already operate, then merge them. pytest-free.

shards.py     ``--shard K/N``: the deterministic, cost-balanced split of the trials
manifest.py   ``shard.json``: which K/N a results folder holds, so a merge can name a missing shard
merge.py      ``agentbench merge``: shard folders -> one results folder and one HTML report
junit.py      the JUnit part of a merge (one testsuite, retried shards resolved)
k8s.py        ``agentbench k8s-job``: an Indexed Job, its ConfigMap, Secret references and PVC
k8s_schema.py those manifests checked against the Kubernetes API schema (the ``kubernetes`` client's models)
ray.py        ``--ray ADDRESS``: every trial a Ray task on an existing cluster (the pytest side: plugin/ray.py)

The CI matrix examples (GitHub Actions, GitLab CI) are in examples/ci/; docs/scale-out.md tells when to
use which, docs/ray.md how Ray runs the trials.
"""
