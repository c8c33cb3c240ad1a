"""A fitted scikit-learn pipeline as an ONNX graph (skl2onnx), joined to a feature graph (onnx.compose).

The pipeline sees float64 features, as it does natively. Its probabilities cover only the classes it was
trained on (`classes_`); a constant [known, 6] one-hot product spreads them over the six label ids.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
from onnx import compose, helper, version_converter

from exporters.base import LABEL, LENGTHS, PROBABILITIES, WAVEFORM
from exporters.graph import DOUBLE, FLOAT, INT64, GraphBuilder
from zoo.errors import EmozooError
from zoo.labels import LABELS

FEATURES = "features"
ML_OPSET = 3


def convert_pipeline(pipeline: Any, n_features: int, opset: int) -> onnx.ModelProto:
    """skl2onnx conversion with float64 input, no ZipMap, at `opset` for the default domain."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # skl2onnx reads SVC.probA_, deprecated in sklearn 1.9
            converted = convert_sklearn(
                pipeline,
                initial_types=[(FEATURES, DoubleTensorType([None, n_features]))],
                options={"zipmap": False},
                target_opset={"": opset, "ai.onnx.ml": ML_OPSET},
            )
    except Exception as error:  # skl2onnx raises many types for estimators it cannot convert
        raise EmozooError(f"skl2onnx cannot convert {type(pipeline).__name__}: {error}") from None
    return _at_opset(converted, opset)


def _opset_of(model: onnx.ModelProto, domain: str) -> int | None:
    return next((o.version for o in model.opset_import if o.domain == domain), None)


def _at_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """skl2onnx writes the lowest default-domain opset its operators need; merging needs exactly `opset`."""
    if _opset_of(model, "") == opset:
        return model
    try:
        return version_converter.convert_version(model, opset)
    except Exception as error:
        raise EmozooError(f"cannot bring the scikit-learn graph to opset {opset}: {error}") from None


def _dedupe_opsets(model: onnx.ModelProto) -> None:
    """onnx.compose keeps each part's opset imports: one per domain (the highest) is what tools expect
    (onnxruntime's quantiser refuses a model that imports the default domain twice)."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in versions.items())


def label_head(known_classes: np.ndarray, probability_type: int, opset: int) -> onnx.ModelProto:
    """probabilities over `known_classes` -> the contract's float32 [batch, 6] and int64 label [batch]."""
    g = GraphBuilder("labels", opset)
    known = g.input("known_probabilities", probability_type, ["batch", len(known_classes)])
    spread = np.zeros((len(known_classes), len(LABELS)))
    spread[np.arange(len(known_classes)), np.asarray(known_classes, dtype=int)] = 1.0
    values = known if probability_type == DOUBLE else g.cast(known, DOUBLE)
    probabilities = g.op("MatMul", values, g.const(spread, np.float64, "one_hot"))
    label = g.op("ArgMax", probabilities, axis=1, keepdims=0)  # argmax of the float64 values, as natively
    g.output(g.cast(probabilities, FLOAT), PROBABILITIES, FLOAT, ["batch", len(LABELS)])
    g.output(label, LABEL, INT64, ["batch"])
    return make_model(g, "labels", opset)


def make_model(g: GraphBuilder, name: str, opset: int, ml_opset: int | None = None) -> onnx.ModelProto:
    imports = [helper.make_opsetid("", opset)]
    if ml_opset is not None:
        imports.append(helper.make_opsetid("ai.onnx.ml", ml_opset))
    return helper.make_model(g.graph(name), opset_imports=imports, ir_version=helper.find_min_ir_version_for(imports))


def join(features: onnx.ModelProto, pipeline: onnx.ModelProto, known_classes: np.ndarray, opset: int,
         name: str) -> onnx.ModelProto:
    """features (waveform, lengths -> features) + pipeline (features -> probabilities) + label head."""
    probability_output = next(o for o in pipeline.graph.output if o.name == PROBABILITIES)
    probability_type = probability_output.type.tensor_type.elem_type
    head = label_head(known_classes, probability_type, opset)
    ml_opset = _opset_of(pipeline, "ai.onnx.ml")
    ir_version = max(features.ir_version, pipeline.ir_version, head.ir_version)
    parts = []
    for part in (features, pipeline, head):
        part = onnx.ModelProto.FromString(part.SerializeToString())
        part.ir_version = ir_version
        if ml_opset is not None and _opset_of(part, "ai.onnx.ml") is None:
            part.opset_import.append(helper.make_opsetid("ai.onnx.ml", ml_opset))
        parts.append(part)
    features, pipeline, head = parts
    pipeline = compose.add_prefix(pipeline, "sklearn/")
    combined = compose.merge_models(
        features, pipeline, io_map=[(FEATURES, f"sklearn/{FEATURES}")],
        outputs=[f"sklearn/{PROBABILITIES}"],
    )
    merged = compose.merge_models(
        combined, head, io_map=[(f"sklearn/{PROBABILITIES}", "known_probabilities")],
        outputs=[PROBABILITIES, LABEL],
    )
    merged.graph.name = name
    _dedupe_opsets(merged)
    expected_inputs = [WAVEFORM, LENGTHS]
    if [i.name for i in merged.graph.input] != expected_inputs:
        raise EmozooError(f"internal error: the joined graph has inputs {[i.name for i in merged.graph.input]}")
    return merged
