"""Torch runtime helpers shared by the deep plugins: device, threads, seeds, precision."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from zoo.errors import EmozooError

PRECISIONS = ("auto", "bf16", "fp16", "no")


def resolve_device(device: str) -> torch.device:
    """"auto" means CUDA when present, CPU otherwise; an explicit CUDA device that is absent is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise EmozooError(f"device {device!r} is not a torch device (use auto, cpu, cuda or cuda:N)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise EmozooError(f"device {device!r} was asked for but this machine has no CUDA GPU (use device=auto)")
    if chosen.type not in {"cpu", "cuda"}:
        raise EmozooError(f"device {device!r} is not supported (use auto, cpu, cuda or cuda:N)")
    return chosen


def configure_threads(num_threads: int | None) -> None:
    """Use `num_threads` intra-op threads, or what this process may use (affinity) when None."""
    if num_threads is None:
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            available = os.cpu_count() or 1
        world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        num_threads = max(1, available // max(world, 1))
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Mixed precision only on CUDA: "auto" picks bf16 where supported, else fp16; on CPU always "no"."""
    if precision not in PRECISIONS:
        raise EmozooError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        return "no"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision
