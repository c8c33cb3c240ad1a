"""`Augmenter`: random chains of degradations for training, reproducible from (seed, clip key, copy index).

Spec: a comma list of kinds, "default" (every kind) or "none". Each copy applies a chain of 1 or 2
degradations from different families (level: gain; noise: noise, babble; room: reverb; channel: telephone;
codec: mp3, opus, vorbis; tempo: speed), each family equally likely and a kind drawn within its family, in a
fixed physical order: speed, room, noise, gain, then the channel and codec. Parameters are drawn uniformly
from `Ranges` (the defaults: gain -20..+10 dB, SNR 5..30 dB for white noise and babble, RT60 0.2..1.0 s,
codec bitrates 16..64 kbps, speed 0.9..1.1, mu-law on half of the telephone lines).

Babble needs other speech: `set_noise_pool(waveforms)`. Without a pool "babble" is left out of the draws
(an error when it is the only kind). Draws use their own seed stream (`TRAINING_STREAM`), apart from the
robustness benchmark's test conditions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from zoo.augment.channel import telephone
from zoo.augment.codecs import codec
from zoo.augment.levels import add_noise, babble, gain
from zoo.augment.room import reverberate
from zoo.augment.tempo import speed
from zoo.fingerprint import waveform_digest

VERSION = 1  # bump when a degradation or a draw changes, so cached features of augmented copies expire
TRAINING_STREAM = 1  # first word of every training draw's seed; the robustness benchmark uses others
# application order; each kind's family
FAMILIES: dict[str, str] = {
    "speed": "tempo", "reverb": "room", "noise": "noise", "babble": "noise", "gain": "level",
    "telephone": "channel", "mp3": "codec", "opus": "codec", "vorbis": "codec",
}
KINDS = tuple(FAMILIES)
PRESETS = {"default": KINDS, "none": ()}


@dataclass(frozen=True)
class Ranges:
    """Uniform ranges the parameters of each degradation are drawn from."""

    gain_db: tuple[float, float] = (-20.0, 10.0)
    snr_db: tuple[float, float] = (5.0, 30.0)
    rt60: tuple[float, float] = (0.2, 1.0)
    bitrate_kbps: tuple[float, float] = (16.0, 64.0)
    speed: tuple[float, float] = (0.9, 1.1)
    mu_law_probability: float = 0.5
    n_talkers: tuple[int, int] = (4, 6)


@dataclass(frozen=True)
class Step:
    """One degradation of a chain and its drawn parameters."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def parse_spec(spec: str) -> tuple[str, ...]:
    """"noise, reverb" -> ("reverb", "noise") (application order); "default" -> every kind; "none" -> ()."""
    parts = [part.strip().lower() for part in str(spec).split(",") if part.strip()]
    if not parts:
        raise ValueError("an augmentation spec needs at least one kind, or 'none'")
    chosen: set[str] = set()
    for part in parts:
        if part in PRESETS:
            chosen.update(PRESETS[part])
        elif part in FAMILIES:
            chosen.add(part)
        else:
            raise ValueError(f"unknown augmentation {part!r}; choose from {', '.join((*PRESETS, *KINDS))}")
    return tuple(kind for kind in KINDS if kind in chosen)


def key_number(key: str | int) -> int:
    """A clip key as a non-negative integer for seeding: ints as they are, anything else hashed."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    return int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "little")


class Augmenter:
    """Degraded copies of clips for training (module docstring). Deterministic in (seed, key, index)."""

    def __init__(self, spec: str = "default", seed: int = 0, *, ranges: Ranges | None = None,
                 max_chain: int = 2) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if max_chain < 1:
            raise ValueError(f"max_chain must be at least 1, got {max_chain}")
        self.kinds = parse_spec(spec)
        self.seed = int(seed)
        self.ranges = ranges or Ranges()
        self.max_chain = max_chain
        self._pool: list[np.ndarray] = []
        self._pool_digest = ""

    @property
    def spec_string(self) -> str:
        """Normalised spec: the kinds in application order ("none" when there are none)."""
        return ",".join(self.kinds) or "none"

    @property
    def enabled(self) -> bool:
        return bool(self.kinds)

    def __repr__(self) -> str:
        return f"Augmenter({self.spec_string!r}, seed={self.seed})"

    def describe(self) -> dict[str, Any]:
        """Everything that decides the copies, for manifests (the pool by digest)."""
        return {"version": VERSION, "spec": self.spec_string, "seed": self.seed, "max_chain": self.max_chain,
                "ranges": asdict(self.ranges), "noise_pool": self._pool_digest or None}

    def copy_fingerprint(self, key: str | int, index: int) -> str:
        """Digest of everything that decides copy `index` of clip `key`: the babble pool counts only when that
        copy's chain mixes babble, so copies without babble keep their cache entries when the pool changes
        (each cross-validation fold has its own pool)."""
        description = self.describe()
        steps = self.plan(self.generator(key, index))
        if not any(step.kind == "babble" for step in steps):
            description["noise_pool"] = bool(description["noise_pool"])  # babble available or not: the draw
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()

    def set_noise_pool(self, waveforms: Sequence[np.ndarray]) -> None:
        """Clips (at the rate of those to be augmented) that babble is mixed from; a clip is never mixed
        into its own babble when the very same array is in the pool."""
        self._pool = [np.asarray(w, dtype=np.float32) for w in waveforms if len(w)]
        digest = hashlib.sha256()
        for waveform in self._pool:
            digest.update(waveform_digest(waveform).encode())
        self._pool_digest = digest.hexdigest() if self._pool else ""

    def _available(self) -> tuple[str, ...]:
        kinds = tuple(k for k in self.kinds if k != "babble" or self._pool)
        if self.kinds and not kinds:
            raise ValueError("babble needs other speech to mix: call set_noise_pool(waveforms) first")
        return kinds

    def plan(self, rng: np.random.Generator) -> list[Step]:
        """Draw a chain: 1..max_chain kinds from different families, with their parameters."""
        kinds = self._available()
        if not kinds:
            return []
        families = list(dict.fromkeys(FAMILIES[k] for k in kinds))
        count = int(rng.integers(1, min(self.max_chain, len(families)) + 1))
        picked = [families[i] for i in sorted(rng.choice(len(families), size=count, replace=False))]
        chosen = []
        for family in picked:
            members = [k for k in kinds if FAMILIES[k] == family]
            chosen.append(members[int(rng.integers(len(members)))])
        chosen.sort(key=KINDS.index)
        return [Step(kind, self._draw(kind, rng)) for kind in chosen]

    def _draw(self, kind: str, rng: np.random.Generator) -> dict[str, Any]:
        r = self.ranges
        if kind == "gain":
            return {"db": float(rng.uniform(*r.gain_db))}
        if kind in ("noise", "babble"):
            return {"snr_db": float(rng.uniform(*r.snr_db))}
        if kind == "reverb":
            return {"rt60": float(rng.uniform(*r.rt60))}
        if kind == "telephone":
            return {"mu_law": bool(rng.random() < r.mu_law_probability)}
        if kind == "speed":
            return {"factor": float(rng.uniform(*r.speed))}
        return {"bitrate_kbps": float(round(rng.uniform(*r.bitrate_kbps)))}

    def run(self, waveform: np.ndarray, sample_rate: int, steps: Sequence[Step],
            rng: np.random.Generator) -> np.ndarray:
        """Apply a chain of steps; `rng` draws the noise, babble talkers and room responses."""
        out = np.asarray(waveform, dtype=np.float32)
        for step in steps:
            p = step.params
            if step.kind == "gain":
                out = gain(out, p["db"])
            elif step.kind == "noise":
                out = add_noise(out, p["snr_db"], rng, sample_rate=sample_rate)
            elif step.kind == "babble":
                others = [c for c in self._pool if c is not waveform] or self._pool
                noise = babble(others, len(out), rng, self.ranges.n_talkers, sample_rate=sample_rate)
                out = add_noise(out, p["snr_db"], rng, noise=noise, sample_rate=sample_rate)
            elif step.kind == "reverb":
                out = reverberate(out, sample_rate, p["rt60"], rng)
            elif step.kind == "telephone":
                out = telephone(out, sample_rate, mu_law_quantise=p["mu_law"])
            elif step.kind == "speed":
                out = speed(out, sample_rate, p["factor"])
            else:
                out = codec(out, sample_rate, step.kind, p["bitrate_kbps"])
        return np.ascontiguousarray(out, dtype=np.float32)

    def apply(self, waveform: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """One degraded copy drawn from `rng` (on-the-fly training: one generator per epoch and clip)."""
        return self.run(waveform, sample_rate, self.plan(rng), rng)

    def generator(self, key: str | int, index: int) -> np.random.Generator:
        """The generator of copy `index` of the clip `key`."""
        return np.random.default_rng([TRAINING_STREAM, self.seed, key_number(key), int(index)])

    def copy(self, waveform: np.ndarray, sample_rate: int, key: str | int, index: int) -> np.ndarray:
        """Copy `index` of the clip `key` (the same array for the same seed, key and index)."""
        return self.apply(waveform, sample_rate, self.generator(key, index))

    def copies(self, waveform: np.ndarray, sample_rate: int, key: str | int, n: int) -> list[np.ndarray]:
        """`n` degraded copies, each as long as `waveform`; with spec "none" they are unchanged copies."""
        return [self.copy(waveform, sample_rate, key, index) for index in range(n)]

    def chains(self, key: str | int, n: int) -> list[list[Step]]:
        """The chains `copies(..., key, n)` applies (for logs and manifests)."""
        return [self.plan(self.generator(key, index)) for index in range(n)]
