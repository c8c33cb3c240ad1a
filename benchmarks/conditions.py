"""The fixed, seeded test conditions of the robustness benchmark, and degrading a set of clips under one.

They reuse `zoo.augment` (the training augmentation's code) with their own seed stream (`TEST_STREAM`,
never used by training draws), fixed parameters, and babble mixed only from other held-out clips, so
test noise, talkers and room responses differ from anything a model was trained with.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from zoo.augment import add_noise, babble, codec, gain, reverberate, telephone
from zoo.augment.augmenter import key_number
from zoo.fingerprint import waveform_digest

TEST_STREAM = 10_000  # first word of every test condition's seed (training draws use zoo.augment's TRAINING_STREAM)
FAMILIES = ("level", "noise", "babble", "phone", "codec", "reverb")


@dataclass(frozen=True)
class Condition:
    """One test condition: `kind` of degradation with its `value` (dB, kbps or seconds)."""

    id: str
    family: str  # "clean" or one of FAMILIES
    kind: str  # clean, gain, white, babble, telephone, mp3, opus, reverb
    value: float | None = None

    @property
    def label(self) -> str:
        value = f"{self.value:g}" if self.value is not None else ""
        return {
            "clean": "clean", "gain": f"gain {value if value.startswith('-') else '+' + value} dB",
            "white": f"white noise, SNR {value} dB", "babble": f"babble, SNR {value} dB",
            "telephone": "telephone (8 kHz, 300-3400 Hz, mu-law)", "mp3": f"MP3 {value} kbps",
            "opus": f"Opus {value} kbps", "reverb": f"reverberation, RT60 {value} s",
        }[self.kind]

    def apply(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator,
              others: Sequence[np.ndarray] = ()) -> np.ndarray:
        """Degrade one clip; `others` are the held-out clips its babble may be mixed from."""
        if self.kind == "clean":
            return x
        value = float(self.value if self.value is not None else 0.0)
        if self.kind == "gain":
            return gain(x, value)
        if self.kind == "white":
            return add_noise(x, value, rng, sample_rate=sample_rate)
        if self.kind == "babble":
            if not others:
                raise ValueError("babble needs other held-out clips to mix")
            noise = babble(others, len(x), rng, (4, 6), sample_rate=sample_rate)
            return add_noise(x, value, rng, noise=noise, sample_rate=sample_rate)
        if self.kind == "telephone":
            return telephone(x, sample_rate, mu_law_quantise=True)
        if self.kind in ("mp3", "opus"):
            return codec(x, sample_rate, self.kind, value)
        if self.kind == "reverb":
            return reverberate(x, sample_rate, value, rng)
        raise ValueError(f"unknown condition kind {self.kind!r}")


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", "clean", "clean"),
    Condition("gain-20", "level", "gain", -20.0),
    Condition("gain+20", "level", "gain", 20.0),
    Condition("white20", "noise", "white", 20.0),
    Condition("white10", "noise", "white", 10.0),
    Condition("white5", "noise", "white", 5.0),
    Condition("babble20", "babble", "babble", 20.0),
    Condition("babble10", "babble", "babble", 10.0),
    Condition("babble5", "babble", "babble", 5.0),
    Condition("telephone", "phone", "telephone"),
    Condition("mp3-32", "codec", "mp3", 32.0),
    Condition("opus-32", "codec", "opus", 32.0),
    Condition("opus-16", "codec", "opus", 16.0),
    Condition("reverb0.3", "reverb", "reverb", 0.3),
    Condition("reverb0.6", "reverb", "reverb", 0.6),
    Condition("reverb1.0", "reverb", "reverb", 1.0),
)
BY_ID = {c.id: c for c in CONDITIONS}


def select(ids: Sequence[str] | None) -> tuple[Condition, ...]:
    """The conditions named (clean always first, added when missing); all of them for None."""
    if not ids:
        return CONDITIONS
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        raise ValueError(f"unknown condition {', '.join(unknown)}; choose from {', '.join(BY_ID)}")
    return (BY_ID["clean"], *(BY_ID[i] for i in dict.fromkeys(ids) if i != "clean"))


def generator(condition: Condition, waveform: np.ndarray) -> np.random.Generator:
    """The test generator of one clip under one condition: from the condition and the clip's content only,
    so a clip is degraded the same way whichever other clips are scored with it."""
    return np.random.default_rng([TEST_STREAM, key_number(condition.id), key_number(waveform_digest(waveform))])


def babble_sources(waveforms: Sequence[np.ndarray], speakers: Sequence[object | None] | None,
                   index: int) -> list[np.ndarray]:
    """The clips babble for clip `index` is mixed from: the other held-out clips, of other speakers when
    speakers are known and there are other speakers."""
    others = [w for j, w in enumerate(waveforms) if j != index]
    if speakers is not None and speakers[index] is not None:
        strangers = [w for j, w in enumerate(waveforms) if speakers[j] != speakers[index]]
        if strangers:
            return strangers
    return others


def degrade_all(condition: Condition, waveforms: Sequence[np.ndarray], sample_rate: int,
                speakers: Sequence[object | None] | None = None, *, threads: int | None = None,
                advance: Callable[[], None] = lambda: None) -> list[np.ndarray]:
    """Every clip under `condition`, in parallel threads (the codecs and FFTs release the GIL)."""
    if condition.kind == "clean":
        for _ in waveforms:
            advance()
        return list(waveforms)

    def one(index: int) -> np.ndarray:
        x = waveforms[index]
        others = babble_sources(waveforms, speakers, index) if condition.kind == "babble" else ()
        result = condition.apply(x, sample_rate, generator(condition, x), others)
        advance()
        return result

    with ThreadPoolExecutor(max_workers=threads or min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, range(len(waveforms))))
