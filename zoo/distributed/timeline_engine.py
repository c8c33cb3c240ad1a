"""`emozoo timeline ... --engine ray`: speech segments and their emotions for many long files on Ray Data.

Files are hashed (and those already in OUT dropped) in Ray tasks; an actor pool holds the model and the VAD
once per actor and runs `zoo.timeline.timeline_file` on each file, which streams it in blocks (constant memory:
no decoded audio goes through the object store). An actor answers one row per file with all its segments, so
a partition always holds every segment of the files in it, and a killed run never leaves a file half done.
Partition rows: one per segment; a file without speech has one row with no times; a bad file one row with its
error. Resuming and the output folder are as for predict (zoo/distributed/engine.py); the loop and its
fault tolerance are the one both share (zoo/distributed/pipeline.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.distributed import require_ray
from zoo.distributed.engine import RayOptions
from zoo.distributed.ledger import SUMMARY_FILE, model_digest, open_output, partition_files, read_ledger
from zoo.distributed.pipeline import Stage, run_pipeline
from zoo.distributed.stages import listing_rows
from zoo.labels import LABELS
from zoo.storage import atomic_write_json

SEGMENTS, WORK_S = "segments", "work_s"


def timeline_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("path", pa.string()), ("sha256", pa.string()),
                      ("start", pa.float64()), ("end", pa.float64()), ("label", pa.string()),
                      ("confidence", pa.float64())] + [(name, pa.float64()) for name in LABELS]
                     + [("error", pa.string())])


@dataclass
class TimelineSummary:
    model: str
    output_format: str
    files: int
    with_speech: int
    no_speech: int
    failed: int
    segments: int
    labels: dict[str, int]  # segments per label
    failures: list[dict[str, str]]
    stale_rows: int
    partitions: int
    run: dict[str, Any] = field(default_factory=dict)


def hash_batch(batch: Any, *, done: set[tuple[str, str]]) -> Any:
    """Listing rows -> (id, path, sha256) of the files not already in OUT."""
    import pyarrow as pa

    from zoo.distributed.ledger import file_sha256

    kept: dict[str, list[Any]] = {"id": [], "path": [], "sha256": []}
    for row in batch.to_pylist():
        try:
            digest: str | None = file_sha256(row["path"])
        except OSError:
            digest = None  # timeline_file names the problem; with no hash the file is retried by a rerun
        if digest is None or (row["path"], digest) not in done:
            for name, value in (("id", row["id"]), ("path", row["path"]), ("sha256", digest)):
                kept[name].append(value)
    return pa.table(kept, schema=pa.schema([(n, pa.string()) for n in kept]))


class TimelineWorker:
    """One per actor: the model and the VAD are loaded once; each file becomes one row with all its segments."""

    def __init__(self, model_path: str, *, threads: int | None, device: str, vad: str, params: dict[str, Any],
                 smooth: int, batch_size: int, max_seconds: float | None) -> None:
        from zoo.api import load_for_inference
        from zoo.segments import SegmentParams
        from zoo.vad import load_vad

        self.model = load_for_inference(model_path, threads=threads, device=device)
        self.detector = load_vad(vad)
        self.params = SegmentParams(**params)
        self.smooth, self.batch_size, self.max_seconds = smooth, batch_size, max_seconds

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from zoo.errors import AudioError
        from zoo.timeline import timeline_file

        out: dict[str, list[Any]] = {"id": [], "path": [], "sha256": [], "error": [], SEGMENTS: [], WORK_S: []}
        for row in batch.to_pylist():
            start = time.perf_counter()
            error, segments = None, []
            try:
                result = timeline_file(self.model, row["path"], params=self.params, detector=self.detector,
                                       smooth=self.smooth, batch_size=self.batch_size, max_seconds=self.max_seconds)
                segments = result.rows()
            except AudioError as problem:
                error = str(problem)
            for name, value in (("id", row["id"]), ("path", row["path"]), ("sha256", row["sha256"]),
                                ("error", error), (SEGMENTS, json.dumps(segments)),
                                (WORK_S, time.perf_counter() - start)):
                out[name].append(value)
        types = {WORK_S: pa.float64()}
        return pa.table(out, schema=pa.schema([(n, types.get(n, pa.string())) for n in out]))


def segment_rows(file: dict[str, Any]) -> list[dict[str, Any]]:
    """One actor row (a file) as partition rows: a row per segment, else one row without times."""
    base = {"id": file["id"], "path": file["path"], "sha256": file["sha256"], "error": file["error"]}
    segments = json.loads(file[SEGMENTS])
    if not segments:
        return [base]
    return [{**base, **{k: v for k, v in segment.items() if k != "file"}} for segment in segments]


def timeline_with_ray(model_path: str | Path, inputs: list[str], out: str | Path, options: RayOptions | None = None,
                      *, vad: str = "auto", params: dict[str, Any] | None = None, smooth: int = 0) -> TimelineSummary:
    """The timeline of every input not already in `out`, into partitions and `out/summary.json`."""
    import pyarrow as pa

    from zoo.inputs import collect_inputs
    from zoo.segments import SegmentParams
    from zoo.vad import load_vad

    options = options or RayOptions()
    ray = require_ray()
    model_path = Path(model_path)
    started = time.perf_counter()
    segmentation = asdict(SegmentParams(**(params or {})))  # checked here, before anything starts
    load_vad(vad)
    listing = collect_inputs(list(inputs))
    settings = {"command": "timeline", "vad": vad, "params": segmentation, "smooth": smooth}
    target = open_output(out, model_path, model_digest(model_path), settings)
    fields = timeline_schema()
    rows = listing_rows(listing.items)
    done = read_ledger(target, fields).done
    totals: Counter[str] = Counter()

    def to_table(batch: Any) -> Any:
        files_in = batch.to_pylist()  # whole files: a partition never holds part of a file's segments
        totals.update(files=len(files_in), failed=sum(f["error"] is not None for f in files_in),
                      work_s=sum(f[WORK_S] for f in files_in))
        return pa.Table.from_pylist([r for f in files_in for r in segment_rows(f)], schema=fields)

    outcome = run_pipeline(
        ray, rows, target, address=options.address, num_workers=options.num_workers, progress=options.progress,
        output_format=options.output_format, prepare=Stage(hash_batch, {"done": done}),
        work=Stage(TimelineWorker, {"model_path": str(model_path), "threads": options.threads or 1,
                                    "device": options.device, "vad": vad, "params": segmentation, "smooth": smooth,
                                    "batch_size": options.batch_size, "max_seconds": options.max_seconds}),
        work_batch=1, partition_batch=max(1, options.partition_rows // 20), to_table=to_table, fields=fields)
    wall = time.perf_counter() - started
    run = {"started": outcome.stamp, "inputs": list(inputs), "listed": len(rows),
           "already_done": len(rows) - totals["files"], "processed": totals["files"], "failed": totals["failed"],
           "partitions_written": outcome.written, "workers": outcome.workers, "address": options.address or "local",
           "seconds": {"total": round(wall, 3), "ray_start": round(outcome.ready - started, 3),
                       "timeline_actor_s": round(totals["work_s"], 3)}}
    summary = _summarize(target, model_path, options.output_format, run)
    atomic_write_json(target / SUMMARY_FILE, asdict(summary))
    return summary


def _summarize(out: Path, model_path: Path, output_format: str, run: dict[str, Any]) -> TimelineSummary:
    ledger = read_ledger(out, timeline_schema())
    files = list(ledger.rows.values())
    failures = [{"path": rows[0]["path"], "error": rows[0]["error"]} for rows in files if rows[0]["error"]]
    speech = [rows for rows in files if not rows[0]["error"] and rows[0]["start"] is not None]
    labels = Counter(row["label"] for rows in speech for row in rows)
    return TimelineSummary(model=str(model_path), output_format=output_format, files=len(files),
                           with_speech=len(speech), no_speech=len(files) - len(speech) - len(failures),
                           failed=len(failures), segments=sum(len(rows) for rows in speech),
                           labels=dict(sorted(labels.items())), failures=failures, stale_rows=ledger.stale,
                           partitions=len(partition_files(out)), run=run)
