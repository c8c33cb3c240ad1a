"""zoo.augment on real speech (RAVDESS and EmoDB clips): SNR, lengths, determinism, RT60, telephone band,
codecs, gain, and the Augmenter's chains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zoo import augment, datasets
from zoo.augment import Augmenter, codecs

RATE = 16_000


@pytest.fixture(scope="module")
def speech(ravdess_dir: Path, emodb_dir: Path) -> list[np.ndarray]:
    """Eight RAVDESS clips of different speakers and emotions, and two EmoDB clips, at 16 kHz."""
    chosen = []
    for directory, count in ((ravdess_dir, 8), (emodb_dir, 2)):
        seen: set[str | None] = set()
        for item in datasets.load(directory).items:
            if item.speaker not in seen and len(seen) < count:
                seen.add(item.speaker)
                chosen.append(item)
    return datasets.load_waveforms(chosen, RATE).waveforms


def independent_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR over speech found another way than zoo.augment's: 32 ms frames within 30 dB of the loudest."""
    frame = 512
    count = len(clean) // frame
    energy = (clean[: count * frame].astype(np.float64).reshape(count, frame) ** 2).mean(axis=1)
    speech = np.repeat(energy >= energy.max() * 1e-3, frame)
    noise = (noisy - clean)[: count * frame].astype(np.float64)
    signal = clean[: count * frame].astype(np.float64)
    return float(10 * np.log10(np.mean(signal[speech] ** 2) / np.mean(noise[speech] ** 2)))


@pytest.mark.parametrize("kind", ["white", "babble"])
@pytest.mark.parametrize("target", [5.0, 10.0, 20.0])
def test_measured_snr_is_the_target(speech, kind, target):
    for index, clean in enumerate(speech[:6]):
        rng = np.random.default_rng(index)
        noise = None
        if kind == "babble":
            noise = augment.babble(speech[:index] + speech[index + 1 :], len(clean), rng)
        noisy = augment.add_noise(clean, target, rng, noise=noise, sample_rate=RATE)
        assert abs(augment.snr_db(clean, noisy - clean, RATE) - target) < 1.0
        assert abs(independent_snr(clean, noisy) - target) < 1.0, (kind, target, index)


def test_babble_mixes_several_talkers_at_unit_level(speech):
    mixed = augment.babble(speech, 3 * RATE, np.random.default_rng(0), n_talkers=5)
    assert len(mixed) == 3 * RATE and mixed.dtype == np.float32
    assert abs(float(np.sqrt(np.mean(mixed.astype(np.float64) ** 2))) - 1.0) < 1e-3
    # babble is denser than any one talker: fewer quiet frames
    frames = (mixed[: 3 * RATE].reshape(-1, 320).astype(np.float64) ** 2).mean(axis=1)
    assert np.mean(frames < frames.max() * 1e-2) < 0.2


def degradations(rate: int) -> dict[str, object]:
    rng = np.random.default_rng
    return {
        "gain": lambda x: augment.gain(x, -12.0),
        "noise": lambda x: augment.add_noise(x, 10.0, rng(1), sample_rate=rate),
        "reverb": lambda x: augment.reverberate(x, rate, 0.6, rng(2)),
        "telephone": lambda x: augment.telephone(x, rate),
        "telephone-linear": lambda x: augment.telephone(x, rate, mu_law_quantise=False),
        "speed-slow": lambda x: augment.speed(x, rate, 0.9),
        "speed-fast": lambda x: augment.speed(x, rate, 1.1),
        **{f"{f}": (lambda x, f=f: augment.codec(x, rate, f, 24)) for f in codecs.FORMATS if codecs.available(f)},
    }


@pytest.mark.parametrize("rate", [16_000, 22_050])
def test_every_degradation_keeps_the_length(speech, rate):
    import soxr

    clip = soxr.resample(speech[0], RATE, rate).astype(np.float32)
    for length in (len(clip), len(clip) - 1, int(0.25 * rate) + 3):
        x = clip[:length]
        for name, degrade in degradations(rate).items():
            y = degrade(x)
            assert len(y) == length and y.dtype == np.float32, (name, rate, length)
            assert np.isfinite(y).all(), name


def test_same_generator_seed_same_output(speech):
    x = speech[1]
    for name in ("noise", "reverb"):
        first, second = degradations(RATE)[name](x), degradations(RATE)[name](x)
        assert np.array_equal(first, second), name
    assert not np.array_equal(augment.add_noise(x, 10, np.random.default_rng(1)),
                              augment.add_noise(x, 10, np.random.default_rng(2)))


@pytest.mark.parametrize("rt60", [0.3, 0.6, 1.0])
def test_room_response_has_the_rt60_asked_for(rt60):
    for seed in range(5):
        response = augment.room_impulse_response(RATE, rt60, np.random.default_rng(seed))
        assert response[0] == pytest.approx(1.0, abs=0.05)  # the direct path keeps the input's level
        assert abs(augment.estimate_rt60(response, RATE) - rt60) < 0.2 * rt60


def test_reverberation_keeps_the_direct_sound_aligned(speech):
    x = speech[2]
    y = augment.reverberate(x, RATE, 0.3, np.random.default_rng(0))
    lags = np.arange(-50, 51)
    correlation = [np.dot(x[100:-100], np.roll(y, -lag)[100:-100]) for lag in lags]
    assert lags[int(np.argmax(correlation))] == 0


def band_share(y: np.ndarray, low: float, high: float, rate: int = RATE) -> float:
    power = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
    frequencies = np.fft.rfftfreq(len(y), 1 / rate)
    return float(power[(frequencies >= low) & (frequencies < high)].sum() / power.sum())


def test_telephone_keeps_the_voice_band_only(speech):
    for x in speech[:4]:
        y = augment.telephone(x, RATE)
        assert band_share(y, 3600, RATE / 2) < 0.01
        assert band_share(y, 4100, RATE / 2) < 1e-4
        assert band_share(y, 0, 200) < 0.01
        assert band_share(x, 3600, RATE / 2) > 3 * band_share(y, 3600, RATE / 2)
        assert np.corrcoef(x, y)[0, 1] > 0.5


def test_mu_law_noise_follows_the_level():
    t = np.arange(RATE) / RATE
    for amplitude in (0.5, 0.05, 0.005):
        tone = (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        error = augment.mu_law(tone) - tone
        snr = 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean(error.astype(np.float64) ** 2))
        assert 25 < snr < 45, (amplitude, snr)


@pytest.mark.parametrize("format", sorted(codecs.FORMATS))
def test_codecs_decode_aligned_to_the_same_length(speech, format):
    if not codecs.available(format):
        pytest.skip(f"this libsndfile cannot encode {format}")
    for bitrate, least in ((16, 0.9), (32, 0.95), (64, 0.97)):
        for x in speech[:3]:
            y = augment.codec(x, RATE, format, bitrate)
            assert len(y) == len(x)
            assert np.corrcoef(x, y)[0, 1] > least, (format, bitrate)  # at lag 0: the delay is compensated
    louder = augment.codec(speech[0] * np.float32(30), RATE, format, 32)  # over full scale: not clipped
    assert np.corrcoef(speech[0], louder)[0, 1] > 0.95 and np.abs(louder).max() > 1


def test_codec_delay_is_measured_and_removed():
    level = codecs.compression_level("mp3", RATE, 32)
    assert codecs.codec_delay("mp3", RATE, level) > 0 or not codecs.available("mp3")  # LAME + mpg123 delay
    assert codecs.compression_level("opus", RATE, 32) == pytest.approx(1 - 26 / 250)
    assert codecs.coding_rate("opus", 22_050) == 48_000 and codecs.coding_rate("mp3", 22_050) == 22_050


def test_gain_never_clips(speech):
    x = speech[3] / np.abs(speech[3]).max()  # normalised to a peak of 1
    louder = augment.gain(x, 10.0)
    assert np.allclose(louder, x * 10 ** 0.5, rtol=1e-6)
    assert np.abs(louder).max() == pytest.approx(10**0.5, rel=1e-5)
    assert np.allclose(augment.gain(louder, -10.0), x, atol=1e-6)
    # the channel simulations keep such a signal unclipped too
    assert np.abs(augment.telephone(louder, RATE)).max() > 1.5


def test_speed_changes_tempo_and_documented_lengths(speech):
    x = speech[4]
    assert len(augment.speed(x, RATE, 1.1, keep_length=False)) == pytest.approx(len(x) / 1.1, abs=2)
    assert len(augment.speed(x, RATE, 0.9, keep_length=False)) == pytest.approx(len(x) / 0.9, abs=2)
    assert np.array_equal(augment.speed(x, RATE, 1.0), x)


def test_augmenter_specs():
    assert Augmenter("default").spec_string == ",".join(augment.KINDS)
    assert Augmenter(" Noise ,reverb,noise").spec_string == "reverb,noise"
    assert Augmenter("none").spec_string == "none" and not Augmenter("none").enabled
    with pytest.raises(ValueError, match="unknown augmentation 'echo'"):
        Augmenter("noise,echo")
    with pytest.raises(ValueError, match="seed"):
        Augmenter("noise", seed=-1)
    one, same, other = Augmenter("noise", seed=1), Augmenter("noise", seed=1), Augmenter("noise", seed=2)
    for index in range(3):  # the cache key of a copy follows the seed
        assert one.copy_fingerprint("clip", index) == same.copy_fingerprint("clip", index)
        assert one.copy_fingerprint("clip", index) != other.copy_fingerprint("clip", index)
    assert tuple(Augmenter("noise").describe()["ranges"]["snr_db"]) == (5.0, 30.0)


def test_augmenter_copies_are_reproducible_per_seed_key_and_index(speech):
    clip = speech[5]
    first = Augmenter("default", seed=3)
    first.set_noise_pool(speech)
    again = Augmenter("default", seed=3)
    again.set_noise_pool(speech)
    other = Augmenter("default", seed=4)
    other.set_noise_pool(speech)
    copies = first.copies(clip, RATE, "clip-5", 6)
    assert len(copies) == 6 and all(len(c) == len(clip) and c.dtype == np.float32 for c in copies)
    assert all(np.array_equal(a, b) for a, b in zip(copies, again.copies(clip, RATE, "clip-5", 6), strict=True))
    assert not any(np.array_equal(a, b) for a, b in zip(copies, other.copies(clip, RATE, "clip-5", 6), strict=True))
    assert not np.array_equal(copies[0], first.copy(clip, RATE, "clip-6", 0))
    assert np.array_equal(copies[4], first.copy(clip, RATE, "clip-5", 4))  # copy i alone = copy i of n
    assert not any(np.array_equal(c, clip) for c in copies)
    for chain in first.chains("clip-5", 40):
        families = [augment.augmenter.FAMILIES[step.kind] for step in chain]
        assert 1 <= len(chain) <= 2 and len(set(families)) == len(families)
        assert [s.kind for s in chain] == sorted((s.kind for s in chain), key=augment.KINDS.index)


def test_augmenter_parameter_ranges_and_babble_pool(speech):
    augmenter = Augmenter("gain,babble", seed=0)
    with pytest.raises(ValueError, match="set_noise_pool"):
        Augmenter("babble").copies(speech[0], RATE, 0, 1)
    chains = augmenter.chains(7, 200)  # without a pool: gain only
    assert {s.kind for c in chains for s in c} == {"gain"}
    assert all(-20 <= s.params["db"] <= 10 for c in chains for s in c)
    augmenter.set_noise_pool(speech)
    kinds = {s.kind for c in augmenter.chains(7, 200) for s in c}
    assert kinds == {"gain", "babble"}
    snrs = [s.params["snr_db"] for c in augmenter.chains(7, 200) for s in c if s.kind == "babble"]
    assert 5 <= min(snrs) and max(snrs) <= 30


def test_copy_fingerprint_depends_on_the_babble_pool_only_for_copies_that_mix_babble(speech):
    one, other = Augmenter("default", seed=1), Augmenter("default", seed=1)
    one.set_noise_pool(speech[:4])
    other.set_noise_pool(speech[4:8])  # another fold's pool
    chains = one.chains("clip", 40)
    with_babble = [i for i, chain in enumerate(chains) if any(s.kind == "babble" for s in chain)]
    assert 0 < len(with_babble) < 40
    for index in range(40):
        same = one.copy_fingerprint("clip", index) == other.copy_fingerprint("clip", index)
        assert same == (index not in with_babble), index
        # and the copies agree exactly when the fingerprints do
        assert same == np.array_equal(one.copy(speech[9], RATE, "clip", index),
                                      other.copy(speech[9], RATE, "clip", index)), index
    poolless = Augmenter("default", seed=1)  # no pool: no babble in the draws, so other chains
    assert poolless.copy_fingerprint("clip", 0) != one.copy_fingerprint("clip", 0)


def test_none_spec_returns_the_clip_unchanged(speech):
    copies = Augmenter("none").copies(speech[0], RATE, "a", 2)
    assert len(copies) == 2 and all(np.array_equal(c, speech[0]) for c in copies)
