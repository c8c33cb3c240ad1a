"""From per-frame speech probabilities to speech segments, streamed; and the fixed windows of `/v1/predict`.

`Segmenter` is fed frame probabilities (and frame energies) as they come and hands back finished segments,
holding no more than one open speech run (at most `max_segment` long) and one segment waiting to be merged.
What each `SegmentParams` field does, in the order they act:

1. Hysteresis: a frame at or above `threshold` starts speech; speech goes on until frames fall below
   `neg_threshold` (default `threshold - 0.15`). Frames in between keep whatever state was there.
2. `min_silence`: speech ends only after this long below `neg_threshold`; shorter dips stay inside. The
   segment ends where the dip began, less `trail_db` tightening: Silero's probability lingers for 0.2-0.5 s
   after speech that stops in background noise, so trailing frames (up to 0.5 s) no more than `trail_db`
   above the median level of the dip are cut off. 0 turns tightening off.
3. `max_segment`: a speech run that would grow past `max_segment` (less both paddings) is cut at its quietest
   frame (lowest speech probability, ties within 0.02 broken by lowest energy) in the second half of that
   length, so pieces are between half and all of `max_segment`. Cuts also keep memory bounded.
4. `merge_gap`: two speech runs separated by a pause shorter than this become one segment, as long as the
   result (with padding) stays within `max_segment`. 0 turns merging off.
5. `min_speech`: segments shorter than this (after merging, before padding) are dropped as clicks and blips;
   pieces cut by `max_segment` are always kept.
6. `pad`: each segment is widened by this much on both sides, but never past the middle of the pause to its
   neighbour, nor past the start or end of the audio.

Times are seconds; a segment's bounds are samples at the detector's rate (`Segment.start`/`end`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from zoo.errors import EmozooError

QUIET_TIE = 0.02  # speech probabilities this close to the lowest count as equally quiet
MAX_TRAIL = 0.5  # seconds at most that end tightening (`trail_db`) takes off a segment


@dataclass(frozen=True)
class SegmentParams:
    """How speech probabilities become segments (see the module docstring for each field)."""

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech: float = 0.25
    min_silence: float = 0.1
    merge_gap: float = 0.5
    pad: float = 0.1
    max_segment: float = 10.0
    trail_db: float = 6.0

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.threshold < 1.0:
            problems.append(f"threshold {self.threshold} is not within (0, 1)")
        if self.neg_threshold is not None and not 0.0 < self.neg_threshold <= self.threshold:
            problems.append(f"neg_threshold {self.neg_threshold} is not within (0, threshold]")
        for name in ("min_speech", "min_silence", "merge_gap", "pad", "trail_db"):
            if getattr(self, name) < 0:
                problems.append(f"{name} {getattr(self, name)} is negative")
        if self.max_segment < 1.0 or self.max_segment - 2 * self.pad < 0.5:
            problems.append(f"max_segment {self.max_segment} s is too short (at least 1 s and 2 x pad + 0.5 s)")
        if problems:
            raise EmozooError("bad segmentation parameters: " + "; ".join(problems))

    @property
    def exit_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


@dataclass(frozen=True)
class Segment:
    """Speech from sample `start` to `end` (exclusive) at `rate` Hz."""

    start: int
    end: int
    rate: int

    @property
    def start_seconds(self) -> float:
        return self.start / self.rate

    @property
    def end_seconds(self) -> float:
        return self.end / self.rate

    @property
    def duration(self) -> float:
        return (self.end - self.start) / self.rate


class Segmenter:
    """Streams frame probabilities into `Segment`s (see the module docstring). Frames are `frame` samples."""

    def __init__(self, params: SegmentParams | None = None, *, frame: int = 512, rate: int = 16_000) -> None:
        self.params = params or SegmentParams()
        self.frame, self.rate = frame, rate
        frames = lambda seconds: int(round(seconds * rate / frame))  # noqa: E731
        self._pad = frames(self.params.pad)
        self._min_silence = max(1, frames(self.params.min_silence))
        self._min_speech = frames(self.params.min_speech)
        self._merge = frames(self.params.merge_gap)
        self._max = max(2, int(self.params.max_segment * rate / frame) - 2 * self._pad)
        self._max_trail = frames(MAX_TRAIL)
        self._exit = self.params.exit_threshold
        self._position = 0  # frames seen
        self._run_start: int | None = None  # first frame of the open speech run
        self._silence_start: int | None = None  # first frame of the dip that may end it
        self._probabilities: list[float] = []  # of the open run's frames
        self._energies: list[float] = []
        self._pending: tuple[int, int, bool] | None = None  # start, end frame, cut by max_segment
        self._last_end = 0  # padded end (samples) of the last segment handed out

    @property
    def keep_from(self) -> int:
        """Earliest sample (at `rate`) a segment still to come may start at: audio before it can go."""
        first = self._position
        if self._run_start is not None:
            first = min(first, self._run_start)
        if self._pending is not None:
            first = min(first, self._pending[0])
        return max(0, first - self._pad) * self.frame

    def push(self, probabilities: Iterable[float], energies: Iterable[float]) -> list[Segment]:
        """Feed the next frames' speech probabilities and energies (dBFS); returns the segments now finished."""
        done: list[Segment] = []
        threshold = self.params.threshold
        for probability, energy in zip(probabilities, energies, strict=True):
            index = self._position
            self._position += 1
            if self._run_start is None:
                if probability >= threshold:
                    self._run_start, self._silence_start = index, None
                    self._probabilities, self._energies = [float(probability)], [float(energy)]
                self._release(done)
                continue
            self._probabilities.append(float(probability))
            self._energies.append(float(energy))
            if probability >= threshold:
                self._silence_start = None
            elif probability < self._exit and self._silence_start is None:
                self._silence_start = index
            if self._silence_start is not None and self._position - self._silence_start >= self._min_silence:
                self._close(self._tightened_end(), False, done)
            elif self._position - self._run_start > self._max:
                self._cut(done)
            self._release(done)
        return done

    def finish(self, total_samples: int) -> list[Segment]:
        """End of the audio (`total_samples` long at `rate`): close what is open, return the last segments."""
        done: list[Segment] = []
        if self._run_start is not None:
            end = self._silence_start if self._silence_start is not None else self._position
            self._close(end, False, done)
        if self._pending is not None:
            self._emit(self._pending, None, done)
            self._pending = None
        limit = int(total_samples)
        clipped = [Segment(s.start, min(s.end, limit), s.rate) for s in done if min(s.end, limit) > s.start]
        self._run_start = None
        return clipped

    # -- internals -------------------------------------------------------------------------------------
    def _cut(self, done: list[Segment]) -> None:
        """The open run reached the length limit: end it at its quietest frame in the second half."""
        assert self._run_start is not None
        low, high = self._max // 2, self._max
        probabilities = np.pad(np.asarray(self._probabilities[low:high]), 1, mode="edge")
        smoothed = np.convolve(probabilities, np.ones(3) / 3, mode="valid")  # over 3 frames, edges held
        quiet = np.flatnonzero(smoothed <= smoothed.min() + QUIET_TIE)
        offset = low + int(quiet[np.argmin(np.asarray(self._energies[low:high])[quiet])])
        cut = self._run_start + offset
        if self._silence_start is not None and self._silence_start <= cut:
            self._close(self._silence_start, False, done)  # the rest is all quiet: no new run
            return
        self._offer(self._run_start, cut, True, done)
        self._run_start = cut
        self._probabilities, self._energies = self._probabilities[offset:], self._energies[offset:]

    def _tightened_end(self) -> int:
        """Where the open run ends: the start of its closing dip, less trailing frames as quiet as the dip."""
        assert self._run_start is not None and self._silence_start is not None
        end = self._silence_start
        if self.params.trail_db <= 0:
            return end
        energies = self._energies
        dip = end - self._run_start
        level = float(np.median(energies[dip:])) + self.params.trail_db
        earliest = max(dip - self._max_trail, 1)
        while dip > earliest and energies[dip - 1] <= level:
            dip -= 1
        return self._run_start + dip

    def _close(self, end: int, was_cut: bool, done: list[Segment]) -> None:
        assert self._run_start is not None
        self._offer(self._run_start, end, was_cut, done)
        self._run_start, self._silence_start = None, None
        self._probabilities, self._energies = [], []

    def _offer(self, start: int, end: int, was_cut: bool, done: list[Segment]) -> None:
        """A finished speech run: merge it into the waiting one, or let that go and make this one wait."""
        if end <= start:
            return
        if self._pending is not None:
            first, last, cut_before = self._pending
            if start - last < self._merge and end - first <= self._max:
                self._pending = (first, end, cut_before or was_cut)
                return
            self._emit(self._pending, start, done)
        self._pending = (start, end, was_cut)

    def _release(self, done: list[Segment]) -> None:
        """Hand out the waiting segment once nothing later can merge with it or shorten its padding."""
        if self._pending is None:
            return
        end = self._pending[1]
        if self._run_start is not None:
            if self._run_start - end >= self._merge:
                self._emit(self._pending, self._run_start, done)
                self._pending = None
        elif self._position - end >= max(self._merge, 2 * self._pad):
            self._emit(self._pending, None, done)
            self._pending = None

    def _emit(self, run: tuple[int, int, bool], next_start: int | None, done: list[Segment]) -> None:
        start, end, was_cut = run
        if end - start < self._min_speech and not was_cut:
            return
        frame, pad = self.frame, self._pad * self.frame
        begin = min(max(start * frame - pad, self._last_end, 0), start * frame)
        finish = end * frame + pad
        if next_start is not None:
            finish = min(finish, (end * frame + next_start * frame) // 2)
        self._last_end = finish
        done.append(Segment(int(begin), int(finish), self.rate))


def fixed_windows(length: int, rate: int, window_seconds: float, hop_seconds: float) -> list[tuple[int, int]]:
    """Full windows covering [0, length) samples, the last aligned to the end; short audio is one window."""
    window = max(1, round(window_seconds * rate))
    hop = max(1, round(hop_seconds * rate))
    if length <= window:
        return [(0, length)]
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] + window < length:
        starts.append(length - window)
    return [(start, start + window) for start in starts]
