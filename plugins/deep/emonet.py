"""emonet: a small CNN on per-utterance normalised log-mel spectrograms fused with the clip's `emorobust`
utterance statistics (plugins.deep.emonet_net), trained from scratch on corpus- and class-balanced losses.

The statistics are computed by plugins.classic (cached per clip, like the classic models' features) and fed
to the network next to the waveform; the ONNX export rebuilds them inside the graph (exporters.emostats_graph),
so the exported file still goes from waveform to probabilities.
Saved as ``model.safetensors`` (weights, standardisation, filterbank) next to manifest.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from plugins.deep.base import SAMPLE_RATE, DeepEmotionModel
from zoo.errors import EmozooError, ModelFileError
from zoo.model import as_recorded

if TYPE_CHECKING:
    from torch import nn

    from plugins.classic.features import EmoStatsConfig
    from plugins.deep.augment import WaveAugment

WEIGHTS = "model.safetensors"
STATISTICS = "emorobust-nf"  # the default statistics feature set (the classic models' default)


class EmoNet(DeepEmotionModel):
    name = "emonet"
    family = "emonet"

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64),
        n_mels: int = 64,
        dropout: float = 0.3,
        stats_dropout: float = 0.2,
        auxiliary_weight: float = 0.5,
        balance: str = "corpus",
        lr: float = 3e-3,
        weight_decay: float = 0.01,
        epochs: int = 12,
        batch_size: int = 32,
        grad_accum: int = 1,
        warmup_ratio: float = 0.1,
        schedule: str = "cosine",
        patience: int | None = None,
        validation_fraction: float = 0.0,
        label_smoothing: float = 0.1,
        max_train_seconds: float | None = 3.0,
        speed: float = 0.1,
        gain_db: float = 6.0,
        noise_snr_db: Sequence[float] | None = (10.0, 30.0),
        spec_augment: bool = True,
        statistics: str = STATISTICS,
        statistics_augment: str | None = "default",
        statistics_augment_probability: float = 0.5,
        augment: str | None = None,
        augment_probability: float = 0.5,
        level_normalise: bool = True,
        use_cache: bool = True,
        n_jobs: int | None = None,
        precision: str = "auto",
        device: str = "auto",
        seed: int = 0,
        num_threads: int | None = None,
        checkpoint_dir: str | None = None,
        resume_from: str | None = None,
        epochs_per_run: int | None = None,
    ) -> None:
        self.channels = channels
        self.n_mels = n_mels
        self.dropout = dropout
        self.stats_dropout = stats_dropout
        self.auxiliary_weight = auxiliary_weight
        self.balance = balance
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
        self.statistics = statistics
        self.statistics_augment = statistics_augment
        self.statistics_augment_probability = statistics_augment_probability
        self.augment = augment
        self.augment_probability = augment_probability
        self.level_normalise = level_normalise
        self.use_cache = use_cache
        self.n_jobs = n_jobs
        self.precision = precision
        self.device = device
        self.seed = seed
        self.num_threads = num_threads
        self.checkpoint_dir = checkpoint_dir
        self.resume_from = resume_from
        self.epochs_per_run = epochs_per_run

    @property
    def statistics_config(self) -> EmoStatsConfig:
        from plugins.classic.features import EmoStatsConfig, feature_config

        config = feature_config(self.statistics)
        if not isinstance(config, EmoStatsConfig):
            raise EmozooError(f"statistics must be an emostats feature set (emorobust, emorobust-nf, emostats), "
                              f"not {self.statistics!r}")
        return config

    def feature_config(self) -> dict[str, Any]:
        return {"sample_rate": SAMPLE_RATE, "n_fft": 512, "win_length": 400, "hop_length": 160,
                "n_mels": self.n_mels, "fmin": 50.0, "log_floor": 1e-6, "normalization": "utterance",
                "statistics": self.statistics_config.as_dict()}

    def _check(self) -> None:
        from zoo.balance import BALANCE_MODES

        try:
            self.statistics_config  # noqa: B018 (a bad feature set name fails before training)
        except ValueError as error:
            raise EmozooError(f"statistics: {error}") from None
        channels = list(self.channels) if isinstance(self.channels, (list, tuple)) else None
        if not channels or not all(isinstance(c, int) and c > 0 for c in channels):
            raise EmozooError(f"channels must be a list of positive integers, e.g. [16,32,64]; got {self.channels!r}")
        if self.balance not in BALANCE_MODES:
            raise EmozooError(f"balance must be one of {', '.join(BALANCE_MODES)}, not {self.balance!r}")
        if self.noise_snr_db is not None and len(self.noise_snr_db) != 2:
            raise EmozooError(f"noise_snr_db must be [low, high] in dB or None, got {self.noise_snr_db!r}")
        if self.auxiliary_weight < 0:
            raise EmozooError(f"auxiliary_weight must be at least 0, got {self.auxiliary_weight!r}")
        if not 0 <= self.statistics_augment_probability <= 1:
            raise EmozooError("statistics_augment_probability must be in [0, 1], "
                              f"got {self.statistics_augment_probability!r}")
        if not isinstance(self.level_normalise, bool):
            raise EmozooError(f"level_normalise must be true or false, got {self.level_normalise!r}")
        from plugins.deep.augment import chain_augmenter

        chain_augmenter(self.augment, self.augment_probability, self.seed)  # a bad spec fails before training

    def _build(self, n_statistics: int) -> nn.Module:
        from plugins.deep.emonet_net import EmoNetNetwork

        self._check()
        network = EmoNetNetwork(n_statistics, n_mels=self.n_mels, channels=tuple(self.channels),
                                dropout=self.dropout, stats_dropout=self.stats_dropout,
                                level_normalise=self.level_normalise)
        if not self.spec_augment:
            network.spec = (0, 0, 0, 0.0)
        return network

    # -- DeepEmotionModel hooks ----------------------------------------------------------------------------
    def _clip_inputs(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        from plugins.classic.extraction import extract_many
        from zoo.cache import FeatureCache

        cache = FeatureCache() if self.use_cache else None
        return extract_many(waveforms, self.statistics_config, n_jobs=self.n_jobs, cache=cache)

    def fit(self, waveforms: Sequence[np.ndarray], labels: Sequence[int], groups: Sequence[object] | None = None,
            corpora: Sequence[str | None] | None = None) -> EmoNet:
        self._check()
        clips = [np.ascontiguousarray(w, dtype=np.float32) for w in waveforms]
        self._statistics_copies = self._augmented_statistics(clips)
        try:
            return super().fit(clips, labels, groups, corpora)  # type: ignore[return-value]
        finally:
            self._statistics_copies = None  # training only: not kept on the fitted model

    def _augmented_statistics(self, clips: Sequence[np.ndarray]) -> np.ndarray | None:
        """Statistics of one degraded copy of every training clip (`statistics_augment`: zoo.augment kinds).

        The same copies as the classic models' `augment=` (plugins.classic.models.training_augmenter, same
        seed), so they come from the feature cache when a classic model was trained on these clips."""
        if self.statistics_augment is None or self.statistics_augment_probability == 0:
            return None
        from plugins.classic.extraction import extract_augmented
        from plugins.classic.models import training_augmenter
        from zoo.cache import FeatureCache

        try:
            augmenter = training_augmenter(str(self.statistics_augment), self.seed, clips, SAMPLE_RATE)
        except ValueError as error:
            raise EmozooError(f"statistics_augment={self.statistics_augment!r}: {error}") from None
        if augmenter is None:
            return None
        return extract_augmented(clips, self.statistics_config, augmenter, 1, n_jobs=self.n_jobs,
                                 cache=FeatureCache() if self.use_cache else None)

    def _batch_maker(self, waveforms: Sequence[np.ndarray], augment: WaveAugment | None,
                     clip_inputs: np.ndarray | None = None) -> Any:
        make_batch = super()._batch_maker(waveforms, augment, clip_inputs)
        copies = getattr(self, "_statistics_copies", None)
        if copies is None or augment is None:
            return make_batch
        import torch

        copies_tensor = torch.from_numpy(np.asarray(copies, dtype=np.float32))
        probability = float(self.statistics_augment_probability)

        def with_degraded_statistics(positions: Sequence[int], epoch: int | None) -> tuple[Any, ...]:
            *signal, statistics = make_batch(positions, epoch)
            if epoch is None:
                return (*signal, statistics)
            # per (seed, epoch, clip), like the waveform augmentation: a resumed run draws the same
            swap = [np.random.default_rng([self.seed, epoch, int(p), 1]).random() < probability for p in positions]
            if any(swap):
                statistics = statistics.clone()
                rows = [i for i, s in enumerate(swap) if s]
                statistics[rows] = copies_tensor[[int(positions[i]) for i in rows]]
            return (*signal, statistics)

        return with_degraded_statistics

    def _sample_weights(self, labels: np.ndarray, corpora: Sequence[str | None] | None) -> np.ndarray | None:
        from zoo.balance import balanced_sample_weights

        return balanced_sample_weights(labels, corpora, self.balance)

    def _auxiliary_weight(self) -> float:
        return float(self.auxiliary_weight)

    def _new_network(self, waveforms: Sequence[np.ndarray], labels: np.ndarray,
                     clip_inputs: np.ndarray | None = None) -> nn.Module:
        if clip_inputs is None:
            raise EmozooError("emonet needs the clips' statistics to build its network")
        network = self._build(clip_inputs.shape[1])
        network.fit_standardization(clip_inputs)
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

    # -- persistence -----------------------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        from plugins.deep.checkpoint import save_weights

        save_weights(self.network_, directory / WEIGHTS)

    def _load_weights(self, directory: Path, manifest: dict[str, Any]) -> None:
        from plugins.deep.checkpoint import install_weights, read_weights

        path = directory / WEIGHTS
        state = read_weights(path)
        saved = manifest.get("feature_config", {}).get("statistics")
        if "statistics" not in manifest.get("params", {}) and isinstance(saved, dict):
            from plugins.classic.features import default_meant

            # saved before the option existed, with the statistics its manifest names
            self.statistics = default_meant(saved)
        if saved != as_recorded(self.statistics_config.as_dict()):
            raise ModelFileError(f"{directory}: saved with other statistics settings than this emozoo computes "
                                 f"({self.statistics}); retrain the model")
        if "stats_mean" not in state:
            raise ModelFileError(f"{path}: not emonet weights (no stats_mean)")
        if "level_normalise" not in manifest.get("params", {}):
            self.level_normalise = False  # saved before the option existed: its network never normalised the level
        self.network_ = install_weights(self._build(int(state["stats_mean"].shape[0])), state, path)
