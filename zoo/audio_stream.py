"""Read a long audio file block by block as mono float32 at one or more rates: constant memory for any length.

libsndfile decodes `block_seconds` at a time; channels are averaged; soxr's streaming resampler brings each
block to every rate asked for. The same checks as `zoo.audio.read_audio` are made up front (readable,
sample rate, channels, non-empty, duration limit, WAV truncation) and per block (finite samples, amplitude),
and a file that ends before its header says is refused at the end. Every failure is an AudioError.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from zoo.audio import MAX_PEAK, AudioTooLongError, _check_not_truncated, _short, check_layout, check_sample_rate
from zoo.errors import AudioError

BLOCK_SECONDS = 8.0


@dataclass(frozen=True)
class StreamInfo:
    source: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


class AudioStream:
    """An audio file opened for block-wise reading; `raw_rate` reads headerless little-endian float32 mono."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_seconds: float | None = None,
        raw_rate: int | None = None,
        source: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.source = source or str(path)
        self.raw_rate = raw_rate
        self.info = self._inspect(max_seconds)

    def _open(self) -> sf.SoundFile:
        if self.raw_rate is not None:
            return sf.SoundFile(self.path, samplerate=self.raw_rate, channels=1, format="RAW", subtype="FLOAT",
                                endian="LITTLE")
        return sf.SoundFile(self.path)

    def _inspect(self, max_seconds: float | None) -> StreamInfo:
        source = self.source
        if not self.path.exists():
            raise AudioError(source, "no such file")
        if self.path.is_dir():
            raise AudioError(source, "is a directory, not an audio file")
        size = self.path.stat().st_size
        if size == 0:
            raise AudioError(source, "is empty (0 bytes)")
        if self.raw_rate is not None:
            check_sample_rate(self.raw_rate, source)
            if size % 4:
                raise AudioError(source, f"is {size} bytes, not a whole number of 4-byte float32 samples")
        try:
            with self._open() as handle:
                info = StreamInfo(source, int(handle.samplerate), int(handle.channels), int(handle.frames))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise AudioError(source, f"is not a readable audio file ({_short(error)})") from None
        check_layout(info.sample_rate, info.channels, info.frames, source)
        if max_seconds is not None and info.duration > max_seconds:
            raise AudioTooLongError(source, f"is {info.duration:.0f} s long, over the {max_seconds:.0f} s limit")
        if self.raw_rate is None:
            with self.path.open("rb") as handle:
                header = handle.read(4096)
            _check_not_truncated(header, size, sf.info(str(self.path)), source)
        return info

    def block_count(self, block_seconds: float = BLOCK_SECONDS) -> int:
        return max(1, math.ceil(self.info.frames / self._block_frames(block_seconds)))

    def _block_frames(self, block_seconds: float) -> int:
        return max(1, int(block_seconds * self.info.sample_rate))

    def blocks(self, rates: Sequence[int], block_seconds: float = BLOCK_SECONDS) -> Iterator[list[np.ndarray]]:
        """Yield, per block read, one mono float32 array per rate in `rates` (soxr HQ, streamed)."""
        source, native = self.source, self.info.sample_rate
        resamplers = {rate: soxr.ResampleStream(native, rate, 1, dtype="float32", quality="HQ")
                      for rate in set(rates) if rate != native}
        size, read = self._block_frames(block_seconds), 0
        try:
            with self._open() as handle:
                while True:
                    block = handle.read(size, dtype="float32", always_2d=True)
                    read += len(block)
                    last = len(block) < size or read >= self.info.frames
                    mono = _mono(block, source)
                    yield [resamplers[rate].resample_chunk(mono, last=last) if rate in resamplers else mono
                           for rate in rates]
                    if last:
                        break
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(source, f"is truncated or corrupt ({_short(error)})") from None
        if read < self.info.frames:
            raise AudioError(source, f"is truncated: the header announces {self.info.frames} frames, {read} decoded")


def _mono(block: np.ndarray, source: str) -> np.ndarray:
    mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if mono.size:
        if not np.isfinite(mono).all():
            raise AudioError(source, f"contains {int((~np.isfinite(mono)).sum())} NaN or infinite samples")
        peak = float(np.abs(mono).max())
        if peak > MAX_PEAK:
            raise AudioError(source, f"samples reach {peak:.3g}; float audio must lie within about -1..1 "
                                     f"(at most {MAX_PEAK:g}): were integer PCM values stored as float?")
    return mono
