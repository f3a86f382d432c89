"""Layouts across nodes: tensor parallel (TP) inside a node x pipeline parallel (PP) across nodes. Pure.

:func:`~pytest_agentbench.capacity.sizing.size_model` lays a model out with TP alone, on
one node. A model that does not fit there is split into PP stages - consecutive layers,
each stage on its own TP group - and vLLM serves it over a Ray cluster with
``--tensor-parallel-size T --pipeline-parallel-size P --distributed-executor-backend ray``
(the ``serve:`` keys of the same names; :func:`serve_block` writes them).

Per GPU, for TP ``t`` and PP ``p`` over ``L`` layers, the largest stage holds
``ceil(L / p)`` layers, a fraction ``f = ceil(L / p) / L`` of the model:
``(1 + overhead) x (weights x f / t + KV cache x f / s)``, ``s`` = ``kv_shards(t)`` as on
one node (embeddings and the output head are counted as if spread over the layers:
first-order, like the rest of the estimate). Full-context sequences that fit follow from
what is left per GPU after the weights, as on one node.

Layouts considered (:func:`plan_layouts`): ``t`` in ``TP_DEGREES`` that divides
``gpus_per_node`` (a TP group never straddles two nodes: its all-reduce per layer would
cross the network) and that vLLM accepts for the heads; ``p`` from 1 up to ``L`` and to
``max_nodes`` nodes' worth of GPUs; ``nodes = ceil(t x p / gpus_per_node)``. Chosen: the
fewest GPUs that fit, then the fewest nodes, then the larger TP (fewer pipeline stages:
smaller bubbles). Whole GPUs only: a MIG slice serves alone. Bad inputs raise
:class:`~pytest_agentbench.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytest_agentbench.capacity.gpus import GpuSpec
from pytest_agentbench.capacity.sizing import TP_DEGREES, SizingResult, kv_shards, tp_problem
from pytest_agentbench.errors import ConfigError

__all__ = ["DEFAULT_GPUS_PER_NODE", "LayoutPlan", "NodeLayout", "format_layouts", "plan_layouts", "serve_block"]

DEFAULT_GPUS_PER_NODE = 8


@dataclass(frozen=True)
class NodeLayout:
    """One TP x PP layout: its GPUs and nodes, the memory each GPU needs, and whether that fits."""

    tensor_parallel: int
    pipeline_parallel: int
    nodes: int
    bytes_per_gpu: float
    fits: bool
    #: Full-context sequences that fit in the memory left after the weights (None: it does not fit).
    max_concurrency: int | None

    @property
    def gpus(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel


@dataclass(frozen=True)
class LayoutPlan:
    """The layouts considered on ``gpu`` nodes, the one chosen and why."""

    gpu: GpuSpec
    gpus_per_node: int
    max_nodes: int
    #: Per TP degree considered, the smallest PP that fits (or the largest tried, not fitting).
    layouts: tuple[NodeLayout, ...]
    chosen: NodeLayout | None
    notes: tuple[str, ...] = ()


def _check_counts(gpus_per_node: int, max_nodes: int) -> None:
    for name, value in (("gpus_per_node", gpus_per_node), ("max_nodes", max_nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}: expected a whole number >= 1, found {value!r}")


def _layout(result: SizingResult, usable: float, tp: int, pp: int, gpus_per_node: int) -> NodeLayout:
    arch = result.arch
    share = math.ceil(arch.num_layers / pp) / arch.num_layers
    scale = 1 + result.overhead_fraction
    weights = scale * result.weights_bytes * share / tp
    per_gpu = weights + scale * result.kv_cache_bytes * share / kv_shards(arch, tp)
    fits = per_gpu <= usable
    per_seq = scale * result.kv_bytes_per_token * result.context_length * share / kv_shards(arch, tp)
    conc = math.floor((usable - weights) / per_seq + 1e-9) if fits else None
    return NodeLayout(tp, pp, math.ceil(tp * pp / gpus_per_node), per_gpu, fits, conc)


def plan_layouts(result: SizingResult, *, gpus_per_node: int = DEFAULT_GPUS_PER_NODE, max_nodes: int = 4) -> LayoutPlan:
    """TP x PP layouts of ``result`` (a :func:`size_model` estimate with a GPU) on up to ``max_nodes`` nodes."""
    _check_counts(gpus_per_node, max_nodes)
    gpu, usable = result.gpu, result.usable_bytes_per_gpu
    if gpu is None or usable is None:
        raise ConfigError("gpu: layouts across nodes need a GPU to lay the model out on; pass gpu=...")
    if gpu.mig:
        raise ConfigError(
            f"gpu: {gpu.name} is a MIG slice, which serves alone (no tensor or pipeline parallel across slices); "
            "layouts across nodes need whole GPUs"
        )
    degrees = [t for t in TP_DEGREES if t <= gpus_per_node and gpus_per_node % t == 0]
    usable_degrees = [t for t in degrees if tp_problem(result.arch, t) is None]
    notes = [f"TP {t}: {tp_problem(result.arch, t)}" for t in degrees if t not in usable_degrees]
    max_pp = result.arch.num_layers
    layouts = []
    for tp in usable_degrees:
        best = None
        for pp in range(1, min(max_pp, max_nodes * gpus_per_node // tp) + 1):
            best = _layout(result, usable, tp, pp, gpus_per_node)
            if best.fits:
                break
        if best is not None:
            layouts.append(best)
    fitting = [lay for lay in layouts if lay.fits]
    chosen = min(fitting, key=lambda lay: (lay.gpus, lay.nodes, -lay.tensor_parallel), default=None)
    if chosen is None:
        notes.append(
            f"no layout fits on up to {max_nodes} node(s) of {gpus_per_node} x {gpu.name}: more nodes, bigger "
            "GPUs, a smaller precision, or less context x concurrency"
        )
    elif chosen.nodes > 1:
        notes.append(
            f"{chosen.nodes} nodes: serve it with distributed_executor_backend: ray on a Ray cluster of those nodes "
            "(the model files at the same path on each), TP inside each node, the PP stages across them"
        )
    return LayoutPlan(gpu, gpus_per_node, max_nodes, tuple(layouts), chosen, tuple(notes))


def serve_block(layout: NodeLayout) -> str:
    """The ``serve:`` keys of models.yaml for ``layout``: its devices on one node, the ray backend across nodes."""
    keys = [f"tensor_parallel_size: {layout.tensor_parallel}"]
    if layout.pipeline_parallel > 1:
        keys.append(f"pipeline_parallel_size: {layout.pipeline_parallel}")
    if layout.nodes > 1:
        keys.append("distributed_executor_backend: ray")
    else:
        keys.insert(0, "devices: '" + ",".join(str(i) for i in range(layout.gpus)) + "'")
    return "serve: {" + ", ".join(keys) + "}"


def format_layouts(plan: LayoutPlan) -> str:
    """One line per TP degree (its smallest fitting PP), the chosen layout and its serve: keys."""
    lines = [f"Layouts across nodes ({plan.gpus_per_node} x {plan.gpu.name} per node, up to {plan.max_nodes} nodes):"]
    for lay in plan.layouts:
        state = f"fits, room for {lay.max_concurrency} sequences" if lay.fits else "does not fit"
        mark = "  <- chosen" if lay == plan.chosen else ""
        label = f"TP {lay.tensor_parallel} x PP {lay.pipeline_parallel}"
        lines.append(
            f"  {label:<14} = {lay.gpus:>3} GPUs on {lay.nodes:>2} node(s)  "
            f"{lay.bytes_per_gpu / 1e9:>10,.2f} GB per GPU: {state}{mark}"
        )
    if plan.chosen is not None:
        c = plan.chosen
        lines.append(
            f"Layout: TP {c.tensor_parallel} x PP {c.pipeline_parallel} on {c.nodes} node(s); {serve_block(c)}"
        )
    else:
        lines.append("Layout: none fits")
    lines += [f"Note: {note}" for note in plan.notes]
    return "\n".join(lines)
