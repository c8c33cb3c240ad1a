"""Waveform degradations, one implementation for training augmentation and robustness testing.

Mono float32 in, same length out (unless documented), deterministic for a given numpy Generator; numpy,
scipy, soundfile and soxr only. SNRs are measured over the active speech of the clean signal (`snr_db`).
"""

from zoo.augment.augmenter import KINDS, VERSION, Augmenter, Ranges, Step, parse_spec
from zoo.augment.channel import mu_law, telephone
from zoo.augment.codecs import codec, codec_delay
from zoo.augment.levels import active_mask, add_noise, babble, gain, snr_db
from zoo.augment.room import estimate_rt60, reverberate, room_impulse_response
from zoo.augment.tempo import speed

__all__ = [
    "KINDS", "VERSION", "Augmenter", "Ranges", "Step", "active_mask", "add_noise", "babble", "codec",
    "codec_delay", "estimate_rt60", "gain", "mu_law", "parse_spec", "reverberate", "room_impulse_response",
    "snr_db", "speed", "telephone",
]
