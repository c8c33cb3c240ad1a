"""Training checkpoints without pickle: tensors in safetensors, everything else in a JSON sidecar.

A checkpoint directory (``<checkpoint_dir>/epoch-003/``) holds ``model.safetensors`` (the network),
``optimizer.safetensors`` (optimizer moments), ``best.safetensors`` (the best weights so far, when a
validation set is used), ``rng.safetensors`` (torch/CUDA generator states) and ``trainer_state.json``
(epoch, step, best score, history, optimizer hyperparameters, scheduler and Python/numpy RNG state).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from zoo.errors import EmozooError, ModelFileError
from zoo.storage import atomic_directory, atomic_write_json

STATE = "trainer_state.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
BEST = "best.safetensors"
RNG = "rng.safetensors"
_EPOCH_DIR = re.compile(r"epoch-(\d+)")


def save_weights(network: torch.nn.Module, path: Path) -> None:
    """A trained network's weights as one safetensors file (the saved model's)."""
    save_file(detached(network.state_dict()), str(path), metadata={"format": "emozoo"})


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A saved model's weights file; a missing or unreadable one is a ModelFileError naming it."""
    if not path.is_file():
        raise ModelFileError(f"{path.parent}: {path.name} is missing")
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as error:
        raise ModelFileError(f"{path}: corrupt model weights ({error})") from None


def install_weights(network: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> torch.nn.Module:
    """`network` with `state` loaded (from the file `path`), in eval mode; a mismatch names the file."""
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise ModelFileError(f"{path}: does not match the model's parameters ({str(error)[:300]})") from None
    return network.eval()


def detached(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A deep copy on the CPU (no shared storage, so safetensors accepts it and training cannot change it)."""
    return {key: value.detach().to("cpu", copy=True).contiguous() for key, value in state.items()}


def optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                other.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "state": other}


def optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, slot = key.split(".", 2)
        state.setdefault(int(index), {})[slot] = value
    for index, slots in meta["state"].items():
        state.setdefault(int(index), {}).update(slots)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = cuda_state
    kind, keys, position, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, python_state, gauss = random.getstate()
    meta = {
        "numpy": [kind, int(position), int(has_gauss), float(cached)],
        "python": [version, list(python_state), gauss],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    kind, position, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), position, has_gauss, cached))
    version, python_state, gauss = meta["python"]
    random.setstate((version, tuple(python_state), gauss))


@dataclass
class Checkpoint:
    path: Path
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    best: dict[str, torch.Tensor] | None
    state: dict[str, Any]
    rng_tensors: dict[str, torch.Tensor]


def save_checkpoint(
    root: str | os.PathLike[str],
    epoch: int,
    *,
    model: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    best: dict[str, torch.Tensor] | None,
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``root/epoch-NNN`` atomically, then remove all but the newest `keep` epoch directories."""
    target = Path(root) / f"epoch-{epoch:03d}"
    optimizer_arrays, optimizer_meta = optimizer_tensors(optimizer)
    rng_arrays, rng_meta = rng_state()
    is_checkpoint = lambda folder: (folder / STATE).is_file()  # noqa: E731
    with atomic_directory(target, replace_if=is_checkpoint, what="a training checkpoint",
                          advice="give the checkpoints a folder of their own") as staging:
        save_file(detached(model), str(staging / MODEL))
        save_file(optimizer_arrays, str(staging / OPTIMIZER))
        save_file(rng_arrays, str(staging / RNG))
        if best is not None:
            save_file(detached(best), str(staging / BEST))
        atomic_write_json(staging / STATE, {**state, "optimizer": optimizer_meta, "rng": rng_meta})
    for old in epoch_directories(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return target


def epoch_directories(root: str | os.PathLike[str]) -> list[Path]:
    folder = Path(root)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _EPOCH_DIR.fullmatch(p.name) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: int(_EPOCH_DIR.fullmatch(p.name)[1]))  # type: ignore[index]


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint directory itself, or the newest ``epoch-NNN`` inside a checkpoint root."""
    folder = Path(path)
    if (folder / STATE).is_file():
        return folder
    if not folder.is_dir():
        raise EmozooError(f"resume_from={path}: no such checkpoint directory")
    found = epoch_directories(folder)
    if not found:
        raise EmozooError(f"resume_from={path}: holds no checkpoint ({STATE} or epoch-NNN/ folders expected)")
    return found[-1]


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    folder = resolve_checkpoint(path)
    try:
        state = json.loads((folder / STATE).read_text())
        model = load_file(str(folder / MODEL))
        optimizer_arrays = load_file(str(folder / OPTIMIZER))
        rng_arrays = load_file(str(folder / RNG))
        best = load_file(str(folder / BEST)) if (folder / BEST).is_file() else None
    except (OSError, json.JSONDecodeError, SafetensorError) as error:
        raise EmozooError(f"{folder}: unreadable checkpoint ({error})") from None
    return Checkpoint(folder, model, optimizer_state(optimizer_arrays, state.pop("optimizer")), best, state, rng_arrays)
