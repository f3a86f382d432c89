"""The cost model: what one call, one run and one developer-month cost per alias.

Two kinds of price, both read from an alias's ``cost:`` mapping in
``models.yaml``:

* **commercial** (a metered API): dollars per million tokens, with cached
  prompt tokens optionally cheaper::

      cost: {input_per_mtok: 3.0, output_per_mtok: 15.0, cached_input_per_mtok: 0.3}

* **self-hosted** (a GPU box running vLLM): the hourly price of the GPU(s)
  and how many calls the server serves at once::

      cost: {gpu_hourly_usd: 4.5, concurrency: 4}          # one GPU
      cost: {gpu_hourly_usd: 2.0, gpus: 8, concurrency: 32} # 8 GPUs at $2/h each

Honesty rules: an alias without a cost spec costs ``None`` ("unknown"), never
0; a self-hosted call costs 0 only when its GPU price is explicitly 0; a call
whose inputs are unknown (no usage reported, no latency measured) costs
``None``.

Pure and cheap to import: no I/O, no pytest, no third-party imports. Invalid
*settings* (a cost mapping, a developer count, hours per month) raise
:class:`~pytest_agentbench.errors.ConfigError` naming the field and the fix;
impossible *measurements* (negative tokens or latency) raise ``ValueError``,
since they are a harness bug rather than something the user can fix.
The formulas, assumptions and worked examples are in ``docs/cost-and-sizing.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from pytest_agentbench.errors import ConfigError

if TYPE_CHECKING:
    from pytest_agentbench.models.calls import Usage

__all__ = [
    "HOURS_PER_MONTH_24X7",
    "WORKING_HOURS_PER_MONTH",
    "CommercialCost",
    "CostComparison",
    "CostSpec",
    "SelfHostedCost",
    "break_even_calls_per_hour",
    "break_even_developers",
    "call_cost_usd",
    "commercial_usd_per_dev_month",
    "compare_costs",
    "format_usd",
    "parse_cost_spec",
    "self_hosted_capacity_calls_per_hour",
    "self_hosted_usd_per_dev_month",
    "usage_cost_usd",
]

#: 24 x 365 / 12: a GPU that is rented around the clock.
HOURS_PER_MONTH_24X7 = 730.0
#: 22 working days x 8 h: the hours in which a developer actually sends calls.
WORKING_HOURS_PER_MONTH = 176.0
#: The longest month (31 x 24 h); a larger "hours per month" is a unit mistake.
_MAX_HOURS_PER_MONTH = 744.0

_MTOK = 1_000_000.0
_COMMERCIAL_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")
_SELF_HOSTED_KEYS = ("gpu_hourly_usd", "concurrency", "gpus")
_EXAMPLE_COMMERCIAL = "{input_per_mtok: 3.0, output_per_mtok: 15.0}"
_EXAMPLE_SELF_HOSTED = "{gpu_hourly_usd: 4.5, concurrency: 4}"


@dataclass(frozen=True)
class CommercialCost:
    """A metered API's price in US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float
    #: Price of prompt tokens served from the provider's prompt cache.
    #: ``parse_cost_spec`` defaults it to ``input_per_mtok`` (no discount).
    cached_input_per_mtok: float

    @property
    def kind(self) -> str:
        return "commercial"

    def describe(self) -> str:
        text = f"${_num(self.input_per_mtok)}/M in, ${_num(self.output_per_mtok)}/M out"
        if self.cached_input_per_mtok != self.input_per_mtok:
            text += f", ${_num(self.cached_input_per_mtok)}/M cached in"
        return text


@dataclass(frozen=True)
class SelfHostedCost:
    """A self-hosted server's price: GPU rent per hour, shared by concurrent calls."""

    #: US dollars per hour for *one* GPU.
    gpu_hourly_usd: float
    #: Calls the server serves at once (a measured average may be fractional).
    concurrency: float
    #: GPUs the server occupies (e.g. the tensor-parallel degree).
    gpus: int = 1

    @property
    def kind(self) -> str:
        return "self-hosted"

    @property
    def hourly_usd(self) -> float:
        """What the whole server costs per hour: ``gpu_hourly_usd x gpus``."""
        return self.gpu_hourly_usd * self.gpus

    def describe(self) -> str:
        gpus = f" x {self.gpus} GPUs" if self.gpus != 1 else ""
        return f"${_num(self.gpu_hourly_usd)}/GPU-h{gpus}, {_num(self.concurrency)} concurrent calls"


#: Either kind of price; ``isinstance(x, CostSpec)`` works.
CostSpec: TypeAlias = CommercialCost | SelfHostedCost


# --------------------------------------------------------------------------- parsing


def parse_cost_spec(
    mapping: Mapping[str, Any] | None, where: str, *, error: type[ConfigError] = ConfigError
) -> CostSpec | None:
    """Parse an alias's ``cost:`` mapping strictly.

    *where* locates the mapping in messages, e.g.
    ``"models.yaml: models.local-coder.cost"``; *error* lets a loader raise its
    own ``ConfigError`` subclass (``ModelsFileError``). ``None`` or an empty
    mapping means "no cost spec" and returns ``None`` (cost unknown).
    """
    if mapping is None:
        return None
    if not isinstance(mapping, Mapping):
        raise error(
            f"{where}: expected a mapping such as {_EXAMPLE_COMMERCIAL} or "
            f"{_EXAMPLE_SELF_HOSTED}, found {_type_name(mapping)}"
        )
    if not mapping:
        return None
    _check_keys(mapping, where, error)
    if any(k in mapping for k in _COMMERCIAL_KEYS):
        return _parse_commercial(mapping, where, error)
    return _parse_self_hosted(mapping, where, error)


def _check_keys(mapping: Mapping[str, Any], where: str, error: type[ConfigError]) -> None:
    """Every key known, and all of one kind of price."""
    allowed = _COMMERCIAL_KEYS + _SELF_HOSTED_KEYS
    for key in mapping:
        if key not in allowed:
            raise error(
                f"{where}: unknown key {key!r}{_did_you_mean(str(key), allowed)}; allowed keys: "
                f"{', '.join(_COMMERCIAL_KEYS)} (commercial API) or "
                f"{', '.join(_SELF_HOSTED_KEYS)} (self-hosted GPU)"
            )
    commercial = [k for k in _COMMERCIAL_KEYS if k in mapping]
    self_hosted = [k for k in _SELF_HOSTED_KEYS if k in mapping]
    if commercial and self_hosted:
        raise error(
            f"{where}: mixes commercial keys ({', '.join(commercial)}) with self-hosted keys "
            f"({', '.join(self_hosted)}); an alias is priced one way: either per token "
            f"{_EXAMPLE_COMMERCIAL} or per GPU hour {_EXAMPLE_SELF_HOSTED}"
        )


def _parse_commercial(mapping: Mapping[str, Any], where: str, error: type[ConfigError]) -> CommercialCost:
    for key in ("input_per_mtok", "output_per_mtok"):
        if key not in mapping:
            raise error(
                f"{where}: missing {key!r}; a commercial price needs both input_per_mtok "
                f"and output_per_mtok (US$ per million tokens), e.g. {_EXAMPLE_COMMERCIAL}"
            )
    price_in = _price(mapping, "input_per_mtok", where, error)
    cached = mapping.get("cached_input_per_mtok")
    return CommercialCost(
        input_per_mtok=price_in,
        output_per_mtok=_price(mapping, "output_per_mtok", where, error),
        cached_input_per_mtok=price_in if cached is None else _price(mapping, "cached_input_per_mtok", where, error),
    )


def _parse_self_hosted(mapping: Mapping[str, Any], where: str, error: type[ConfigError]) -> SelfHostedCost:
    for key, meaning in (
        ("gpu_hourly_usd", "US$ per GPU per hour"),
        ("concurrency", "calls the server serves at once"),
    ):
        if key not in mapping:
            raise error(
                f"{where}: missing {key!r} ({meaning}); a self-hosted price needs "
                f"gpu_hourly_usd and concurrency, e.g. {_EXAMPLE_SELF_HOSTED}"
            )
    concurrency = _number(mapping, "concurrency", where, error)
    if concurrency < 1:
        raise error(
            f"{where}.concurrency: expected the number of calls the server serves at once "
            f"(>= 1), found {mapping['concurrency']!r}; use 1 if calls are served one by one"
        )
    gpus = mapping.get("gpus", 1)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise error(
            f"{where}.gpus: expected a whole number of GPUs >= 1 (e.g. 2 for tensor "
            f"parallel 2), found {_type_name(gpus)} ({gpus!r})"
        )
    return SelfHostedCost(
        gpu_hourly_usd=_price(mapping, "gpu_hourly_usd", where, error),
        concurrency=concurrency,
        gpus=gpus,
    )


def _number(mapping: Mapping[str, Any], key: str, where: str, error: type[ConfigError]) -> float:
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (write it without quotes)" if isinstance(value, str) else ""
        raise error(f"{where}.{key}: expected a number{hint}, found {_type_name(value)} ({value!r})")
    if not math.isfinite(value):
        raise error(f"{where}.{key}: expected a finite number, found {value!r}")
    return float(value)


def _price(mapping: Mapping[str, Any], key: str, where: str, error: type[ConfigError]) -> float:
    value = _number(mapping, key, where, error)
    if value < 0:
        raise error(
            f"{where}.{key}: a price cannot be negative, found {mapping[key]!r}; "
            f"use 0 only for something that is really free"
        )
    return value


# --------------------------------------------------------------------------- per call


def call_cost_usd(
    spec: CostSpec | None,
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cached_tokens: int = 0,
    latency_s: float | None = None,
) -> float | None:
    """US dollars for one call (or the sum of a run's calls); ``None`` = unknown.

    * commercial: ``((prompt - cached) x in + cached x cached_in + completion x out) / 1e6``.
      ``cached_tokens`` is the part of ``prompt_tokens`` served from the prompt
      cache, as OpenAI-compatible usage reports it.
    * self-hosted: ``gpu_hourly_usd x gpus x latency_s / 3600 / concurrency``:
      the call holds one of ``concurrency`` slots of the server for its
      latency. ``latency_s`` is the wall time of the model call (for a run:
      the sum over its calls, not tool or gate time); without it the cost is
      unknown (``None``), never 0.
    * no spec: ``None``.
    """
    _check_tokens(prompt_tokens, completion_tokens, cached_tokens)
    if spec is None:
        return None
    if isinstance(spec, CommercialCost):
        uncached = prompt_tokens - cached_tokens
        return (
            uncached * spec.input_per_mtok
            + cached_tokens * spec.cached_input_per_mtok
            + completion_tokens * spec.output_per_mtok
        ) / _MTOK
    if latency_s is None:
        return None
    if isinstance(latency_s, bool) or not math.isfinite(latency_s) or latency_s < 0:
        raise ValueError(f"latency_s must be a finite number of seconds >= 0, got {latency_s!r}")
    return spec.hourly_usd * latency_s / 3600.0 / spec.concurrency


def usage_cost_usd(spec: CostSpec | None, usage: Usage, latency_s: float | None = None) -> float | None:
    """:func:`call_cost_usd` for an adapter ``Usage``.

    A commercial call whose server reported no usage (``usage.reported`` false)
    costs ``None``: its zero token counts are unknowns, not zeros.
    """
    if isinstance(spec, CommercialCost) and not usage.reported:
        return None
    return call_cost_usd(
        spec,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        latency_s=latency_s,
    )


def _check_tokens(prompt: int, completion: int, cached: int) -> None:
    for name, value in (("prompt_tokens", prompt), ("completion_tokens", completion), ("cached_tokens", cached)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a count >= 0, got {value!r}")
    if cached > prompt:
        raise ValueError(
            f"cached_tokens ({cached}) cannot exceed prompt_tokens ({prompt}): cached "
            f"tokens are the part of the prompt served from the cache"
        )


# --------------------------------------------------------------------------- break-even


def self_hosted_capacity_calls_per_hour(spec: SelfHostedCost, latency_s: float) -> float:
    """Calls per hour the server can serve: ``concurrency x 3600 / latency_s``."""
    if isinstance(latency_s, bool) or not math.isfinite(latency_s) or latency_s <= 0:
        raise ValueError(f"latency_s must be a finite number of seconds > 0, got {latency_s!r}")
    return spec.concurrency * 3600.0 / latency_s


def break_even_calls_per_hour(commercial_call_usd: float, self_hosted: SelfHostedCost) -> float:
    """Calls per hour above which the self-hosted server is cheaper than the API.

    ``break_even = gpu_hourly_usd x gpus / commercial_call_usd``.

    Assumptions (first order):

    * The GPU is paid for every hour whether it is busy or idle (rented or
      amortized hardware), so its cost per hour is fixed; the API is paid per
      call, so its cost per hour is ``calls_per_hour x commercial_call_usd``.
      The two are equal at the break-even rate.
    * The calls are alike: the commercial per-call cost is for the same token
      mix (prompt, cached, completion) the self-hosted model serves, and both
      models need the same number of calls for a task (compare the measured
      calls per run when they differ).
    * The server can actually serve that rate: check it against
      :func:`self_hosted_capacity_calls_per_hour` (``compare_costs`` does);
      above capacity you need more GPUs and the break-even moves.
    * Power, operations staff, storage and network are not in
      ``gpu_hourly_usd`` unless you put them there.

    A free API call (``commercial_call_usd == 0``) gives ``math.inf``: self-
    hosting never breaks even; a free GPU gives 0.
    """
    if isinstance(commercial_call_usd, bool) or not math.isfinite(commercial_call_usd) or commercial_call_usd < 0:
        raise ValueError(f"commercial_call_usd must be a finite amount >= 0, got {commercial_call_usd!r}")
    hourly = self_hosted.hourly_usd
    if commercial_call_usd == 0:
        return 0.0 if hourly == 0 else math.inf
    return hourly / commercial_call_usd


@dataclass(frozen=True)
class CostComparison:
    """A commercial and a self-hosted option priced for the same call."""

    commercial_call_usd: float
    self_hosted_call_usd: float
    #: Calls/h above which self-hosting is cheaper (see ``break_even_calls_per_hour``).
    break_even_calls_per_hour: float
    #: Calls/h one server can serve at this latency and concurrency.
    capacity_calls_per_hour: float

    @property
    def reachable(self) -> bool:
        """Whether one server can serve the break-even rate at all."""
        return self.break_even_calls_per_hour <= self.capacity_calls_per_hour


def compare_costs(
    commercial: CommercialCost,
    self_hosted: SelfHostedCost,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    latency_s: float,
    cached_tokens: int = 0,
) -> CostComparison:
    """Price one call both ways and derive the break-even rate and server capacity.

    *latency_s* is the self-hosted model's measured latency for that call.
    """
    commercial_usd = call_cost_usd(
        commercial, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cached_tokens=cached_tokens
    )
    self_hosted_usd = call_cost_usd(self_hosted, latency_s=latency_s)
    assert commercial_usd is not None and self_hosted_usd is not None  # both specs and latency given
    return CostComparison(
        commercial_call_usd=commercial_usd,
        self_hosted_call_usd=self_hosted_usd,
        break_even_calls_per_hour=break_even_calls_per_hour(commercial_usd, self_hosted),
        capacity_calls_per_hour=self_hosted_capacity_calls_per_hour(self_hosted, latency_s),
    )


# --------------------------------------------------------------------------- per developer-month


def self_hosted_usd_per_dev_month(
    spec: SelfHostedCost,
    developers: int,
    *,
    hours_per_month: float = HOURS_PER_MONTH_24X7,
    servers: int = 1,
) -> float:
    """``gpu_hourly_usd x gpus x servers x hours_per_month / developers``.

    *hours_per_month* is how long the GPUs are paid for: 730 for a box kept up
    24x7 (the default), 176 (``WORKING_HOURS_PER_MONTH``) for one that is only
    up during working hours. *servers* is how many such servers the team
    needs to keep its SLO (from a capacity sweep); the whole bill is shared by
    *developers*.
    """
    _check_hours(hours_per_month)
    _check_count("developers", developers, "the number of developers sharing the server(s)")
    _check_count("servers", servers, "the number of identical servers (replicas)")
    return spec.hourly_usd * servers * hours_per_month / developers


def commercial_usd_per_dev_month(
    spec: CommercialCost,
    *,
    prompt_tokens_per_hour: float,
    completion_tokens_per_hour: float,
    cached_tokens_per_hour: float = 0.0,
    hours_per_month: float = WORKING_HOURS_PER_MONTH,
) -> float:
    """One developer's API bill per month from their measured token rates.

    The rates are per developer per *active* hour (tokens of a sweep divided
    by developers and by hours); from calls, multiply calls/h by the mean
    tokens per call. *hours_per_month* is how many such hours a developer
    works: 176 by default (22 days x 8 h).
    """
    _check_hours(hours_per_month)
    rates = (
        ("prompt_tokens_per_hour", prompt_tokens_per_hour),
        ("completion_tokens_per_hour", completion_tokens_per_hour),
        ("cached_tokens_per_hour", cached_tokens_per_hour),
    )
    for name, value in rates:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}: expected a token rate >= 0 (tokens per developer per hour), found {value!r}")
    if cached_tokens_per_hour > prompt_tokens_per_hour:
        raise ConfigError(
            f"cached_tokens_per_hour ({cached_tokens_per_hour!r}) cannot exceed "
            f"prompt_tokens_per_hour ({prompt_tokens_per_hour!r}): cached tokens are "
            f"part of the prompt"
        )
    per_hour = (
        (prompt_tokens_per_hour - cached_tokens_per_hour) * spec.input_per_mtok
        + cached_tokens_per_hour * spec.cached_input_per_mtok
        + completion_tokens_per_hour * spec.output_per_mtok
    ) / _MTOK
    return per_hour * hours_per_month


def break_even_developers(
    spec: SelfHostedCost,
    commercial_dev_month_usd: float,
    *,
    hours_per_month: float = HOURS_PER_MONTH_24X7,
    servers: int = 1,
) -> float:
    """Developers above which the self-hosted server(s) cost less per developer.

    ``gpu monthly bill / commercial $ per dev-month``; same assumptions as
    :func:`break_even_calls_per_hour`, plus: the server(s) keep the SLO for
    that many developers (check with a sweep). ``math.inf`` if the API is free.
    """
    if (
        isinstance(commercial_dev_month_usd, bool)
        or not math.isfinite(commercial_dev_month_usd)
        or commercial_dev_month_usd < 0
    ):
        raise ConfigError(f"commercial_dev_month_usd: expected an amount >= 0, found {commercial_dev_month_usd!r}")
    monthly = self_hosted_usd_per_dev_month(spec, 1, hours_per_month=hours_per_month, servers=servers)
    if commercial_dev_month_usd == 0:
        return 0.0 if monthly == 0 else math.inf
    return monthly / commercial_dev_month_usd


def _check_hours(hours: float) -> None:
    if (
        isinstance(hours, bool)
        or not isinstance(hours, (int, float))
        or not math.isfinite(hours)
        or not 0 < hours <= _MAX_HOURS_PER_MONTH
    ):
        raise ConfigError(
            f"hours_per_month: expected hours in one month, 0 < hours <= 744, found "
            f"{hours!r}; use {HOURS_PER_MONTH_24X7:g} for 24x7 or "
            f"{WORKING_HOURS_PER_MONTH:g} for working hours"
        )


def _check_count(name: str, value: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected {meaning}, a whole number >= 1, found {value!r}")


# --------------------------------------------------------------------------- formatting


def format_usd(amount: float | None) -> str:
    """A dollar amount for humans; ``None`` is ``"unknown"``, never ``$0``.

    Amounts under a dollar keep three significant digits (``$0.00375``), so a
    cheap local call does not round to ``$0.00``.
    """
    if amount is None:
        return "unknown"
    if amount == 0:
        return "$0"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.3g}" if abs(amount) >= 1e-4 else f"${amount:.2e}"


def _num(value: float) -> str:
    return f"{value:g}"


def _type_name(value: object) -> str:
    from pytest_agentbench._schema import type_name  # only on the error path: it imports yaml

    return type_name(value)


def _did_you_mean(key: str, allowed: tuple[str, ...]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
