"""What the deep plugins share: fit/predict over torch networks, persistence hooks, distributed-safe saving.

Importing this module does not import torch (``emozoo models`` stays fast); torch comes in on first use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from zoo.calibration import Calibration, check_method, fit_calibration, skipped
from zoo.labels import LABELS
from zoo.launch import is_secondary_process
from zoo.model import EmotionModel

if TYPE_CHECKING:
    import torch
    from torch import nn

    from plugins.deep.augment import WaveAugment
    from plugins.deep.training import TrainResult, TrainSettings

SAMPLE_RATE = 16_000


class DeepEmotionModel(EmotionModel):
    """A torch network trained by plugins.deep.training; subclasses build the network and its augmentation.

    Subclasses store these hyperparameters (at least): epochs, batch_size, weight_decay, warmup_ratio,
    schedule, grad_accum, patience, validation_fraction, label_smoothing, precision, device, seed,
    num_threads, checkpoint_dir, resume_from, epochs_per_run.
    """

    epochs: int
    batch_size: int
    weight_decay: float
    warmup_ratio: float
    schedule: str
    grad_accum: int
    patience: int | None
    validation_fraction: float
    label_smoothing: float
    precision: str
    device: str
    seed: int
    num_threads: int | None
    checkpoint_dir: str | None
    resume_from: str | None
    epochs_per_run: int | None

    network_: nn.Module
    # multi-GPU (DDP): whether some trainable parameters may get no gradient in a step
    find_unused_parameters: ClassVar[bool] = False

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    # -- to implement ------------------------------------------------------------------------------------
    def _new_network(self, waveforms: Sequence[np.ndarray], labels: np.ndarray,
                     clip_inputs: np.ndarray | None = None) -> nn.Module:
        """A fresh network for the training clips (`clip_inputs`: their `_clip_inputs` rows, if any)."""
        raise NotImplementedError

    def _param_groups(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _augmentation(self, pool: Sequence[np.ndarray] = ()) -> WaveAugment:
        """The training augmentation; `pool`: the training clips (babble is mixed from them)."""
        raise NotImplementedError

    def _min_samples(self) -> int:
        return 1

    def _clip_inputs(self, waveforms: Sequence[np.ndarray]) -> np.ndarray | None:
        """Per-clip vectors [n_clips, n] the network takes after (waveform, lengths); None for none."""
        return None

    def _sample_weights(self, labels: np.ndarray, corpora: Sequence[str | None] | None) -> np.ndarray | None:
        """Per-clip loss weights; None: class-balanced loss weights."""
        return None

    # -- training ------------------------------------------------------------------------------------------
    def _settings(self) -> TrainSettings:
        from plugins.deep.training import TrainSettings

        return TrainSettings(
            epochs=self.epochs, batch_size=self.batch_size, weight_decay=self.weight_decay,
            warmup_ratio=self.warmup_ratio, schedule=self.schedule, grad_accum=self.grad_accum,
            patience=self.patience, label_smoothing=self.label_smoothing, precision=self.precision,
            device=self.device, seed=self.seed, checkpoint_dir=self.checkpoint_dir, resume_from=self.resume_from,
            epochs_per_run=self.epochs_per_run, description=self.name,
            find_unused_parameters=self.find_unused_parameters, auxiliary_weight=self._auxiliary_weight(),
        )

    def _auxiliary_weight(self) -> float:
        return 0.0

    def _batch_maker(self, waveforms: Sequence[np.ndarray], augment: WaveAugment | None,
                     clip_inputs: np.ndarray | None = None) -> Any:
        import torch

        from plugins.deep.batching import pad_batch

        minimum = self._min_samples()
        extra = None if clip_inputs is None else torch.from_numpy(np.asarray(clip_inputs, dtype=np.float32))

        def make_batch(positions: Sequence[int], epoch: int | None) -> tuple[torch.Tensor, ...]:
            if epoch is None or augment is None:
                clips = [waveforms[p] for p in positions]
            else:  # one generator per (seed, epoch, clip): the same augmentation however the run is split
                clips = [augment(waveforms[p], np.random.default_rng([self.seed, epoch, int(p)]))
                         for p in positions]
            batch = pad_batch(clips, minimum)
            return batch if extra is None else (*batch, extra[list(positions)])

        return make_batch

    def fit(self, waveforms: Sequence[np.ndarray], labels: Sequence[int], groups: Sequence[object] | None = None,
            corpora: Sequence[str | None] | None = None) -> DeepEmotionModel:
        """Train on `waveforms` (mono float32 at 16 kHz). `groups` (speaker ids, optional) makes the
        early-stopping validation split speaker-independent; without them it is stratified at random.
        `corpora` (one name per clip) is used by models that balance corpora (`_sample_weights`)."""
        from plugins.deep import runtime
        from plugins.deep.splits import validation_split
        from plugins.deep.training import train

        labels = np.asarray(labels, dtype=np.int64)
        if len(waveforms) != len(labels):
            raise ValueError(f"{len(waveforms)} waveforms but {len(labels)} labels")
        if len(labels) == 0 or len(np.unique(labels)) < 2:
            raise ValueError("training needs clips of at least two emotions")
        if labels.min() < 0 or labels.max() >= len(LABELS):
            raise ValueError(f"labels must be ids 0..{len(LABELS) - 1}")
        if corpora is not None and len(corpora) != len(labels):
            raise ValueError(f"{len(corpora)} corpus names but {len(labels)} labels")
        check_method(getattr(self, "calibrate", "temperature"))
        clips = [np.ascontiguousarray(w, dtype=np.float32) for w in waveforms]
        runtime.configure_threads(self.num_threads)
        runtime.seed_everything(self.seed)
        clip_inputs = self._clip_inputs(clips)
        train_positions, validation_positions = validation_split(labels, groups, self.validation_fraction, self.seed)
        self.network_ = self._new_network(
            [clips[i] for i in train_positions], labels[train_positions],
            None if clip_inputs is None else clip_inputs[train_positions],
        )
        weights = self._sample_weights(labels, corpora)
        result: TrainResult = train(
            self.network_, self._param_groups(),
            self._batch_maker(clips, self._augmentation([clips[i] for i in train_positions]), clip_inputs),
            [len(c) for c in clips], labels, train_positions, validation_positions, self._settings(),
            sample_weights=weights,
        )
        self.network_.eval()
        self.training_ = result.summary()
        self.calibration_ = self._fit_calibration(clips, clip_inputs, labels, groups, validation_positions)
        self._record_training_data(clips, labels)
        return self

    def _fit_calibration(self, clips: Sequence[np.ndarray], clip_inputs: Any, labels: np.ndarray,
                         groups: Sequence[object] | None, validation_positions: np.ndarray) -> Calibration:
        """A temperature on the logits of the early-stopping validation speakers (held out from training; the
        best epoch was chosen on them, a small optimism). Models without a `calibrate` parameter calibrate."""
        method = check_method(getattr(self, "calibrate", "temperature"))
        if method == "none":
            return Calibration(fitted_on={"skipped": "calibrate=none"})
        if not len(validation_positions):
            return skipped("no held-out validation speakers (set validation_fraction, e.g. 0.1)")
        if groups is None:
            return skipped("no speaker ids: the validation split shares speakers with training")
        logits = self._logits([clips[i] for i in validation_positions],
                              None if clip_inputs is None else clip_inputs[validation_positions])
        return fit_calibration(labels[validation_positions], logits, method,
                               speakers=len({str(groups[i]) for i in validation_positions}),
                               predictions="speaker-grouped early-stopping validation split")

    # -- inference ------------------------------------------------------------------------------------------
    def predict_proba(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.check_fitted()
        if len(waveforms) == 0:
            return np.zeros((0, len(LABELS)))
        clips = [np.ascontiguousarray(w, dtype=np.float32) for w in waveforms]
        return self.calibration_.apply_logits(self._logits(clips, self._clip_inputs(clips)))

    def _logits(self, clips: Sequence[np.ndarray], clip_inputs: Any) -> np.ndarray:
        from plugins.deep import runtime
        from plugins.deep.training import predict_logits

        runtime.configure_threads(self.num_threads)
        device = runtime.resolve_device(self.device)
        self.network_.to(device)
        logits = predict_logits(
            self.network_, [len(c) for c in clips], self._batch_maker(clips, None, clip_inputs),
            self.batch_size, device,
            runtime.resolve_precision(self.precision, device), f"{self.name} predicting",
        )
        return logits.double().numpy()

    # -- persistence -----------------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        manifest = super().manifest()
        manifest["training"] = getattr(self, "training_", {})
        return manifest

    def save(self, directory: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the model (on the first process only, when several train together)."""
        if is_secondary_process():
            return Path(directory)
        return super().save(directory, force=force)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmotionModel:
        from zoo.model import read_manifest

        model = super().load(directory)
        model.training_ = read_manifest(directory).get("training", {})  # type: ignore[attr-defined]
        return model
