"""A self-supervised speech backbone (wav2vec 2.0, HuBERT, WavLM, ... through transformers' Auto classes)
with a six-way head on hidden states mean-pooled over the valid (unpadded) frames only."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import torch
from torch import nn

from plugins.deep.padding import PaddingMasks
from zoo.errors import EmozooError
from zoo.labels import LABELS

TINY = "tiny"
# model types whose base model maps raw 16 kHz waveforms to frame features and knows its frame lengths
SPEECH_MODEL_TYPES = (
    "wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat", "sew",
    "sew-d",
)
# these take log-mel input features from their own feature extractor, not waveforms
FEATURE_INPUT_MODEL_TYPES = ("wav2vec2-bert",)
PREPROCESSOR_CONFIG = "preprocessor_config.json"


def tiny_config() -> Any:
    """A randomly initialised wav2vec 2.0 small enough to fine-tune on a CPU in seconds (tests, smoke runs)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32, 32), conv_kernel=(20, 16, 8), conv_stride=(10, 8, 4),  # 320 samples per frame
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="layer",
        do_stable_layer_norm=True, mask_time_prob=0.05, mask_time_length=2, layerdrop=0.0, vocab_size=8,
    )


def _offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in {"1", "true", "yes", "on"}
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the Hub (HF_ENDPOINT) opens within `timeout` seconds, name lookup included.

    Without network, transformers can wait minutes before failing; this probe turns that into a prompt,
    clear error (or a load from the local cache)."""
    endpoint = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    answer: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=probe, daemon=True)  # a name lookup ignores socket timeouts
    worker.start()
    worker.join(timeout + 1.0)
    return bool(answer and answer[0])


def quiet_transformers() -> None:
    """No transformers progress bars (loading/writing weights) where emozoo shows none either."""
    if os.environ.get("EMOZOO_QUIET") or not sys.stderr.isatty():
        from transformers.utils import logging

        logging.disable_progress_bar()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", ".\\")) or os.path.isabs(spec) or spec in {".", ".."}


def load_backbone(spec: str, *, safetensors_only: bool = False) -> tuple[nn.Module, bool]:
    """Return (base model, whether its feature extractor normalises waveforms) for "tiny", a directory or a
    hub id. Loading from the hub honours HF_HUB_OFFLINE; every failure is one EmozooError saying what to do."""
    from transformers import AutoConfig, AutoModel

    quiet_transformers()
    if spec == TINY:
        return AutoModel.from_config(tiny_config()), True
    local = Path(spec).expanduser()
    if local.is_dir():
        source = str(local)
        if not (local / "config.json").is_file():
            raise EmozooError(f"backbone={spec}: the directory has no config.json (save it with save_pretrained)")
    elif _looks_like_path(spec):
        raise EmozooError(f"backbone={spec}: no such directory")
    else:
        source = spec
    offline = _offline()
    unreachable = False
    if not offline and not local.is_dir() and not hub_reachable():
        offline = unreachable = True  # the local Hugging Face cache may still have it
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=offline)
    except OSError as error:
        raise EmozooError(_load_failure(spec, local.is_dir(), offline and not unreachable, error)) from None
    except ValueError as error:
        raise EmozooError(f"backbone={spec}: not a transformers model configuration ({error})") from None
    if config.model_type in FEATURE_INPUT_MODEL_TYPES:
        raise EmozooError(
            f"backbone={spec}: {config.model_type} takes log-mel input features, not waveforms; this plugin "
            f"feeds waveforms (supported: {', '.join(SPEECH_MODEL_TYPES)})"
        )
    if config.model_type not in SPEECH_MODEL_TYPES:
        raise EmozooError(
            f"backbone={spec}: model type {config.model_type!r} is not a self-supervised speech model "
            f"(supported: {', '.join(SPEECH_MODEL_TYPES)})"
        )
    try:
        backbone = AutoModel.from_pretrained(
            source, config=config, local_files_only=offline, use_safetensors=True if safetensors_only else None
        )
    except OSError as error:
        raise EmozooError(_load_failure(spec, local.is_dir(), offline and not unreachable, error)) from None
    if not hasattr(backbone, "_get_feat_extract_output_lengths"):
        raise EmozooError(f"backbone={spec}: {type(backbone).__name__} does not report its frame lengths")
    return backbone, _normalises(source, local.is_dir(), offline)


def _load_failure(spec: str, is_dir: bool, offline_set: bool, error: OSError) -> str:
    if is_dir:
        return f"backbone={spec}: cannot load the model in this directory ({str(error).splitlines()[0]})"
    if "is not a local folder and is not a valid model identifier" in str(error) or "404" in str(error):
        return f"backbone={spec}: no such model on the Hugging Face Hub and no such local directory"
    why = "HF_HUB_OFFLINE is set" if offline_set else "the Hugging Face Hub cannot be reached (no network?)"
    return (
        f"backbone={spec}: cannot load this hub model: {why} and it is not in the local Hugging Face cache. "
        "Download it once where there is network (it is then cached), or pass a local directory written by "
        "save_pretrained: --param backbone=/path/to/model. For a quick offline run use backbone=tiny."
    )


def _normalises(source: str, is_dir: bool, offline: bool) -> bool:
    """The feature extractor's do_normalize (zero mean, unit variance per clip); True when unknown."""
    try:
        if is_dir:
            path = Path(source) / PREPROCESSOR_CONFIG
            return bool(json.loads(path.read_text()).get("do_normalize", True)) if path.is_file() else True
        from transformers import AutoFeatureExtractor

        extractor = AutoFeatureExtractor.from_pretrained(source, local_files_only=offline)
        return bool(getattr(extractor, "do_normalize", True))
    except (OSError, ValueError, json.JSONDecodeError):
        return True


def freeze_feature_encoder(backbone: nn.Module) -> None:
    encoder = getattr(backbone, "feature_extractor", None)
    if encoder is None:
        return
    if hasattr(encoder, "_freeze_parameters"):
        encoder._freeze_parameters()
    else:
        for parameter in encoder.parameters():
            parameter.requires_grad = False


class SpeechEmotionNet(nn.Module):
    """waveform [batch, samples] + lengths [batch] -> logits [batch, 6]."""

    def __init__(self, backbone: nn.Module, *, weighted_layers: bool, head_hidden: int, dropout: float,
                 normalize: bool) -> None:
        super().__init__()
        self.backbone = backbone
        config = backbone.config
        self.normalize = normalize
        self.weighted_layers = weighted_layers
        self.layer_logits = nn.Parameter(torch.zeros(config.num_hidden_layers + 1)) if weighted_layers else None
        hidden = config.hidden_size
        self.padding_masks = PaddingMasks(backbone)  # a plain object: its layers are the backbone's own
        if weighted_layers and getattr(config, "layerdrop", 0.0):
            # a dropped layer leaves no hidden state, and the layer weights would no longer line up
            config.layerdrop = 0.0
        if head_hidden > 0:
            self.head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(hidden, head_hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(head_hidden, len(LABELS)),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, len(LABELS)))
        self.backbone_frozen = False

    def freeze_backbone(self) -> None:
        self.backbone_frozen = True
        for parameter in self.backbone.parameters():
            parameter.requires_grad = False

    def train(self, mode: bool = True) -> SpeechEmotionNet:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()  # a linear probe sees the backbone exactly as at inference
        return self

    def head_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        waveform = waveform.float()
        positions = torch.arange(waveform.shape[1], device=waveform.device)
        mask = positions[None, :] < lengths[:, None]
        if self.normalize:
            weight = mask.to(waveform.dtype)
            count = weight.sum(1, keepdim=True).clamp(min=1.0)
            mean = (waveform * weight).sum(1, keepdim=True) / count
            variance = (((waveform - mean) * weight) ** 2).sum(1, keepdim=True) / count
            waveform = (waveform - mean) / torch.sqrt(variance + 1e-7) * weight
        with self.padding_masks.applied(lengths), \
                torch.set_grad_enabled(torch.is_grad_enabled() and not self.backbone_frozen):
            outputs = self.backbone(
                waveform, attention_mask=mask.long(), output_hidden_states=self.weighted_layers, return_dict=True
            )
        if self.layer_logits is not None:
            stacked = torch.stack(outputs.hidden_states, dim=0)
            weights = torch.softmax(self.layer_logits, dim=0).to(stacked.dtype)
            hidden = (stacked * weights[:, None, None, None]).sum(0)
        else:
            hidden = outputs.last_hidden_state
        frames = self.backbone._get_feat_extract_output_lengths(lengths)
        frames = torch.clamp(frames, min=1, max=hidden.shape[1])
        frame_mask = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < frames[:, None]).to(hidden.dtype)
        pooled = (hidden * frame_mask[..., None]).sum(1) / frames[:, None].to(hidden.dtype)
        return self.head(pooled.float())
