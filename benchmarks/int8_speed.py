"""Float vs int8 ONNX export of a wav2vec2-base-sized model: size, speed and agreement (a benchmark, not a test).

    .venv/bin/python benchmarks/int8_speed.py [--backbone DIR] [--data-root ../shared/data] [--clips 24]

Without --backbone it writes a randomly initialised backbone of the facebook/wav2vec2-base architecture
(95M parameters; no hub access is needed) and trains a linear-probe head on it for one short epoch: the
numbers say what int8 does to the size and speed of a real-sized network and how far it moves the
probabilities, not how accurate such a model is. Train speakers: RAVDESS actors 01-02; timed and validated
on actor 16's clips cut to 3 s; one thread everywhere, batch 1.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

CLIP_SAMPLES = 48_000


def random_base_backbone(directory: Path) -> Path:
    import torch
    from transformers import AutoModel, Wav2Vec2Config

    torch.manual_seed(0)
    AutoModel.from_config(Wav2Vec2Config()).save_pretrained(directory)  # Wav2Vec2Config() is the base layout
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", help="a save_pretrained directory (default: a random wav2vec2-base)")
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--clips", type=int, default=24)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import zoo
    from exporters import export_model
    from zoo import datasets
    from zoo.onnx_runtime import OnnxEmotionModel

    corpus = datasets.load(Path(args.data_root) / "ravdess")
    train = [item for item in corpus if item.speaker in ("Actor_01", "Actor_02")][:48]
    held_out = [item for item in corpus if item.speaker == "Actor_16"][: args.clips]
    train_clips = [w[: 2 * CLIP_SAMPLES // 3] for w in datasets.load_waveforms(train, 16_000).waveforms]
    clips = [w[:CLIP_SAMPLES] for w in datasets.load_waveforms(held_out, 16_000).waveforms]
    results = {}
    with tempfile.TemporaryDirectory(prefix="emozoo-int8-") as folder:
        backbone = args.backbone or str(random_base_backbone(Path(folder) / "backbone"))
        model = zoo.create_model("wav2vec2", backbone=backbone, freeze_backbone=True, epochs=1, batch_size=8,
                                 validation_fraction=0.0, num_threads=1, max_train_seconds=2.0)
        model.fit(train_clips, np.array([item.label for item in train]))
        for quantize in (None, "int8"):
            path = Path(folder) / f"{quantize or 'float'}.onnx"
            report = export_model(model, path, quantize=quantize, validate_on=(clips, None))
            onnx_model = OnnxEmotionModel(path, threads=1, providers=["CPUExecutionProvider"])
            onnx_model.predict_proba(clips[:2])  # warm-up
            seconds = []
            for _ in range(2):
                started = time.process_time()
                onnx_model.predict_proba(clips, batch_size=1)
                seconds.append(time.process_time() - started)
            results[quantize or "float"] = {
                "size_mb": round(report.size_bytes / 1e6, 1),
                "cpu_ms_per_clip": round(min(seconds) / len(clips) * 1000, 1),
                "agreement": report.validation.agreement if report.validation else None,
                "max_abs_diff": report.validation.max_abs_diff if report.validation else None,
                "notes": report.notes,
            }
    float_ms, int8_ms = results["float"]["cpu_ms_per_clip"], results["int8"]["cpu_ms_per_clip"]
    print(json.dumps({"backbone": args.backbone or "random wav2vec2-base", "clips": len(clips),
                      "clip_seconds": CLIP_SAMPLES / 16_000, "threads": 1, **results,
                      "int8_speedup": round(float_ms / int8_ms, 2)}, indent=2))


if __name__ == "__main__":
    main()
