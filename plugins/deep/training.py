"""The training loop both deep plugins share, on Hugging Face Accelerate.

One process on the CPU (or one GPU) by default, without any accelerate configuration; started by
``accelerate launch --multi_gpu`` or ``torchrun`` it trains data-parallel on every GPU. Features:
gradient accumulation, warm-up then linear/cosine decay, mixed precision on CUDA, early stopping on
validation unweighted average recall with the best weights truly kept (a detached copy), a checkpoint
every epoch, resuming from one, and per-epoch seeds so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from plugins.deep.batching import inference_batches, shard, training_batches
from plugins.deep.checkpoint import detached, load_checkpoint, restore_rng, save_checkpoint
from plugins.deep.runtime import resolve_device, resolve_precision
from zoo.errors import EmozooError
from zoo.labels import LABELS
from zoo.metrics import scores
from zoo.progress import progress_bar

SCHEDULES = ("linear", "cosine", "constant")
# builds a batch: (positions into the training clips, epoch or None at inference) -> the network's inputs,
# (waveform, lengths) followed by any per-clip inputs the network takes (e.g. utterance statistics)
BatchMaker = Callable[[Sequence[int], "int | None"], tuple[torch.Tensor, ...]]


@dataclass
class TrainSettings:
    epochs: int = 10
    batch_size: int = 8
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    patience: int | None = 3
    label_smoothing: float = 0.0
    class_weight: str | None = "balanced"
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    checkpoint_dir: str | None = None
    resume_from: str | None = None
    epochs_per_run: int | None = None
    keep_checkpoints: int = 2
    # DDP: set when some trainable parameters get no gradient in a step (e.g. transformer layerdrop)
    find_unused_parameters: bool = False
    # weight of the losses on auxiliary logits (a network in training mode may return (logits, *auxiliary))
    auxiliary_weight: float = 0.0
    description: str = "training"

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise EmozooError("epochs, batch_size and grad_accum must be at least 1")
        if self.schedule not in SCHEDULES:
            raise EmozooError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if not 0 <= self.warmup_ratio < 1:
            raise EmozooError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.class_weight not in (None, "balanced"):
            raise EmozooError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}")


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_uar: float | None = None
    epochs_run: int = 0
    global_step: int = 0
    stopped_early: bool = False
    finished: bool = False
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def lr_factor(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return factor


def class_weights(labels: np.ndarray, how: str | None) -> torch.Tensor | None:
    if how is None:
        return None
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    present = counts > 0
    weights = np.zeros(len(LABELS))
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


@torch.no_grad()
def predict_logits(
    network: nn.Module, lengths: Sequence[int], make_batch: BatchMaker, batch_size: int, device: torch.device,
    precision: str = "no", description: str = "predicting",
) -> torch.Tensor:
    """Logits [n, 6] in the order of `lengths` (batches are formed in length order)."""
    was_training = network.training
    network.eval()
    out = torch.empty(len(lengths), len(LABELS), dtype=torch.float32)
    batches = inference_batches(lengths, batch_size)
    with progress_bar(len(batches), description) as advance:
        for batch in batches:
            inputs = make_batch(batch, None)
            with _autocast(device, precision):
                logits = network(*(t.to(device) for t in inputs))
            out[batch] = logits.float().cpu()
            advance()
    network.train(was_training)
    return out


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "no" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _accelerator(settings: TrainSettings) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    device = resolve_device(settings.device)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device.index)
    precision = resolve_precision(settings.precision, device)
    return Accelerator(
        cpu=device.type == "cpu",
        mixed_precision=precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=settings.find_unused_parameters)],
    ), precision


def train(
    network: nn.Module,
    param_groups: list[dict[str, Any]],
    make_batch: BatchMaker,
    lengths: Sequence[int],
    labels: np.ndarray,
    train_positions: np.ndarray,
    validation_positions: np.ndarray,
    settings: TrainSettings,
    sample_weights: np.ndarray | None = None,
) -> TrainResult:
    """Train `network` in place; on return it holds the best validation weights (the last without validation).

    `lengths` and `labels` cover every clip; `make_batch(positions, epoch)` builds a batch of those clips,
    augmented when `epoch` is not None. `sample_weights` (one per clip, e.g. zoo.balance's corpus- and
    class-balanced weights) replace the class-balanced loss weights when given.
    """
    settings.check()
    started = time.perf_counter()
    accelerator, precision = _accelerator(settings)
    device = accelerator.device
    network.to(device)
    optimizer = torch.optim.AdamW(param_groups, weight_decay=settings.weight_decay)
    train_labels = labels[train_positions]
    weights = class_weights(train_labels, settings.class_weight) if sample_weights is None else None
    criterion = nn.CrossEntropyLoss(
        weight=weights.to(device) if weights is not None else None, label_smoothing=settings.label_smoothing,
        reduction="mean" if sample_weights is None else "none",
    )
    clip_weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float32)

    def batch_loss(output: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor,
                   positions: Sequence[int]) -> torch.Tensor:
        logits, *auxiliary = output if isinstance(output, tuple) else (output,)
        losses = criterion(logits.float(), target)
        for extra in auxiliary:
            losses = losses + settings.auxiliary_weight * criterion(extra.float(), target)
        if clip_weights is None:
            return losses
        return (losses * clip_weights[list(positions)].to(device)).mean()

    rank, world = accelerator.process_index, accelerator.num_processes
    train_lengths = [lengths[i] for i in train_positions]
    n_batches = len(shard(training_batches(train_lengths, settings.batch_size, np.random.default_rng(0)),
                          rank, world))
    steps_per_epoch = math.ceil(n_batches / settings.grad_accum)
    total_steps = steps_per_epoch * settings.epochs
    warmup = int(round(settings.warmup_ratio * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(settings.schedule, warmup, total_steps))

    result = TrainResult()
    best_state: dict[str, torch.Tensor] | None = None
    waited = 0
    start_epoch = 0
    data_key = {"n_train": len(train_positions), "n_validation": len(validation_positions),
                "label_counts": np.bincount(train_labels, minlength=len(LABELS)).tolist()}
    if settings.resume_from:
        checkpoint = load_checkpoint(settings.resume_from)
        saved_key = checkpoint.state.get("data")
        if saved_key != data_key:
            raise EmozooError(
                f"{checkpoint.path}: was trained on other data ({saved_key}); this run has {data_key}. "
                "Resume with the same clips, labels and validation_fraction."
            )
        try:
            network.load_state_dict(checkpoint.model)
            optimizer.load_state_dict(checkpoint.optimizer)
        except (RuntimeError, ValueError, KeyError) as error:
            raise EmozooError(f"{checkpoint.path}: does not fit this model ({str(error)[:300]})") from None
        scheduler.load_state_dict(checkpoint.state["scheduler"])
        restore_rng(checkpoint.rng_tensors, checkpoint.state["rng"])
        best_state = checkpoint.best
        saved = checkpoint.state
        start_epoch = saved["epoch"]
        waited = saved["epochs_without_improvement"]
        result = TrainResult(history=saved["history"], best_epoch=saved["best_epoch"], best_uar=saved["best_uar"],
                             epochs_run=saved["epoch"], global_step=saved["global_step"],
                             stopped_early=saved["stopped_early"])
        if accelerator.is_main_process:
            _report(f"resuming from {checkpoint.path} after epoch {start_epoch} (step {result.global_step})")

    model, optimizer = accelerator.prepare(network, optimizer)
    trainable = [p for p in network.parameters() if p.requires_grad]
    has_validation = len(validation_positions) > 0
    last_epoch = settings.epochs
    if settings.epochs_per_run is not None:
        last_epoch = min(last_epoch, start_epoch + settings.epochs_per_run)

    for epoch in range(start_epoch + 1, last_epoch + 1):
        if result.stopped_early:
            break
        # per-epoch seeds: dropout, masking and augmentation do not depend on where a run was resumed
        torch.manual_seed(settings.seed * 100_003 + epoch)
        rng = np.random.default_rng([settings.seed, epoch])
        order = shard(training_batches(train_lengths, settings.batch_size, rng), rank, world)
        model.train()
        total_loss, seen = 0.0, 0
        with progress_bar(len(order), f"{settings.description} epoch {epoch}/{settings.epochs}") as advance:
            for number, batch in enumerate(order):
                group_start = number - number % settings.grad_accum
                group_size = min(settings.grad_accum, len(order) - group_start)
                sync = number == group_start + group_size - 1
                positions = [int(train_positions[i]) for i in batch]
                inputs = make_batch(positions, epoch)
                target = torch.as_tensor(labels[positions], dtype=torch.long, device=device)
                context = contextlib.nullcontext() if sync else accelerator.no_sync(model)
                with context:
                    with accelerator.autocast():
                        output = model(*(t.to(device) for t in inputs))
                    loss = batch_loss(output, target, positions)
                    accelerator.backward(loss / group_size)
                if sync:
                    if settings.max_grad_norm:
                        accelerator.clip_grad_norm_(trainable, settings.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    result.global_step += 1
                total_loss += float(loss.detach()) * len(batch)
                seen += len(batch)
                advance()
        record: dict[str, Any] = {"epoch": epoch, "step": result.global_step, "train_loss": total_loss / max(seen, 1),
                                  "lr": scheduler.get_last_lr()[0]}
        if has_validation:
            evaluation = _validate(network, make_batch, lengths, labels, validation_positions, weights,
                                   settings, device, precision)
            record.update(evaluation)
            if result.best_uar is None or evaluation["val_uar"] > result.best_uar + 1e-9:
                result.best_uar, result.best_epoch, waited = evaluation["val_uar"], epoch, 0
                best_state = detached(network.state_dict())
            else:
                waited += 1
                if settings.patience is not None and waited >= settings.patience:
                    result.stopped_early = True
        result.history.append(record)
        result.epochs_run = epoch
        if accelerator.is_main_process:
            _report(_describe(record, settings.epochs, result.stopped_early))
        if settings.checkpoint_dir:
            if accelerator.is_main_process:
                save_checkpoint(
                    settings.checkpoint_dir, epoch, model=network.state_dict(), optimizer=optimizer.state_dict(),
                    best=best_state, keep=settings.keep_checkpoints,
                    state={"epoch": epoch, "global_step": result.global_step, "best_epoch": result.best_epoch,
                           "best_uar": result.best_uar, "epochs_without_improvement": waited,
                           "stopped_early": result.stopped_early, "history": result.history,
                           "scheduler": scheduler.state_dict(), "data": data_key,
                           "settings": {k: v for k, v in asdict(settings).items() if k != "resume_from"}},
                )
            accelerator.wait_for_everyone()

    result.finished = result.stopped_early or result.epochs_run >= settings.epochs
    unwrapped = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    result.seconds = time.perf_counter() - started
    accelerator.wait_for_everyone()
    return result


def _validate(
    network: nn.Module, make_batch: BatchMaker, lengths: Sequence[int], labels: np.ndarray,
    positions: np.ndarray, weights: torch.Tensor | None, settings: TrainSettings, device: torch.device,
    precision: str,
) -> dict[str, float]:
    def batch_of(local: Sequence[int], epoch: int | None) -> tuple[torch.Tensor, ...]:
        return make_batch([int(positions[i]) for i in local], None)

    logits = predict_logits(network, [lengths[i] for i in positions], batch_of, settings.batch_size, device,
                            precision, "validating")
    target = torch.as_tensor(labels[positions], dtype=torch.long)
    loss = float(nn.functional.cross_entropy(logits, target, weight=weights,
                                             label_smoothing=settings.label_smoothing))
    result = scores(labels[positions], logits.argmax(1).numpy())
    return {"val_loss": loss, "val_uar": result["uar"], "val_accuracy": result["accuracy"]}


def _report(line: str) -> None:
    if not os.environ.get("EMOZOO_QUIET"):
        print(line, file=sys.stderr, flush=True)


def _describe(record: dict[str, Any], epochs: int, stopped: bool) -> str:
    text = f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}"
    if "val_uar" in record:
        text += f", validation UAR {record['val_uar']:.3f} (loss {record['val_loss']:.4f})"
    return text + (" - early stop" if stopped else "")
