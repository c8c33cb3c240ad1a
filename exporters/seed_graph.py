"""The `seed` feature set (plugins/classic/features.py: `seed_features`) as an ONNX graph.

waveform [batch, samples] at 22.05 kHz + lengths [batch] -> features [batch, 40002] float64:
yin pitch per frame (1000), mean energy, tempo, 13 MFCC, their deltas and second deltas (1000 frames each,
cut or zero-padded), exactly the layout of `seed_features`. Each step follows librosa 0.11's code with its
defaults (n_fft 2048, hop 512, centred frames padded with zeros, 128 mel bands, power_to_db with
top_db 80, yin with a 2048-sample frame and trough threshold 0.1, onset strength from the same log-mel
spectrogram, an 8 s autocorrelation tempogram with a log-normal prior around 120 BPM, Savitzky-Golay
deltas of width 9 with `interp` edges). Every row only sees its own frames (1 + length // 512 of them).

What is not bit-exact: librosa's FFTs run in float32 and these DFTs are float32 matrix products, so values
differ by float rounding (~1e-6 relative); yin's trough choice and the tempo's argmax are decisions on those
values and flip where two candidates are within rounding of each other (frames of near-silence, mostly).
docs/export.md ("Validation and tolerances") gives the measured effect.
"""

from __future__ import annotations

import numpy as np

from exporters.graph import DOUBLE, FLOAT, INT64, GraphBuilder
from exporters.masked import masked_waveform, normalised_level, row_mask
from exporters.spectral import power_spectrum
from plugins.classic.features import LEVEL_FLOOR, SEED_DELTA_WIDTH, SEED_HOP, SEED_MIN_SAMPLES, SeedConfig

N_FFT = 2048
HOP = SEED_HOP
N_MELS = 128
TOP_DB = 80.0
AMIN = 1e-10
YIN_THRESHOLD = 0.1
TEMPO_SECONDS = 8.0
START_BPM = 120.0
MAX_TEMPO = 320.0
DELTA_WIDTH = SEED_DELTA_WIDTH
INT64_MAX = np.iinfo(np.int64).max


def seed_feature_count(config: SeedConfig) -> int:
    return config.max_frames * (1 + 3 * config.n_mfcc) + 2


def build_seed_graph(g: GraphBuilder, waveform: str, lengths: str, config: SeedConfig) -> str:
    """Add the feature nodes; return the name of the [batch, n_features] float64 feature tensor."""
    signal = masked_waveform(g, waveform, lengths)
    if config.level_normalise:
        signal = normalised_level(g, signal, lengths, LEVEL_FLOOR)
    # clips shorter than the deltas' 9 frames are zero-padded to that, as natively (SEED_MIN_SAMPLES)
    shortfall = g.op("Max", g.op("Sub", g.i64(SEED_MIN_SAMPLES), g.dim(signal, 1)), g.i64(0))
    signal = g.op("Pad", signal, g.op("Concat", g.i64(0, 0, 0), shortfall, axis=0))
    padded_lengths = g.op("Max", lengths, g.scalar(SEED_MIN_SAMPLES, np.int64))
    n_samples = g.dim(signal, 1)
    # centred frames: N_FFT // 2 zeros on both sides; frame t starts at t * HOP of the padded signal
    padded = g.op("Pad", signal, g.i64(0, N_FFT // 2, 0, N_FFT // 2))
    n_frames = g.op("Squeeze", g.op("Add", g.op("Div", n_samples, g.i64(HOP)), g.i64(1)), g.i64(0))
    counts = g.op("Add", g.op("Div", padded_lengths, g.scalar(HOP, np.int64)), g.scalar(1, np.int64))  # [B]
    valid = row_mask(g, counts, n_frames)  # [B, F]

    log_mel = _log_mel(g, padded, n_frames, valid, config)  # [B, F, mels] float64, top_db applied per row
    mfcc = g.op("MatMul", log_mel, g.const(_dct(config.n_mfcc), np.float64, "dct"))  # [B, F, n_mfcc]
    delta = _savgol(g, mfcc, counts, n_frames, 1)
    delta2 = _savgol(g, mfcc, counts, n_frames, 2)
    pitch = _yin(g, padded, n_frames, config)  # [B, F]
    tempo = _tempo(g, log_mel, counts, n_frames, valid, config)  # [B, 1]
    squares = g.op("Mul", g.cast(signal, DOUBLE), g.cast(signal, DOUBLE))
    energy = g.op("Div", g.reduce("ReduceSum", squares, [1], keepdims=1),
                  g.cast(g.op("Unsqueeze", lengths, g.i64(1)), DOUBLE))  # [B, 1], over the clip itself

    def fit(values: str) -> str:
        """[B, F(, D)] -> the first max_frames frames, zero past each row's count, zero-padded."""
        is_matrix = values != pitch
        mask = g.op("Unsqueeze", valid, g.i64(2)) if is_matrix else valid
        kept = g.op("Where", mask, values, g.scalar(0.0))
        shortfall = g.op("Max", g.op("Sub", g.i64(config.max_frames), g.dim(kept, 1)), g.i64(0))
        pads = [g.i64(0, 0, 0, 0), shortfall, g.i64(0)] if is_matrix else [g.i64(0, 0, 0), shortfall]
        kept = g.op("Pad", kept, g.op("Concat", *pads, axis=0))
        kept = g.op("Slice", kept, g.i64(0), g.i64(config.max_frames), g.i64(1))
        if not is_matrix:
            return kept
        return g.op("Reshape", g.op("Transpose", kept, perm=[0, 2, 1]), g.i64(0, -1))  # coefficient-major

    return g.op("Concat", fit(pitch), energy, tempo, fit(mfcc), fit(delta), fit(delta2), axis=1)


def _dct(n_mfcc: int) -> np.ndarray:
    import scipy.fft

    return scipy.fft.dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[:n_mfcc].T


def _log_mel(g: GraphBuilder, padded: str, n_frames: str, valid: str, config: SeedConfig) -> str:
    """librosa.power_to_db(melspectrogram(y)) with top_db relative to each row's own maximum."""
    import librosa

    window = librosa.filters.get_window("hann", N_FFT, fftbins=True)
    power, layout = power_spectrum(g, padded, n_frames, N_FFT, HOP, window)
    mel = librosa.filters.mel(sr=config.sample_rate, n_fft=N_FFT, n_mels=N_MELS)  # float32, as librosa uses
    mel_power = g.cast(g.op("MatMul", power, g.const(layout.bin_rows(mel.T.astype(np.float64)), np.float32,
                                                     "mel")), DOUBLE)
    log_mel = g.op("Mul", g.op("Log", g.op("Max", mel_power, g.scalar(AMIN))), g.scalar(10.0 / np.log(10.0)))
    frame_max = g.reduce("ReduceMax", log_mel, [2])  # [B, F]
    row_max = g.reduce("ReduceMax", g.op("Where", valid, frame_max, g.scalar(-np.inf)), [1], keepdims=1)
    floor = g.op("Unsqueeze", g.op("Sub", row_max, g.scalar(TOP_DB)), g.i64(2))  # [B, 1, 1]
    return g.op("Max", log_mel, floor)


def _savgol(g: GraphBuilder, values: str, counts: str, n_frames: str, order: int) -> str:
    """librosa.feature.delta(values, width=9, order=order) along frames, per row.

    Inside: the Savitzky-Golay filter. Edges (`interp`): a polynomial of degree `order` fitted to the first
    or last 9 frames; its order-th derivative is constant, so edge frames repeat the value at frame 4 or at
    count - 5.
    """
    import scipy.signal

    half = DELTA_WIDTH // 2
    coefficients = scipy.signal.savgol_coeffs(DELTA_WIDTH, order, deriv=order, use="dot")
    widened = g.op("Pad", values, g.i64(0, half, 0, 0, half, 0))  # [B, F + 8, D]
    terms = []
    for offset, weight in enumerate(coefficients):
        piece = g.op("Slice", widened, g.i64(offset), g.op("Add", g.op("Unsqueeze", n_frames, g.i64(0)),
                                                             g.i64(offset)), g.i64(1))
        terms.append(g.op("Mul", piece, g.scalar(float(weight))))
    filtered = terms[0]
    for term in terms[1:]:
        filtered = g.op("Add", filtered, term)
    index = g.op("Range", g.scalar(0, np.int64), n_frames, g.scalar(1, np.int64))
    upper = g.op("Unsqueeze", g.op("Sub", counts, g.scalar(half + 1, np.int64)), g.i64(1))  # [B, 1]
    clamped = g.op("Max", g.op("Min", g.op("Unsqueeze", index, g.i64(0)), upper), g.scalar(half, np.int64))
    clamped = g.op("Max", g.op("Min", clamped, g.op("Sub", g.op("Unsqueeze", n_frames, g.i64(0)),
                                                      g.scalar(1, np.int64))), g.scalar(0, np.int64))
    gather_index = g.op("Expand", g.op("Unsqueeze", clamped, g.i64(2)), g.op("Shape", filtered))
    return g.op("GatherElements", filtered, gather_index, axis=1)


def _yin(g: GraphBuilder, padded: str, n_frames: str, config: SeedConfig) -> str:
    """librosa.yin(fmin, fmax, frame_length=2048): f0 per frame [B, F] float64."""
    sr = config.sample_rate
    min_period = int(np.floor(sr / config.pitch_fmax))
    max_period = min(int(np.ceil(sr / config.pitch_fmin)), N_FFT - 1)
    lags = np.arange(max_period + 1)
    # the autocorrelation of each 2048-sample frame from its power spectrum zero-padded to 4096 points
    size = 2 * N_FFT
    box = np.concatenate([np.ones(N_FFT), np.zeros(N_FFT)])
    power, layout = power_spectrum(g, padded, n_frames, size, HOP, box)
    bins = np.arange(size // 2 + 1)
    weight = np.where((bins == 0) | (bins == size // 2), 1.0, 2.0) / size
    cosines = weight[:, None] * np.cos(2 * np.pi * np.outer(bins, lags) / size)  # [bins, lags]
    acf = g.cast(g.op("MatMul", power, g.const(layout.bin_rows(cosines), np.float32, "acf")), DOUBLE)
    # energy terms: running sum of the frame's first samples squared
    starts = g.op("Mul", g.op("Range", g.scalar(0, np.int64), n_frames, g.scalar(1, np.int64)),
                  g.scalar(HOP, np.int64))
    index = g.op("Add", g.op("Unsqueeze", starts, g.i64(1)), g.const(np.arange(max_period)[None], np.int64))
    head = g.cast(g.op("Gather", padded, index, axis=1), DOUBLE)  # [B, F, max_period]
    energy = g.op("CumSum", g.op("Mul", head, head), g.scalar(2, np.int64))  # c[j] = sum_{m<=j} y[m]^2
    acf0, acf_k = g.op("Split", acf, g.i64(1, max_period), axis=2, outputs=2)
    difference = g.op("Sub", g.op("Mul", g.op("Sub", acf0, acf_k), g.scalar(2.0)), energy)  # d[1..max_period]
    cumulative_mean = g.op("Div", g.op("CumSum", difference, g.scalar(2, np.int64)),
                           g.const(np.arange(1, max_period + 1, dtype=np.float64), np.float64, "k"))
    numerator = g.op("Slice", difference, g.i64(min_period - 1), g.i64(max_period), g.i64(2))
    denominator = g.op("Slice", cumulative_mean, g.i64(min_period - 1), g.i64(max_period), g.i64(2))
    tiny = float(np.finfo(np.float32).tiny)
    yin = g.op("Div", numerator, g.op("Add", denominator, g.scalar(tiny)))  # [B, F, P], P = periods
    n_periods = max_period - min_period + 1

    def lag_slice(start: int, stop: int) -> str:
        return g.op("Slice", yin, g.i64(start), g.i64(stop), g.i64(2))

    previous, middle, following = lag_slice(0, n_periods - 2), lag_slice(1, n_periods - 1), lag_slice(2, n_periods)
    a = g.op("Sub", g.op("Add", following, previous), g.op("Mul", middle, g.scalar(2.0)))
    b = g.op("Div", g.op("Sub", following, previous), g.scalar(2.0))
    inside = g.op("Less", g.op("Abs", b), g.op("Abs", a))
    safe_a = g.op("Where", inside, a, g.scalar(1.0))
    shift = g.op("Where", inside, g.op("Neg", g.op("Div", b, safe_a)), g.scalar(0.0))
    zero_column = g.op("Slice", g.op("Mul", yin, g.scalar(0.0)), g.i64(0), g.i64(1), g.i64(2))
    shifts = g.op("Concat", zero_column, shift, zero_column, axis=2)  # [B, F, P], edges 0
    first_trough = g.op("Less", lag_slice(0, 1), lag_slice(1, 2))
    inner_trough = g.op("And", g.op("Less", middle, previous), g.op("LessOrEqual", middle, following))
    last_trough = g.op("Less", lag_slice(n_periods - 1, n_periods), lag_slice(n_periods - 2, n_periods - 1))
    trough = g.op("Concat", first_trough, inner_trough, last_trough, axis=2)
    deep = g.cast(g.op("And", trough, g.op("Less", yin, g.scalar(YIN_THRESHOLD))), INT64)
    first_deep = g.op("ArgMax", deep, axis=2, keepdims=1)  # first index of the maximum
    any_deep = g.op("Greater", g.reduce("ReduceMax", deep, [2], keepdims=1), g.scalar(0, np.int64))
    global_min = g.op("ArgMin", yin, axis=2, keepdims=1)
    chosen = g.op("Where", any_deep, first_deep, global_min)  # [B, F, 1]
    refined = g.op("Add", g.op("Add", g.cast(chosen, DOUBLE), g.scalar(float(min_period))),
                   g.op("GatherElements", shifts, chosen, axis=2))
    return g.op("Squeeze", g.op("Div", g.scalar(float(sr)), refined), g.i64(2))


def _tempo(g: GraphBuilder, log_mel: str, counts: str, n_frames: str, valid: str, config: SeedConfig) -> str:
    """librosa.feature.tempo(onset_envelope=librosa.onset.onset_strength(y)) per row: [B, 1] float64."""
    import librosa

    sr = config.sample_rate
    # onset strength: mean over bands of the positive log-mel rise, delayed by lag + n_fft // (2 hop) = 3
    earlier = g.op("Slice", log_mel, g.i64(0), g.i64(-1), g.i64(1))
    later = g.op("Slice", log_mel, g.i64(1), g.i64(INT64_MAX), g.i64(1))
    rise = g.reduce("ReduceMean", g.op("Max", g.op("Sub", later, earlier), g.scalar(0.0)), [2])  # [B, F-1]
    delay = 1 + N_FFT // (2 * HOP)
    onset = g.op("Slice", g.op("Pad", rise, g.i64(0, delay, 0, 0)), g.i64(0),
                 g.op("Unsqueeze", n_frames, g.i64(0)), g.i64(1))  # [B, F]
    onset = g.op("Where", valid, onset, g.scalar(0.0))

    # tempogram: centred windows of `window` onset frames, the right edge padded with a linear ramp to 0
    window = int(librosa.time_to_frames(TEMPO_SECONDS, sr=sr, hop_length=HOP))
    half = window // 2
    extended = g.op("Pad", onset, g.i64(0, half, 0, window))  # [B, half + F + window]
    positions = g.op("Range", g.scalar(0, np.int64), g.dim(extended, 1), g.scalar(1, np.int64))
    relative = g.op("Sub", g.op("Unsqueeze", positions, g.i64(0)),
                    g.op("Unsqueeze", g.op("Add", counts, g.scalar(half, np.int64)), g.i64(1)))  # p - (n + half)
    last_index = g.op("Unsqueeze", g.op("Sub", counts, g.scalar(1, np.int64)), g.i64(1))
    last_value = g.op("GatherElements", onset, last_index, axis=1)  # [B, 1]
    ramp = g.op("Mul", last_value, g.op("Sub", g.scalar(1.0), g.op("Div", g.cast(g.op(
        "Add", relative, g.scalar(1, np.int64)), DOUBLE), g.scalar(float(half)))))
    in_ramp = g.op("And", g.op("GreaterOrEqual", relative, g.scalar(0, np.int64)),
                   g.op("Less", relative, g.scalar(half, np.int64)))
    extended = g.op("Where", in_ramp, ramp, extended)
    starts = g.op("Range", g.scalar(0, np.int64), n_frames, g.scalar(1, np.int64))
    index = g.op("Add", g.op("Unsqueeze", starts, g.i64(1)), g.const(np.arange(window)[None], np.int64))
    hann = librosa.filters.get_window("hann", window, fftbins=True)
    frames = g.op("Mul", g.op("Gather", extended, index, axis=1), g.const(hann, np.float64, "tempo_window"))
    # full autocorrelation of each windowed frame through a real DFT of 2 * window points
    size = 2 * window
    bins = np.arange(size // 2 + 1)
    angles = 2 * np.pi * np.outer(np.arange(window), bins) / size
    basis = np.concatenate([np.cos(angles), -np.sin(angles)], axis=1)  # [window, 2 bins]
    spectrum = g.op("MatMul", g.cast(frames, FLOAT), g.const(basis, np.float32, "tempo_dft"))
    squared = g.op("Mul", spectrum, spectrum)
    real2, imaginary2 = g.op("Split", squared, g.i64(bins.size, bins.size), axis=2, outputs=2)
    power = g.op("Add", real2, imaginary2)
    weight = np.where((bins == 0) | (bins == size // 2), 1.0, 2.0) / size
    cosines = weight[:, None] * np.cos(2 * np.pi * np.outer(bins, np.arange(window)) / size)
    autocorr = g.cast(g.op("MatMul", power, g.const(cosines, np.float32, "tempo_acf")), DOUBLE)  # [B, F, lags]
    peak = g.reduce("ReduceMax", g.op("Abs", autocorr), [2], keepdims=1)
    tiny = float(np.finfo(np.float64).tiny)
    scale = g.op("Where", g.op("Less", peak, g.scalar(tiny)), g.scalar(1.0), peak)
    normalised = g.op("Div", autocorr, scale)
    weights = g.op("Unsqueeze", g.cast(valid, DOUBLE), g.i64(2))
    frame_count = g.op("Max", g.reduce("ReduceSum", weights, [1]), g.scalar(1.0))
    mean = g.op("Div", g.reduce("ReduceSum", g.op("Mul", normalised, weights), [1]), frame_count)  # [B, lags]

    with np.errstate(divide="ignore"):
        bpms = librosa.tempo_frequencies(window, hop_length=HOP, sr=sr)
        log_prior = -0.5 * (np.log2(bpms) - np.log2(START_BPM)) ** 2
    log_prior[: int(np.argmax(bpms < MAX_TEMPO))] = -np.inf
    log_prior = np.where(np.isfinite(log_prior), log_prior, -1e300)
    score = g.op("Add", g.op("Log", g.op("Add", g.op("Mul", mean, g.scalar(1e6)), g.scalar(1.0))),
                 g.const(log_prior[None], np.float64, "tempo_prior"))
    best = g.op("ArgMax", score, axis=1, keepdims=1)  # [B, 1]
    table = g.const(np.where(np.isfinite(bpms), bpms, 0.0), np.float64, "bpms")
    return g.op("Gather", table, best, axis=0)  # [B, 1]
