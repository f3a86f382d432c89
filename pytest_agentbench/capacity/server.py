"""The server's side of a measurement: is there a vLLM ``/metrics``, a cold prefix cache, and a window.

:class:`ServerWatch` is what a sweep level, a load run and a replay level share: :meth:`probe`
decides whether server numbers exist (``/metrics`` answers with ``vllm:*`` families; another
server is fine, it just has none), :meth:`reset_prefix_cache` empties vLLM's prefix cache before
a measured run (``POST /reset_prefix_cache``, exposed in vLLM 0.32 only with
``VLLM_SERVER_DEV_MODE=1``), and :meth:`window` opens a measurement: a settled scrape before, a
:class:`~pytest_agentbench.capacity.metering.MetricsSampler` for the gauges during, and at
:meth:`Window.close` a settled scrape after, diffed into the server's numbers
(``capacity.levels.server_stats``). Notes for the report collect in :attr:`ServerWatch.notes`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pytest_agentbench.capacity.metering import MetricsSampler
from pytest_agentbench.errors import ServerError

if TYPE_CHECKING:
    from pytest_agentbench.agents.loop import Model
    from pytest_agentbench.models.registry import ModelSpec

__all__ = ["ServerWatch", "Window", "default_model", "loadavg"]


def loadavg() -> tuple[float, float, float] | None:
    """The machine's 1/5/15-minute load, recorded beside every sweep, load and replay; None where unknown."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def default_model(spec: ModelSpec, base_url: str) -> Model:
    """The model client sweeps, loads and replays use unless told otherwise: the agent's own adapter."""
    from pytest_agentbench.models.adapter import ModelAdapter

    return ModelAdapter(spec, base_url)


class Window:
    """One measured run on the server: the scrape before, the sampler during; :meth:`close` diffs."""

    def __init__(self, watch: ServerWatch, before: Any, sampler: MetricsSampler | None):
        self.watch, self.before, self.sampler = watch, before, sampler

    def start(self) -> None:
        """Start sampling the gauges (call right before the load starts)."""
        if self.sampler is not None:
            self.sampler.start()

    def close(self) -> dict[str, Any] | None:
        """The server's numbers for the run (``server_stats``), or ``None`` without ``/metrics``."""
        samples = self.sampler.finish() if self.sampler is not None and self.sampler.is_alive() else {}
        if self.before is None:
            return None
        from pytest_agentbench.capacity.levels import server_stats
        from pytest_agentbench.serving.vllm.metrics import diff

        return server_stats(diff(self.before, self.watch.scrape_settled()), samples)


class ServerWatch:
    """The server behind ``base_url`` as a measurement sees it (``metrics_url``: if not at its root)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        metrics_url: str | None = None,
        reset_prefix_cache: bool = True,
        sample_interval_s: float = 0.5,
    ):
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self.model = model
        self.asked_metrics_url = metrics_url
        self.reset = reset_prefix_cache
        self.sample_interval_s = sample_interval_s
        self.metrics_url: str | None = None
        self.metrics_model: str | None = None
        self.server_metrics = "not probed"
        self.is_vllm = False
        self.notes: list[str] = []

    def probe(self) -> None:
        """Decide whether server numbers exist: ``/metrics`` answers with vLLM families."""
        from pytest_agentbench.serving.vllm.metrics import fetch_metrics_text, metrics_url, parse_metrics

        url = metrics_url(self.asked_metrics_url or self.base_url)
        try:
            text = fetch_metrics_text(url, timeout_s=5.0)
        except ServerError as exc:
            self.server_metrics = f"unavailable: no /metrics at {url} ({exc.__cause__ or exc})"
            return
        try:
            try:
                snap = parse_metrics(text, model_name=self.model)
                self.metrics_model = self.model
            except ServerError:  # the server names the model differently: take all of it
                snap = parse_metrics(text)
                self.notes.append(
                    f"/metrics has no series for model {self.model!r}; server numbers "
                    f"cover every model it serves ({', '.join(snap.model_names)})"
                )
        except ImportError as exc:
            self.server_metrics = f"unavailable: {exc}"
            return
        except Exception as exc:  # not Prometheus text
            self.server_metrics = f"unavailable: {url} is not Prometheus text ({type(exc).__name__}: {exc})"
            return
        if not any(name.startswith("vllm:") for name in snap.families):
            self.server_metrics = f"unavailable: {url} exports no vllm:* metrics"
            return
        self.metrics_url = url
        self.is_vllm = True
        self.server_metrics = "available"

    def reset_prefix_cache(self) -> str:
        """POST /reset_prefix_cache; says what happened (the server may not expose it)."""
        if not self.is_vllm:
            return "n/a (not a vLLM server)"
        if not self.reset:
            return "kept (--keep-prefix-cache)"
        from pytest_agentbench.serving.vllm.admin import reset_prefix_cache

        return reset_prefix_cache(self.root_url)

    def scrape_settled(self) -> Any:
        from pytest_agentbench.serving.vllm.metrics import scrape_settled

        assert self.metrics_url is not None
        return scrape_settled(self.metrics_url, model_name=self.metrics_model, timeout_s=10.0)

    def window(self) -> Window:
        """A settled scrape now (``None`` without metrics) and a sampler ready to start."""
        if self.metrics_url is None:
            return Window(self, None, None)
        sampler = MetricsSampler(self.metrics_url, self.metrics_model, self.sample_interval_s)
        return Window(self, self.scrape_settled(), sampler)
