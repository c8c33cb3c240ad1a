"""Batches of variable-length waveforms: zero right-padding plus a lengths vector, length-bucketed order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def pad_batch(waveforms: Sequence[np.ndarray], min_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with zeros to the longest clip: ([batch, samples] float32, [batch] int64 valid lengths)."""
    lengths = np.array([len(w) for w in waveforms], dtype=np.int64)
    batch = np.zeros((len(waveforms), max(int(lengths.max()), min_samples)), dtype=np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = waveform
    return torch.from_numpy(batch), torch.from_numpy(lengths)


def training_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                     bucket_batches: int = 20) -> list[list[int]]:
    """Shuffled batches of positions into `lengths`, each drawn from a pool of similar lengths (less padding)."""
    order = rng.permutation(len(lengths))
    pool = batch_size * bucket_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool].tolist(), key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def inference_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches in length order (deterministic; little padding)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's share of the batches; every process gets the same number (DDP needs that)."""
    if world <= 1:
        return batches
    per_process = max(1, len(batches) // world)
    padded = batches * (world * per_process // max(len(batches), 1) + 1)
    return padded[rank : world * per_process : world]
