"""Dynamic int8 quantisation (onnxruntime.quantization) of the weight-heavy nodes of an exported graph.

Only MatMul/Gemm nodes whose weights are constants and that belong to the model proper are quantised (Conv
is left alone: on a small logmel-cnn, ConvInteger made onnxruntime's CPU run 10-60 % slower, not faster). The
feature-extraction nodes (outputs named ``features/...``, see exporters/graph.py) and the label head stay
float: their constant matrices are DFT bases, filterbanks and one-hot maps, where int8 would change every
feature, and they are a small part of the work.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any

QUANTIZABLE = ("MatMul", "Gemm")
KEPT_FLOAT_PREFIXES = ("features/", "labels/")
INTEGER_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "QGemm", "ConvInteger", "QLinearMatMul")


def quantizable_nodes(proto: Any) -> tuple[list[str], int]:
    """Name every unnamed node, then list the names of the nodes worth quantising and their weight count."""
    constants = {t.name: math.prod(t.dims) for t in proto.graph.initializer}
    constants |= {o: 0 for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    chosen, weights = [], 0
    for index, node in enumerate(proto.graph.node):
        if not node.name:
            node.name = f"{node.op_type.lower()}_{index}"
        if node.op_type not in QUANTIZABLE or len(node.input) < 2 or node.input[1] not in constants:
            continue
        if any(_kept_float(output) for output in node.output):
            continue
        chosen.append(node.name)
        weights += constants[node.input[1]]
    return chosen, weights


def _kept_float(output: str) -> bool:
    """Feature or label-head nodes, also when nested in a larger graph (an ensemble's `features0/features/...`,
    `member1/features/...`)."""
    path = "/" + output
    return any(f"/{prefix}" in path for prefix in KEPT_FLOAT_PREFIXES)


def quantize_int8(proto: Any, min_weights: int = 0) -> tuple[Any, bool, str]:
    """Return (the model, whether anything was quantised, a note saying what was).

    Nothing is quantised when the candidate nodes hold fewer than `min_weights` weights together."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes, weights = quantizable_nodes(proto)
    if not nodes:
        return proto, False, ("int8: nothing to quantise (no MatMul/Gemm with constant weights outside the "
                              "feature graph; a scikit-learn head uses ai.onnx.ml operators), exported in float")
    if weights < min_weights:
        return proto, False, (f"int8: nothing worth quantising ({weights} weights in {len(nodes)} MatMul/Gemm "
                              f"node(s), under {min_weights}: int8 would be slower), exported in float")
    with tempfile.TemporaryDirectory(prefix="emozoo-quantize-") as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save_model(proto, source)
        logging.disable(logging.WARNING)  # "consider pre-processing" advice, printed on the root logger
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                             op_types_to_quantize=list(QUANTIZABLE), extra_options={"MatMulConstBOnly": True})
        finally:
            logging.disable(logging.NOTSET)
        quantized = onnx.load_model(target)
    integer_nodes = sum(n.op_type in INTEGER_OPS for n in quantized.graph.node)
    if not integer_nodes:
        return proto, False, (f"int8: onnxruntime quantised none of the {len(nodes)} candidate node(s) "
                              f"({', '.join(nodes[:4])}), exported in float")
    return quantized, True, (f"int8: dynamic quantisation of {integer_nodes} of {len(nodes)} candidate "
                             "MatMul/Gemm node(s)")
