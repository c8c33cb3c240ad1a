"""Run the Ray Data pipeline: list -> decode tasks -> scoring actor pool -> partitions in OUT + summary.json."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.distributed import require_ray
from zoo.distributed.ledger import SUMMARY_FILE, model_digest, open_output, partition_files, read_ledger
from zoo.distributed.partitions import FORMATS
from zoo.distributed.pipeline import Stage, run_pipeline
from zoo.distributed.stages import DECODE_CPU_S, DECODE_S, SCORE_CPU_S, SCORE_S, Scorer, decode_batch, listing_rows
from zoo.storage import atomic_write_json


@dataclass
class RayOptions:
    address: str | None = None  # None: start Ray on this machine (or use the Ray this process already started)
    num_workers: int | None = None  # scoring actors; None: one per CPU of the cluster
    threads: int | None = None  # model threads per actor; None: 1
    device: str = "auto"
    batch_size: int = 16  # clips per model run (as `emozoo predict --batch-size`)
    actor_batch: int = 64  # clips handed to an actor at once (predict_proba sorts them by length)
    partition_rows: int = 1000  # rows per partition file
    output_format: str = "csv"
    max_seconds: float | None = 600.0
    progress: bool = True  # Ray Data's progress bars on standard error


@dataclass
class Summary:
    """summary.json: the whole folder's counts and failures, and this run's work and timings."""

    model: str
    output_format: str
    rows: int  # inputs with a row in OUT (newest row per path)
    scored: int
    failed: int
    labels: dict[str, int]
    failures: list[dict[str, str]]
    stale_rows: int  # older rows of files that changed and were scored again
    partitions: int
    run: dict[str, Any] = field(default_factory=dict)


def score_with_ray(model_path: str | os.PathLike[str], inputs: list[str], out: str | os.PathLike[str],
                   options: RayOptions | None = None,
                   on_partition: Callable[[Path], None] | None = None) -> Summary:
    """Score every input not already scored in `out`; write partitions and `out/summary.json`; return the summary.

    `on_partition` is called with each partition written (progress reporting; tests stop a run there).
    """
    from zoo.inputs import collect_inputs

    options = options or RayOptions()
    if options.output_format not in FORMATS:
        raise ValueError(f"unknown partition format {options.output_format!r}; choose one of: {', '.join(FORMATS)}")
    ray = require_ray()  # before anything is written into OUT
    model_path = Path(model_path)
    started = time.perf_counter()
    listing = collect_inputs(list(inputs))
    sample_rate = _sample_rate(model_path)
    target = open_output(out, model_path, model_digest(model_path))
    ledger = read_ledger(target)
    rows = listing_rows(listing.items)
    timings = (DECODE_S, DECODE_CPU_S, SCORE_S, SCORE_CPU_S)
    totals: Counter[str] = Counter()

    def to_table(batch: Any) -> Any:
        totals.update({name: sum(batch.column(name).to_pylist()) for name in timings})
        totals.update(rows=batch.num_rows, failed=batch.num_rows - batch.column("error").null_count)
        return batch.drop_columns(list(timings))

    outcome = run_pipeline(
        ray, rows, target, address=options.address, num_workers=options.num_workers, progress=options.progress,
        output_format=options.output_format,
        prepare=Stage(decode_batch, {"sample_rate": sample_rate, "max_seconds": options.max_seconds,
                                     "done": ledger.done}),
        work=Stage(Scorer, {"model_path": str(model_path), "threads": options.threads or 1,
                            "device": options.device, "batch_size": options.batch_size}),
        work_batch=options.actor_batch, partition_batch=options.partition_rows, to_table=to_table,
        on_partition=on_partition)
    wall = time.perf_counter() - started
    run = {
        "started": outcome.stamp, "inputs": list(inputs), "listed": len(rows),
        "already_done": len(rows) - totals["rows"], "scored": totals["rows"] - totals["failed"],
        "failed": totals["failed"], "partitions_written": outcome.written, "workers": outcome.workers,
        "address": options.address or "local",
        "seconds": {"total": round(wall, 3), "ray_start": round(outcome.ready - started, 3),
                    "decode_task_s": round(totals[DECODE_S], 3), "score_actor_s": round(totals[SCORE_S], 3),
                    "decode_task_cpu_s": round(totals[DECODE_CPU_S], 3),
                    "score_actor_cpu_s": round(totals[SCORE_CPU_S], 3)},
        "clips_per_second": round(totals["rows"] / wall, 2) if wall > 0 else None,
    }
    summary = summarize(target, model_path, options.output_format, run)
    atomic_write_json(target / SUMMARY_FILE, asdict(summary))
    return summary


def summarize(out: Path, model_path: Path, output_format: str, run: dict[str, Any]) -> Summary:
    ledger = read_ledger(out)
    current = [rows[-1] for rows in ledger.rows.values()]
    failures = [{"path": row["path"], "error": row["error"]} for row in current if row["error"] is not None]
    labels = Counter(row["label"] for row in current if row["error"] is None)
    return Summary(model=str(model_path), output_format=output_format, rows=len(current),
                   scored=len(current) - len(failures), failed=len(failures), labels=dict(sorted(labels.items())),
                   failures=failures, stale_rows=ledger.stale, partitions=len(partition_files(out)), run=run)


def _sample_rate(model_path: Path) -> int:
    """The rate the decode tasks resample to; loading here also checks the model before Ray starts."""
    if model_path.suffix == ".onnx":
        from zoo.onnx_runtime import OnnxEmotionModel

        return OnnxEmotionModel(model_path, threads=1, providers=["CPUExecutionProvider"]).sample_rate
    from zoo.api import load

    return int(load(model_path).sample_rate)
