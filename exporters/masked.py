"""Per-row masked reductions for batched ONNX feature graphs (rows padded to a common length).

Values are [batch, frames(, dims)] float64, masks [batch, frames] bool. Every statistic matches its numpy
counterpart over the selected frames only: mean, population std (`.std()`), min/max, and
`np.percentile` with linear interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exporters.graph import DOUBLE, FLOAT, INT64, GraphBuilder


def masked_waveform(g: GraphBuilder, waveform: str, lengths: str) -> str:
    """Zero every sample at or past its row's length, whatever the caller padded with."""
    n_samples = g.op("Squeeze", g.dim(waveform, 1), g.i64(0))
    positions = g.op("Range", g.scalar(0, np.int64), n_samples, g.scalar(1, np.int64))
    valid = g.op("Less", g.op("Unsqueeze", positions, g.i64(0)), g.op("Unsqueeze", lengths, g.i64(1)))
    return g.op("Where", valid, waveform, g.scalar(0.0, np.float32))


def normalised_level(g: GraphBuilder, signal: str, lengths: str, floor: float) -> str:
    """Each row of a masked [batch, samples] float32 signal divided by its RMS over its own length, as
    `plugins.classic.features.normalise_level`: float64 mean of squares, the reciprocal rounded to float32.
    Rows whose RMS is below `floor` (digital silence) are left as they are."""
    wide = g.cast(signal, DOUBLE)
    count = g.op("Max", g.cast(g.op("Unsqueeze", lengths, g.i64(1)), DOUBLE), g.scalar(1.0))  # [B, 1]
    rms = g.op("Sqrt", g.op("Div", g.reduce("ReduceSum", g.op("Mul", wide, wide), [1], keepdims=1), count))
    scale = g.op("Where", g.op("Less", rms, g.scalar(floor)), g.scalar(1.0),
                 g.op("Div", g.scalar(1.0), g.op("Max", rms, g.scalar(floor))))
    return g.op("Mul", signal, g.cast(scale, FLOAT))


def row_mask(g: GraphBuilder, counts: str, n_frames: str) -> str:
    """[batch, frames] bool: frame index < the row's count. `counts` [batch] int64, `n_frames` scalar."""
    index = g.op("Range", g.scalar(0, np.int64), n_frames, g.scalar(1, np.int64))
    return g.op("Less", g.op("Unsqueeze", index, g.i64(0)), g.op("Unsqueeze", counts, g.i64(1)))


def masked_mean_std(g: GraphBuilder, values: str, mask: str) -> tuple[str, str]:
    """Mean and population std over axis 1 of [B, F, D] for the masked frames: two [B, D] tensors.

    Rows with no masked frame get 0 and 0 (numpy would give nan; the feature code replaces those by zeros).
    """
    weights = g.op("Unsqueeze", g.cast(mask, DOUBLE), g.i64(2))
    count = g.op("Max", g.reduce("ReduceSum", weights, [1]), g.scalar(1.0))  # [B, 1]
    mean = g.op("Div", g.reduce("ReduceSum", g.op("Mul", values, weights), [1]), count)
    centred = g.op("Sub", values, g.op("Unsqueeze", mean, g.i64(1)))
    squares = g.op("Mul", g.op("Mul", centred, centred), weights)
    std = g.op("Sqrt", g.op("Div", g.reduce("ReduceSum", squares, [1]), count))
    return mean, std


def masked_extreme(g: GraphBuilder, values: str, mask: str, op_type: str) -> str:
    """ReduceMax / ReduceMin over axis 1 of [B, F] for the masked frames: [B] (+-inf for an empty mask)."""
    fill = -np.inf if op_type == "ReduceMax" else np.inf
    return g.reduce(op_type, g.op("Where", mask, values, g.scalar(fill)), [1])


def first_last_true(g: GraphBuilder, mask: str) -> tuple[str, str]:
    """Index of the first and of the last True of each row of [B, F] bool: two [B] int64 (0 when none)."""
    as_int = g.cast(mask, INT64)
    first = g.op("ArgMax", as_int, axis=1, keepdims=0)
    last = g.op("ArgMax", as_int, axis=1, keepdims=0, select_last_index=1)
    return first, last


def masked_percentiles(g: GraphBuilder, values: str, mask: str, percentiles: Sequence[float]) -> str:
    """`np.percentile(values[mask], percentiles)` per row of [B, F] float64: [B, P] (zeros when the mask is empty)."""
    n_frames = g.dim(values, 1)
    ascending = g.op("TopK", g.op("Where", mask, values, g.scalar(np.inf)), n_frames, axis=1, largest=0,
                     sorted=1, outputs=2)[0]  # masked values first, in order
    count = g.reduce("ReduceSum", g.cast(mask, INT64), [1], keepdims=1)  # [B, 1]
    last = g.op("Max", g.op("Sub", count, g.scalar(1, np.int64)), g.scalar(0, np.int64))
    quantiles = g.const(np.asarray(percentiles, dtype=np.float64)[None, :] / 100.0, np.float64, "quantiles")
    n = g.cast(count, DOUBLE)
    # numpy's linear method: virtual index n q + (1 - q) - 1, lerp between its floor and the next element
    virtual = g.op("Sub", g.op("Add", g.op("Mul", n, quantiles), g.op("Sub", g.scalar(1.0), quantiles)),
                   g.scalar(1.0))
    below = g.op("Floor", virtual)
    gamma = g.op("Sub", virtual, below)
    zero = g.scalar(0, np.int64)
    previous = g.op("Min", g.op("Max", g.cast(below, INT64), zero), last)
    following = g.op("Min", g.op("Add", previous, g.scalar(1, np.int64)), last)
    low = g.op("GatherElements", ascending, previous, axis=1)
    high = g.op("GatherElements", ascending, following, axis=1)
    difference = g.op("Sub", high, low)
    upward = g.op("Add", low, g.op("Mul", difference, gamma))
    downward = g.op("Sub", high, g.op("Mul", difference, g.op("Sub", g.scalar(1.0), gamma)))
    lerp = g.op("Where", g.op("GreaterOrEqual", gamma, g.scalar(0.5)), downward, upward)
    return g.op("Where", g.op("Greater", count, zero), lerp, g.scalar(0.0))
