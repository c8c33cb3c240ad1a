"""The `emostats` feature set (plugins/classic/features.py) as an ONNX graph, batched with per-row lengths.

waveform [batch, samples] float32 + lengths [batch] int64 -> features [batch, n_features] float64.
The steps mirror `emostats_features` / `emostats_from_power` one for one and use the very matrices of
`emostats_constants`. The power spectrum and its projections run in float32 (the native STFT is float32
too), everything after them in float64. Every statistic is masked to each row's own frames
(1 + (max(length, n_fft) - n_fft) // hop of them), so zero-padding a row changes nothing.
"""

from __future__ import annotations

import numpy as np

from exporters.graph import DOUBLE, INT64, GraphBuilder
from exporters.masked import (
    first_last_true,
    masked_extreme,
    masked_mean_std,
    masked_percentiles,
    masked_waveform,
    normalised_level,
    row_mask,
)
from exporters.spectral import power_spectrum
from plugins.classic.features import LEVEL_FLOOR, MIN_SPEECH_FRAMES, EmoStatsConfig, emostats_constants


def padded_frame_count(g: GraphBuilder, signal: str, n_fft: int, hop: int) -> tuple[str, str]:
    """Zero-pad [batch, samples] to at least n_fft samples; return it and its frame count (scalar int64)."""
    n_samples = g.dim(signal, 1)
    shortfall = g.op("Max", g.op("Sub", g.i64(n_fft), n_samples), g.i64(0))
    padded = g.op("Pad", signal, g.op("Concat", g.i64(0, 0, 0), shortfall, axis=0))
    total = g.op("Max", n_samples, g.i64(n_fft))
    n_frames = g.op("Add", g.op("Div", g.op("Sub", total, g.i64(n_fft)), g.i64(hop)), g.i64(1))
    return padded, g.op("Squeeze", n_frames, g.i64(0))


def emostats_frame_counts(g: GraphBuilder, lengths: str, config: EmoStatsConfig) -> str:
    """[batch] int64: `emostats_frame_count` of every row."""
    padded = g.op("Max", lengths, g.scalar(config.n_fft, np.int64))
    steps = g.op("Div", g.op("Sub", padded, g.scalar(config.n_fft, np.int64)), g.scalar(config.hop_length, np.int64))
    return g.op("Add", steps, g.scalar(1, np.int64))


def build_emostats_graph(g: GraphBuilder, waveform: str, lengths: str, config: EmoStatsConfig) -> str:
    """Add the feature nodes; return the name of the [batch, n_features] float64 feature tensor."""
    constants = emostats_constants(config)
    n_bins = config.n_fft // 2 + 1
    n_mels = constants["mel"].shape[0]
    n_lags = constants["lags"].size
    floor = g.scalar(config.floor)
    log10_scale = g.scalar(10.0 / np.log(10.0))

    signal = masked_waveform(g, waveform, lengths)
    if config.level_normalise:
        signal = normalised_level(g, signal, lengths, LEVEL_FLOOR)
    signal, n_frames = padded_frame_count(g, signal, config.n_fft, config.hop_length)
    power, layout = power_spectrum(g, signal, n_frames, config.n_fft, config.hop_length, constants["window"])
    valid = row_mask(g, emostats_frame_counts(g, lengths, config), n_frames)  # [B, F] bool

    # frame descriptors: one float32 product gives mel energies, spectral moments and total power; float64
    # from there on. The autocorrelation is a float64 product, as natively: its argmax over lags picks the
    # pitch, and the lags of one period and of two are often within float32 rounding of each other
    frequencies = constants["frequencies_khz"]
    projection = np.column_stack([constants["mel"].T, frequencies, frequencies**2, np.ones(n_bins),
                                  constants["alpha_bands"]])
    projected = g.cast(g.op("MatMul", power, g.const(layout.bin_rows(projection), np.float32, "projection")), DOUBLE)
    mel_energy, first_moment, second_moment, power_sum, alpha_bands = g.op(
        "Split", projected, g.i64(n_mels, 1, 1, 1, 2), axis=2, outputs=5
    )
    autocorr = g.op("MatMul", g.cast(power, DOUBLE), g.const(layout.bin_rows(constants["autocorr"]), np.float64,
                                                             "autocorr"))
    mel_floor = g.const(constants["mel_floor"], np.float64, "mel_floor")
    log_mel = g.op("Mul", g.op("Log", g.op("Add", mel_energy, mel_floor)), log10_scale)  # [B, F, mels]
    mfcc = g.op("MatMul", log_mel, g.const(constants["dct"], np.float64, "dct"))
    total = g.op("Add", power_sum, floor)  # [B, F, 1]
    log_energy = g.op("Mul", g.op("Log", g.op("Div", total, g.scalar(float(n_bins)))), log10_scale)
    centroid = g.op("Div", first_moment, total)
    spread = g.op("Sub", g.op("Div", second_moment, total), g.op("Mul", centroid, centroid))
    bandwidth = g.op("Sqrt", g.op("Max", spread, g.scalar(0.0)))
    log_power = g.op("Log", g.op("Add", power, g.scalar(config.floor, np.float32)))
    bin_mean = g.const(layout.valid_columns[:, None] / n_bins, np.float32, "bin_mean")
    mean_log_power = g.cast(g.op("MatMul", log_power, bin_mean), DOUBLE)  # [B, F, 1]
    mean_power = g.op("Div", power_sum, g.scalar(float(n_bins)))
    flatness = g.op("Sub", mean_log_power, g.op("Log", g.op("Add", mean_power, floor)))

    lag0, lagged = g.op("Split", autocorr, g.i64(1, n_lags), axis=2, outputs=2)
    normalised = g.op("Div", g.op("Div", lagged, g.op("Add", lag0, floor)),
                      g.const(constants["window_autocorr"], np.float64, "window_autocorr"))
    best = g.op("ArgMax", normalised, axis=2, keepdims=0)  # [B, F]
    voicing = g.reduce("ReduceMax", normalised, [2], keepdims=1)  # [B, F, 1]
    pitch_table = g.const(np.log2(config.sample_rate / constants["lags"]), np.float64, "log_pitch")
    log_pitch = g.op("Gather", pitch_table, best)  # [B, F]

    # which frames count: speech = within speech_range_db of the row's loudest frame
    energy = g.op("Squeeze", log_energy, g.i64(2))  # [B, F]
    energy_max = masked_extreme(g, energy, valid, "ReduceMax")  # [B]
    energy_min = masked_extreme(g, energy, valid, "ReduceMin")
    threshold = g.op("Sub", energy_max, g.scalar(config.speech_range_db))
    speech = g.op("And", g.op("Greater", energy, g.op("Unsqueeze", threshold, g.i64(1))), valid)
    if config.speech_floor_margin_db > 0:
        speech = _above_noise_floor(g, energy, valid, speech, threshold, config)
    voice = g.op("Squeeze", voicing, g.i64(2))
    voiced = g.op("And", speech, g.op("Greater", voice, g.scalar(config.voicing_threshold)))

    frame = g.op("Concat", mfcc, log_energy, centroid, bandwidth, flatness, voicing, axis=2)
    frame_mean, frame_std = masked_mean_std(g, frame, speech)

    tracks = g.op("Concat", mfcc, log_energy, axis=2)
    later, earlier = _pairs(g, tracks)
    _, delta_std = masked_mean_std(g, g.op("Sub", later, earlier), g.op("And", *_pairs(g, speech)))

    mel_mean, mel_std = masked_mean_std(g, log_mel, speech)

    pitch_column = g.op("Unsqueeze", log_pitch, g.i64(2))
    pitch_mean, pitch_std = masked_mean_std(g, pitch_column, voiced)
    voiced_count = g.reduce("ReduceSum", g.cast(voiced, DOUBLE), [1])
    any_voiced = g.op("Greater", voiced_count, g.scalar(0.0))
    zero = g.scalar(0.0)
    pitch_min = g.op("Where", any_voiced, masked_extreme(g, log_pitch, voiced, "ReduceMin"), zero)
    pitch_max = g.op("Where", any_voiced, masked_extreme(g, log_pitch, voiced, "ReduceMax"), zero)
    frame_total = g.reduce("ReduceSum", g.cast(valid, DOUBLE), [1])
    scalars = [
        g.op("Unsqueeze", energy_max, g.i64(1)),
        g.op("Unsqueeze", g.op("Sub", energy_max, energy_min), g.i64(1)),
        pitch_mean,
        pitch_std,
        g.op("Unsqueeze", pitch_min, g.i64(1)),
        g.op("Unsqueeze", pitch_max, g.i64(1)),
        g.op("Unsqueeze", g.op("Div", voiced_count, frame_total), g.i64(1)),
    ]

    segments = _segment_means(g, g.op("Concat", mfcc, log_energy, voicing, axis=2), speech, n_frames, config)
    percentiles = [
        masked_percentiles(g, values, mask, config.percentiles)
        for values, mask in (
            (energy, speech),
            (log_pitch, voiced),
            (voice, speech),
            (g.op("Squeeze", centroid, g.i64(2)), speech),
            (g.op("Squeeze", flatness, g.i64(2)), speech),
        )
    ]
    extras = []
    if config.voice_quality:
        extras.append(_voice_quality(g, power, layout, alpha_bands, log_pitch, energy, voicing, speech, voiced,
                                     constants, config))
    return g.op("Concat", frame_mean, frame_std, delta_std, mel_mean, mel_std, *scalars, segments, *percentiles,
                *extras, axis=1)


def _above_noise_floor(g: GraphBuilder, energy: str, valid: str, speech: str, threshold: str,
                       config: EmoStatsConfig) -> str:
    """`features.speech_frames`' floor rule: frames above `noise_floor_limit` (the range rule's `threshold` [B]
    raised towards floor + margin by the gate's weight), unless fewer than MIN_SPEECH_FRAMES remain (then the
    range rule's frames)."""
    levels = masked_percentiles(g, energy, valid, [config.speech_floor_percentile,
                                                   config.speech_floor_spread_percentile])  # [B, 2]
    floor_db, lowest_db = g.op("Split", levels, g.i64(1, 1), axis=1, outputs=2)  # [B, 1] each
    base = g.op("Unsqueeze", threshold, g.i64(1))
    raise_db = g.op("Max", g.op("Sub", g.op("Add", floor_db, g.scalar(config.speech_floor_margin_db)), base),
                    g.scalar(0.0))
    if config.speech_floor_gate_db is not None:
        full, off = config.speech_floor_gate_db
        spread = g.op("Sub", floor_db, lowest_db)
        weight = g.op("Div", g.op("Sub", g.scalar(off), spread), g.scalar(off - full))
        raise_db = g.op("Mul", raise_db, g.op("Min", g.op("Max", weight, g.scalar(0.0)), g.scalar(1.0)))
    limit = g.op("Add", base, raise_db)
    above_floor = g.op("And", valid, g.op("Greater", energy, limit))
    count = g.reduce("ReduceSum", g.cast(above_floor, INT64), [1], keepdims=1)  # [B, 1]
    enough = g.op("GreaterOrEqual", count, g.scalar(MIN_SPEECH_FRAMES, np.int64))
    # (Where has no bool kernel in onnxruntime)
    return g.op("Or", g.op("And", enough, above_floor), g.op("And", g.op("Not", enough), speech))


def _pairs(g: GraphBuilder, values: str) -> tuple[str, str]:
    """Frames 1.. and frames ..-1 of [B, F(, ...)] along axis 1."""
    end = np.iinfo(np.int64).max
    return (g.op("Slice", values, g.i64(1), g.i64(end), g.i64(1)), g.op("Slice", values, g.i64(0), g.i64(-1), g.i64(1)))


def _masked_mean(g: GraphBuilder, values: str, mask: str) -> str:
    """Mean over axis 1 of [B, F] for the masked frames: [B, 1] (0 when none)."""
    mean, _ = masked_mean_std(g, g.op("Unsqueeze", values, g.i64(2)), mask)
    return mean


def _voice_quality(g: GraphBuilder, power: str, layout, alpha_bands: str, log_pitch: str, energy: str,
                   voicing: str, speech: str, voiced: str, constants: dict, config: EmoStatsConfig) -> str:
    """`plugins.classic.features._voice_quality` for every row: [B, 9] float64."""
    floor = g.scalar(config.floor)
    log10_scale = g.scalar(10.0 / np.log(10.0))

    def decibel_ratio(numerator: str, denominator: str) -> str:
        ratio = g.op("Div", g.op("Add", numerator, floor), g.op("Add", denominator, floor))
        return g.op("Mul", g.op("Log", ratio), log10_scale)

    low, high = g.op("Split", alpha_bands, g.i64(1, 1), axis=2, outputs=2)
    alpha = g.op("Squeeze", decibel_ratio(low, high), g.i64(2))  # [B, F]
    peaks = []
    for k in range(2):
        band = layout.bin_rows(constants["hammarberg_bands"][:, k:k + 1])[:, 0]
        masked = g.op("Mul", power, g.const(band, np.float32, "hammarberg_band"))
        peaks.append(g.cast(g.reduce("ReduceMax", masked, [2]), DOUBLE))
    hammarberg = decibel_ratio(*peaks)  # [B, F]

    semitones = g.op("Mul", log_pitch, g.scalar(12.0))
    voiced_later, voiced_earlier = _pairs(g, voiced)
    voiced_pairs = g.op("And", voiced_later, voiced_earlier)
    later, earlier = _pairs(g, semitones)
    steps = g.op("Abs", g.op("Sub", later, earlier))
    smooth = g.op("And", voiced_pairs, g.op("Less", steps, g.scalar(config.jitter_max_semitones)))
    jitter = _masked_mean(g, steps, smooth)
    energy_later, energy_earlier = _pairs(g, energy)
    shimmer = _masked_mean(g, g.op("Abs", g.op("Sub", energy_later, energy_earlier)), voiced_pairs)
    clipped = g.op("Min", g.op("Max", g.op("Squeeze", voicing, g.i64(2)), g.scalar(1e-3)), g.scalar(0.999))
    hnr = g.op("Mul", g.op("Log", g.op("Div", clipped, g.op("Sub", g.scalar(1.0), clipped))), log10_scale)
    stats = [jitter, shimmer]
    for values in (hnr, alpha, hammarberg):
        mean, std = masked_mean_std(g, g.op("Unsqueeze", values, g.i64(2)), voiced)
        stats += [mean, std]
    onsets = g.op("And", voiced_later, g.op("Not", voiced_earlier))
    onset_count = g.reduce("ReduceSum", g.cast(onsets, DOUBLE), [1], keepdims=1)
    speech_count = g.op("Max", g.reduce("ReduceSum", g.cast(speech, DOUBLE), [1], keepdims=1), g.scalar(1.0))
    stats.append(g.op("Div", onset_count, speech_count))
    return g.op("Concat", *stats, axis=1)


def _segment_means(g: GraphBuilder, contour: str, speech: str, n_frames: str, config: EmoStatsConfig) -> str:
    """Means of `contour` [B, F, D] over n_segments equal slices of the first..last speech frame span.

    A slice with no speech frame gets the mean over all speech frames. Returns [B, n_segments * D].
    """
    first, last = first_last_true(g, speech)  # [B] int64
    span = g.op("Add", g.op("Sub", last, first), g.scalar(1, np.int64))
    index = g.op("Range", g.scalar(0, np.int64), n_frames, g.scalar(1, np.int64))
    offset = g.op("Sub", g.op("Unsqueeze", index, g.i64(0)), g.op("Unsqueeze", first, g.i64(1)))  # [B, F]
    # frames before `first` are not speech, so truncating (not flooring) negative quotients is harmless
    segment = g.op("Div", g.op("Mul", offset, g.scalar(config.n_segments, np.int64)),
                   g.op("Unsqueeze", span, g.i64(1)))
    members = g.op("And", g.op("Equal", g.op("Unsqueeze", segment, g.i64(2)),
                               g.const(np.arange(config.n_segments), np.int64, "segments")),
                   g.op("Unsqueeze", speech, g.i64(2)))  # [B, F, S]
    weights = g.cast(members, DOUBLE)
    sums = g.op("MatMul", g.op("Transpose", weights, perm=[0, 2, 1]), contour)  # [B, S, D]
    counts = g.reduce("ReduceSum", weights, [1])  # [B, S]
    filled = g.op("Greater", counts, g.scalar(0.0))
    means = g.op("Div", sums, g.op("Unsqueeze", g.op("Max", counts, g.scalar(1.0)), g.i64(2)))
    speech_mean, _ = masked_mean_std(g, contour, speech)  # [B, D]
    chosen = g.op("Where", g.op("Unsqueeze", filled, g.i64(2)), means, g.op("Unsqueeze", speech_mean, g.i64(1)))
    return g.op("Reshape", chosen, g.i64(0, -1))

