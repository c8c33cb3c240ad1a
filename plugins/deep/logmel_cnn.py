"""logmel-cnn: a compact CNN on 64-band log-mel spectrograms, trained from scratch (no pretrained weights).

The log-mel is computed with torch ops inside the network, so one ONNX graph runs waveform to probabilities.
Training augments waveforms (random crop, speed, gain, noise; with ``augment=SPEC`` also chains of
zoo.augment degradations on a share ``augment_probability`` of the clips) and spectrograms (SpecAugment masks).
Saved as ``model.safetensors`` (weights, normalisation statistics, filterbank) next to manifest.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from plugins.deep.base import SAMPLE_RATE, DeepEmotionModel
from zoo.errors import EmozooError

if TYPE_CHECKING:
    from torch import nn

    from plugins.deep.augment import WaveAugment

WEIGHTS = "model.safetensors"


class LogMelCNN(DeepEmotionModel):
    name = "logmel-cnn"
    family = "logmel-cnn"

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64, 64),
        pooling: str = "attention",
        frequency_pooling: str = "flatten",
        block_depth: int = 2,
        normalization: str = "global",
        dropout: float = 0.3,
        n_mels: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 0.01,
        epochs: int = 24,
        batch_size: int = 32,
        grad_accum: int = 1,
        warmup_ratio: float = 0.1,
        schedule: str = "cosine",
        patience: int | None = None,
        validation_fraction: float = 0.0,
        label_smoothing: float = 0.1,
        max_train_seconds: float | None = 2.5,
        speed: float = 0.1,
        gain_db: float = 6.0,
        noise_snr_db: Sequence[float] | None = (10.0, 30.0),
        spec_augment: bool = True,
        augment: str | None = None,
        augment_probability: float = 0.5,
        level_normalise: bool = True,
        precision: str = "auto",
        device: str = "auto",
        seed: int = 0,
        num_threads: int | None = None,
        checkpoint_dir: str | None = None,
        resume_from: str | None = None,
        epochs_per_run: int | None = None,
        calibrate: str = "temperature",
    ) -> None:
        self.channels = channels
        self.pooling = pooling
        self.frequency_pooling = frequency_pooling
        self.block_depth = block_depth
        self.normalization = normalization
        self.dropout = dropout
        self.n_mels = n_mels
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.warmup_ratio = warmup_ratio
        self.schedule = schedule
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.label_smoothing = label_smoothing
        self.max_train_seconds = max_train_seconds
        self.speed = speed
        self.gain_db = gain_db
        self.noise_snr_db = noise_snr_db
        self.spec_augment = spec_augment
        self.augment = augment
        self.augment_probability = augment_probability
        self.level_normalise = level_normalise
        self.precision = precision
        self.device = device
        self.seed = seed
        self.num_threads = num_threads
        self.checkpoint_dir = checkpoint_dir
        self.resume_from = resume_from
        self.epochs_per_run = epochs_per_run
        self.calibrate = calibrate

    def feature_config(self) -> dict[str, Any]:
        return {"sample_rate": SAMPLE_RATE, "n_fft": 512, "win_length": 400, "hop_length": 160,
                "n_mels": self.n_mels, "fmin": 50.0, "log_floor": 1e-6, "normalization": self.normalization}

    def _check(self) -> None:
        from plugins.deep.logmel_net import FREQUENCY_POOLINGS, NORMALIZATIONS, POOLINGS

        if self.normalization not in NORMALIZATIONS:
            raise EmozooError(f"normalization {self.normalization!r} is not one of {', '.join(NORMALIZATIONS)}")
        if self.frequency_pooling not in FREQUENCY_POOLINGS:
            raise EmozooError(f"frequency_pooling {self.frequency_pooling!r} is not one of "
                              f"{', '.join(FREQUENCY_POOLINGS)}")
        if not isinstance(self.block_depth, int) or self.block_depth < 1:
            raise EmozooError(f"block_depth must be a positive integer, got {self.block_depth!r}")
        if self.pooling not in POOLINGS:
            raise EmozooError(f"pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        channels = list(self.channels) if isinstance(self.channels, (list, tuple)) else None
        if not channels or not all(isinstance(c, int) and c > 0 for c in channels):
            raise EmozooError(
                f"channels must be a list of positive integers, e.g. [16,32,64,64]; got {self.channels!r}"
            )
        if self.noise_snr_db is not None and len(self.noise_snr_db) != 2:
            raise EmozooError(f"noise_snr_db must be [low, high] in dB or None, got {self.noise_snr_db!r}")
        from plugins.deep.augment import chain_augmenter

        chain_augmenter(self.augment, self.augment_probability, self.seed)  # a bad spec fails before training
        if not isinstance(self.level_normalise, bool):
            raise EmozooError(f"level_normalise must be true or false, got {self.level_normalise!r}")

    def _build(self) -> nn.Module:
        from plugins.deep.logmel_net import LogMelCNNNet

        self._check()
        network = LogMelCNNNet(n_mels=self.n_mels, channels=tuple(self.channels), pooling=self.pooling,
                               normalization=self.normalization, dropout=self.dropout, block_depth=self.block_depth,
                               frequency_pooling=self.frequency_pooling, level_normalise=self.level_normalise)
        if not self.spec_augment:
            network.spec = (0, 0, 0, 0.0)
        return network

    def _new_network(self, waveforms: Sequence[np.ndarray], labels: np.ndarray,
                     clip_inputs: np.ndarray | None = None) -> nn.Module:
        network = self._build()
        if self.normalization == "global":
            network.fit_normalization(waveforms)
        return network

    def _param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.network_.parameters() if p.requires_grad], "lr": self.lr}]

    def _augmentation(self, pool: Sequence[np.ndarray] = ()) -> WaveAugment:
        from plugins.deep.augment import WaveAugment, chain_augmenter

        return WaveAugment(
            max_samples=int(self.max_train_seconds * SAMPLE_RATE) if self.max_train_seconds else None,
            speed=self.speed, gain_db=self.gain_db,
            noise_snr_db=tuple(self.noise_snr_db) if self.noise_snr_db is not None else None,  # type: ignore[arg-type]
            chain=chain_augmenter(self.augment, self.augment_probability, self.seed, pool),
            chain_probability=self.augment_probability, sample_rate=SAMPLE_RATE,
        )

    def _save_weights(self, directory: Path) -> None:
        from plugins.deep.checkpoint import save_weights

        save_weights(self.network_, directory / WEIGHTS)

    def _load_weights(self, directory: Path, manifest: dict[str, Any]) -> None:
        from plugins.deep.checkpoint import install_weights, read_weights

        path = directory / WEIGHTS
        if "level_normalise" not in manifest.get("params", {}):
            self.level_normalise = False  # saved before the option existed: its network never normalised the level
        self.network_ = install_weights(self._build(), read_weights(path), path)
