"""Built-in deep-learning plugin: wav2vec2 (fine-tuned self-supervised speech backbones), logmel-cnn
(a compact CNN on log-mel spectrograms trained from scratch) and emonet (a log-mel CNN fused with utterance
statistics, trained from scratch).

Registering imports neither torch nor transformers: they load when a model is built, trained or exported.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    from plugins.deep.emonet import EmoNet
    from plugins.deep.logmel_cnn import LogMelCNN
    from plugins.deep.wav2vec2 import Wav2Vec2Emotion

    register(
        "wav2vec2", Wav2Vec2Emotion, family="wav2vec2",
        description="fine-tuned self-supervised speech backbone (wav2vec 2.0 / HuBERT / WavLM; backbone=hub id, "
        "directory or tiny) + pooled 6-way head",
    )
    register(
        "logmel-cnn", LogMelCNN, family="logmel-cnn",
        description="compact CNN on 64-band log-mel spectrograms with attentive pooling, trained from scratch",
    )
    register(
        "emonet", EmoNet, family="emonet",
        description="log-mel CNN (per-utterance normalised) fused with emorobust utterance statistics, "
        "corpus-balanced, trained from scratch",
    )


@hookimpl
def register_exporters(register: Callable[..., None]) -> None:
    from zoo.registry import LazyExporter

    register("wav2vec2", LazyExporter("exporters.torch_models:Wav2Vec2Exporter"))
    register("logmel-cnn", LazyExporter("exporters.torch_models:LogMelCNNExporter"))
    register("emonet", LazyExporter("exporters.torch_models:EmoNetExporter"))
