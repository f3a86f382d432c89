"""The trajectory viewer of the HTML report: grid -> run -> every turn, and the run's patch. pytest-free.

:func:`trajectory_section` renders, from run records (see :mod:`pytest_agentbench.results.record`):

- the entry point, a grid of outcomes: one row per packet, one column per alias (per agent x alias
  cell, ``agent @ alias``, where several agents ran: ``results.cells``), one chip per trial (``r1``,
  ``r2``, ...) coloured by how it ended;
- filters by alias, outcome (``passed``, ``gates missed``, a budget, a failure class) and by a failure
  class that occurred anywhere in the run (retried attempts included);
- per run a section: its gates, numbers and budgets, the patch as a collapsible diff (added, removed,
  hunk and file lines highlighted; binary and skipped files named), and the timeline of turns: each
  model call's start, wall time, TTFT, tokens in/out, finish reason, retries and errors, the budget
  left when it began, the text and reasoning, and every tool call with its arguments and its result
  as the model saw it;
- side by side: two runs of one packet (``#cmp=A,B``), from a "compare with" link of each run or the
  bar above the grid.

Self-contained, as the rest of the report: inline CSS and one inline script (no source, nothing
fetched); every text from a record is HTML-escaped and the script never turns record text into
markup (it only clones, shows and hides elements). Without JavaScript the grid still works: a chip
links to ``#run-<id>`` and CSS ``:target`` shows that run. Nothing is cut silently: a text the record
cut carries the record's own marker; the page shows at most :data:`PAGE_CHARS` characters of text
in all, and a text cut for the page says how much was cut and where the whole is (``results.jsonl``,
the run id and the field).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pytest_agentbench.reports.summary import NOT_STREAMED, format_seconds, run_category
from pytest_agentbench.reports.svg import e
from pytest_agentbench.results.cells import column_of, label_cells
from pytest_agentbench.results.trajectory import fair_limit

__all__ = ["PAGE_CHARS", "TRAJECTORY_CSS", "TRAJECTORY_JS", "trajectory_section"]

#: Characters of record text (turn texts, tool arguments and results, diffs) the page shows in all.
PAGE_CHARS = 8_000_000
_PAGE_FLOOR = 2_000

TRAJECTORY_CSS = """
.tv-filters{margin:6px 0;display:flex;flex-wrap:wrap;gap:14px;align-items:center}.tv-filters fieldset{border:1px
solid #d8dde6;padding:2px 8px;margin:0}table.tv-grid td{white-space:nowrap}
a.tv-chip{display:inline-block;border-radius:3px;padding:0 6px;margin:1px 2px;font-size:12px;color:#fff;
text-decoration:none}a.tv-chip.passed{background:#59a14f}a.tv-chip.missed{background:#e15759}
a.tv-chip.budget{background:#f28e2b}a.tv-chip.failed{background:#b07aa1}a.tv-chip.infra{background:#9aa3b2}
a.tv-chip.tv-off,th.tv-off,td.tv-off{display:none}a.tv-chip.tv-sel{outline:3px solid #1d2430}
.tv-run{display:none;border:1px solid #d8dde6;padding:4px 12px;margin:10px 0;background:#fff}
.tv-run:target,.tv-run.tv-show{display:block}.tv-run h3{font-size:16px;margin:6px 0}
.tv-cmp{display:grid;grid-template-columns:1fr 1fr;gap:10px}.tv-cmp[hidden]{display:none}
.tv-cmp>.tv-run{display:block;min-width:0}
ol.tv-turns{padding-left:0;list-style:none}li.tv-turn{border-left:3px solid #4e79a7;margin:8px 0;padding:2px 8px}
li.tv-turn.tv-bad{border-left-color:#e15759}.tv-th{font-size:12px;color:#5a6578}.tv-th b{color:#1d2430}
.tv-tool{border:1px solid #e1e4e8;margin:4px 0;padding:2px 6px}.tv-call code{font-weight:600}
.tv-ok{color:#2e7d32}.tv-ko{color:#c62828;font-weight:600}.tv-err{color:#c62828;font-weight:600}
pre.tv-result,pre.tv-args,pre.tv-content{max-height:360px}
pre.tv-diff{max-height:600px}pre.tv-diff span{display:block}pre.tv-diff .a{background:#e6ffec}
pre.tv-diff .d{background:#ffebe9}pre.tv-diff .h{background:#ddf4ff;color:#0550ae}
pre.tv-diff .f{font-weight:600;color:#1d2430}.tv-cut{color:#7a5c00;background:#fff3c4;padding:0 4px}
"""

TRAJECTORY_JS = """
(function () {
  var root = document.getElementById('tv');
  if (!root) return;
  var cmp = document.getElementById('tv-cmp');
  function each(sel, fn) { Array.prototype.forEach.call(root.querySelectorAll(sel), fn); }
  function filter() {
    var off = {}, outcome = document.getElementById('tv-f-outcome').value;
    var failure = document.getElementById('tv-f-failure').value;
    each('input.tv-f-alias', function (box) { if (!box.checked) off[box.value] = true; });
    each('[data-col]', function (el) { el.classList.toggle('tv-off', !!off[el.getAttribute('data-col')]); });
    each('a.tv-chip', function (chip) {
      var hide = (outcome && chip.getAttribute('data-outcome') !== outcome) ||
        (failure && (' ' + chip.getAttribute('data-failures') + ' ').indexOf(' ' + failure + ' ') < 0);
      chip.classList.toggle('tv-off', !!hide);
    });
  }
  function show() {
    var hash = decodeURIComponent(location.hash.slice(1));
    each('.tv-show', function (el) { el.classList.remove('tv-show'); });
    each('a.tv-sel', function (el) { el.classList.remove('tv-sel'); });
    while (cmp.firstChild) cmp.removeChild(cmp.firstChild);
    cmp.hidden = true;
    var ids = hash.indexOf('cmp=') === 0 ? hash.slice(4).split(',') : [];
    if (hash.indexOf('run-') === 0) ids = [hash.slice(4)];
    ids.forEach(function (id) {
      var chip = document.getElementById('chip-' + id);
      if (chip) chip.classList.add('tv-sel');
    });
    if (hash.indexOf('run-') === 0) {
      var one = document.getElementById(hash);
      if (one) one.classList.add('tv-show');
    } else if (ids.length) {
      ids.forEach(function (id) {
        var sec = document.getElementById('run-' + id);
        if (!sec) return;
        var copy = sec.cloneNode(true);
        copy.removeAttribute('id');
        Array.prototype.forEach.call(copy.querySelectorAll('[id]'), function (el) { el.removeAttribute('id'); });
        cmp.appendChild(copy);
      });
      cmp.hidden = !cmp.firstChild;
      if (cmp.firstChild) cmp.scrollIntoView();
    }
  }
  function compareFromBar() {
    var packet = document.getElementById('tv-c-packet').value, picked = [];
    ['tv-c-a', 'tv-c-b'].forEach(function (sel) {
      var alias = document.getElementById(sel).value;
      var chip = root.querySelector('a.tv-chip[data-packet="' + CSS.escape(packet) + '"][data-col="' +
        CSS.escape(alias) + '"]');
      if (chip) picked.push(chip.getAttribute('data-run'));
    });
    if (picked.length === 2) location.hash = 'cmp=' + picked.join(',');
    else document.getElementById('tv-c-none').hidden = false;
  }
  each('.tv-filters input, .tv-filters select', function (el) { el.addEventListener('change', filter); });
  document.getElementById('tv-c-go').addEventListener('click', compareFromBar);
  window.addEventListener('hashchange', show);
  filter();
  show();
})();
"""

_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_CHIP_CLASS = {"passed": "passed", "gates missed": "missed", "max_turns": "budget", "agent_timeout": "budget"}


# --------------------------------------------------------------------------- what the page shows of the records


def _run_ids(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """An element-safe, unique id per record (its run id where it has a usable one)."""
    ids, seen = [], set()
    for i, rec in enumerate(records):
        rid = _SAFE_ID.sub("", str(rec.get("run_id") or ""))[:40] or f"n{i}"
        if rid in seen:
            rid = f"{rid}-{i}"
        seen.add(rid)
        ids.append(rid)
    return ids


def _trial(rec: Mapping[str, Any]) -> tuple[str, int]:
    return str((rec.get("packet") or {}).get("id")), int(rec.get("repeat") or 1)


def _failures(rec: Mapping[str, Any]) -> list[str]:
    return sorted(str(k) for k in (rec.get("failures_by_class") or {}))


def _texts(rec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where in the record, text) of every text the page shows of a run."""
    for i, turn in enumerate(rec.get("trajectory") or []):
        for key in ("content", "reasoning"):
            if turn.get(key):
                yield f"trajectory[{i}].{key}", str(turn[key])
        for j, call in enumerate(turn.get("tool_calls") or []):
            yield f"trajectory[{i}].tool_calls[{j}].arguments", str(call.get("arguments") or "")
            yield f"trajectory[{i}].tool_calls[{j}].result", str(call.get("result") or "")
        for j, raw in enumerate(turn.get("invalid_tool_calls") or []):
            yield f"trajectory[{i}].invalid_tool_calls[{j}]", str(raw)
    diff = (rec.get("patch") or {}).get("diff")
    if diff:
        yield "patch.diff", str(diff)
    if not rec.get("trajectory") and rec.get("transcript"):
        yield "transcript", str(rec["transcript"])


class _PageClip:
    """Keeps the page within PAGE_CHARS of text; a cut says how much, and where the whole is."""

    def __init__(self, records: Sequence[Mapping[str, Any]], budget: int) -> None:
        self.limit = fair_limit([len(t) for rec in records for _, t in _texts(rec)], budget, _PAGE_FLOOR)

    def __call__(self, text: Any, run_id: str, where: str) -> str:
        """The escaped text, cut (head and tail) with a marker when over the page's per-text limit."""
        text = "" if text is None else str(text)
        if self.limit is None or len(text) <= self.limit:
            return e(text)
        head = self.limit * 2 // 3
        tail = self.limit - head
        cut = len(text) - head - tail
        marker = (
            f"[... {cut} characters not shown here (the page shows at most {self.limit} per text); "
            f"the whole is in results.jsonl: run {run_id}, {where} ...]"
        )
        return f'{e(text[:head])}\n<span class="tv-cut">{e(marker)}</span>\n{e(text[-tail:])}'


# --------------------------------------------------------------------------- the grid and the bars


def _chip(rec: Mapping[str, Any], rid: str, col: str) -> str:
    category = run_category(rec)
    cls = _CHIP_CLASS.get(category, "infra" if category == "infrastructure" else "failed")
    mark = {"passed": "&#10003;", "infra": "!"}.get(cls, "&#10007;")
    repeat = rec.get("repeat") or 1
    tip = f"{column_of(rec)} on {(rec.get('packet') or {}).get('id')}, trial {repeat}: {category}"
    return (
        f'<a class="tv-chip {cls}" id="chip-{rid}" href="#run-{rid}" data-run="{rid}" data-col="{e(col)}" '
        f'data-packet="{e((rec.get("packet") or {}).get("id"))}" data-outcome="{e(category)}" '
        f'data-failures="{e(" ".join(_failures(rec)))}" title="{e(tip)}">r{e(repeat)} {mark}</a>'
    )


def _grid(records: Sequence[Mapping[str, Any]], ids: Sequence[str], cols: Sequence[str]) -> str:
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    order = sorted(range(len(records)), key=lambda i: (records[i].get("repeat") or 1, str(records[i].get("timestamp"))))
    for i in order:
        rec = records[i]
        col = column_of(rec)
        cells[(str((rec.get("packet") or {}).get("id")), col)].append(_chip(rec, ids[i], col))
    packets = sorted({p for p, _ in cells})
    head = "".join(f'<th data-col="{e(c)}">{e(c)}</th>' for c in cols)
    rows = "".join(
        f"<tr><th>{e(p)}</th>"
        + "".join(f'<td data-col="{e(c)}">{"".join(cells.get((p, c), [])) or "&ndash;"}</td>' for c in cols)
        + "</tr>"
        for p in packets
    )
    return f'<table class="tv-grid"><tr><th>packet</th>{head}</tr>{rows}</table>'


def _options(values: Sequence[str], first: str | None = None) -> str:
    lead = f'<option value="">{e(first)}</option>' if first is not None else ""
    return lead + "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)


def _bars(records: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> str:
    outcomes = sorted({run_category(r) for r in records})
    failures = sorted({f for r in records for f in _failures(r)})
    packets = sorted({str((r.get("packet") or {}).get("id")) for r in records})
    boxes = "".join(
        f'<label><input type="checkbox" class="tv-f-alias" value="{e(c)}" checked> {e(c)}</label> ' for c in cols
    )
    second = cols[1] if len(cols) > 1 else (cols[0] if cols else "")
    b_options = "".join(f'<option value="{e(c)}"{" selected" if c == second else ""}>{e(c)}</option>' for c in cols)
    return (
        f'<form class="tv-filters" id="tv-filters"><fieldset><legend>alias</legend>{boxes}</fieldset>'
        f'<label>outcome <select id="tv-f-outcome">{_options(outcomes, "all")}</select></label>'
        f'<label>failure class <select id="tv-f-failure">{_options(failures, "any")}</select></label></form>'
        f'<div class="tv-filters">side by side: packet <select id="tv-c-packet">{_options(packets)}</select> '
        f'<select id="tv-c-a">{_options(cols)}</select> vs <select id="tv-c-b">{b_options}</select> '
        '<button type="button" id="tv-c-go">compare</button> '
        '<span id="tv-c-none" class="tv-cut" hidden>one of the two has no run of that packet</span></div>'
    )


# --------------------------------------------------------------------------- one run


def _diff_html(diff: str) -> str:
    """The diff, each line a span classed by what it is (file header, hunk, added, removed)."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("diff --git", "index ", "--- ", "+++ ", "new file", "deleted file", "Binary files")):
            cls = "f"
        elif line.startswith("@@"):
            cls = "h"
        elif line.startswith("+"):
            cls = "a"
        elif line.startswith("-"):
            cls = "d"
        else:
            cls = "c"
        out.append(f'<span class="{cls}">{line or " "}</span>')
    return "".join(out)


def _patch_block(rec: Mapping[str, Any], rid: str, clip: _PageClip) -> str:
    if "patch" not in rec:
        return '<p class="meta">No patch: this record was written before patches were recorded.</p>'
    patch = rec.get("patch")
    if not isinstance(patch, dict):
        return '<p class="meta">No patch taken (the endpoint never answered: nothing ran).</p>'
    if patch.get("error"):
        return f'<p class="tv-err">No patch could be taken: {e(patch["error"])}</p>'
    files = patch.get("files") or []
    added = sum(int(f.get("added") or 0) for f in files)
    deleted = sum(int(f.get("deleted") or 0) for f in files)
    total, size = patch.get("files_total", len(files)), patch.get("bytes", 0)
    summary = f"patch: {e(total)} file(s), +{added} &minus;{deleted}, {e(size)} bytes"
    if patch.get("binary"):
        summary += f"; binary: {e(', '.join(patch['binary']))}"
    if not files:
        return f'<p class="meta">{summary}: the agent changed nothing.</p>'
    body = clip(patch.get("diff") or "", rid, "patch.diff")
    notes = []
    if patch.get("note"):
        notes.append(f'<p class="tv-cut">{e(patch["note"])}</p>')
    if patch.get("skipped"):
        listed = "; ".join(f"{s.get('path')}: {s.get('why')}" for s in patch["skipped"])
        notes.append(f'<p class="meta">Not in the diff ({patch.get("skipped_total")}): {e(listed)}</p>')
    for warning in patch.get("warnings") or []:
        notes.append(f'<p class="meta">{e(warning)}</p>')
    return (
        f'<details class="tv-patch" open><summary>{summary}</summary>'
        f'<pre class="tv-diff">{_diff_html(body)}</pre>{"".join(notes)}</details>'
    )


def _turn_head(turn: Mapping[str, Any], call: Mapping[str, Any]) -> str:
    parts = [f"<b>turn {int(turn.get('index', 0)) + 1}</b>"]
    if turn.get("started_s") is not None:
        parts.append(f"at {e(format_seconds(turn['started_s']))}")
    parts.append(f"model call {e(format_seconds(call.get('wall_s')))}")
    ttft = call.get("ttft_s")
    parts.append(f"TTFT {e(format_seconds(ttft)) if ttft is not None else NOT_STREAMED}")
    tokens = f"{call.get('prompt_tokens', '?')} in / {call.get('completion_tokens', '?')} out"
    if call.get("cached_tokens"):
        tokens += f" ({call['cached_tokens']} cached)"
    if call.get("usage_reported") is False:
        tokens += " (no usage reported)"
    parts.append(e(tokens))
    if call.get("finish_reason"):
        parts.append(f"finish: {e(call['finish_reason'])}")
    left = turn.get("budget_left") or {}
    budget = [f"{left['turns']} turn(s)"] if left.get("turns") is not None else []
    if left.get("wall_s") is not None:
        budget.append(f"{format_seconds(left['wall_s'])} wall")
    if turn.get("tokens_so_far") is not None:
        budget.append(f"{turn['tokens_so_far']} tokens used before")
    if budget:
        parts.append("budget left: " + e(", ".join(budget)))
    return '<div class="tv-th">' + " &middot; ".join(parts) + "</div>"


def _turn(turn: Mapping[str, Any], call: Mapping[str, Any], rid: str, clip: _PageClip) -> str:
    i = int(turn.get("index", 0))
    where = f"trajectory[{i}]"
    bad = bool(turn.get("error") or turn.get("invalid_tool_calls"))
    out = [f'<li class="tv-turn{" tv-bad" if bad else ""}" data-turn="{i}">', _turn_head(turn, call)]
    if turn.get("retries"):
        out.append(f'<div class="tv-err">retried after: {e(", ".join(turn["retries"]))}</div>')
    if turn.get("error"):
        out.append(f'<div class="tv-err">model call failed: {e(turn["error"])}</div>')
    if turn.get("reasoning"):
        text = clip(turn["reasoning"], rid, f"{where}.reasoning")
        out.append(f"<details><summary>reasoning</summary><pre>{text}</pre></details>")
    if turn.get("content"):
        out.append(f'<pre class="tv-content">{clip(turn["content"], rid, f"{where}.content")}</pre>')
    for j, tc in enumerate(turn.get("tool_calls") or []):
        ok = bool(tc.get("ok"))
        status = '<span class="tv-ok">ok</span>' if ok else '<span class="tv-ko">error</span>'
        out.append(
            f'<div class="tv-tool" data-tool="{e(tc.get("name"))}"><div class="tv-call"><code>{e(tc.get("name"))}'
            f"</code> {status} &middot; {e(format_seconds(tc.get('duration_s')))} &middot; "
            f"{e(tc.get('result_chars'))} characters</div>"
            f'<pre class="tv-args">{clip(tc.get("arguments"), rid, f"{where}.tool_calls[{j}].arguments")}</pre>'
            f'<pre class="tv-result">{clip(tc.get("result"), rid, f"{where}.tool_calls[{j}].result")}</pre></div>'
        )
    for j, raw in enumerate(turn.get("invalid_tool_calls") or []):
        text = clip(raw, rid, f"{where}.invalid_tool_calls[{j}]")
        out.append(f'<div class="tv-err">invalid tool call (the model was told):</div><pre>{text}</pre>')
    out.append("</li>")
    return "".join(out)


def _run_head(rec: Mapping[str, Any]) -> str:
    client = rec.get("client") or {}
    tokens = client.get("tokens") or {}
    gates = rec.get("gates") or []
    badges = "".join(
        f'<span class="gate {"ok" if g.get("passed") else "ko"}">{"&#10003;" if g.get("passed") else "&#10007;"} '
        f"{e(g.get('id'))}</span>"
        for g in gates
    )
    budget = ((rec.get("trajectory") or [{}])[0].get("budget_left") or {}) if rec.get("trajectory") else {}
    limits = f", budget {budget.get('turns')} turn(s)" if budget.get("turns") is not None else ""
    outcome = str(rec.get("outcome")) + (f" ({rec['failure']})" if rec.get("failure") else "")
    return (
        f"<h3>{e((rec.get('packet') or {}).get('id'))} &middot; {e(column_of(rec))} &middot; "
        f"trial {e(rec.get('repeat') or 1)} &mdash; {e(run_category(rec))}</h3>"
        f'<p class="meta">outcome {e(outcome)}; {e(rec.get("turns"))} turn(s){e(limits)}; run wall '
        f"{e(format_seconds(client.get('wall_s')))}, model calls {e(format_seconds(client.get('model_wall_s')))}; "
        f"tokens {int(tokens.get('prompt') or 0):,} in / {int(tokens.get('completion') or 0):,} out; "
        f"model {e(rec.get('model'))}; sandbox {e((rec.get('sandbox') or {}).get('kind'))}; "
        f"run {e(rec.get('run_id'))}</p><div>gates: {badges or 'none run'}</div>"
        + (f'<p class="tv-err">{e(rec["error"])}</p>' if rec.get("error") else "")
    )


def _compare_links(rec: Mapping[str, Any], rid: str, peers: Mapping[str, tuple[Mapping[str, Any], str]]) -> str:
    """One link per other alias (agent x alias cell) that ran the same packet and trial (its newest run of it)."""
    links = [
        f'<a href="#cmp={rid},{pid}">{e(alias)} r{e(peer.get("repeat") or 1)}</a>'
        for alias, (peer, pid) in sorted(peers.items())
        if alias != column_of(rec)
    ]
    return f'<p class="meta">compare with: {" ".join(links)}</p>' if links else ""


def _run_section(
    rec: Mapping[str, Any], rid: str, peers: Mapping[str, tuple[Mapping[str, Any], str]], clip: _PageClip
) -> str:
    calls = {int(c.get("index", i)): c for i, c in enumerate((rec.get("client") or {}).get("calls") or [])}
    turns = rec.get("trajectory")
    if turns:
        items = "".join(_turn(t, calls.get(int(t.get("index", 0)), {}), rid, clip) for t in turns)
        timeline = f'<ol class="tv-turns">{items}</ol>'
    elif rec.get("transcript"):
        timeline = (
            '<p class="meta">This record has no trajectory (written before trajectories were recorded); '
            f"its transcript:</p><pre>{clip(rec['transcript'], rid, 'transcript')}</pre>"
        )
    else:
        timeline = '<p class="meta">No model call was recorded.</p>'
    return (
        f'<section class="tv-run" id="run-{rid}" data-run="{rid}">{_run_head(rec)}'
        f"{_compare_links(rec, rid, peers)}{_patch_block(rec, rid, clip)}{timeline}</section>"
    )


def trajectory_section(records: Sequence[Mapping[str, Any]], *, page_chars: int = PAGE_CHARS) -> str:
    """The viewer's HTML (heading, bars, grid, one hidden section per run, the script); "" for no records.
    Its styles are :data:`TRAJECTORY_CSS`, for the page's ``<style>``."""
    if not records:
        return ""
    records = label_cells(records)  # several agents: one column per agent x alias cell (results.cells)
    ids = _run_ids(records)
    cols = sorted({column_of(r) for r in records})
    by_trial: dict[tuple[str, int], dict[str, tuple[Mapping[str, Any], str]]] = defaultdict(dict)
    for rec, rid in sorted(zip(records, ids, strict=True), key=lambda pair: str(pair[0].get("timestamp"))):
        by_trial[_trial(rec)][column_of(rec)] = (rec, rid)  # the newest run of each cell wins
    clip = _PageClip(records, page_chars)
    sections = "".join(
        _run_section(rec, rid, by_trial[_trial(rec)], clip) for rec, rid in zip(records, ids, strict=True)
    )
    return (
        '<h2 id="trajectories">Trajectories</h2>'
        '<p class="meta">One chip per run: click it for its patch and every turn (model call, tokens, tool calls '
        "with their results). Everything shown is in results.jsonl; a text cut anywhere says so in place, with "
        "how much and where the whole is.</p>"
        f'<div id="tv">{_bars(records, cols)}{_grid(records, ids, cols)}'
        f'<div id="tv-cmp" class="tv-cmp" hidden></div><div class="tv-runs">{sections}</div></div>'
        f"<script>{TRAJECTORY_JS}</script>"
    )
