"""`emozoo timeline` on a generated hour of audio: peak memory and speed on one core (a benchmark, not a test).

    .venv/bin/python benchmarks/timeline_speed.py [--minutes 60] [--rate 16000] [--model FILE.onnx]
                                                  [--data-root ../shared/data]

Writes a FLAC file of `--minutes` minutes (at `--rate` Hz) to a temporary folder: labelled clips of EmoDB and
RAVDESS joined by pauses of 0.4-4 s, half digital silence and half noise at -65..-45 dBFS. Then, in a fresh
process pinned to one CPU with one thread everywhere, runs `zoo.timeline` on it with the bundled default
model's ONNX file (librosa-logreg: features and classifier in the graph) and Silero VAD, and reports the
process's peak RSS (VmHWM, whole process: Python, numpy, onnxruntime and both models included), wall and
CPU time, and real-time factor (audio seconds per wall-clock second; per CPU second too, steadier on a shared
machine). Targets: < 500 MB, >= 100x.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

CLIPS_PER_CORPUS = 120
TARGET_RSS_MB = 500
TARGET_SPEED = 100


def write_long_file(path: Path, minutes: float, rate: int, data_root: Path, seed: int = 0) -> dict[str, float]:
    """Clips and pauses until `minutes` are written, block by block (the file is never held in memory)."""
    import soundfile as sf

    from zoo.audio import read_audio

    clips = []
    for corpus in ("emodb", "ravdess"):
        with (data_root / corpus / "manifest.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))[:CLIPS_PER_CORPUS]
        clips += [read_audio(data_root / corpus / row["path"], rate)[0] for row in rows]
    rng = np.random.default_rng(seed)
    total, speech, count = int(minutes * 60 * rate), 0, 0
    written = 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as out:
        while written < total:
            clip = clips[int(rng.integers(len(clips)))]
            pause = int(rng.uniform(0.4, 4.0) * rate)
            gap = np.zeros(pause, dtype=np.float32)
            if rng.random() < 0.5:
                gap = (rng.standard_normal(pause) * 10 ** (rng.uniform(-65, -45) / 20)).astype(np.float32)
            piece = np.concatenate([clip, gap])[: total - written]
            out.write(piece)
            written += piece.size
            speech += min(clip.size, piece.size)
            count += 1
    return {"seconds": written / rate, "clip_seconds": speech / rate, "clips": count}


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec, unlike getrusage's ru_maxrss, which keeps the
    parent's size from before the fork), else getrusage."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(audio: str, model: str) -> None:
    """Runs in the measured process: one CPU, one thread; prints one JSON line."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import zoo
    from zoo.api import load_for_inference

    scorer = load_for_inference(model, threads=1, device="cpu")
    loaded_mb = peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    result = zoo.timeline(scorer, audio, vad="silero")[0]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({
        "audio_seconds": result.duration,
        "segments": len(result.segments),
        "segment_seconds": round(sum(s.end - s.start for s in result.segments), 1),
        "vad": result.vad,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "real_time_factor": round(result.duration / wall, 1),
        "real_time_factor_cpu": round(result.duration / cpu, 1),  # steadier where the machine is shared
        "rss_after_loading_mb": round(loaded_mb, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=16_000, help="sample rate of the generated file")
    parser.add_argument("--model", help="an emozoo .onnx file (default: the bundled default model)")
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--child", nargs=2, metavar=("AUDIO", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from zoo.bundled import default_model_path

    model = args.model or str(default_model_path())
    with tempfile.TemporaryDirectory(prefix="emozoo-timeline-") as folder:
        audio = Path(folder) / "long.flac"
        started = time.perf_counter()
        made = write_long_file(audio, args.minutes, args.rate, Path(args.data_root))
        print(f"generated {made['seconds'] / 60:.1f} min ({made['clips']} clips, "
              f"{made['clip_seconds'] / made['seconds']:.0%} clip time) at {args.rate} Hz in "
              f"{time.perf_counter() - started:.0f} s: {audio.stat().st_size / 1e6:.0f} MB FLAC", file=sys.stderr)
        run = subprocess.run([sys.executable, __file__, "--child", str(audio), model], capture_output=True,
                             text=True, check=False)
        if run.returncode:
            sys.exit(f"the measured run failed:\n{run.stderr}")
        numbers = json.loads(run.stdout.strip().splitlines()[-1])
    numbers.update(model=Path(model).name, file_rate=args.rate, clips=made["clips"],
                   rss_ok=numbers["peak_rss_mb"] < TARGET_RSS_MB, speed_ok=numbers["real_time_factor"] >= TARGET_SPEED)
    print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
