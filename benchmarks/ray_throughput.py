"""Clips per second of single-process `emozoo predict` and of `--engine ray` on this machine (a benchmark).

    .venv/bin/python benchmarks/ray_throughput.py [--data DIR ...] [--model FILE.onnx] [--num-workers N]
                                                  [--out results.json]

Default inputs: the EmoDB, RAVDESS and nEMO folders under ../shared/data (their manifest.csv files: 4,304
clips). Each engine runs once, in a fresh process, one after the other:

1. single process: the steps of `emozoo predict MODEL INPUT...` (`collect_inputs`, `load_for_inference`,
   `read_item` for every clip, then `predict_proba` 16 clips at a time with onnxruntime on every core), each
   phase timed, in a fresh Python (wall time from the process start: imports included);
2. `emozoo predict MODEL INPUT... --engine ray -o DIR/`, the command a user types (it starts a local Ray).

Where the time goes: the single-process phases; for Ray, its summary.json (Ray start, and the seconds its
decode tasks and scoring actors spent, summed over workers); the rest of its wall time (worker start-up,
scheduling, transfers, partition writing) is Ray overhead. CPU seconds (`time.process_time` of the process
doing the work) are given next to wall seconds: on a machine shared with other work they say how much work
each engine did, which wall time alone does not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ("emodb", "ravdess", "nemo")


def single_process(model: Path, inputs: list[str]) -> dict[str, float]:
    """single_process_phases in a fresh Python; its wall time includes the interpreter and imports."""
    code = ("import json, sys; from benchmarks.ray_throughput import single_process_phases; "
            "print(json.dumps(single_process_phases(sys.argv[1], sys.argv[2:])))")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, str(model), *inputs], capture_output=True, text=True,
                            cwd=ROOT)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"single-process run failed:\n{result.stderr[-3000:]}")
    return {**json.loads(result.stdout.splitlines()[-1]), "wall_s": wall}


def emozoo(*args: str) -> float:
    """Run one emozoo command; return its wall time in seconds."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"emozoo {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return elapsed


def single_process_phases(model: str, inputs: list[str]) -> dict[str, float]:
    """The single-process predict's steps, timed one by one (decode+resample, then scoring)."""
    from zoo.api import load_for_inference
    from zoo.datasets import read_item
    from zoo.errors import AudioError, DatasetError
    from zoo.inputs import collect_inputs

    start, cpu_start = time.perf_counter(), time.process_time()
    items = collect_inputs(inputs).items
    loaded = load_for_inference(model)
    ready, cpu_ready = time.perf_counter(), time.process_time()
    waveforms = []
    for item in items:
        try:
            waveforms.append(read_item(item, loaded.sample_rate, max_seconds=600.0))
        except (AudioError, DatasetError):
            pass
    decoded, cpu_decoded = time.perf_counter(), time.process_time()
    for i in range(0, len(waveforms), 16):
        loaded.predict_proba(waveforms[i : i + 16])
    scored, cpu_scored = time.perf_counter(), time.process_time()
    return {"list_and_load_s": ready - start, "decode_resample_s": decoded - ready, "score_s": scored - decoded,
            "list_and_load_cpu_s": cpu_ready - cpu_start, "decode_resample_cpu_s": cpu_decoded - cpu_ready,
            "score_cpu_s": cpu_scored - cpu_decoded, "clips": len(waveforms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", type=Path,
                        help="input folder or CSV (repeatable) [default: emodb, ravdess, nemo under --data-root]")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=None, help="[default: the bundled ONNX model]")
    parser.add_argument("--num-workers", type=int, default=None, help="Ray scoring actors [default: one per CPU]")
    parser.add_argument("--out", type=Path, default=None, help="also write the results here as JSON")
    args = parser.parse_args()
    from zoo.bundled import default_model_path

    model = args.model or default_model_path()
    inputs = [str(p) for p in (args.data or [args.data_root / name for name in CORPORA])]
    workers = ["--num-workers", str(args.num_workers)] if args.num_workers else []
    load_before = os.getloadavg()[0]
    phases = single_process(model, inputs)
    single_s = phases.pop("wall_s")
    with tempfile.TemporaryDirectory(prefix="emozoo-ray-bench-") as scratch:
        ray_s = emozoo("predict", str(model), *inputs, "--engine", "ray", "-o", f"{scratch}/ray", *workers)
        summary = json.loads(Path(f"{scratch}/ray/summary.json").read_text())
    clips = summary["rows"]
    run = summary["run"]
    seconds = run["seconds"]
    workers_n = run["workers"]
    pipeline_s = seconds["total"] - seconds["ray_start"]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "model": str(model), "inputs": inputs, "clips": clips, "failed": summary["failed"],
        "single_process": {"wall_s": round(single_s, 1), "clips_per_s": round(clips / single_s, 1),
                           "phases_s": {k: round(v, 1) for k, v in phases.items()}},
        "ray": {"wall_s": round(ray_s, 1), "clips_per_s": round(clips / ray_s, 1), "workers": workers_n,
                "ray_init_list_and_check_s": seconds["ray_start"], "pipeline_wall_s": round(pipeline_s, 1),
                "decode_task_s_total": seconds["decode_task_s"], "score_actor_s_total": seconds["score_actor_s"],
                "decode_task_cpu_s_total": seconds["decode_task_cpu_s"],
                "score_actor_cpu_s_total": seconds["score_actor_cpu_s"],
                # actor-seconds available in the pipeline that neither decoding nor scoring used
                "actor_s_not_scoring": round(workers_n * pipeline_s - seconds["score_actor_s"], 1)},
        "ray_vs_single": round(single_s / ray_s, 2),
        # other people's work on a shared machine slows both runs: the 1-minute load average, start and end
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
