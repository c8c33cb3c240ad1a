"""ONNX exporter of the classic family (librosa-svc, librosa-rf, librosa-logreg).

One graph: the model's feature set rebuilt from ONNX operators (exporters.emostats_graph or
exporters.seed_graph), then the scikit-learn pipeline converted by skl2onnx, joined with onnx.compose.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import onnx

from exporters.base import LENGTHS, WAVEFORM, ExportConfig
from exporters.graph import DOUBLE, FLOAT, INT64, GraphBuilder
from exporters.sklearn_head import FEATURES, convert_pipeline, join, make_model
from plugins.classic.features import EmoStatsConfig, SeedConfig
from zoo.errors import EmozooError


def feature_model(config: EmoStatsConfig | SeedConfig, n_features: int, opset: int) -> onnx.ModelProto:
    """waveform [batch, samples] + lengths [batch] -> features [batch, n_features] float64."""
    g = GraphBuilder("features", opset)
    waveform = g.input(WAVEFORM, FLOAT, ["batch", "samples"])
    lengths = g.input(LENGTHS, INT64, ["batch"])
    if isinstance(config, EmoStatsConfig):
        from exporters.emostats_graph import build_emostats_graph

        features = build_emostats_graph(g, waveform, lengths, config)
    elif isinstance(config, SeedConfig):
        from exporters.seed_graph import build_seed_graph

        features = build_seed_graph(g, waveform, lengths, config)
    else:
        raise EmozooError(f"no ONNX graph for feature set {getattr(config, 'name', config)!r}")
    # the native extractors return float32 vectors; round the same way so that the classifier sees the same
    # numbers (a random forest's thresholds sit between float32 values)
    features = g.cast(g.cast(features, FLOAT), DOUBLE)
    g.output(features, FEATURES, DOUBLE, ["batch", n_features])
    return make_model(g, f"{config.name}_features", opset)


class ClassicExporter:
    """Exports any fitted `plugins.classic.models.ClassicModel`."""

    family = "classic"
    config = ExportConfig()

    def export_config(self, model: Any) -> ExportConfig:
        """Tolerances for this model; docs/export.md ("Validation and tolerances") says why some are looser."""
        config = self.config
        estimator = model.pipeline_[-1] if getattr(model, "pipeline_", None) is not None else None
        trees = len(getattr(estimator, "estimators_", []) or [])
        if trees:
            # a forest's probability is a vote of its trees: a feature within float32 rounding of one tree's
            # threshold (the graph's DFT sums in another order than librosa's FFT) moves it by 1/trees.
            # Measured: at most one such tree per clip (0.002 with 500 trees, 422 held-out clips); allow two.
            config = replace(config, max_abs_diff=max(config.max_abs_diff, 2.0 / trees))
        calibrated = getattr(estimator, "calibrated_classifiers_", None)
        if calibrated and type(calibrated[0].estimator).__name__ == "SVC":
            # scikit-learn's one-vs-rest SVC score adds up one-vs-one votes: a pairwise decision value within
            # float32 rounding of zero flips a vote, moving one class's score by 1 and its Platt probability by
            # up to |A|/4 (slopes ~1-2). Measured with emorobust features: one of 14 held-out clips at 0.029,
            # the features themselves within 2e-5 standard deviations. Labels must still agree on 99.5 %
            config = replace(config, max_abs_diff=max(config.max_abs_diff, 0.05))
        calibration = getattr(model, "calibration_", None)
        if calibration is not None and calibration.active:
            # softmax(log p / T) moves a probability by up to about max(1, 1/T) times the move of p (derived, not
            # measured); with T > 1 a forest class going from no tree vote to one (p 0 -> 1/trees, see above) is
            # lifted to about (1/trees)^(1/T)
            bound = config.max_abs_diff * max(1.0, 1.0 / calibration.temperature)
            if trees and calibration.temperature > 1:
                bound = max(bound, (2.0 / trees) ** (1.0 / calibration.temperature))
            config = replace(config, max_abs_diff=bound)
        if getattr(model, "features", "default") == "seed":
            # yin's trough choice (and the tempo's argmax) are decisions on float32 spectra: a frame whose two
            # best candidates are within rounding of each other may pick the other one. Measured: max |dp|
            # 6.1e-4, agreement 1.0 on 300 held-out clips; |dp| gets twice the default room, agreement none
            config = replace(config, max_abs_diff=max(config.max_abs_diff, 2e-3))
            if hasattr(estimator, "coef_"):
                # the seed vector holds raw per-frame yin f0 (Hz): one flipped frame moves a feature by hundreds
                # of Hz, and a linear model passes that straight to its logits. Measured (logistic regression,
                # 300 held-out clips): 37 of 34,584 frames differ by > 1 Hz, max |dp| 0.0126, agreement 1.0
                config = replace(config, max_abs_diff=max(config.max_abs_diff, 0.02))
        return config

    def build(self, model: Any, opset: int) -> onnx.ModelProto:
        pipeline = getattr(model, "pipeline_", None)
        if pipeline is None:
            raise EmozooError(f"{model.name} model is not fitted: nothing to export")
        n_features = int(pipeline.n_features_in_)
        features = feature_model(model.config, n_features, opset)
        head = convert_pipeline(pipeline, n_features, opset)
        return join(features, head, pipeline.classes_, opset, name=f"emozoo_{model.name}")
