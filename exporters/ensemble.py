"""ONNX exporter of the `ensemble` family: every member and the combiner in one graph.

Classic members are split into their feature graph and their scikit-learn head; members with the same feature
set share ONE copy of the feature graph, whose output feeds every such head. emonet members enter as their
traced network, its statistics input fed by the same shared feature graph when it computes the same set (the
default ensemble, emonet + librosa-logreg, computes `emorobust-nf` once). Other members (the other deep
families) enter whole, as their own exporter builds them. Each piece is prefixed (features<k>/, member<i>/) so
that names never clash; the combiner (weighted mean, or the stacked logistic regression) and the label argmax
close the graph, in float64 as natively.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import compose, helper

from exporters.base import LABEL, LENGTHS, PROBABILITIES, WAVEFORM, ExportConfig
from exporters.graph import DOUBLE, FLOAT, INT64, GraphBuilder
from zoo.errors import EmozooError
from zoo.labels import LABELS


class _Assembly:
    """One graph grown from whole ONNX models: each is prefixed, its inputs wired to existing values."""

    def __init__(self, opset: int) -> None:
        self.g = GraphBuilder("ensemble", opset)
        self.value_info: list[onnx.ValueInfoProto] = []
        self.functions: list[onnx.FunctionProto] = []
        self.opsets: dict[str, int] = {"": opset}
        self.ir_version = 0

    def add(self, model: onnx.ModelProto, prefix: str, wiring: dict[str, str]) -> dict[str, str]:
        """Splice `model` in, its input X fed by value `wiring[X]`; return {its output name: value name}."""
        prefixed = compose.add_prefix(model, prefix)
        graph = prefixed.graph
        initialised = {init.name for init in graph.initializer}
        for value in graph.input:
            if value.name in initialised:
                continue
            original = value.name[len(prefix):]
            if original not in wiring:
                raise EmozooError(f"internal error: input {original!r} of {prefix.rstrip('/')} is not wired")
            self.g.op("Identity", wiring[original], outputs=[value.name])
        self.g.nodes.extend(graph.node)
        self.g.initializers.extend(graph.initializer)
        self.value_info.extend(graph.value_info)
        self.functions.extend(prefixed.functions)
        for entry in prefixed.opset_import:
            self.opsets[entry.domain] = max(self.opsets.get(entry.domain, 0), entry.version)
        self.ir_version = max(self.ir_version, prefixed.ir_version)
        return {value.name[len(prefix):]: value.name for value in graph.output}

    def model(self, name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.g.nodes, name, self.g.inputs, self.g.outputs, self.g.initializers,
                                  value_info=self.value_info)
        imports = [helper.make_opsetid(domain, version) for domain, version in self.opsets.items()]
        model = helper.make_model(graph, opset_imports=imports, functions=self.functions)
        model.ir_version = max(self.ir_version, helper.find_min_ir_version_for(imports))
        return model


def _spread(g: GraphBuilder, known: str, classes: np.ndarray, hint: str) -> str:
    """float64 probabilities over `classes` -> [batch, 6] in label-id order."""
    spread = np.zeros((len(classes), len(LABELS)))
    spread[np.arange(len(classes)), np.asarray(classes, dtype=int)] = 1.0
    return g.op("MatMul", known, g.const(spread, np.float64, hint))


def _calibrated(g: GraphBuilder, probabilities: str, member: Any, index: int) -> str:
    """A member's own fitted temperature, applied as its `predict_proba` applies it (zoo.calibration)."""
    calibration = getattr(member, "calibration_", None)
    if calibration is None or not getattr(calibration, "active", False):
        return probabilities
    from zoo.calibration import MIN_PROBABILITY

    logs = g.op("Log", g.op("Max", probabilities, g.scalar(MIN_PROBABILITY)))
    scaled = g.op("Div", logs, g.const(np.array(float(calibration.temperature)), np.float64, f"member{index}_t"))
    return g.op("Softmax", scaled, axis=1)


def _member_configs(model: Any) -> list[ExportConfig]:
    from exporters.export import _export_config
    from zoo.registry import exporter_for

    return [_export_config(exporter_for(member.family), member) for member in model.members_]


class EnsembleExporter:
    """Exports any fitted `plugins.ensemble.model.Ensemble`."""

    family = "ensemble"
    config = ExportConfig()

    def export_config(self, model: Any) -> ExportConfig:
        """The members' loosest tolerances; for stacking, scaled by how much the regression can amplify them.

        A weighted mean moves by at most its members' largest |dp|. The stacked regression's logits move by at
        most L * |dp| (L: the largest row sum of |coef|), and a softmax output by at most half its logits'
        largest move, so its bound is max(1, L / 2) times the members' (docs/ensemble.md).
        """
        configs = _member_configs(model)
        max_abs_diff = max(c.max_abs_diff for c in configs)
        if model.combine == "stack":
            gain = float(np.abs(model.combiner_.coef).sum(axis=1).max())
            max_abs_diff *= max(1.0, gain / 2)
        return ExportConfig(opset=max(c.opset for c in configs), max_abs_diff=float(min(max_abs_diff, 1.0)),
                            min_agreement=min(c.min_agreement for c in configs))

    def build(self, model: Any, opset: int) -> onnx.ModelProto:
        from exporters.classic import feature_model
        from exporters.sklearn_head import convert_pipeline
        from exporters.torch_models import STATISTICS_INPUT, n_statistics
        from plugins.ensemble.model import feature_key
        from zoo.registry import exporter_for

        if not hasattr(model, "combiner_"):
            raise EmozooError("ensemble model is not fitted: nothing to export")
        parts = _Assembly(opset)
        g = parts.g
        waveform = g.input(WAVEFORM, FLOAT, ["batch", "samples"])
        lengths = g.input(LENGTHS, INT64, ["batch"])
        shared: dict[str, str] = {}

        def features_of(config: Any, count: int) -> str:
            """The output of the one feature graph computing `config` (added on first use)."""
            key = json.dumps({"config": config.as_dict(), "count": count}, sort_keys=True, default=str)
            if key not in shared:
                features = feature_model(config, count, opset)
                outputs = parts.add(features, f"features{len(shared)}/", {WAVEFORM: waveform, LENGTHS: lengths})
                shared[key] = outputs["features"]
            return shared[key]

        probabilities = []
        for index, member in enumerate(model.members_):
            prefix = f"member{index}/"
            pipeline = getattr(member, "pipeline_", None)
            if member.family == "classic" and pipeline is not None and feature_key(member) is not None:
                n_features = int(pipeline.n_features_in_)
                head = convert_pipeline(pipeline, n_features, opset)
                known = parts.add(head, prefix, {"features": features_of(member.config, n_features)})[PROBABILITIES]
                spread = _spread(g, g.cast(known, DOUBLE), pipeline.classes_, f"member{index}_classes")
                probabilities.append(_calibrated(g, spread, member, index))
            elif member.family == "emonet":  # its statistics are a classic feature set: shared with such members
                exporter = exporter_for(member.family)
                statistics = features_of(member.statistics_config, n_statistics(member))
                outputs = parts.add(exporter.network_graph(member, opset), prefix,
                                    {WAVEFORM: waveform, LENGTHS: lengths, STATISTICS_INPUT: statistics})
                probabilities.append(_calibrated(g, g.cast(outputs[PROBABILITIES], DOUBLE), member, index))
            else:
                whole = exporter_for(member.family).build(member, opset)
                outputs = parts.add(whole, prefix, {WAVEFORM: waveform, LENGTHS: lengths})
                probabilities.append(_calibrated(g, g.cast(outputs[PROBABILITIES], DOUBLE), member, index))
        combiner = model.combiner_
        if model.combine == "mean":
            weighted = [g.op("Mul", p, g.scalar(float(w))) for p, w in zip(probabilities, combiner.weights,
                                                                          strict=True)]
            combined = g.op("Sum", *weighted)
        else:
            stacked = g.op("Concat", *probabilities, axis=1)
            logits = g.op("Add", g.op("MatMul", stacked, g.const(combiner.coef.T.copy(), np.float64, "stack_coef")),
                          g.const(combiner.intercept, np.float64, "stack_intercept"))
            combined = _spread(g, g.op("Softmax", logits, axis=1), combiner.classes, "stack_classes")
        label = g.op("ArgMax", combined, axis=1, keepdims=0)
        g.output(g.cast(combined, FLOAT), PROBABILITIES, FLOAT, ["batch", len(LABELS)])
        g.output(label, LABEL, INT64, ["batch"])
        return parts.model("emozoo_ensemble")
