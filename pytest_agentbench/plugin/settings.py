"""One frozen Settings object resolved from CLI > ini > defaults, kept in ``config.stash``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_agentbench.agents.config import DEFAULT_SAFETY_FACTOR, BudgetMode
from pytest_agentbench.packets.schema import PROMPT_WARN_BYTES
from pytest_agentbench.sandbox.kinds import SANDBOX_KINDS
from pytest_agentbench.scale.shards import Shard

__all__ = ["SANDBOX_KINDS", "Settings", "split_list"]


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...] = ()
    models_file: Path | None = None  # None: no models.yaml found (fine until --models is used)
    packets: tuple[Path, ...] = ()
    sandbox: str = "auto"
    agent_timeout: float | None = None  # overrides every packet's limits.timeout_s
    results_dir: Path | None = None  # --agentbench-results; None: .agentbench/runs/<time>-<pid>
    html: Path | None = None  # --agentbench-html
    resume: Path | None = None  # --resume: a results folder or results.jsonl
    prompt_warn_bytes: int | None = PROMPT_WARN_BYTES  # ini agentbench_prompt_warn_kb; None: no cap
    repeats: int = 1  # --repeats: independent trials per (packet, alias), each its own test item
    budget: BudgetMode = "wall"  # --budget: what binds, the wall clock or turns and tokens (agents.config)
    max_total_tokens: int | None = None  # --max-total-tokens: overrides every packet's limits.max_total_tokens
    safety_timeout_factor: float = DEFAULT_SAFETY_FACTOR  # --budget=tokens: the wall-clock net = timeout x this
    shard: Shard | None = None  # --shard K/N: run only this shard's trials (scale.shards); None: all
    session_json: Path | None = None  # --agentbench-session-json: what happened, for scripts (main-job)
    progress_every: float = 20.0  # --agentbench-progress-every: s between progress lines off a terminal; 0: none
    keep_requests: bool = False  # --agentbench-keep-requests: the record keeps what `agentbench replay` sends
    ray: str | None = None  # --ray ADDRESS: every trial a Ray task on that cluster (plugin/ray.py); None: here
    docker_host: str | None = None  # --docker-host URL: the docker sandbox's engine; None: $DOCKER_HOST or local
    gateway: bool = False  # --agentbench-gateway (or any external agent): start the measuring gateway (serving.gateway)
    agents: tuple[str, ...] = ("builtin",)  # --agent: the agents every packet runs with (agents.external.registry)
    agents_file: Path | None = None  # --agents-file: named agent commands; None: none
    agent_command: str | None = None  # --agent-command: the template of --agent=command


def split_list(value: str | list[str] | None) -> tuple[str, ...]:
    """'a,b' or ['a', 'b c'] -> ('a', 'b', 'c'), dropping blanks and duplicates, order kept."""
    if not value:
        return ()
    parts = value if isinstance(value, list) else [value]
    out: list[str] = []
    for part in parts:
        for item in part.replace(",", " ").split():
            if item not in out:
                out.append(item)
    return tuple(out)
