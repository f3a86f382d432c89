"""The prompts of a load: random ones of a given token length, or a dataset file. No tokenizer download.

A prompt of exactly N tokens needs the server's tokenizer. Two ways, tried in this order:

* **the server's ``/tokenize`` and ``/detokenize``** (vLLM has both): as vllm bench's random
  dataset, random token ids are turned into text by ``/detokenize`` and trimmed or padded until
  ``/tokenize`` counts exactly N tokens (``add_special_tokens: false``: the text's own tokens; the
  chat template adds its own on top, as for vllm bench's ``openai-chat`` backend). The ids are drawn
  from those the server's tokenizer produces for a fixed corpus (the source of a few standard-library
  modules: code-like text, no special tokens), since the server does not say its vocabulary size.
* **a calibrated filler** where there is no ``/tokenize`` (other servers): random words of the same
  corpus, sized by what the server's ``usage`` reports for 1-token completions. Two calibration
  calls fit tokens per word and the chat template's overhead, then each prompt is checked once more
  and corrected; lengths are then close, not always exact (:attr:`PromptSet.lengths` are the counts
  the server reported, so the report says how close).

:func:`read_dataset` reads a JSONL file of prompts instead: one JSON value a line, a string, or an
object with ``prompt`` (text) or ``messages`` (a chat), and optionally ``output_len``.
"""

from __future__ import annotations

import inspect
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import ConfigError, ServerError

__all__ = ["Prompt", "PromptSet", "corpus_text", "random_prompts", "read_dataset"]

_ADJUST_ROUNDS = 6
_CORPUS_MODULES = ("argparse", "json.decoder", "textwrap", "dataclasses")


@dataclass(frozen=True)
class Prompt:
    """One request's input: the chat messages and how many tokens to ask for (``None``: the load's)."""

    messages: tuple[dict[str, Any], ...]
    output_len: int | None = None


@dataclass(frozen=True)
class PromptSet:
    """The prompts, how their lengths were made, and the token counts reached (``None``: unknown)."""

    prompts: tuple[Prompt, ...]
    method: str  # "server /tokenize", "calibrated filler", "dataset FILE"
    lengths: tuple[int | None, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        known = [n for n in self.lengths if n is not None]
        if not known:
            return self.method
        lo, hi = min(known), max(known)
        span = f"{lo}" if lo == hi else f"{lo}-{hi}"
        return f"{self.method}: {span} tokens of text per prompt"


def corpus_text() -> str:
    """The fixed text random prompts are drawn from: the source of a few standard-library modules."""
    import importlib

    return "\n".join(inspect.getsource(importlib.import_module(name)) for name in _CORPUS_MODULES)


def _post_json(url: str, body: dict[str, Any]) -> Any:
    from pytest_agentbench.serving import http

    try:
        answer = http.request(url, method="POST", json_body=body, timeout=60)
    except OSError as exc:
        raise ServerError(f"POST {url}: {exc}") from exc
    if answer.status != 200:
        return None
    try:
        return json.loads(answer.text())
    except ValueError:
        return None


class _ServerTokenizer:
    """The server's ``/tokenize`` and ``/detokenize`` (at its root URL, not under /v1)."""

    def __init__(self, root_url: str, model: str):
        self.root, self.model = root_url.rstrip("/"), model

    def tokenize(self, text: str) -> list[int] | None:
        data = _post_json(f"{self.root}/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False})
        tokens = data.get("tokens") if isinstance(data, dict) else None
        return tokens if isinstance(tokens, list) else None

    def detokenize(self, ids: Sequence[int]) -> str | None:
        data = _post_json(f"{self.root}/detokenize", {"model": self.model, "tokens": list(ids)})
        text = data.get("prompt") if isinstance(data, dict) else None
        return text if isinstance(text, str) else None


def _exact_prompt(tok: _ServerTokenizer, pool: Sequence[int], n: int, rng: random.Random) -> tuple[str, int]:
    """Random ids -> text that re-tokenizes to *n* tokens where the tokenizer allows (else the nearest)."""
    ids = [rng.choice(pool) for _ in range(n)]
    best: tuple[str, int] = ("", -1)
    for _ in range(_ADJUST_ROUNDS):  # decoded text re-tokenizes differently: trim or pad, then check again
        text = tok.detokenize(ids)
        again = tok.tokenize(text) if text is not None else None
        if text is None or again is None:
            raise ServerError(f"{tok.root}: /tokenize or /detokenize stopped answering while prompts were made")
        if best[1] < 0 or abs(len(again) - n) < abs(best[1] - n):
            best = (text, len(again))
        if len(again) == n:
            break
        ids = again[:n] + [rng.choice(pool) for _ in range(n - len(again))]
    return best


def _tokenized_prompts(
    tok: _ServerTokenizer, pool: Sequence[int], count: int, input_len: int, rng: random.Random
) -> PromptSet:
    texts, lengths = [], []
    for _ in range(count):
        text, got = _exact_prompt(tok, pool, input_len, rng)
        texts.append(text)
        lengths.append(got)
    off = sum(1 for n in lengths if n != input_len)
    notes = (f"{off} prompt(s) could not be made exactly {input_len} tokens (the nearest was kept)",) if off else ()
    return PromptSet(_as_prompts(texts), "server /tokenize", tuple(lengths), notes)


def _as_prompts(texts: Sequence[str]) -> tuple[Prompt, ...]:
    return tuple(Prompt(({"role": "user", "content": t},)) for t in texts)


#: Counts the prompt tokens the server reports for one user message of this text (a 1-token completion).
PromptCounter = Callable[[str], int]


def _filler_words() -> list[str]:
    """The corpus's short alphabetic words, sorted (a stable vocabulary for the filler)."""
    return sorted({w for w in corpus_text().split() if w.isalpha() and len(w) <= 10})


def _fit(
    words: list[str], target: int, count: Callable[[list[str]], float], per_word: float, rng: random.Random
) -> float:
    """Grow or cut *words* (in place) until *count* says *target*, in a few corrections; the last count."""
    got = count(words)
    for _ in range(_ADJUST_ROUNDS):
        if round(got) == target:
            break
        step = round((target - got) / per_word) or (1 if got < target else -1)
        if step > 0:
            words.extend(rng.choice(_filler_words()) for _ in range(step))
        else:
            del words[max(1, len(words) + step) :]
        got = count(words)
    return got


def _filler_prompts(count_tokens: PromptCounter, count: int, input_len: int, rng: random.Random) -> PromptSet:
    """Random corpus words sized by the server's usage: fit tokens/word and the template's overhead from
    two calls, then grow or cut each prompt until the server counts *input_len* (a few calls each)."""
    vocab = _filler_words()
    small, large = 8, max(64, 2 * input_len)
    sample = [rng.choice(vocab) for _ in range(large)]
    p_small, p_large = count_tokens(" ".join(sample[:small])), count_tokens(" ".join(sample))
    per_word = max(1e-3, (p_large - p_small) / (large - small))
    overhead = p_small - per_word * small

    def measure(words: list[str]) -> float:
        return count_tokens(" ".join(words)) - overhead

    texts, lengths = [], []
    for _ in range(count):
        words = [rng.choice(vocab) for _ in range(max(1, round(input_len / per_word)))]
        got = _fit(words, input_len, measure, per_word, rng)
        texts.append(" ".join(words))
        lengths.append(round(got))
    note = (
        f"no /tokenize on the server: prompts are corpus words sized by the server's usage "
        f"({per_word:.2f} tokens a word, {overhead:.0f} tokens of chat template)"
    )
    return PromptSet(_as_prompts(texts), "calibrated filler", tuple(lengths), (note,))


def random_prompts(
    count: int,
    input_len: int,
    *,
    seed: int,
    root_url: str,
    model: str,
    count_tokens: PromptCounter,
) -> PromptSet:
    """*count* random prompts of *input_len* tokens: by the server's /tokenize, else a calibrated filler."""
    if count < 1 or input_len < 1:
        raise ConfigError(f"--num-prompts and --input-len: expected whole numbers >= 1, found {count}, {input_len}")
    rng = random.Random(seed)
    tok = _ServerTokenizer(root_url, model)
    corpus = tok.tokenize(corpus_text())
    if corpus:
        return _tokenized_prompts(tok, sorted(set(corpus)), count, input_len, rng)
    return _filler_prompts(count_tokens, count, input_len, rng)


def _dataset_row(value: Any, where: str) -> Prompt:
    if isinstance(value, str):
        return Prompt(({"role": "user", "content": value},))
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a string or an object with 'prompt' or 'messages', found {value!r:.80}")
    unknown = sorted(set(value) - {"prompt", "messages", "output_len"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: prompt, messages, output_len")
    out = value.get("output_len")
    if out is not None and (isinstance(out, bool) or not isinstance(out, int) or out < 1):
        raise ConfigError(f"{where}.output_len: expected a whole number >= 1, found {out!r}")
    if isinstance(value.get("prompt"), str) == ("messages" in value):
        raise ConfigError(f"{where}: give exactly one of 'prompt' (a string) or 'messages' (a list of chat messages)")
    if isinstance(value.get("prompt"), str):
        return Prompt(({"role": "user", "content": value["prompt"]},), out)
    messages = value["messages"]
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise ConfigError(f"{where}.messages: expected a non-empty list of {{role, content}} objects")
    return Prompt(tuple(messages), out)


def read_dataset(path: Path | str, count: int) -> PromptSet:
    """*count* prompts from a JSONL file, in file order (cycled when the file holds fewer, and said so)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--dataset: cannot read {path}: {exc}") from None
    rows: list[Prompt] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"--dataset: {path}:{number}: not JSON ({exc})") from None
        rows.append(_dataset_row(value, f"--dataset: {path}:{number}"))
    if not rows:
        raise ConfigError(f"--dataset: {path} holds no prompts (one JSON string or object a line)")
    picked = tuple(rows[i % len(rows)] for i in range(count))
    notes = (f"{path} holds {len(rows)} prompt(s): cycled to {count}",) if count > len(rows) else ()
    return PromptSet(picked, f"dataset {path.name}", (), notes)
