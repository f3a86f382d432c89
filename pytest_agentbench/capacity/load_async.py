"""The event-loop engine of ``agentbench load``: every request of a rate on one thread (``--client asyncio``).

The same schedule as the threaded engine (``capacity/load.py``): one worker per slot takes the
next due request, waits until it is due and sends it; here a worker is a coroutine and every
stream is read by one event loop (``serving/aio.py``), as ``vllm bench serve`` reads them.
Requests are built before the clock starts (``models/adapter.py``'s :func:`chat_body`: the body
the agent's adapter would send), and each answer is assembled and timed by the adapter's own
:class:`StreamState`, so TTFT, ITL and TPOT mean exactly what they mean for every other model
call (vLLM's definitions: ``capacity/latency.py``). A failure is classified as the adapter
classifies it (``models/taxonomy.py``) and never retried.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

from pytest_agentbench.capacity.latency import RequestTiming
from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.models.adapter import StreamState, chat_body, decode_timings
from pytest_agentbench.models.taxonomy import classified_errors

if TYPE_CHECKING:
    from pytest_agentbench.capacity.load import _Run
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.serving.aio import AsyncStreamClient

__all__ = ["drive"]

_PATH = "/chat/completions"
_JSON = json.JSONDecoder()


def drive(
    spec: ModelSpec, base_url: str, run: _Run, *, workers: int, output_len: int | None, timeout: float
) -> tuple[float, float]:
    """Send every request of ``run`` on an event loop; (wall seconds, process CPU seconds) to the last answer."""
    bodies = [
        json.dumps(chat_body(spec, p.messages, (), p.output_len or output_len), separators=(",", ":")).encode()
        for p in run.prompts
    ]
    return asyncio.run(_drive(spec, base_url, run, bodies, workers, timeout))


async def _drive(
    spec: ModelSpec, base_url: str, run: _Run, bodies: list[bytes], workers: int, timeout: float
) -> tuple[float, float]:
    from pytest_agentbench.serving.aio import AsyncStreamClient

    client = AsyncStreamClient(base_url, {"Authorization": f"Bearer {spec.api_key()}"}, connections=workers)
    try:
        cpu0 = time.process_time()
        run.in_flight.restart()
        run.start = time.perf_counter()
        await asyncio.gather(*(_worker(client, run, bodies, timeout) for _ in range(workers)))
        return time.perf_counter() - run.start, time.process_time() - cpu0
    finally:
        await client.close()


async def _worker(client: AsyncStreamClient, run: _Run, bodies: list[bytes], timeout: float) -> None:
    while (index := run.take()) is not None:
        wait = run.start + run.due[index] - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        run.timings[index] = await _send(client, run, index, bodies[index], timeout)


async def _send(client: AsyncStreamClient, run: _Run, index: int, body: bytes, timeout: float) -> RequestTiming:
    state, decode = StreamState(), _JSON.decode
    take = state.take

    def chunk(payload: bytes, arrived: float) -> None:
        take(decode(payload.decode()), arrived)  # str, not bytes: json.loads would sniff the encoding each time

    start = time.perf_counter()
    sent, due = start - run.start, run.due[index]
    run.in_flight.enter()
    try:
        with classified_errors():
            done = await client.stream(_PATH, body, timeout=timeout, take=chunk)
            raw = state.result(start, done)
    except ModelCallError as exc:
        return RequestTiming(ok=False, error=exc.failure, message=str(exc), sent_at_s=sent, scheduled_at_s=due)
    finally:
        run.in_flight.leave()
    end = time.perf_counter()
    return RequestTiming.answered(
        raw.usage,
        ttft_s=raw.ttft_s,
        tpot_s=decode_timings(raw).get("tpot_s"),
        e2e_s=end - start,
        itl_s=raw.itl_s,
        sent_at_s=sent,
        scheduled_at_s=due,
    )
