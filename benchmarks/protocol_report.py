"""The protocol sections of the leaderboard (`emozoo bench --protocol speakers|corpora` files): tables with
95 % intervals and calibration per corpus (a filter per corpus on the page), the train x test heat map, and
reliability diagrams."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.protocols import LOCO, OTHER_FOLDS
from benchmarks.report import fmt
from zoo.storage import atomic_write_bytes

MEAN = "mean"


def by_protocol(documents: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """protocol -> its model entries (later files replace a model of the same name), those run on more corpora
    first: a mean over one corpus is not comparable with a mean over three."""
    chosen: dict[str, dict[str, dict[str, Any]]] = {}
    for document in documents:
        for model in document["models"]:
            chosen.setdefault(document["protocol"], {})[model["model"]] = model
    return {protocol: sorted(models.values(), key=lambda m: (-len(m["corpora"]), -m["mean"]["uar"]))
            for protocol, models in chosen.items()}


def corpora_of(models: Sequence[dict[str, Any]]) -> list[str]:
    """The corpora in the order the models list them (the order they were given), whatever the cell order."""
    return list(dict.fromkeys([*(c for m in models for c in m["corpora"]), *(c["test"] for m in models
                                                                              for c in m["cells"])]))


def _ci(entry: dict[str, Any], metric: str) -> str:
    low_high = (entry.get("intervals") or {}).get(metric)
    if not low_high:
        return fmt(entry.get(metric))
    return f"{fmt(entry[metric])} [{fmt(low_high['low'])}–{fmt(low_high['high'])}]"


def _name(model: dict[str, Any]) -> str:
    return model["model"] + (" (reference)" if model.get("reference") else "")


def _notes(model: dict[str, Any]) -> str:
    parts = [model.get("description") or "", model.get("note") or ""]
    if model.get("device") == "cuda":
        parts.append("trained on the GPU")
    return "; ".join(p for p in parts if p)


def _cell(model: dict[str, Any], train: str, test: str) -> dict[str, Any] | None:
    return next((c for c in model["cells"] if c["train"] == train and c["test"] == test), None)


def _views(model: dict[str, Any], protocol: str) -> list[tuple[str, dict[str, Any]]]:
    """(corpus or 'mean', entry) of a model's rows: the mean, then each held-out corpus."""
    train = OTHER_FOLDS if protocol == "speakers" else LOCO
    views = [(MEAN, model["mean"])]
    views += [(c["test"], c) for c in model["cells"] if c["train"] == train]
    return views


TITLES = {"speakers": "Unseen speakers: fixed speaker folds per corpus",
          "corpora": "Unseen corpora: leave one corpus out"}
EXPLAIN = {
    "speakers": "k-fold by speaker within each corpus, on the committed fold files (benchmarks/folds/): every clip "
                "is predicted once by a model that never heard its speaker. The mean is over the corpora; rows run on "
                "fewer corpora (cut to fit the machine, see their notes) come after those run on all of them.",
    "corpora": "trained on every other corpus, tested on the one left out (the mean is over those cells); the "
               "heat map below adds training on a single corpus.",
}


def skipped(documents: Sequence[dict[str, Any]], protocol: str) -> list[str]:
    """'model: reason' of the systems a protocol file lists as not run (a missing extra, one corpus only)."""
    return [f"{s['model']}: {s['reason']}" for d in documents if d["protocol"] == protocol
            for s in d.get("skipped", [])]


def markdown(documents: Sequence[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for protocol, models in by_protocol(documents).items():
        corpora = corpora_of(models)
        lines += [f"## {TITLES[protocol]}", "", EXPLAIN[protocol] + " UAR with its 95 % interval (bootstrap over the "
                  "test speakers); ECE: expected calibration error of the top label (10 bins), Brier: multi-class "
                  "Brier score, both from the predicted probabilities (lower is better).", "",
                  "| model | mean UAR | " + " | ".join(f"{c} UAR" for c in corpora)
                  + " | accuracy | macro-F1 | ECE | Brier | notes |",
                  "|---|---:|" + "---:|" * len(corpora) + "---:|---:|---:|---:|---|"]
        train = OTHER_FOLDS if protocol == "speakers" else LOCO
        for model in models:
            cells = [_cell(model, train, c) for c in corpora]
            mean = model["mean"]
            lines.append(f"| {_name(model)} | {_ci(mean, 'uar')} | "
                         + " | ".join(_ci(c, "uar") if c else "–" for c in cells)
                         + f" | {_ci(mean, 'accuracy')} | {_ci(mean, 'macro_f1')} | {fmt(mean['ece'])} | "
                         f"{fmt(mean['brier'])} | {_notes(model)} |")
        lines.append("")
        lines += [*(f"- not run: {line}" for line in skipped(documents, protocol)), ""] if skipped(
            documents, protocol) else []
        if protocol == "corpora":
            lines += ["### Train corpus × test corpus (UAR)", ""]
            for model in models:
                trains = [t for t in [*corpora, LOCO] if any(c["train"] == t for c in model["cells"])]
                lines += [f"**{_name(model)}**", "", "| trained on ↓ / tested on → | " + " | ".join(corpora) + " |",
                          "|---|" + "---:|" * len(corpora)]
                for train_name in trains:
                    row = [_cell(model, train_name, c) for c in corpora]
                    lines.append(f"| {train_name} | " + " | ".join(fmt(c["uar"]) if c else "–" for c in row) + " |")
                lines.append("")
    return lines


def _heat(value: float | None) -> str:
    """A background colour from white (UAR 0.17, chance) to dark blue (UAR 0.8)."""
    if value is None:
        return "#f4f4f4"
    share = float(np.clip((value - 1 / 6) / (0.8 - 1 / 6), 0, 1))
    red, green, blue = (int(255 + (t - 255) * share) for t in (33, 102, 172))
    return f"rgb({red},{green},{blue})"


def html_sections(documents: Sequence[dict[str, Any]], images: dict[str, str]) -> str:
    e = html.escape
    parts = []
    for protocol, models in by_protocol(documents).items():
        corpora = corpora_of(models)
        buttons = "".join(f'<button type="button" data-filter="{e(c)}">{e(c)}</button>' for c in [MEAN, *corpora])
        body = []
        for model in models:
            for corpus, entry in _views(model, protocol):
                body.append(
                    f'<tr data-corpus="{e(corpus)}" data-model="{e(model["model"])}"'
                    f' class="{"reference" if model.get("reference") else ""}">'
                    f'<td class="text">{e(_name(model))}</td><td class="text">{e(corpus)}</td>'
                    f'<td data-value="{entry["uar"]}">{e(_ci(entry, "uar"))}</td>'
                    f'<td>{e(_ci(entry, "accuracy"))}</td><td>{e(_ci(entry, "macro_f1"))}</td>'
                    f'<td>{e(fmt(entry["ece"]))}</td><td>{e(fmt(entry["brier"]))}</td>'
                    f'<td>{e(str(entry.get("n", "")))}</td><td>{e(str(entry.get("speakers", "")))}</td>'
                    f'<td class="text">{e(_notes(model))}</td></tr>')
        parts.append(
            f'<section class="protocol" id="protocol-{protocol}" data-protocol="{protocol}">'
            f"<h2>{e(TITLES[protocol])}</h2><p>{e(EXPLAIN[protocol])} Intervals: 95 %, bootstrap over the test "
            "speakers. ECE: expected calibration error of the top label (10 bins); Brier: multi-class Brier score "
            "(both lower is better).</p>"
            f'<div class="filters">Show: {buttons}</div>'
            f'<table class="protocol-table" data-shown="{MEAN}"><thead><tr><th class="text">model</th>'
            '<th class="text">corpus</th><th>UAR [95 %]</th><th>accuracy [95 %]</th><th>macro-F1 [95 %]</th>'
            '<th>ECE</th><th>Brier</th><th>clips</th><th>speakers</th><th class="text">notes</th></tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            + "".join(f"<p class=\"skipped\">Not run: {e(line)}</p>" for line in skipped(documents, protocol)))
        if protocol == "corpora":
            parts.append(heat_maps(models, corpora, documents))
        parts.append("</section>")
    figures = "".join(f'<figure class="reliability"><img src="{e(src)}" alt="{e(title)}"><figcaption>{e(title)}'
                      "</figcaption></figure>" for title, src in images.items())
    if figures:
        parts.append('<section id="reliability"><h2>Reliability</h2><p>Accuracy against confidence of the top label '
                     "on held-out speakers, in 10 bins (bar width: share of clips); a calibrated model follows the "
                     f"diagonal.</p>{figures}</section>")
    return "\n".join(parts)


def heat_maps(models: Sequence[dict[str, Any]], corpora: Sequence[str], documents: Sequence[dict[str, Any]]) -> str:
    """One train x test table per model, each cell coloured by its UAR; the diagonal (same corpus, unseen
    speakers) comes from the speakers protocol of the same model when its file is given."""
    e = html.escape
    in_corpus = {m["model"]: m for m in by_protocol(documents).get("speakers", [])}
    tables = []
    for model in models:
        trains = [t for t in [*corpora, LOCO] if any(c["train"] == t for c in model["cells"])]
        rows = []
        for train in trains:
            cells = []
            for test in corpora:
                cell = _cell(model, train, test)
                title = "cross-corpus"
                if cell is None and train == test and model["model"] in in_corpus:
                    cell, title = _cell(in_corpus[model["model"]], OTHER_FOLDS, test), "same corpus, unseen speakers"
                value = cell["uar"] if cell else None
                interval = (cell or {}).get("intervals", {}).get("uar")
                tip = f"{title}; 95 % {fmt(interval['low'])}–{fmt(interval['high'])}" if interval else title
                cells.append(f'<td class="heat" style="background:{_heat(value)}" title="{e(tip)}" '
                             f'data-train="{e(train)}" data-test="{e(test)}">{e(fmt(value))}</td>')
            rows.append(f'<tr><th class="text">{e(train)}</th>{"".join(cells)}</tr>')
        tables.append(f'<figure class="heatmap"><table class="heatmap" data-model="{e(model["model"])}"><thead><tr>'
                      '<th class="text">trained on ↓ / tested on →</th>'
                      + "".join(f"<th>{e(c)}</th>" for c in corpora) + f"</tr></thead><tbody>{''.join(rows)}"
                      f"</tbody></table><figcaption>{e(_name(model))}: UAR</figcaption></figure>")
    return "<h3>Train corpus × test corpus (UAR, white = chance, blue = 0.8)</h3>" + "".join(tables)


FILTER_SCRIPT = """
(function () {
  Array.prototype.forEach.call(document.querySelectorAll('section.protocol'), function (section) {
    var table = section.querySelector('table.protocol-table');
    function show(corpus) {
      table.dataset.shown = corpus;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = row.dataset.corpus !== corpus;
      });
      Array.prototype.forEach.call(section.querySelectorAll('button[data-filter]'), function (b) {
        b.setAttribute('aria-pressed', b.dataset.filter === corpus ? 'true' : 'false');
      });
    }
    Array.prototype.forEach.call(section.querySelectorAll('button[data-filter]'), function (button) {
      button.addEventListener('click', function () { show(button.dataset.filter); });
    });
    var wanted = /corpus=([A-Za-z0-9_.-]+)/.exec(window.location.hash);
    var known = wanted && section.querySelector('button[data-filter="' + wanted[1] + '"]');
    show(known ? wanted[1] : 'mean');
  });
  window.emozooShowCorpus = function (protocol, corpus) {
    document.querySelector('#protocol-' + protocol + ' button[data-filter="' + corpus + '"]').click();
  };
})();
"""

STYLE = """
.filters button { margin: 0 4px 8px 0; padding: 2px 10px; }
.filters button[aria-pressed=true] { background: #2166ac; color: white; }
tr.reference td:first-child { font-style: italic; }
table.heatmap td.heat { min-width: 60px; text-align: center; }
"""


def reliability_plot(models: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Reliability diagrams of each model's pooled held-out predictions, in a grid."""
    chosen = [m for m in models if m.get("reliability")]
    if not chosen:
        return None
    from benchmarks.plots import _pyplot

    plt = _pyplot()
    columns = min(4, len(chosen))
    rows = (len(chosen) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.flat[len(chosen):]:
        axis.axis("off")
    for axis, model in zip(axes.flat, chosen, strict=False):
        bins = model["reliability"]
        total = sum(b["n"] for b in bins)
        for b in bins:
            width = (b["high"] - b["low"]) * max(0.15, b["n"] / total * len(bins) / 2)
            axis.bar((b["low"] + b["high"]) / 2, b["accuracy"], width=min(width, b["high"] - b["low"]),
                     color="tab:blue", alpha=0.8)
            axis.plot(b["confidence"], b["accuracy"], "o", color="tab:red", markersize=3)
        axis.plot([0, 1], [0, 1], "--", color="gray", linewidth=1)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_title(f"{model['model']}\nECE {model['ece']:.3f}, Brier {model['brier']:.3f}", fontsize=8)
        axis.set_xlabel("confidence", fontsize=7)
        axis.set_ylabel("accuracy", fontsize=7)
        axis.tick_params(labelsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def reliability_images(documents: Sequence[dict[str, Any]], folder: Path) -> dict[str, Path]:
    images = {}
    for protocol, models in by_protocol(documents).items():
        title = f"Reliability, {protocol} protocol (pooled held-out predictions)"
        made = reliability_plot(models, folder / f"reliability-{protocol}.png", title)
        if made:
            images[title] = made
    return images
