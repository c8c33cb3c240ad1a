"""A compact CNN on log-mel spectrograms, with the spectrogram computed by torch ops inside the module
(one ONNX graph from waveform to probabilities) and masks so padding never changes a clip's result."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from plugins.classic.features import LEVEL_FLOOR  # one floor for every family: digital silence is left unscaled
from zoo.labels import LABELS

NORMALIZATIONS = ("global", "utterance")
POOLINGS = ("attention", "stats")
FREQUENCY_POOLINGS = ("flatten", "mean")


def normalise_level(waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each clip divided by the RMS of its valid samples (padding is zero and stays zero), so the log-mel
    floor sits at the same distance below the speech whatever the recording level."""
    waveform = waveform.float()
    energy = (waveform * waveform).sum(dim=1) / lengths.clamp(min=1).float()
    rms = torch.sqrt(energy)
    scale = torch.where(rms < LEVEL_FLOOR, torch.ones_like(rms), 1.0 / rms.clamp(min=LEVEL_FLOOR))
    return waveform * scale[:, None]


class LogMel(nn.Module):
    """waveform [batch, samples] + lengths -> log-mel [batch, n_mels, frames] + valid frames [batch]; with
    `level_normalise` each clip is first divided by its RMS, so its level changes nothing."""

    def __init__(self, sample_rate: int = 16_000, n_fft: int = 512, win_length: int = 400, hop_length: int = 160,
                 n_mels: int = 64, fmin: float = 50.0, fmax: float | None = None,
                 level_normalise: bool = False) -> None:
        super().__init__()
        import librosa

        self.level_normalise = level_normalise

        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        window = torch.zeros(n_fft)
        offset = (n_fft - win_length) // 2
        window[offset : offset + win_length] = torch.hann_window(win_length, periodic=True)
        filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                      fmax=fmax or sample_rate / 2)
        self.register_buffer("window", window)
        self.register_buffer("mel_filters", torch.tensor(filters, dtype=torch.float32))

    def frames(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.level_normalise:
            waveform = normalise_level(waveform, lengths)
        padded = F.pad(waveform.float(), (self.n_fft // 2, self.n_fft // 2))
        with warnings.catch_warnings():
            # real output on purpose: torch.onnx exports STFT (opset 17) only without complex tensors
            warnings.filterwarnings("ignore", message="stft with return_complex=False is deprecated")
            spectrum = torch.stft(padded, self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
                                  window=self.window, center=False, onesided=True, return_complex=False)
        power = spectrum[..., 0] ** 2 + spectrum[..., 1] ** 2  # [batch, n_fft // 2 + 1, frames]
        mel = torch.matmul(self.mel_filters, power)
        return torch.log(mel + 1e-6), self.frames(lengths)


def time_mask(frames: torch.Tensor, size: int) -> torch.Tensor:
    """[batch, size] float mask, 1 on the valid frames."""
    return (torch.arange(size, device=frames.device)[None, :] < frames[:, None]).float()


def spec_augment(features: torch.Tensor, frames: torch.Tensor, freq_masks: int, freq_width: int,
                 time_masks: int, time_fraction: float) -> torch.Tensor:
    """SpecAugment: zero random bands of mel channels and of (valid) frames, independently per clip."""
    batch, bands, size = features.shape
    keep = torch.ones_like(features)
    band_index = torch.arange(bands, device=features.device)[None, :]
    frame_index = torch.arange(size, device=features.device)[None, :]
    for _ in range(freq_masks):
        width = torch.randint(0, freq_width + 1, (batch, 1), device=features.device)
        start = (torch.rand(batch, 1, device=features.device) * (bands - width + 1)).floor()
        keep = keep * ~((band_index >= start) & (band_index < start + width))[:, :, None]
    for _ in range(time_masks):
        limit = (frames.float() * time_fraction).floor()[:, None]
        width = (torch.rand(batch, 1, device=features.device) * (limit + 1)).floor()
        start = (torch.rand(batch, 1, device=features.device) * (frames[:, None].float() - width + 1)).floor()
        keep = keep * ~((frame_index >= start) & (frame_index < start + width))[:, None, :]
    return features * keep


class ConvBlock(nn.Module):
    """3x3 convolution (stride 2 over mel and time), batch norm, ReLU, then `depth - 1` more 3x3 convolutions
    at stride 1 (batch norm, ReLU); padded frames are set back to zero after each."""

    def __init__(self, channels_in: int, channels_out: int, depth: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels_out)
        self.more = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False), nn.BatchNorm2d(channels_out))
            for _ in range(depth - 1)
        )

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.div(frames + 1, 2, rounding_mode="floor")  # ceil(frames / 2): the stride-2 output
        x = F.relu(self.norm(self.conv(x)))
        mask = time_mask(frames, x.shape[-1])[:, None, None, :]
        x = x * mask
        for layer in self.more:
            x = F.relu(layer(x)) * mask
        return x, frames


class AttentiveStatsPool(nn.Module):
    """Weighted mean and standard deviation over valid frames; weights from a small attention net or uniform."""

    def __init__(self, channels: int, attention: bool, hidden: int = 64) -> None:
        super().__init__()
        self.attention = (
            nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, 1, 1)) if attention else None
        )

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        mask = time_mask(frames, x.shape[-1])
        if self.attention is not None:
            scores = self.attention(x)[:, 0].masked_fill(mask == 0, -1e4)
            weights = torch.softmax(scores, dim=1)
        else:
            weights = mask / mask.sum(1, keepdim=True).clamp(min=1.0)
        mean = (x * weights[:, None, :]).sum(-1)
        variance = (((x - mean[..., None]) ** 2) * weights[:, None, :]).sum(-1)
        return torch.cat([mean, torch.sqrt(variance.clamp(min=1e-6))], dim=1)


class LogMelCNNNet(nn.Module):
    """waveform [batch, samples] + lengths [batch] -> logits [batch, 6]."""

    def __init__(self, n_mels: int = 64, channels: Sequence[int] = (16, 32, 64, 64), pooling: str = "attention",
                 normalization: str = "global", dropout: float = 0.3, freq_masks: int = 2, freq_width: int = 8,
                 time_masks: int = 2, time_fraction: float = 0.1, block_depth: int = 1,
                 frequency_pooling: str = "flatten", level_normalise: bool = True) -> None:
        super().__init__()
        self.frontend = LogMel(n_mels=n_mels, level_normalise=level_normalise)
        self.normalization = normalization
        self.register_buffer("band_mean", torch.zeros(n_mels, 1))
        self.register_buffer("band_std", torch.ones(n_mels, 1))
        self.spec = (freq_masks, freq_width, time_masks, time_fraction)
        blocks = []
        previous = 1
        for width in channels:
            blocks.append(ConvBlock(previous, width, block_depth))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        bands = n_mels
        for _ in channels:
            bands = (bands + 1) // 2
        # "flatten" keeps where in frequency a pattern is (channels x remaining bands per frame); "mean" averages
        self.frequency_pooling = frequency_pooling
        features = previous * bands if frequency_pooling == "flatten" else previous
        self.pool = AttentiveStatsPool(features, attention=pooling == "attention")
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * features, len(LABELS))

    @torch.no_grad()
    def fit_normalization(self, waveforms: Sequence[np.ndarray], batch_size: int = 32) -> None:
        """Per-band mean and deviation of the log-mel over every valid frame of the training clips."""
        from plugins.deep.batching import inference_batches, pad_batch

        total = torch.zeros(self.band_mean.shape[0], dtype=torch.float64)
        squares = torch.zeros_like(total)
        count = 0
        for batch in inference_batches([len(w) for w in waveforms], batch_size):
            waveform, lengths = pad_batch([waveforms[i] for i in batch])
            features, frames = self.frontend(waveform, lengths)
            mask = time_mask(frames, features.shape[-1])[:, None, :].double()
            values = features.double() * mask
            total += values.sum((0, 2))
            squares += (values * features.double()).sum((0, 2))
            count += int(frames.sum())
        mean = total / max(count, 1)
        std = torch.sqrt((squares / max(count, 1) - mean**2).clamp(min=1e-8))
        self.band_mean.copy_(mean.float()[:, None])
        self.band_std.copy_(std.float()[:, None])

    def normalize(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        mask = time_mask(frames, features.shape[-1])[:, None, :]
        if self.normalization == "utterance":
            count = frames[:, None, None].float().clamp(min=1.0)
            mean = (features * mask).sum(-1, keepdim=True) / count
            std = torch.sqrt((((features - mean) * mask) ** 2).sum(-1, keepdim=True) / count + 1e-5)
            return (features - mean) / std * mask
        return (features - self.band_mean) / self.band_std * mask

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features, frames = self.frontend(waveform, lengths)
        x = self.normalize(features, frames)
        if self.training:
            x = spec_augment(x, frames, *self.spec)
        x = x[:, None]
        for block in self.blocks:
            x, frames = block(x, frames)
        x = x.flatten(1, 2) if self.frequency_pooling == "flatten" else x.mean(2)
        pooled = self.pool(x, frames)
        return self.classifier(self.dropout(pooled))
