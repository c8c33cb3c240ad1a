"""What `predict` is pointed at: audio files, folders, or a CSV list (DACON test.csv, manifest.csv).

Kept free of the plugin registry so the ONNX path stays light.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from zoo.datasets import AUDIO_SUFFIXES, Item, read_competition, read_manifest
from zoo.errors import DatasetError


@dataclass
class Inputs:
    items: list[Item]
    submission_order: list[str] | None = None  # ids in sample_submission.csv order, when known


def collect_inputs(paths: list[str]) -> Inputs:
    items: list[Item] = []
    order: list[str] | None = None
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise DatasetError(f"{path}: no such file or folder")
        listing = _listing(path)
        if listing is not None:
            items += listing.items
            sample = Path(listing.source).parent / "sample_submission.csv"
            if listing.layout == "competition" and sample.is_file():
                with sample.open(newline="", encoding="utf-8-sig") as handle:
                    order = [row["id"] for row in csv.DictReader(handle)]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not files:
                raise DatasetError(f"{path}: folder holds no audio files")
            items += [Item(f, None, None, str(f.relative_to(path))) for f in files]
        else:
            items.append(Item(path, None, None, path.name))
    return Inputs(items, order)


def _listing(path: Path):  # noqa: ANN202 - returns a Dataset or None
    if path.is_dir():
        for name, reader in (("test.csv", read_competition), ("manifest.csv", read_manifest)):
            if (path / name).is_file():
                return reader(path / name)
        return None
    if path.suffix.lower() == ".csv":
        listing = read_competition(path) or read_manifest(path)
        if listing is None:
            raise DatasetError(f"{path}: CSV needs columns id,path (competition) or path,label (manifest)")
        return listing
    return None
