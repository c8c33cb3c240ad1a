"""Fine-tuning of self-supervised speech backbones (wav2vec 2.0, HuBERT, WavLM, ...) for the six emotions.

The saved model directory is a transformers ``save_pretrained`` directory (config.json, model.safetensors,
preprocessor_config.json) plus ``head.safetensors`` (pooling head, layer weights) and emozoo's manifest.json;
``AutoModel.from_pretrained(directory)`` loads its fine-tuned backbone. No pickle; loading is offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from plugins.deep.base import SAMPLE_RATE, DeepEmotionModel
from zoo.errors import ModelFileError

if TYPE_CHECKING:
    from torch import nn

    from plugins.deep.augment import WaveAugment

HEAD = "head.safetensors"


class Wav2Vec2Emotion(DeepEmotionModel):
    name = "wav2vec2"
    family = "wav2vec2"
    find_unused_parameters = True  # transformer layerdrop skips whole layers in some training steps

    def __init__(
        self,
        backbone: str = "facebook/wav2vec2-base",
        weighted_layers: bool = False,
        freeze_feature_encoder: bool = True,
        freeze_backbone: bool = False,
        head_hidden: int = 256,
        dropout: float = 0.1,
        lr: float = 3e-5,
        head_lr: float = 1e-3,
        weight_decay: float = 0.01,
        epochs: int = 10,
        batch_size: int = 8,
        grad_accum: int = 1,
        warmup_ratio: float = 0.1,
        schedule: str = "linear",
        patience: int | None = 3,
        validation_fraction: float = 0.1,
        label_smoothing: float = 0.0,
        max_train_seconds: float | None = 6.0,
        augment: bool | str = False,
        augment_probability: float = 0.5,
        precision: str = "auto",
        device: str = "auto",
        seed: int = 0,
        num_threads: int | None = None,
        checkpoint_dir: str | None = None,
        resume_from: str | None = None,
        epochs_per_run: int | None = None,
        calibrate: str = "temperature",
    ) -> None:
        self.backbone = backbone
        self.weighted_layers = weighted_layers
        self.freeze_feature_encoder = freeze_feature_encoder
        self.freeze_backbone = freeze_backbone
        self.head_hidden = head_hidden
        self.dropout = dropout
        self.lr = lr
        self.head_lr = head_lr
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
        self.augment = augment
        self.augment_probability = augment_probability
        self.precision = precision
        self.device = device
        self.seed = seed
        self.num_threads = num_threads
        self.checkpoint_dir = checkpoint_dir
        self.resume_from = resume_from
        self.epochs_per_run = epochs_per_run
        self.calibrate = calibrate

    def feature_config(self) -> dict[str, Any]:
        network = getattr(self, "network_", None)
        config = {"sample_rate": SAMPLE_RATE, "input": "raw waveform"}
        if network is not None:
            config.update(normalize=bool(network.normalize), model_type=network.backbone.config.model_type,
                          hidden_size=network.backbone.config.hidden_size,
                          layers=network.backbone.config.num_hidden_layers)
        return config

    def _build(self, backbone: nn.Module, normalize: bool) -> nn.Module:
        from plugins.deep.wav2vec2_net import SpeechEmotionNet

        return SpeechEmotionNet(backbone, weighted_layers=self.weighted_layers, head_hidden=self.head_hidden,
                                dropout=self.dropout, normalize=normalize)

    def _new_network(self, waveforms: Sequence[np.ndarray], labels: np.ndarray,
                     clip_inputs: np.ndarray | None = None) -> nn.Module:
        from plugins.deep.wav2vec2_net import freeze_feature_encoder, load_backbone

        backbone, normalize = load_backbone(str(self.backbone))
        network = self._build(backbone, normalize)
        if self.freeze_backbone:
            network.freeze_backbone()
        elif self.freeze_feature_encoder:
            freeze_feature_encoder(backbone)
        return network

    def _param_groups(self) -> list[dict[str, Any]]:
        backbone = [p for p in self.network_.backbone.parameters() if p.requires_grad]
        head = [p for n, p in self.network_.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
        groups = [{"params": head, "lr": self.head_lr}]
        if backbone:
            groups.append({"params": backbone, "lr": self.lr})
        return groups

    def _augmentation(self, pool: Sequence[np.ndarray] = ()) -> WaveAugment:
        """augment: false (a random crop only), true (also gain and white noise, as before) or a zoo.augment
        spec ("default", "noise,reverb,...": chains on a share augment_probability of the clips)."""
        from plugins.deep.augment import WaveAugment, chain_augmenter

        max_samples = int(self.max_train_seconds * SAMPLE_RATE) if self.max_train_seconds else None
        if self.augment is True:
            return WaveAugment(max_samples=max_samples, gain_db=6.0, noise_snr_db=(15.0, 40.0),
                               noise_probability=0.3)
        chain = chain_augmenter(self.augment, self.augment_probability, self.seed, pool)
        return WaveAugment(max_samples=max_samples, chain=chain, chain_probability=self.augment_probability,
                           sample_rate=SAMPLE_RATE)

    def _min_samples(self) -> int:
        return 400  # one frame of the usual convolutional feature encoder (25 ms)

    # -- persistence ---------------------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file
        from transformers import Wav2Vec2FeatureExtractor

        from plugins.deep.checkpoint import detached
        from plugins.deep.wav2vec2_net import quiet_transformers

        network = self.network_
        quiet_transformers()
        network.backbone.save_pretrained(directory)
        Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=bool(network.normalize),
            return_attention_mask=True,
        ).save_pretrained(directory)
        save_file(detached(network.head_state()), str(directory / HEAD), metadata={"format": "emozoo-head"})

    def _load_weights(self, directory: Path, manifest: dict[str, Any]) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from plugins.deep.wav2vec2_net import load_backbone

        if not (directory / HEAD).is_file():
            raise ModelFileError(f"{directory}: {HEAD} is missing")
        backbone, normalize = load_backbone(str(directory), safetensors_only=True)
        normalize = bool(manifest.get("feature_config", {}).get("normalize", normalize))
        network = self._build(backbone, normalize)
        try:
            head = load_file(str(directory / HEAD))
        except (OSError, SafetensorError) as error:
            raise ModelFileError(f"{directory / HEAD}: corrupt head weights ({error})") from None
        missing, unexpected = network.load_state_dict(head, strict=False)
        missing = [k for k in missing if not k.startswith("backbone.")]
        if missing or unexpected:
            raise ModelFileError(
                f"{directory / HEAD}: does not match the model's parameters (missing {missing[:5]}, "
                f"unexpected {unexpected[:5]})"
            )
        network.eval()
        self.network_ = network
