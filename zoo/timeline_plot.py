"""Draw a file's emotion timeline: stacked probability bands over time, speech segments shaded (matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.errors import EmozooError
from zoo.labels import LABELS
from zoo.timeline import FileTimeline

COLOURS = {"angry": "#d62728", "fear": "#9467bd", "sad": "#1f77b4", "disgust": "#8c564b", "neutral": "#7f7f7f",
           "happy": "#ff7f0e"}
LABELLED_SEGMENTS = 40  # name each segment's label above it when there are no more than this


def plot_timeline(result: FileTimeline, path: str | os.PathLike[str]) -> Path:
    """Write a PNG (or any format matplotlib knows by the suffix) of `result` to `path`."""
    try:
        import matplotlib
    except ImportError:
        raise EmozooError("drawing a timeline needs matplotlib: pip install matplotlib (or emozoo[bench])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = result.duration > 300
    scale = 60.0 if minutes else 1.0
    figure, axes = plt.subplots(figsize=(min(24.0, 8.0 + result.duration / scale / 20), 3.6))
    for segment in result.segments:  # shaded full height: seen in the strip above the bands and in the gaps
        axes.axvspan(segment.start / scale, segment.end / scale, color="0.85", zorder=0, linewidth=0)
        if len(result.segments) <= LABELLED_SEGMENTS:
            axes.text((segment.start + segment.end) / 2 / scale, 1.045, segment.label, ha="center", va="center",
                      fontsize=7, clip_on=True)
    # each segment's probabilities held over [start, end], zero between segments
    times, bands = [0.0], [np.zeros(len(LABELS))]
    for segment in result.segments:
        times += [segment.start, segment.start, segment.end, segment.end]
        bands += [np.zeros(len(LABELS)), segment.probabilities, segment.probabilities, np.zeros(len(LABELS))]
    times.append(max(result.duration, times[-1]))
    bands.append(np.zeros(len(LABELS)))
    axes.stackplot(np.array(times) / scale, np.array(bands).T, labels=list(LABELS),
                   colors=[COLOURS[label] for label in LABELS], alpha=0.85, zorder=1)
    axes.set_xlim(0, max(result.duration, 1e-3) / scale)
    axes.set_ylim(0, 1.09)
    axes.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    axes.set_xlabel("minutes" if minutes else "seconds")
    axes.set_ylabel("probability")
    axes.set_title(f"{Path(result.file).name}: {len(result.segments)} speech segments ({result.vad} VAD)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=100)
    plt.close(figure)
    return target
