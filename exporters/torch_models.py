"""ONNX exporters for the deep plugins' families (wav2vec2, logmel-cnn, emonet), following exporters/base.py.

Each network already maps (waveform, lengths) to logits with feature extraction inside, so the graph is
the network plus a softmax and an argmax, exported by torch.onnx with dynamic batch and samples axes.
emonet's network also takes the clip's utterance statistics: its graph is the classic feature graph joined to
the traced network.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

from exporters.base import LABEL, LENGTHS, PROBABILITIES, WAVEFORM, ExportConfig
from zoo.errors import EmozooError

# traced with clips of two lengths so nothing length-specific is frozen into the graph
_EXAMPLE_SECONDS = (1.5, 1.1)


def _probability_graph(network: Any) -> Any:
    import torch

    class ProbabilityGraph(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            probabilities = torch.softmax(self.inner(waveform, lengths), dim=1)
            return probabilities, torch.argmax(probabilities, dim=1)

    return ProbabilityGraph(network)


@dataclass(frozen=True)
class TorchNetworkExporter:
    """Exports ``model.network_`` (an nn.Module: waveform [batch, samples] + lengths [batch] -> logits)."""

    family: str
    config: ExportConfig = field(default_factory=ExportConfig)

    def build(self, model: Any, opset: int) -> Any:
        import onnx
        import torch

        network = getattr(model, "network_", None)
        if network is None:
            raise EmozooError(f"{model.name} model is not fitted yet: nothing to export")
        graph = _probability_graph(copy.deepcopy(network).cpu().eval()).eval()
        rate = model.sample_rate
        lengths = torch.tensor([int(s * rate) for s in _EXAMPLE_SECONDS], dtype=torch.int64)
        generator = torch.Generator().manual_seed(0)
        waveform = 0.1 * torch.randn(len(lengths), int(lengths.max()), generator=generator)
        waveform[1, int(lengths[1]) :] = 0.0
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
            torch.onnx.export(
                graph, (waveform, lengths), buffer, input_names=[WAVEFORM, LENGTHS],
                output_names=[PROBABILITIES, LABEL], opset_version=opset, dynamo=False, do_constant_folding=True,
                dynamic_axes={WAVEFORM: {0: "batch", 1: "samples"}, LENGTHS: {0: "batch"},
                              PROBABILITIES: {0: "batch"}, LABEL: {0: "batch"}},
            )
        return onnx.load_from_string(buffer.getvalue())


def Wav2Vec2Exporter() -> TorchNetworkExporter:  # noqa: N802 - reads like the class it configures
    # transformer attention and GELU in float32 drift a little more than a small CNN between torch and ORT
    return TorchNetworkExporter("wav2vec2", ExportConfig(max_abs_diff=1e-3, min_agreement=0.99))


def LogMelCNNExporter() -> TorchNetworkExporter:  # noqa: N802
    return TorchNetworkExporter("logmel-cnn", ExportConfig(max_abs_diff=1e-3, min_agreement=0.995))


STATISTICS_INPUT = "statistics"
_NETWORK_PREFIX = "network/"


def n_statistics(model: Any) -> int:
    """How many statistics a fitted emonet's network takes."""
    return int(model.network_.stats_mean.shape[0])


def _statistics_probability_graph(network: Any) -> Any:
    import torch

    class StatisticsProbabilityGraph(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, waveform: torch.Tensor, lengths: torch.Tensor,
                    statistics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # the statistics arrive as the feature graph makes them: float64, rounded to float32 values
            probabilities = torch.softmax(self.inner(waveform, lengths, statistics.float()), dim=1)
            return probabilities, torch.argmax(probabilities, dim=1)

    return StatisticsProbabilityGraph(network)


@dataclass(frozen=True)
class EmoNetExporter:
    """emonet: its statistics' feature graph (exporters.classic.feature_model, as the classic models export it)
    feeding the traced network's statistics input; waveform and lengths go to both, so one graph results."""

    family: str = "emonet"
    config: ExportConfig = field(default_factory=lambda: ExportConfig(max_abs_diff=1e-3, min_agreement=0.995))

    def network_graph(self, model: Any, opset: int) -> Any:
        """The traced network alone: inputs waveform, lengths and statistics (float64, as the feature graph
        makes them), outputs probabilities and label. `build` joins the statistics graph to it; the ensemble
        exporter wires a feature graph it shares with classic members instead."""
        import onnx
        import torch

        network = getattr(model, "network_", None)
        if network is None:
            raise EmozooError(f"{model.name} model is not fitted yet: nothing to export")
        count = n_statistics(model)
        graph = _statistics_probability_graph(copy.deepcopy(network).cpu().eval()).eval()
        rate = model.sample_rate
        lengths = torch.tensor([int(s * rate) for s in _EXAMPLE_SECONDS], dtype=torch.int64)
        generator = torch.Generator().manual_seed(0)
        waveform = 0.1 * torch.randn(len(lengths), int(lengths.max()), generator=generator)
        waveform[1, int(lengths[1]) :] = 0.0
        statistics = torch.randn(len(lengths), count, generator=generator, dtype=torch.float64)
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
            torch.onnx.export(
                graph, (waveform, lengths, statistics), buffer, input_names=[WAVEFORM, LENGTHS, STATISTICS_INPUT],
                output_names=[PROBABILITIES, LABEL], opset_version=opset, dynamo=False, do_constant_folding=True,
                dynamic_axes={WAVEFORM: {0: "batch", 1: "samples"}, LENGTHS: {0: "batch"},
                              STATISTICS_INPUT: {0: "batch"}, PROBABILITIES: {0: "batch"}, LABEL: {0: "batch"}},
            )
        return onnx.load_from_string(buffer.getvalue())

    def build(self, model: Any, opset: int) -> Any:
        from onnx import compose, helper

        from exporters.classic import feature_model
        from exporters.sklearn_head import FEATURES

        net = self.network_graph(model, opset)
        features = feature_model(model.statistics_config, n_statistics(model), opset)
        ir_version = max(net.ir_version, features.ir_version)
        net.ir_version = features.ir_version = ir_version
        net = compose.add_prefix(net, _NETWORK_PREFIX)
        merged = compose.merge_models(features, net, io_map=[(FEATURES, _NETWORK_PREFIX + STATISTICS_INPUT)])
        # the network's own waveform and lengths inputs become the feature graph's (one pair of inputs)
        shared = {_NETWORK_PREFIX + WAVEFORM: WAVEFORM, _NETWORK_PREFIX + LENGTHS: LENGTHS}
        for node in merged.graph.node:
            node.input[:] = [shared.get(name, name) for name in node.input]
        kept_inputs = [i for i in merged.graph.input if i.name not in shared]
        del merged.graph.input[:]
        merged.graph.input.extend(kept_inputs)
        outputs = {o.name: o for o in merged.graph.output}
        del merged.graph.output[:]
        for name in (PROBABILITIES, LABEL):
            merged.graph.node.append(helper.make_node("Identity", [_NETWORK_PREFIX + name], [name]))
            output = copy.deepcopy(outputs[_NETWORK_PREFIX + name])
            output.name = name
            merged.graph.output.append(output)
        merged.graph.name = f"emozoo_{model.name}"
        if [i.name for i in merged.graph.input] != [WAVEFORM, LENGTHS]:
            raise EmozooError(f"internal error: the joined graph has inputs {[i.name for i in merged.graph.input]}")
        return merged
