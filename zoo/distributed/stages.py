"""The two stages of the Ray pipeline, as plain functions and a class over Arrow tables.

`decode_batch` runs in Ray tasks: it hashes each listed file, drops those already scored, and decodes and
resamples the rest with `zoo.datasets.read_item` (the single-process path's decoder). `Scorer` runs in an actor
pool: each actor loads the model once with `zoo.api.load_for_inference` and scores with its `predict_proba`.
A bad file becomes a row with its error; it never fails the batch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from zoo.labels import LABELS

# column names the stages pass on besides partitions.COLUMNS
# (wall seconds and CPU seconds of this process, per row: where the time goes, in summary.json)
AUDIO, DECODE_S, SCORE_S, DECODE_CPU_S, SCORE_CPU_S = "audio", "decode_s", "score_s", "decode_cpu_s", "score_cpu_s"


def listing_rows(items: list[Any]) -> list[dict[str, Any]]:
    """Listed `zoo.datasets.Item`s as plain rows for Ray Data, one per file (its absolute path: a rerun's key)."""
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        path = str(Path(item.path).absolute())
        rows.setdefault(path, {"id": item.id, "path": path, "label": -1 if item.label is None else item.label,
                               "speaker": item.speaker or "", "problem": item.problem or "",
                               "corpus": item.corpus or ""})
    return list(rows.values())


def _decoded_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("path", pa.string()), ("sha256", pa.string()), ("true", pa.string()),
                      (AUDIO, pa.large_binary()), ("error", pa.string()), (DECODE_S, pa.float64()),
                      (DECODE_CPU_S, pa.float64())])


def decode_batch(batch: Any, *, sample_rate: int, max_seconds: float | None, done: set[tuple[str, str]]) -> Any:
    """Listing rows -> decoded rows (id, path, sha256, true, audio as float32 bytes, error, decode_s)."""
    import pyarrow as pa

    from zoo.datasets import Item, read_item
    from zoo.distributed.ledger import file_sha256
    from zoo.errors import AudioError, DatasetError

    out: dict[str, list[Any]] = {name: [] for name in _decoded_schema().names}
    for row in batch.to_pylist():
        start, cpu = time.perf_counter(), time.process_time()
        try:
            digest: str | None = file_sha256(row["path"])
        except OSError:
            digest = None  # read_item names the problem below; with no hash the row is retried by a rerun
        if digest is not None and (row["path"], digest) in done:
            continue
        item = Item(Path(row["path"]), None if row["label"] < 0 else row["label"], row["speaker"] or None,
                    row["id"], row["problem"] or None, row["corpus"] or None)
        audio, error = None, None
        try:
            audio = np.ascontiguousarray(read_item(item, sample_rate, max_seconds=max_seconds),
                                         dtype=np.float32).tobytes()
        except (AudioError, DatasetError) as problem:
            error = str(problem)
        for name, value in (("id", row["id"]), ("path", row["path"]), ("sha256", digest),
                            ("true", LABELS[item.label] if item.label is not None else None), (AUDIO, audio),
                            ("error", error), (DECODE_S, time.perf_counter() - start),
                            (DECODE_CPU_S, time.process_time() - cpu)):
            out[name].append(value)
    return pa.Table.from_pydict(out, schema=_decoded_schema())


class Scorer:
    """One per actor: the model is loaded once, then scores every batch the actor is given."""

    def __init__(self, model_path: str, *, threads: int | None, device: str, batch_size: int) -> None:
        from zoo.api import load_for_inference

        self.model = load_for_inference(model_path, threads=threads, device=device)
        self.batch_size = batch_size

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from zoo.distributed.partitions import COLUMNS, PROBABILITY_COLUMNS, schema

        start, cpu = time.perf_counter(), time.process_time()
        rows = batch.drop_columns([AUDIO]).to_pylist()
        audio = batch.column(AUDIO).to_pylist()
        usable = [i for i, row in enumerate(rows) if row["error"] is None]
        probabilities = self._score([np.frombuffer(audio[i], dtype=np.float32) for i in usable], rows, usable)
        for i, p in zip(usable, probabilities, strict=True):
            if p is None:
                continue
            label_id = int(np.argmax(p))
            rows[i].update(label=LABELS[label_id], label_id=label_id, confidence=float(p[label_id]),
                           **{name: float(value) for name, value in zip(PROBABILITY_COLUMNS, p, strict=True)})
        share = max(len(rows), 1)
        elapsed, cpu = (time.perf_counter() - start) / share, (time.process_time() - cpu) / share
        table = pa.Table.from_pylist([{name: row.get(name) for name in COLUMNS} for row in rows], schema=schema())
        for name in (DECODE_S, DECODE_CPU_S):
            table = table.append_column(name, pa.array([row[name] for row in rows], pa.float64()))
        return table.append_column(SCORE_S, pa.array([elapsed] * len(rows), pa.float64())).append_column(
            SCORE_CPU_S, pa.array([cpu] * len(rows), pa.float64()))

    def _score(self, waveforms: list[np.ndarray], rows: list[dict[str, Any]], usable: list[int]) -> list[Any]:
        """Probabilities of each waveform; when the batch fails, clip by clip so that one bad clip costs one row."""
        from zoo.errors import EmozooError

        if not waveforms:
            return []
        try:
            return list(self.model.predict_proba(waveforms, batch_size=self.batch_size))
        except EmozooError:
            pass
        results: list[Any] = []
        for waveform, i in zip(waveforms, usable, strict=True):
            try:
                results.append(self.model.predict_proba([waveform], batch_size=self.batch_size)[0])
            except EmozooError as error:
                rows[i]["error"] = str(error)
                results.append(None)
        return results
