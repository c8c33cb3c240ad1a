"""The output folder of a Ray scoring run: what it already holds, so that a rerun scores only the rest.

OUT/ holds `run.json` (the model it was scored with), partitions `part-*.csv` / `part-*.parquet` (one row per
input: a prediction, or the error that made the input unusable) and `summary.json`. An input is done when a
partition holds a row for its absolute path with the same content hash (SHA-256 of the file's bytes); a changed
file is scored again. Failures are rows too: the same bytes fail the same way, so they are not retried.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import EmozooError
from zoo.storage import OutputPathError, atomic_write_json, check_directory_target

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
PARTITION_SUFFIXES = (".csv", ".parquet")
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of an ONNX file, or of a saved model folder's file names and bytes."""
    target = Path(path)
    if target.is_file():
        return file_sha256(target)
    digest = hashlib.sha256()
    for file in sorted(p for p in target.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(target)).encode() + b"\0" + file_sha256(file).encode() + b"\n")
    return digest.hexdigest()


def partition_files(out: Path) -> list[Path]:
    """Partitions in write order (their names start with the run's UTC time)."""
    return sorted(p for p in out.glob("part-*") if p.suffix in PARTITION_SUFFIXES and p.is_file())


def open_output(out: str | os.PathLike[str], model_path: Path, digest: str,
                settings: dict[str, Any] | None = None) -> Path:
    """Check that OUT is new, empty, or an earlier run of this model (and `settings`); record them in run.json."""
    target = check_directory_target(
        out, replace_if=lambda p: (p / RUN_FILE).is_file(), what="an emozoo Ray output folder",
        advice="give a new folder (or the OUT of an earlier run of the same model to resume it)",
    )
    run_file = target / RUN_FILE
    settings = settings or {}
    if run_file.is_file():
        import json

        try:
            recorded = json.loads(run_file.read_text())
        except (OSError, ValueError) as error:
            raise OutputPathError(f"{run_file}: unreadable ({error}); give a new output folder") from None
        if recorded.get("model_sha256") != digest:
            raise EmozooError(
                f"{target}: holds predictions of another model ({recorded.get('model')}, sha256 "
                f"{str(recorded.get('model_sha256'))[:12]}); give a new output folder for {model_path}"
            )
        if recorded.get("settings", {}) != json.loads(json.dumps(settings)):
            raise EmozooError(f"{target}: was written with other settings ({recorded.get('settings', {})}, now "
                              f"{settings}); give a new output folder")
    else:
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_file, {"model": str(model_path.resolve()), "model_sha256": digest,
                                     "settings": settings})
    return target


@dataclass
class Ledger:
    """The rows already in OUT by path (those of the newest partition holding it: a timeline file has several),
    and how many older rows newer ones replace."""

    rows: dict[str, list[dict[str, Any]]]
    stale: int

    @property
    def done(self) -> set[tuple[str, str]]:
        return {(path, rows[0]["sha256"]) for path, rows in self.rows.items() if rows[0].get("sha256")}


def read_ledger(out: Path, fields: Any = None) -> Ledger:
    from zoo.distributed.partitions import read_partition

    rows: dict[str, list[dict[str, Any]]] = {}
    stale = 0
    for file in partition_files(out):
        found: dict[str, list[dict[str, Any]]] = {}
        for row in read_partition(file, fields):
            found.setdefault(row["path"], []).append(row)
        for path, new in found.items():
            stale += len(rows.get(path, []))
            rows[path] = new
    return Ledger(rows, stale)
