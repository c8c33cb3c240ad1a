"""The emonet network: a small CNN on per-utterance normalised log-mel spectrograms, fused with the clip's
utterance-level `emorobust` statistics.

Two views of the same clip, each with its own linear head; the logits are their sum. The spectrogram branch
learns time-frequency patterns the statistics miss; the statistics branch carries the voice-quality and
spectral-balance cues that transfer across corpora. Each branch also gets its own loss while training
(in training mode the forward returns the fused logits and then each branch's), so neither leans on the
other. Everything after the statistics (standardisation included)
is in the module, so one ONNX graph holds it; the statistics themselves come from
`plugins.classic.features` natively and from `exporters.emostats_graph` in the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from plugins.deep.logmel_net import AttentiveStatsPool, ConvBlock, LogMel, spec_augment, time_mask
from zoo.labels import LABELS


class EmoNetNetwork(nn.Module):
    """waveform [batch, samples] + lengths [batch] + statistics [batch, n_stats] -> logits [batch, 6]."""

    def __init__(self, n_stats: int, n_mels: int = 64, channels: Sequence[int] = (16, 32, 64), hidden: int = 64,
                 dropout: float = 0.3, stats_dropout: float = 0.2, freq_masks: int = 2, freq_width: int = 8,
                 time_masks: int = 2, time_fraction: float = 0.1, level_normalise: bool = True) -> None:
        super().__init__()
        self.frontend = LogMel(n_mels=n_mels, level_normalise=level_normalise)
        self.spec = (freq_masks, freq_width, time_masks, time_fraction)
        blocks = []
        previous = 1
        for width in channels:
            blocks.append(ConvBlock(previous, width, 1))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = AttentiveStatsPool(previous, attention=True, hidden=hidden)
        self.spectrogram_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * previous, len(LABELS)))
        self.register_buffer("stats_mean", torch.zeros(n_stats))
        self.register_buffer("stats_scale", torch.ones(n_stats))
        self.stats_head = nn.Sequential(nn.Dropout(stats_dropout), nn.Linear(n_stats, len(LABELS)))

    def fit_standardization(self, statistics: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Mean and deviation of each statistic over the training clips (as scikit-learn's StandardScaler)."""
        values = np.asarray(statistics, dtype=np.float64)
        w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
        mean = (values * w[:, None]).sum(0) / w.sum()
        std = np.sqrt(((values - mean) ** 2 * w[:, None]).sum(0) / w.sum())
        std[std < 1e-8] = 1.0  # constant statistics stay at zero
        self.stats_mean.copy_(torch.from_numpy(mean).float())
        self.stats_scale.copy_(torch.from_numpy(std).float())

    def spectrogram_embedding(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features, frames = self.frontend(waveform, lengths)
        # per-utterance mean/variance normalisation of each band over the valid frames: removes the channel
        mask = time_mask(frames, features.shape[-1])[:, None, :]
        count = frames[:, None, None].float().clamp(min=1.0)
        mean = (features * mask).sum(-1, keepdim=True) / count
        std = torch.sqrt((((features - mean) * mask) ** 2).sum(-1, keepdim=True) / count + 1e-5)
        x = (features - mean) / std * mask
        if self.training:
            x = spec_augment(x, frames, *self.spec)
        x = x[:, None]
        for block in self.blocks:
            x, frames = block(x, frames)
        return self.pool(x.mean(2), frames)

    def branch_logits(self, waveform: torch.Tensor, lengths: torch.Tensor,
                      statistics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(spectrogram logits, statistics logits); their sum is the network's output."""
        spectrogram = self.spectrogram_head(self.spectrogram_embedding(waveform, lengths))
        standardized = (statistics.float() - self.stats_mean) / self.stats_scale
        return spectrogram, self.stats_head(standardized)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor,
                statistics: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        spectrogram, stats = self.branch_logits(waveform, lengths, statistics)
        if self.training:  # the training loop adds a loss on each branch (TrainSettings.auxiliary_weight)
            return spectrogram + stats, spectrogram, stats
        return spectrogram + stats
