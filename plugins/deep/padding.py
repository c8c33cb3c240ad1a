"""Keep zero padding out of a speech backbone, so that a clip in a padded batch is exactly the clip alone.

Three layers of the Hugging Face speech models see past a row's end even with an attention mask:
- the feature encoder's GroupNorm over time (feat_extract_norm="group": wav2vec2-base, HuBERT-base, WavLM,
  UniSpeech...) takes its statistics over the whole padded row. Measured on a wav2vec2-base-sized model:
  |dp| 7.6e-3 between a clip alone and the same clip beside a longer one;
- a positional convolution of several layers (data2vec-audio): the encoder zeroes padded frames once, but
  the first layer writes into them and the next reads that back (|dp| 3e-3 on a tiny data2vec-audio);
- the depthwise convolution over time in every conformer layer (wav2vec2-conformer) reads the padded
  frames' hidden states (|dp| 1.5e-2 on a tiny wav2vec2-conformer).
All are swapped for versions with the same weights (the same state-dict keys, so save_pretrained
directories stay as they are) that use each row's frame count while `PaddingMasks.applied` holds it.
Without padding they compute exactly what the originals do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def _frame_mask(frame_counts: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """[batch, 1, frames] of 1 on each row's first `frame_counts` frames of `values` [batch, ., frames], else 0."""
    positions = torch.arange(values.shape[-1], device=values.device)
    return (positions[None, :] < frame_counts[:, None]).to(values.dtype)[:, None, :]


class MaskedGroupNorm(nn.GroupNorm):
    """nn.GroupNorm whose statistics cover each row's first `frame_counts` frames only."""

    frame_counts: torch.Tensor | None = None

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        if self.frame_counts is None:
            return super().forward(values)
        batch, channels, frames = values.shape
        grouped = values.reshape(batch, self.num_groups, -1, frames)
        weight = _frame_mask(self.frame_counts, values)[:, :, None, :]  # [batch, 1, 1, frames]
        count = (weight.sum(dim=(2, 3), keepdim=True) * grouped.shape[2]).clamp(min=1.0)
        mean = (grouped * weight).sum(dim=(2, 3), keepdim=True) / count
        variance = (((grouped - mean) * weight) ** 2).sum(dim=(2, 3), keepdim=True) / count
        normalised = ((grouped - mean) / torch.sqrt(variance + self.eps)).reshape(batch, channels, frames)
        if self.affine:
            normalised = normalised * self.weight[None, :, None] + self.bias[None, :, None]
        return normalised


class MaskedConvStack(nn.Module):
    """A stack of positional convolution layers ([batch, hidden, frames] each) whose output past each row's
    `frame_counts` is zeroed after every layer, as the zero padding of a row on its own would be."""

    frame_counts: torch.Tensor | None = None

    def __init__(self, layers: nn.ModuleList) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states.transpose(1, 2)
        mask = None if self.frame_counts is None else _frame_mask(self.frame_counts, hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if mask is not None:
                hidden_states = hidden_states * mask
        return hidden_states.transpose(1, 2)


class MaskedConv1d(nn.Conv1d):
    """nn.Conv1d over [batch, channels, frames] that first zeroes each row's input past `frame_counts`."""

    frame_counts: torch.Tensor | None = None

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        if self.frame_counts is not None:
            values = values * _frame_mask(self.frame_counts, values)
        return super().forward(values)


def _mask_group_norm(backbone: nn.Module) -> tuple[MaskedGroupNorm, int, int] | None:
    """The first feature-encoder layer's GroupNorm swapped for a MaskedGroupNorm, with that layer's conv
    kernel and stride (to count its output frames)."""
    layers = getattr(getattr(backbone, "feature_extractor", None), "conv_layers", None)
    first = layers[0] if layers is not None and len(layers) else None
    norm = getattr(first, "layer_norm", None)
    conv = getattr(first, "conv", None)
    if not isinstance(norm, nn.GroupNorm) or not isinstance(conv, nn.Conv1d):
        return None
    if not isinstance(norm, MaskedGroupNorm):
        masked = MaskedGroupNorm(norm.num_groups, norm.num_channels, norm.eps, norm.affine)
        masked.load_state_dict(norm.state_dict())
        first.layer_norm = masked.to(norm.weight.device) if norm.affine else masked
    return first.layer_norm, int(conv.kernel_size[0]), int(conv.stride[0])


def _mask_positional_stack(backbone: nn.Module) -> MaskedConvStack | None:
    """A multi-layer positional convolution (a `layers` ModuleList) wrapped in a MaskedConvStack."""
    encoder = getattr(backbone, "encoder", None)
    positional = getattr(encoder, "pos_conv_embed", None)
    layers = getattr(positional, "layers", None)
    if isinstance(positional, MaskedConvStack):
        return positional
    if not isinstance(layers, nn.ModuleList) or len(layers) < 2:
        return None  # one convolution over frames the encoder has zeroed reads zeros past the end: exact
    stack = MaskedConvStack(layers)
    encoder.pos_conv_embed = stack
    return stack


def _mask_depthwise_convs(backbone: nn.Module) -> list[MaskedConv1d]:
    """Each conformer layer's depthwise convolution over time swapped for a MaskedConv1d."""
    masked = []
    for layer in getattr(getattr(backbone, "encoder", None), "layers", None) or []:
        module = getattr(layer, "conv_module", None)
        conv = getattr(module, "depthwise_conv", None)
        if not isinstance(conv, nn.Conv1d):
            continue
        if not isinstance(conv, MaskedConv1d):
            replacement = MaskedConv1d(
                conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.bias is not None, conv.padding_mode,
            ).to(conv.weight.device, conv.weight.dtype)
            replacement.load_state_dict(conv.state_dict())
            module.depthwise_conv = replacement
        masked.append(module.depthwise_conv)
    return masked


class PaddingMasks:
    """Installs the masked layers in `backbone` and gives them each batch's lengths (`applied`)."""

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        self.group_norm = _mask_group_norm(backbone)
        self.positional = _mask_positional_stack(backbone)
        self.depthwise = _mask_depthwise_convs(backbone)

    def _frame_counts(self, lengths: torch.Tensor) -> torch.Tensor:
        try:
            return self.backbone._get_feat_extract_output_lengths(lengths, add_adapter=False)
        except TypeError:  # models without adapters take no such argument
            return self.backbone._get_feat_extract_output_lengths(lengths)

    @contextmanager
    def applied(self, lengths: torch.Tensor) -> Iterator[None]:
        """While inside, the masked layers count only each row's own frames (`lengths` in samples)."""
        if self.group_norm is not None:
            norm, kernel, stride = self.group_norm
            norm.frame_counts = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        frame_level: list[MaskedConvStack | MaskedConv1d] = [*self.depthwise]
        if self.positional is not None:
            frame_level.append(self.positional)
        counts = self._frame_counts(lengths) if frame_level else None
        for module in frame_level:
            module.frame_counts = counts
        try:
            yield
        finally:
            if self.group_norm is not None:
                self.group_norm[0].frame_counts = None
            for module in frame_level:
                module.frame_counts = None
