"""Feature sets of the classic plugins.

`emostats`: utterance-level statistics of frame descriptors (MFCC, log-mel, energy, spectral
shape, autocorrelation pitch and voicing). Every step is a fixed linear map, an elementwise op or a masked
reduction over frames, so `exporters.classic` rebuilds it exactly inside an ONNX graph.

`emorobust`: `emostats` plus voice-quality and spectral-balance descriptors that carry emotion
across speakers, languages and microphones better than absolute spectra: pitch jitter and energy shimmer
between voiced frames, harmonics-to-noise ratio, alpha ratio and Hammarberg index (means and spreads over
voiced frames), and the rate of voiced onsets.

`emorobust-nf` (the default; `emorobust` was before): `emorobust` that also finds speech against the clip's own
noise floor, when it has one. The floor is the `speech_floor_percentile`-th percentile of frame energy; it is a noise
floor (pauses, or noise under the speech) when the frames below it are steady: within a few dB of each other,
measured as the floor minus the `speech_floor_spread_percentile`-th percentile. Then a frame counts as speech only
when it is within `speech_range_db` of the loudest frame AND `speech_floor_margin_db` above the floor. The
`speech_floor_gate_db` pair (full, off) weighs that: a spread up to `full` dB applies the whole margin, one of `off`
dB or more none (the quietest tenth of the frames is quiet speech, whose level varies, and is kept), and the limit
moves linearly between. In a noisy or babbly clip the pauses are no longer taken for speech (they moved the energy,
voicing and spectral-shape statistics by many standard deviations); in a clean clip without pauses the quiet
speech stays (an ungated rule dropped the quietest 10-30 % of EmoDB's and nEMO's speech and cost cross-corpus
accuracy). docs/robustness.md has the measurements.

Every set normalises the clip's level first (the waveform is divided by its RMS), so a clip and the same
clip made 30 dB quieter get the same features up to rounding, natively and in the ONNX graph.

`seed`: the original DACON student recipe (yin pitch, energy, tempo, 13 MFCC + deltas, padded to 1000
frames and flattened), kept as a baseline; clips longer than 1000 frames are cut instead of crashing.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EmoStatsConfig:
    name: str = "emostats"
    sample_rate: int = 16_000
    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8_000.0
    n_mfcc: int = 20
    pitch_min_hz: float = 70.0
    pitch_max_hz: float = 500.0
    voicing_threshold: float = 0.5
    speech_range_db: float = 35.0
    n_segments: int = 8
    percentiles: tuple[float, ...] = (10.0, 25.0, 50.0, 75.0, 90.0)
    floor: float = 1e-10
    level_normalise: bool = True
    voice_quality: bool = False
    jitter_max_semitones: float = 3.0  # pitch steps larger than this between frames are octave errors, not jitter
    alpha_bands_hz: tuple[float, float, float] = (50.0, 1_000.0, 5_000.0)
    hammarberg_split_hz: float = 2_000.0
    speech_floor_margin_db: float = 0.0  # 0: the range rule alone (emostats); see the module docstring
    speech_floor_percentile: float = 10.0
    speech_floor_spread_percentile: float = 1.0
    speech_floor_gate_db: tuple[float, float] | None = None  # None: the floor rule always (first emorobust-nf)
    # a higher floor for the log-mel bands centred at or above mel_floor_from_hz (0: `floor` for every band)
    mel_floor: float = 0.0
    mel_floor_from_hz: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # fields added after models were saved with this set are recorded only when they change the features,
        # so those models (whose manifests lack them) still load
        if not self.speech_floor_margin_db or self.speech_floor_gate_db is None:
            del data["speech_floor_spread_percentile"], data["speech_floor_gate_db"]
        if not self.speech_floor_margin_db:
            del data["speech_floor_margin_db"], data["speech_floor_percentile"]
        if not self.mel_floor:
            del data["mel_floor"], data["mel_floor_from_hz"]
        return data


@dataclass(frozen=True)
class SeedConfig:
    name: str = "seed"
    sample_rate: int = 22_050
    n_mfcc: int = 13
    max_frames: int = 1000
    pitch_fmin: float = 100.0
    pitch_fmax: float = 1000.0
    level_normalise: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FEATURE_SETS: dict[str, Any] = {
    "emorobust": functools.partial(EmoStatsConfig, name="emorobust", voice_quality=True),
    "emorobust-nf": functools.partial(EmoStatsConfig, name="emorobust-nf", voice_quality=True,
                                      speech_floor_margin_db=10.0, speech_floor_gate_db=(5.0, 10.0)),
    # emorobust-nf whose log-mel bands from 4 kHz up have a floor 50 dB or so under the loudest band of the
    # level-normalised clip: energy below it there (a low-bitrate codec's missing top band, faint noise) reads as
    # the floor, so it moves the statistics less; docs/robustness.md ("Spectral floor") has the trade-off measured
    "emorobust-nf-floor": functools.partial(EmoStatsConfig, name="emorobust-nf-floor", voice_quality=True,
                                            speech_floor_margin_db=10.0, speech_floor_gate_db=(5.0, 10.0),
                                            mel_floor=1e-2, mel_floor_from_hz=4_000.0),
    "emostats": EmoStatsConfig,
    "seed": SeedConfig,
}
DEFAULT_FEATURE_SET = "emorobust-nf"


def default_meant(saved: dict[str, Any]) -> str:
    """The feature set a model saved with `features=default` computes: the named set its manifest recorded,
    when this version still computes that set the same way (models saved while `default` meant `emorobust`
    keep loading after the default moved), else "default" (the load then refuses a mismatch)."""
    from zoo.model import as_recorded

    name = saved.get("name")
    if name in FEATURE_SETS and as_recorded(FEATURE_SETS[name]().as_dict()) == saved:
        return str(name)
    return "default"


def feature_config(name: str) -> EmoStatsConfig | SeedConfig:
    if name == "default":
        name = DEFAULT_FEATURE_SET
    if name not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {name!r}; choose one of: default, {', '.join(FEATURE_SETS)}")
    return FEATURE_SETS[name]()


MIN_SPEECH_FRAMES = 10  # the noise-floor rule is ignored when it would leave fewer speech frames than this
LEVEL_FLOOR = 1e-8  # RMS below this (digital silence) is left unscaled


def normalise_level(samples: np.ndarray) -> np.ndarray:
    """The clip divided by its RMS (float64 sum, float32 result), so every level gives the same features."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        return samples
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return samples if rms < LEVEL_FLOOR else (samples * np.float32(1.0 / rms)).astype(np.float32)


# -- emostats -------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def emostats_constants(config: EmoStatsConfig) -> dict[str, np.ndarray]:
    """Fixed matrices shared by the native extractor and the ONNX exporter."""
    import librosa
    import scipy.fft

    n_bins = config.n_fft // 2 + 1
    window = librosa.filters.get_window("hann", config.win_length, fftbins=True)
    window = librosa.util.pad_center(window, size=config.n_fft).astype(np.float64)
    mel = librosa.filters.mel(
        sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
    )
    dct = scipy.fft.dct(np.eye(config.n_mels), type=2, norm="ortho", axis=0)[: config.n_mfcc].T
    frequencies_khz = librosa.fft_frequencies(sr=config.sample_rate, n_fft=config.n_fft) / 1000.0
    min_lag = int(np.floor(config.sample_rate / config.pitch_max_hz))
    max_lag = int(np.ceil(config.sample_rate / config.pitch_min_hz))
    lags = np.arange(min_lag, max_lag + 1)
    bins = np.arange(n_bins)
    bin_weight = np.where((bins == 0) | (bins == n_bins - 1), 1.0, 2.0)
    # autocorrelation at lag L from a power spectrum: sum_k w_k S_k cos(2 pi k L / n_fft)
    cosines = bin_weight[:, None] * np.cos(2 * np.pi * np.outer(bins, np.concatenate([[0], lags])) / config.n_fft)
    window_power = np.abs(np.fft.rfft(window)) ** 2
    window_autocorr = window_power @ cosines
    hz = frequencies_khz * 1000.0
    low, middle, high = config.alpha_bands_hz
    split = config.hammarberg_split_hz
    centres = librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin, fmax=config.fmax)[1:-1]
    raised = (centres >= config.mel_floor_from_hz) & (config.mel_floor > 0)  # one entry per band, set or not
    return {
        "mel_floor": np.where(raised, config.mel_floor, config.floor).astype(np.float64),
        "alpha_bands": np.column_stack([(hz >= low) & (hz < middle), (hz >= middle) & (hz < high)]).astype(np.float64),
        "hammarberg_bands": np.column_stack([hz < split, (hz >= split) & (hz < high)]).astype(np.float64),
        "window": window,
        "mel": mel.astype(np.float64),
        "dct": dct,
        "frequencies_khz": frequencies_khz,
        "autocorr": cosines,
        "window_autocorr": window_autocorr[1:] / window_autocorr[0],
        "lags": lags.astype(np.float64),
    }


def emostats_frame_count(n_samples: int, config: EmoStatsConfig) -> int:
    return 1 + (max(n_samples, config.n_fft) - config.n_fft) // config.hop_length


def emostats_descriptor_names(config: EmoStatsConfig) -> list[str]:
    mfcc = [f"mfcc{i}" for i in range(config.n_mfcc)]
    frame = [*mfcc, "log_energy", "centroid_khz", "bandwidth_khz", "flatness", "voicing"]
    names = [f"{n}_mean" for n in frame] + [f"{n}_std" for n in frame]
    names += [f"d_{n}_std" for n in [*mfcc, "log_energy"]]
    names += [f"logmel{i}_{s}" for s in ("mean", "std") for i in range(config.n_mels)]
    names += ["log_energy_max", "log_energy_range"]
    names += ["pitch_mean", "pitch_std", "pitch_min", "pitch_max", "voiced_fraction"]
    for k in range(config.n_segments):
        names += [f"seg{k}_{n}_mean" for n in [*mfcc, "log_energy", "voicing"]]
    for n in ("log_energy", "pitch", "voicing", "centroid_khz", "flatness"):
        names += [f"{n}_p{q:g}" for q in config.percentiles]
    if config.voice_quality:
        names += VOICE_QUALITY_NAMES
    return names


VOICE_QUALITY_NAMES = ["jitter_semitones", "shimmer_db", "hnr_db_mean", "hnr_db_std", "alpha_ratio_mean",
                       "alpha_ratio_std", "hammarberg_mean", "hammarberg_std", "voiced_onset_rate"]


EMOSTATS_BLOCK_FRAMES = 4096  # 41 s of audio at the default hop: about 17 MB of float64 power per block


def emostats_features(samples: np.ndarray, config: EmoStatsConfig) -> np.ndarray:
    """Fixed-size feature vector of one mono clip at `config.sample_rate`."""
    import librosa

    constants = emostats_constants(config)
    samples = np.asarray(samples, dtype=np.float32)
    if config.level_normalise:
        samples = normalise_level(samples)
    if samples.size < config.n_fft:
        samples = np.pad(samples, (0, config.n_fft - samples.size))
    # The spectrum is taken EMOSTATS_BLOCK_FRAMES frames at a time and only the per-frame descriptors are
    # kept (90 numbers a frame instead of 513 complex bins): a 20-minute clip took 2.7 GB in one piece.
    n_frames = emostats_frame_count(samples.size, config)
    frames: dict[str, np.ndarray] = {}
    for first in range(0, n_frames, EMOSTATS_BLOCK_FRAMES):
        count = min(EMOSTATS_BLOCK_FRAMES, n_frames - first)
        start = first * config.hop_length
        piece = samples[start : start + (count - 1) * config.hop_length + config.n_fft]
        spectrum = librosa.stft(
            piece, n_fft=config.n_fft, hop_length=config.hop_length, window=constants["window"], center=False
        )
        power = (np.abs(spectrum) ** 2).T.astype(np.float64)  # [frames, bins]
        del spectrum
        for name, values in _emostats_frames(power, config).items():
            if name not in frames:
                frames[name] = np.empty((n_frames, *values.shape[1:]), dtype=values.dtype)
            frames[name][first : first + count] = values
    return _emostats_pooled(frames, config)


def emostats_from_power(power: np.ndarray, config: EmoStatsConfig) -> np.ndarray:
    """The feature vector from a whole clip's power spectrum [frames, bins] (float64)."""
    return _emostats_pooled(_emostats_frames(power, config), config)


def _emostats_frames(power: np.ndarray, config: EmoStatsConfig) -> dict[str, np.ndarray]:
    """Per-frame descriptors: each frame's depend on that frame's power spectrum alone."""
    constants = emostats_constants(config)
    floor = config.floor
    log_mel = 10.0 * np.log10(power @ constants["mel"].T + constants["mel_floor"])
    mfcc = log_mel @ constants["dct"]
    total = power.sum(axis=1) + floor
    log_energy = 10.0 * np.log10(total / power.shape[1])
    frequencies = constants["frequencies_khz"]
    centroid = (power @ frequencies) / total
    bandwidth = np.sqrt(np.maximum((power @ frequencies**2) / total - centroid**2, 0.0))
    log_power = np.log(power + floor)
    flatness = log_power.mean(axis=1) - np.log(power.mean(axis=1) + floor)

    autocorr = power @ constants["autocorr"]
    normalised = autocorr[:, 1:] / (autocorr[:, :1] + floor) / constants["window_autocorr"]
    best = np.argmax(normalised, axis=1)
    voicing = np.take_along_axis(normalised, best[:, None], axis=1)[:, 0]
    log_pitch = np.log2(config.sample_rate / constants["lags"][best])
    frames = {"log_mel": log_mel, "mfcc": mfcc, "log_energy": log_energy, "centroid": centroid,
              "bandwidth": bandwidth, "flatness": flatness, "voicing": voicing, "log_pitch": log_pitch}
    if config.voice_quality:
        bands = power @ constants["alpha_bands"]
        frames["alpha_ratio"] = 10.0 * np.log10((bands[:, 0] + floor) / (bands[:, 1] + floor))
        peaks = [(power * constants["hammarberg_bands"][:, k]).max(axis=1) for k in range(2)]
        frames["hammarberg"] = 10.0 * np.log10((peaks[0] + floor) / (peaks[1] + floor))
    return frames


def _emostats_pooled(frames: dict[str, np.ndarray], config: EmoStatsConfig) -> np.ndarray:
    """Utterance-level statistics of the per-frame descriptors."""
    log_mel, mfcc, log_energy = frames["log_mel"], frames["mfcc"], frames["log_energy"]
    centroid, bandwidth, flatness = frames["centroid"], frames["bandwidth"], frames["flatness"]
    voicing, log_pitch = frames["voicing"], frames["log_pitch"]
    frame = np.column_stack([mfcc, log_energy, centroid, bandwidth, flatness, voicing])
    # Statistics cover speech only: frames within speech_range_db of the loudest one (leading and
    # trailing silence would otherwise dilute every mean by a clip-dependent amount).
    speech = speech_frames(log_energy, config)
    speech_pairs = speech[1:] & speech[:-1]
    deltas = np.diff(np.column_stack([mfcc, log_energy]), axis=0)[speech_pairs]
    if deltas.shape[0] == 0:
        deltas = np.zeros((1, config.n_mfcc + 1))
    voiced = speech & (voicing > config.voicing_threshold)
    voiced_pitch = log_pitch[voiced]
    if voiced_pitch.size:
        pitch = [voiced_pitch.mean(), voiced_pitch.std(), voiced_pitch.min(), voiced_pitch.max()]
    else:
        pitch = [0.0, 0.0, 0.0, 0.0]
    speech_frame, speech_mel = frame[speech], log_mel[speech]
    parts = [
        speech_frame.mean(axis=0),
        speech_frame.std(axis=0),
        deltas.std(axis=0),
        speech_mel.mean(axis=0),
        speech_mel.std(axis=0),
        [log_energy.max(), log_energy.max() - log_energy.min()],
        pitch,
        [voiced.mean()],
    ]
    # A coarse contour: means over n_segments equal slices of the span from first to last speech frame.
    first, last = np.flatnonzero(speech)[[0, -1]]
    segment = np.floor((np.arange(len(log_energy)) - first) * config.n_segments / (last - first + 1))
    contour = np.column_stack([mfcc, log_energy, voicing])
    for k in range(config.n_segments):
        members = speech & (segment == k)
        parts.append(contour[members if members.any() else speech].mean(axis=0))
    for values, mask in ((log_energy, speech), (log_pitch, voiced), (voicing, speech), (centroid, speech),
                         (flatness, speech)):
        parts.append(np.percentile(values[mask], config.percentiles) if mask.any() else np.zeros(
            len(config.percentiles)))
    if config.voice_quality:
        parts.append(_voice_quality(frames, speech, voiced, config))
    return np.concatenate(parts).astype(np.float32)


def speech_frames(log_energy: np.ndarray, config: EmoStatsConfig) -> np.ndarray:
    """Which frames are speech: within speech_range_db of the loudest, and (when speech_floor_margin_db is
    set) above the clip's noise-floor limit (`noise_floor_limit`), unless that leaves fewer than
    MIN_SPEECH_FRAMES."""
    threshold = log_energy.max() - config.speech_range_db
    speech = log_energy > threshold
    if config.speech_floor_margin_db > 0:
        above_floor = log_energy > noise_floor_limit(log_energy, threshold, config)
        if above_floor.sum() >= MIN_SPEECH_FRAMES:
            speech = above_floor
    return speech


def noise_floor_weight(spread_db: float | np.ndarray, config: EmoStatsConfig) -> float | np.ndarray:
    """How much of the floor margin applies, 1 for a steady floor (spread <= full) to 0 (spread >= off)."""
    if config.speech_floor_gate_db is None:
        return 1.0
    full, off = config.speech_floor_gate_db
    return np.clip((off - spread_db) / (off - full), 0.0, 1.0)


def noise_floor(log_energy: np.ndarray, config: EmoStatsConfig) -> tuple[float, float]:
    """The clip's quiet floor (dB) and how much of the margin above it applies (`noise_floor_weight` of its
    spread: the floor minus a lower percentile)."""
    floor_db, lowest_db = np.percentile(log_energy, [config.speech_floor_percentile,
                                                     config.speech_floor_spread_percentile])
    return float(floor_db), float(noise_floor_weight(floor_db - lowest_db, config))


def noise_floor_limit(log_energy: np.ndarray, threshold: float, config: EmoStatsConfig) -> float:
    """The energy a speech frame must exceed: the range rule's `threshold`, raised towards floor + margin by
    the floor's weight (a limit that moves smoothly, so features do not jump)."""
    floor_db, weight = noise_floor(log_energy, config)
    return threshold + weight * max(0.0, floor_db + config.speech_floor_margin_db - threshold)


def _masked_mean_std(values: np.ndarray, mask: np.ndarray) -> list[float]:
    return [float(values[mask].mean()), float(values[mask].std())] if mask.any() else [0.0, 0.0]


def _voice_quality(frames: dict[str, np.ndarray], speech: np.ndarray, voiced: np.ndarray,
                   config: EmoStatsConfig) -> np.ndarray:
    """Jitter, shimmer, HNR, alpha ratio, Hammarberg index and voiced-onset rate (VOICE_QUALITY_NAMES)."""
    semitones = 12.0 * frames["log_pitch"]
    voiced_pairs = voiced[1:] & voiced[:-1]
    steps = np.abs(np.diff(semitones))
    smooth = voiced_pairs & (steps < config.jitter_max_semitones)
    jitter = float(steps[smooth].mean()) if smooth.any() else 0.0
    shimmer = float(np.abs(np.diff(frames["log_energy"]))[voiced_pairs].mean()) if voiced_pairs.any() else 0.0
    voicing = np.clip(frames["voicing"], 1e-3, 0.999)
    hnr = 10.0 * np.log10(voicing / (1.0 - voicing))
    onsets = float(np.sum(voiced[1:] & ~voiced[:-1])) / max(float(speech.sum()), 1.0)
    return np.array([jitter, shimmer, *_masked_mean_std(hnr, voiced),
                     *_masked_mean_std(frames["alpha_ratio"], voiced),
                     *_masked_mean_std(frames["hammarberg"], voiced), onsets])


# -- seed -----------------------------------------------------------------------------------------------


SEED_HOP = 512
SEED_DELTA_WIDTH = 9
SEED_MIN_SAMPLES = (SEED_DELTA_WIDTH - 1) * SEED_HOP  # 1 + samples // hop frames: the deltas' 9 (186 ms)


def seed_features(samples: np.ndarray, config: SeedConfig) -> np.ndarray:
    """The original recipe, from a clip already resampled to 22.05 kHz."""
    import librosa

    audio = np.asarray(samples, dtype=np.float32)
    if config.level_normalise:
        audio = normalise_level(audio)
    sr = config.sample_rate
    energy = np.mean(audio**2)
    if audio.size < SEED_MIN_SAMPLES:  # librosa's deltas need 9 frames: shorter clips are zero-padded to that
        audio = np.pad(audio, (0, SEED_MIN_SAMPLES - audio.size))
    pitch = librosa.yin(audio, fmin=config.pitch_fmin, fmax=config.pitch_fmax, sr=sr)
    onset_envelope = librosa.onset.onset_strength(y=audio, sr=sr)
    tempo = librosa.feature.tempo(onset_envelope=onset_envelope, sr=sr)[0]
    mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=config.n_mfcc)
    delta = librosa.feature.delta(mfcc)
    delta2 = librosa.feature.delta(mfcc, order=2)

    def fit(matrix: np.ndarray) -> np.ndarray:
        matrix = matrix[..., : config.max_frames]
        padding = [(0, 0)] * (matrix.ndim - 1) + [(0, config.max_frames - matrix.shape[-1])]
        return np.pad(matrix, padding)

    return np.concatenate(
        [fit(pitch), [energy], [tempo], fit(mfcc).ravel(), fit(delta).ravel(), fit(delta2).ravel()]
    ).astype(np.float32)


def extract(samples: np.ndarray, config: EmoStatsConfig | SeedConfig) -> np.ndarray:
    if isinstance(config, EmoStatsConfig):
        return emostats_features(samples, config)
    return seed_features(samples, config)
