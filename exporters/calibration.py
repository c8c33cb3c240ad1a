"""The temperature step of a calibrated model, appended to an exported graph's probability output.

`append_temperature` works on any graph that follows exporters/base.py (a ``probabilities`` output of shape
[batch, classes]), whatever produced it, so every family gets it from `export_model` and a composite exporter
(an ensemble averaging its members) can apply each member's temperature to that member's graph before joining.
The label output is left as it is: dividing log-probabilities by T > 0 keeps their order.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from exporters.base import PROBABILITIES
from zoo.calibration import MIN_PROBABILITY

UNCALIBRATED = "uncalibrated_probabilities"


def append_temperature(proto: onnx.ModelProto, temperature: float, output: str = PROBABILITIES) -> onnx.ModelProto:
    """A copy of `proto` whose `output` is softmax(log(max(p, MIN_PROBABILITY)) / T), computed in float64
    (as `zoo.calibration.Calibration.apply` does natively) and cast back to the output's type."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    model = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = model.graph
    outputs = [o for o in graph.output if o.name == output]
    if not outputs:
        raise ValueError(f"the graph has no output {output!r} to calibrate (outputs: {[o.name for o in graph.output]})")
    elem_type = outputs[0].type.tensor_type.elem_type
    raw = _unique(graph, UNCALIBRATED if output == PROBABILITIES else f"uncalibrated_{output}")
    for node in graph.node:  # the producer now writes `raw`, and whatever read the output reads `raw`
        node.output[:] = [raw if name == output else name for name in node.output]
        node.input[:] = [raw if name == output else name for name in node.input]
    for info in graph.value_info:
        if info.name == output:
            info.name = raw

    def name(hint: str) -> str:
        return _unique(graph, f"calibration/{hint}")

    floor, temp = name("min_probability"), name("temperature")
    graph.initializer.extend([numpy_helper.from_array(np.array(MIN_PROBABILITY, dtype=np.float64), floor),
                              numpy_helper.from_array(np.array(temperature, dtype=np.float64), temp)])
    as_double, clipped, logs, scaled, softened = (name(h) for h in ("double", "clipped", "log", "scaled", "softmax"))
    graph.node.extend([
        helper.make_node("Cast", [raw], [as_double], to=TensorProto.DOUBLE),
        helper.make_node("Max", [as_double, floor], [clipped]),
        helper.make_node("Log", [clipped], [logs]),
        helper.make_node("Div", [logs, temp], [scaled]),
        helper.make_node("Softmax", [scaled], [softened], axis=-1),
        helper.make_node("Cast", [softened], [output], to=elem_type),
    ])
    return model


def _unique(graph: onnx.GraphProto, base: str) -> str:
    taken = {n for node in graph.node for n in (*node.input, *node.output)}
    taken |= {i.name for i in graph.initializer} | {i.name for i in graph.input}
    candidate, number = base, 0
    while candidate in taken:
        number += 1
        candidate = f"{base}_{number}"
    return candidate
