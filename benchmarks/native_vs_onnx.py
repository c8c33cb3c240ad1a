"""Native librosa pipeline vs the exported ONNX file, same clips, one thread (a benchmark, not a test).

    .venv/bin/python benchmarks/native_vs_onnx.py [--data-root ../shared/data] [--clips 64] [--model DIR]

Without --model it trains the classic default model (librosa-svc, `emostats` features) on RAVDESS actors
01-12 and exports it; the clips are RAVDESS actors 13-16. Both paths start from decoded waveforms at the
model's rate (decoding is the same code for both) and are timed end to end: features and classifier for the
native model (feature cache off), one session run per batch for ONNX. Batch 1 and batch 32, 1 thread for
numpy/BLAS, librosa/numba, torch and onnxruntime.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPEATS = 5


def _best_of(functions: dict, repeats: int = REPEATS) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds, each the fastest of `repeats` runs, runs interleaved so that a busy machine slows
    all alike. Everything runs on one thread, so the process's CPU time is the work done, whatever else runs
    on the machine; the wall time is what a user waits on an idle one."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: (min(t[0] for t in values), min(t[1] for t in values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--model", help="a saved classic model directory (default: train one)")
    args = parser.parse_args()

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    import zoo
    from exporters import export_model
    from zoo import datasets
    from zoo.onnx_runtime import OnnxEmotionModel

    corpus = datasets.load(Path(args.data_root) / "ravdess")
    held_out = [item for item in corpus if int(str(item.speaker).split("_")[-1]) > 12]
    if args.model:
        model = zoo.load(args.model)
    else:
        train = corpus.subset([i for i, item in enumerate(corpus) if int(str(item.speaker).split("_")[-1]) <= 12])
        model = zoo.create_model("librosa-svc")
        model.fit(datasets.load_waveforms(train.items, model.sample_rate).waveforms, train.labels)
    rng = np.random.default_rng(0)
    chosen = [held_out[i] for i in sorted(rng.choice(len(held_out), min(args.clips, len(held_out)), replace=False))]
    clips = datasets.load_waveforms(chosen, model.sample_rate).waveforms
    seconds_of_audio = sum(c.size for c in clips) / model.sample_rate

    model.n_jobs, model.use_cache = 1, False  # the native pipeline as a user runs it on new audio, 1 thread
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        report = export_model(model, path, validate_on=(clips[:16], None))
        onnx_model = OnnxEmotionModel(path, threads=1, providers=["CPUExecutionProvider"])
        onnx_model.predict_proba(clips[:2])  # warm-up (first run allocates)
        model.predict_proba(clips[:2])  # warm-up (librosa's numba kernels compile on first use)

        results = {}
        for batch in (1, 32):
            batches = [clips[i : i + batch] for i in range(0, len(clips), batch)]
            best = _best_of({
                "native": lambda batches=batches: [model.predict_proba(b) for b in batches],
                # predict_proba groups clips of similar length, as `emozoo predict` does
                "onnx": lambda batches=batches, size=batch: [onnx_model.predict_proba(b, batch_size=size)
                                                             for b in batches],
            })
            (native_wall, native_cpu), (onnx_wall, onnx_cpu) = best["native"], best["onnx"]
            results[f"batch {batch}"] = {
                "native_clips_per_cpu_s": round(len(clips) / native_cpu, 1),
                "onnx_clips_per_cpu_s": round(len(clips) / onnx_cpu, 1),
                "onnx_speedup_cpu": round(native_cpu / onnx_cpu, 2),
                "native_clips_per_s": round(len(clips) / native_wall, 1),
                "onnx_clips_per_s": round(len(clips) / onnx_wall, 1),
                "onnx_speedup_wall": round(native_wall / onnx_wall, 2),
            }
        agreement = report.validation.agreement if report.validation else None
    print(json.dumps({"model": model.name, "features": model.config.name, "clips": len(clips),
                      "audio_seconds": round(seconds_of_audio, 1), "threads": 1, "validation_agreement": agreement,
                      **results}, indent=2))


if __name__ == "__main__":
    main()
