"""`emozoo leaderboard`: results files -> Markdown and a static HTML page (sortable table, plots)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import protocol_report, protocols
from benchmarks import results as results_module
from benchmarks.conditions import CONDITIONS, FAMILIES
from benchmarks.plots import confusion_plot, latency_plot, pareto_plot
from benchmarks.report import Row, build_rows, fmt, machines, warnings_for
from benchmarks.results import BenchResults
from benchmarks.subjects import safe_name
from zoo.labels import LABELS
from zoo.storage import atomic_write_text

# key, heading, higher is better (None: text), digits
COLUMNS: tuple[tuple[str, str, bool | None, int], ...] = (
    ("model", "model", None, 0),
    ("runtime", "runtime", None, 0),
    ("device", "device", None, 0),
    ("uar", "UAR", True, 3),
    ("accuracy", "accuracy", True, 3),
    ("macro_f1", "macro-F1", True, 3),
    ("ece", "ECE", False, 3),
    ("brier", "Brier", False, 3),
    ("p50", "p50 ms", False, 2),
    ("p90", "p90 ms", False, 2),
    ("p99", "p99 ms", False, 2),
    ("features_p50", "features p50 ms", False, 2),
    ("clips_per_second", "offline clips/s", True, 1),
    ("real_time_factor", "real-time factor", False, 4),
    ("size_mb", "size MB", False, 2),
)
# robustness (emozoo bench --robustness): accuracy lost from clean, in points, mean over each family's conditions
ROBUSTNESS_COLUMNS: tuple[tuple[str, str, bool | None, int], ...] = tuple(
    (f"drop_{family}", f"Δ {family}", False, 1) for family in FAMILIES)
ROBUSTNESS_NOTE = ("<p>Δ columns: robustness (<code>emozoo bench --robustness</code>), the accuracy lost from clean "
                   "in points, averaged over each family's test conditions (lower is better).</p>")
RUNTIME_PREFERENCE = {"native": 0, "onnx": 1, "int8": 2}
DEFAULT_COMMAND = "make leaderboard"


@dataclass
class Leaderboard:
    rows: list[Row]
    warnings: list[str]
    markdown: Path
    html: Path
    images: dict[str, Path] = field(default_factory=dict)
    protocols: list[dict[str, Any]] = field(default_factory=list)


def columns_for(rows: Sequence[Row]) -> tuple[tuple[str, str, bool | None, int], ...]:
    """The table's columns: the robustness group only when some row was scored for robustness."""
    return COLUMNS + (ROBUSTNESS_COLUMNS if any(row.robustness for row in rows) else ())


def robustness_markdown(rows: Sequence[Row]) -> list[str]:
    """A section with each model's accuracy per test condition (where robustness was scored)."""
    measured: dict[str, Row] = {}
    for row in rows:
        if row.robustness and row.model not in measured:
            measured[row.model] = row
    if not measured:
        return []
    ids = [c.id for c in CONDITIONS]
    lines = ["## Robustness", "",
             "Accuracy on the same held-out clips, clean and under fixed, seeded degradations "
             "(`benchmarks/conditions.py`: gain ±20 dB; white and babble noise at 20/10/5 dB SNR, babble from other "
             "held-out speakers; telephone band with mu-law; MP3 32 kbps, Opus 32 and 16 kbps; reverberation RT60 "
             "0.3/0.6/1.0 s). The Δ columns above are the accuracy lost from clean, in points, averaged over each "
             "family's conditions (lower is better).", "",
             "| model | " + " | ".join(ids) + " |", "|---|" + "---:|" * len(ids)]
    for model, row in measured.items():
        robustness = row.robustness or {}
        by_id = {c["id"]: c for c in robustness["conditions"]}
        where = f"{robustness.get('runtime', row.runtime)}/{robustness.get('device', row.device)}"
        lines.append(f"| {model} ({where}) | "
                     + " | ".join(fmt(by_id[i]["accuracy"]) if i in by_id else "–" for i in ids) + " |")
    return [*lines, ""]


def cell(row: Row, key: str) -> tuple[str, str]:
    """(shown text, sort value) of one table cell."""
    if key in ("model", "runtime", "device"):
        text = getattr(row, key)
        if key == "device" and row.gpu:
            text = f"{text} ({row.gpu})"
        return text, text
    digits = next(c[3] for c in COLUMNS + ROBUSTNESS_COLUMNS if c[0] == key)
    value = row.metric(key)
    interval = ((row.accuracy or {}).get("intervals") or {}).get(key)
    if interval and value is not None:
        return (f"{fmt(value, digits)} [{fmt(interval['low'], digits)}–{fmt(interval['high'], digits)}]",
                repr(float(value)))
    return fmt(value, digits), "" if value is None else repr(float(value))


def _image_rows(rows: Sequence[Row]) -> dict[str, Row]:
    """One row per model for its confusion matrix: native before ONNX before int8, CPU before CUDA."""
    chosen: dict[str, Row] = {}
    for row in sorted(rows, key=lambda r: (RUNTIME_PREFERENCE.get(r.runtime, 9), r.device != "cpu")):
        if row.accuracy and row.model not in chosen:
            chosen[row.model] = row
    return chosen


def _data_line(results: Sequence[BenchResults]) -> str:
    parts = []
    for result in results:
        data = result.settings.get("data", {})
        if data:
            parts.append(f"{data.get('source')}: {data.get('train_clips')} training clips, {data.get('test_clips')} "
                         f"test clips from {len(data.get('test_speakers', []))} held-out speakers")
    return "; ".join(dict.fromkeys(parts)) or "unknown"


def _timing_line(results: Sequence[BenchResults]) -> str:
    settings = results[0].settings if results else {}
    timing, offline = settings.get("timing", {}), settings.get("offline_timing", {})
    if not timing:
        return ""
    return (f"single-stream: batch 1, {timing.get('warmup')} warm-up queries, then at least "
            f"{timing.get('min_iterations')} queries and {timing.get('min_seconds')} s; offline: batches of "
            f"{settings.get('offline_batch_size')}, at least {offline.get('min_iterations')} batches. Audio is "
            "decoded before timing; classic pipelines time feature extraction as a stage of its own. Threads "
            f"per model: {settings.get('threads') or 'each library’s default'}.")


def _protocol_lines(documents: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for document in documents:
        data = document.get("settings", {}).get("data", {})
        corpora = ", ".join(f"{name} ({d.get('clips')} clips, {d.get('speakers')} speakers"
                            + (f", {d['folds']} folds" if d.get("folds") else "") + ")" for name, d in data.items())
        lines.append(f"{document['protocol']} protocol: {corpora}; {document.get('settings', {}).get('resamples')} "
                     "bootstrap resamples over test speakers")
    return lines


def _commits(results: Sequence[BenchResults], documents: Sequence[dict[str, Any]] = ()) -> str:
    commits = []
    for result in [*results, *documents]:
        environment = result.environment if isinstance(result, BenchResults) else result.get("environment", {})
        state = environment.get("git", {})
        if state.get("commit"):
            commits.append(state["commit"][:10] + (" (with uncommitted changes)" if state.get("dirty") else ""))
    return ", ".join(dict.fromkeys(commits)) or "unknown"


def render_markdown(rows: Sequence[Row], results: Sequence[BenchResults], warnings: Sequence[str],
                    images: dict[str, str], command: str, documents: Sequence[dict[str, Any]] = ()) -> str:
    sources = [r.source or "?" for r in results] + [d.get("source", "?") for d in documents]
    lines = ["# emozoo leaderboard", "",
             f"Generated by `{command}` from {', '.join(sources)}. "
             "Accuracy is measured on speakers held out from training (unweighted average recall, UAR, is the "
             "mean of the per-class recalls); ★ marks the Pareto front of UAR against single-stream p50 latency.",
             ""]
    lines += [*([f"- **Data**: {_data_line(results)}"] if results else []),
              *(f"- **Protocol** {line}" for line in _protocol_lines(documents)),
              *(f"- **Machine** `{k}`: {v}" for k, v in machines(results).items()),
              f"- **Code**: git commit {_commits(results, documents)}"]
    timing = _timing_line(results)
    if timing:
        lines.append(f"- **Timing**: {timing}")
    lines.append("")
    for warning in warnings:
        lines += [f"> **Warning**: {warning}", ""]
    lines += protocol_report.markdown(documents)
    if rows:
        lines += ["## Speed and accuracy on one speaker split", ""]
    columns = columns_for(rows)
    headings = ["#"] + [c[1] for c in columns] + ["Pareto"]
    lines += ["UAR [95 % interval, bootstrap over the test speakers] of each model on the speakers held out, and its "
              "speed per runtime.", ""] if rows else []
    alignment = ["---:"] + ["---" if higher is None else "---:" for _, _, higher, _ in columns] + [":---:"]
    if rows:
        lines += ["| " + " | ".join(headings) + " |", "|" + "|".join(alignment) + "|"]
    for rank, row in enumerate(rows, 1):
        values = [cell(row, c[0])[0] for c in columns]
        lines.append("| " + " | ".join([str(rank), *values, "★" if row.pareto else ""]) + " |")
    lines.append("")
    recalls = _image_rows(rows)
    if recalls:
        lines += ["## Per-class recall", "", "| model | " + " | ".join(LABELS) + " |",
                  "|---|" + "---:|" * len(LABELS)]
        for model, row in recalls.items():
            per_class = row.accuracy.get("per_class_recall", {}) if row.accuracy else {}
            lines.append(f"| {model} ({row.runtime}/{row.device}) | "
                         + " | ".join(fmt(per_class.get(label)) for label in LABELS) + " |")
        lines.append("")
    lines += robustness_markdown(rows)
    skipped = [s for r in results for s in r.skipped]
    if skipped:
        lines += ["Not measured here:", ""]
        lines += [f"- {s['model']} · {s['runtime']} · {s['device']}: {s['reason']}" for s in skipped]
        lines.append("")
    if images:
        lines += ["## Plots", ""]
        for title, target in images.items():
            lines += [f"### {title}", "", f"![{title}]({target})", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


_SCRIPT = """
(function () {
  var table = document.getElementById('leaderboard');
  var body = table.tBodies[0];
  function sortBy(key, descending) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var column = headers.findIndex(function (h) { return h.dataset.key === key; });
    if (column < 0) { return false; }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      if (x === '' && y !== '') { return 1; }
      if (y === '' && x !== '') { return -1; }
      var nx = parseFloat(x), ny = parseFloat(y), order;
      if (!isNaN(nx) && !isNaN(ny)) { order = nx - ny; } else { order = String(x).localeCompare(String(y)); }
      return descending ? -order : order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    headers.forEach(function (h) { h.removeAttribute('aria-sort'); });
    headers[column].setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    table.dataset.sortedBy = key;
    table.dataset.sortOrder = descending ? 'desc' : 'asc';
    return true;
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header) {
    if (!header.dataset.key) { return; }
    header.addEventListener('click', function () {
      var descending = table.dataset.sortedBy === header.dataset.key
        ? table.dataset.sortOrder !== 'desc' : header.dataset.better === 'higher';
      sortBy(header.dataset.key, descending);
    });
  });
  function fromHash() {
    var match = /sort=(-?)([a-z0-9_]+)/.exec(window.location.hash);
    if (match) { sortBy(match[2], match[1] === '-'); }
  }
  window.addEventListener('hashchange', fromHash);
  window.addEventListener('load', function () {
    var images = Array.prototype.slice.call(document.images);
    document.body.dataset.imagesLoaded = images.filter(function (i) { return i.naturalWidth > 0; }).length;
    document.body.dataset.imagesBroken = images.filter(function (i) { return i.naturalWidth === 0; }).length;
  });
  fromHash();
  window.emozooSort = sortBy;
})();
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: ' ▲'; } th[aria-sort=descending]::after { content: ' ▼'; }
td.text, th.text { text-align: left; }
tr.pareto td:first-child { font-weight: bold; }
.warning { background: #fff3cd; border: 1px solid #e0c060; padding: 8px 12px; margin: 1em 0; }
figure { display: inline-block; margin: 1em; vertical-align: top; }
img { max-width: 100%; }
"""


def render_html(rows: Sequence[Row], results: Sequence[BenchResults], warnings: Sequence[str],
                images: dict[str, str], command: str, documents: Sequence[dict[str, Any]] = (),
                reliability: dict[str, str] | None = None) -> str:
    e = html.escape
    columns = columns_for(rows)
    head = ['<th data-key="rank" data-better="lower">#</th>']
    for key, heading, higher, _ in columns:
        better = "text" if higher is None else ("higher" if higher else "lower")
        css = ' class="text"' if higher is None else ""
        head.append(f'<th data-key="{key}" data-better="{better}"{css}>{e(heading)}</th>')
    head.append('<th data-key="pareto" data-better="higher">Pareto</th>')
    body = []
    for rank, row in enumerate(rows, 1):
        cells = [f'<td data-value="{rank}">{rank}</td>']
        for key, _, higher, _ in columns:
            text, value = cell(row, key)
            css = ' class="text"' if higher is None else ""
            cells.append(f'<td data-value="{e(value)}"{css}>{e(text)}</td>')
        cells.append(f'<td data-value="{int(row.pareto)}">{"★" if row.pareto else ""}</td>')
        body.append(f'<tr class="{"pareto" if row.pareto else ""}" data-model="{e(row.key)}">' + "".join(cells)
                    + "</tr>")
    facts = [f"<li><b>Data</b>: {e(_data_line(results))}</li>"] if results else []
    facts += [f"<li><b>Protocol</b> {e(line)}</li>" for line in _protocol_lines(documents)]
    facts += [f"<li><b>Machine</b> <code>{e(k)}</code>: {e(v)}</li>" for k, v in machines(results).items()]
    facts.append(f"<li><b>Code</b>: git commit {e(_commits(results, documents))}</li>")
    timing = _timing_line(results)
    if timing:
        facts.append(f"<li><b>Timing</b>: {e(timing)}</li>")
    skipped = [s for r in results for s in r.skipped]
    skipped_html = ""
    if skipped:
        skipped_html = "<h2>Not measured here</h2><ul>" + "".join(
            f"<li>{e(s['model'])} · {e(s['runtime'])} · {e(s['device'])}: {e(s['reason'])}</li>" for s in skipped
        ) + "</ul>"
    recall_rows = "".join(
        f"<tr><td class=\"text\">{e(model)} ({e(row.runtime)}/{e(row.device)})</td>"
        + "".join(f"<td>{e(fmt((row.accuracy or {}).get('per_class_recall', {}).get(label)))}</td>" for label in LABELS)
        + "</tr>" for model, row in _image_rows(rows).items())
    recall_html = ('<h2>Per-class recall</h2><table id="recall"><thead><tr><th class="text">model</th>'
                   + "".join(f"<th>{e(label)}</th>" for label in LABELS) + f"</tr></thead><tbody>{recall_rows}"
                   "</tbody></table>") if recall_rows else ""
    figures = "".join(f'<figure><img src="{e(src)}" alt="{e(title)}"><figcaption>{e(title)}</figcaption></figure>'
                      for title, src in images.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>emozoo leaderboard</title>
<style>{_STYLE}{protocol_report.STYLE}</style></head>
<body>
<h1>emozoo leaderboard</h1>
<p>Generated by <code>{e(command)}</code>. Accuracy on speakers held out from training; UAR is the mean of the
per-class recalls. Click a column heading to sort (or open with <code>#sort=p50</code>, <code>#sort=-uar</code>);
★ marks the Pareto front of UAR against single-stream p50 latency.</p>
<ul>{''.join(facts)}</ul>
{''.join(f'<div class="warning"><b>Warning</b>: {e(w)}</div>' for w in warnings)}
{protocol_report.html_sections(documents, reliability or {})}
<h2>Speed and accuracy on one speaker split</h2>
<p>UAR [95 % interval, bootstrap over the test speakers] on the speakers held out, and speed per runtime.</p>
<table id="leaderboard"><thead><tr>{''.join(head)}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
{ROBUSTNESS_NOTE if columns != COLUMNS else ""}
{recall_html}
{skipped_html}
<h2>Plots</h2>
{figures}
<script>{_SCRIPT}</script>
<script>{protocol_report.FILTER_SCRIPT}</script>
</body></html>
"""


def build(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
          markdown: str | os.PathLike[str] | None = None, command: str = DEFAULT_COMMAND) -> Leaderboard:
    """Read results files, write plots, LEADERBOARD.md and index.html into `out_dir` (and the Markdown also
    to `markdown`, with image links relative to it)."""
    loaded: list[BenchResults] = []
    documents: list[dict[str, Any]] = []
    for path in paths:
        document = _read_json(Path(path))
        if protocols.is_protocol_file(document):
            protocols.validate(document, str(path))
            documents.append({**document, "source": str(path)})
        else:
            loaded.append(results_module.load(path))
    rows = build_rows(loaded)
    warnings = warnings_for(loaded) if loaded else []
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}
    reliability = protocol_report.reliability_images(documents, target)
    made = pareto_plot(rows, target / "pareto.png")
    if made:
        images["Accuracy against latency"] = made
    made = latency_plot(rows, target / "latency.png")
    if made:
        images["Latency distributions"] = made
    for model, row in _image_rows(rows).items():
        made = confusion_plot(row, target / f"confusion-{safe_name(model)}.png")
        if made:
            images[f"Confusion matrix: {model} ({row.runtime}/{row.device})"] = made

    def relative(base: Path, chosen: dict[str, Path] | None = None) -> dict[str, str]:
        return {t: Path(os.path.relpath(p.resolve(), base.resolve())).as_posix()
                for t, p in (images if chosen is None else chosen).items()}

    html_path = atomic_write_text(target / "index.html", render_html(
        rows, loaded, warnings, relative(target), command, documents, relative(target, reliability)))
    markdown_path = atomic_write_text(target / "LEADERBOARD.md", render_markdown(
        rows, loaded, warnings, relative(target, {**reliability, **images}), command, documents))
    if markdown is not None:
        extra = Path(markdown)
        markdown_path = atomic_write_text(extra, render_markdown(
            rows, loaded, warnings, relative(extra.parent, {**reliability, **images}), command, documents))
    return Leaderboard(rows, warnings, markdown_path, html_path, {**reliability, **images}, documents)


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise results_module.ResultsError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise results_module.ResultsError(f"{path}: not readable JSON ({error})") from None


def top_rows(board: Leaderboard, count: int = 5) -> list[dict[str, Any]]:
    return [{"model": r.model, "runtime": r.runtime, "device": r.device, "uar": r.metric("uar"),
             "p50_ms": r.metric("p50")} for r in board.rows[:count]]
