"""A small helper to write ONNX graphs by hand: one method call per node, constants as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
DOUBLE = TensorProto.DOUBLE
INT64 = TensorProto.INT64
BOOL = TensorProto.BOOL


class GraphBuilder:
    """Collects nodes, initialisers, inputs and outputs; names are generated so that they never clash."""

    def __init__(self, prefix: str, opset: int) -> None:
        self.prefix = prefix
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._count = 0
        self._constants: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}/{hint}_{self._count}"

    def input(self, name: str, elem_type: int, shape: Sequence[int | str | None]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def output(self, value: str, name: str, elem_type: int, shape: Sequence[int | str | None]) -> str:
        self.op("Identity", value, outputs=[name])
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        array = np.asarray(value, dtype=dtype)
        key = (str(array.dtype), array.tobytes(), array.shape)
        if key not in self._constants:
            name = self._name(hint)
            self.initializers.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def i64(self, *values: int) -> str:
        """A 1-D int64 constant (shapes, axes, starts and ends)."""
        return self.const(np.array(values, dtype=np.int64), hint="i64")

    def scalar(self, value: float, dtype: Any = np.float64) -> str:
        return self.const(np.array(value, dtype=dtype), hint="scalar")

    def op(self, op_type: str, *inputs: str, outputs: Sequence[str] | int = 1, domain: str = "",
           **attributes: Any) -> Any:
        """Add a node; return its output name (or a list of names when `outputs` asks for several)."""
        if isinstance(outputs, int):
            names = [self._name(op_type.lower()) for _ in range(outputs)]
        else:
            names = list(outputs)
        self.nodes.append(helper.make_node(op_type, list(inputs), names, domain=domain or None, **attributes))
        return names[0] if len(names) == 1 else names

    # -- shorthands used throughout the feature graphs -------------------------------------------------
    def cast(self, value: str, to: int) -> str:
        return self.op("Cast", value, to=to)

    def dim(self, value: str, axis: int) -> str:
        """The size of axis `axis` (>= 0) of `value` as a 1-D int64 tensor of length 1."""
        return self.op("Shape", value, start=axis, end=axis + 1)

    def reduce(self, op_type: str, value: str, axes: Sequence[int], keepdims: int = 0) -> str:
        """Reduce* with axes as an input (opset 18+) or an attribute (older opsets) as `self.opset` says."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, value, self.i64(*axes), keepdims=keepdims)
        return self.op(op_type, value, axes=list(axes), keepdims=keepdims)

    def graph(self, name: str) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers)
