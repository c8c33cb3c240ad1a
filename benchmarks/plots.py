"""Leaderboard figures (matplotlib, Agg backend): accuracy vs latency with the Pareto front, single-stream
latency distributions, and one confusion matrix per model."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.report import Row
from zoo.labels import LABELS
from zoo.storage import atomic_write_bytes


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:  # noqa: ANN001
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def pareto_plot(rows: Sequence[Row], path: Path) -> Path | None:
    plt = _pyplot()
    points = [(r, r.metric("p50"), r.metric("uar")) for r in rows]
    points = [(r, x, y) for r, x, y in points if x is not None and y is not None]
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(8, 5.5))
    markers = {"native": "o", "onnx": "s", "int8": "^"}
    colours = {"cpu": "tab:blue", "cuda": "tab:green"}
    for number, (row, x, y) in enumerate(sorted(points, key=lambda p: (p[1], p[2]))):
        interval = ((row.accuracy or {}).get("intervals") or {}).get("uar")
        if interval:  # 95 % bootstrap interval over the test speakers
            axes.errorbar(x, y, yerr=[[y - interval["low"]], [interval["high"] - y]], fmt="none",
                          ecolor=colours.get(row.device, "tab:gray"), alpha=0.5, capsize=3, zorder=2)
        axes.scatter(x, y, marker=markers.get(row.runtime, "o"), color=colours.get(row.device, "tab:gray"),
                     edgecolor="black" if row.pareto else "none", s=60, zorder=3)
        axes.annotate(f"{row.model} ({row.runtime}/{row.device})", (x, y), textcoords="offset points",
                      xytext=(5, 4 if number % 2 == 0 else -10), fontsize=7)
    front = sorted((x, y) for r, x, y in points if r.pareto)
    if front:
        axes.step([x for x, _ in front], [y for _, y in front], where="post", color="tab:red", linewidth=1.5,
                  label="Pareto front", zorder=2)
    axes.set_xscale("log")
    axes.margins(x=0.25, y=0.1)
    axes.set_xlabel("single-stream latency p50 (ms, log scale)")
    axes.set_ylabel("unweighted average recall (held-out speakers; bars: 95 % interval)")
    axes.set_title("Accuracy against latency (circle native, square ONNX, triangle int8; blue CPU, green CUDA)",
                   fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="best")
    return _save(figure, path)


def latency_plot(rows: Sequence[Row], path: Path) -> Path | None:
    plt = _pyplot()
    chosen = [r for r in rows if r.single and r.single.get("samples_ms")]
    if not chosen:
        return None
    chosen = sorted(chosen, key=lambda r: r.metric("p50") or 0.0)
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(chosen) + 1.5))
    axes.boxplot([r.single["samples_ms"] for r in chosen], orientation="horizontal", whis=(1, 99), showfliers=True,
                 flierprops={"markersize": 2})
    axes.set_yticks(range(1, len(chosen) + 1), [r.key for r in chosen], fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("single-stream latency per clip (ms, log scale; whiskers p1–p99)")
    axes.set_title("Latency distributions", fontsize=10)
    axes.grid(True, axis="x", which="both", alpha=0.3)
    return _save(figure, path)


def confusion_plot(row: Row, path: Path) -> Path | None:
    if not row.accuracy:
        return None
    plt = _pyplot()
    matrix = np.asarray(row.accuracy["confusion"], dtype=float)
    labels = row.accuracy.get("labels") or list(LABELS)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    figure, axes = plt.subplots(figsize=(4.6, 4.2))
    axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            axes.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8,
                      color="white" if share[i, j] > 0.5 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=45, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"{row.model} ({row.runtime}/{row.device})\nUAR {row.metric('uar'):.3f}", fontsize=9)
    return _save(figure, path)
