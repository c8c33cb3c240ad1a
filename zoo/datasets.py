"""Labelled speech corpora in the layouts people actually have, and speaker-grouped splits.

Recognised, in this order: the DACON competition layout (train.csv / test.csv with id,path[,label]);
a folder (or CSV) with manifest.csv (path,label,speaker); corpora by file-naming convention (RAVDESS,
CREMA-D, EmoDB, TESS, SAVEE); a folder per label. Plugins may add readers through the
``register_dataset_readers`` hook. Emotions outside the six classes are dropped and counted.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from zoo.audio import DEFAULT_MAX_SECONDS, read_audio
from zoo.errors import AudioError, DatasetError, EmozooError
from zoo.labels import LABELS, normalise_label

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus"}


@dataclass(frozen=True)
class Item:
    path: Path
    label: int | None
    speaker: str | None = None
    id: str = ""  # as listed in the CSV, else the path relative to the folder given, suffix kept
    problem: str | None = None  # set on a malformed listing row: why it cannot be read (file, line and id)
    corpus: str | None = None  # the dataset it came from (its folder name): for corpus-balanced training


@dataclass
class Dataset:
    items: list[Item]
    source: str
    layout: str
    dropped: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def labels(self) -> np.ndarray:
        if any(item.label is None for item in self.items):
            raise DatasetError(f"{self.source}: some clips have no label")
        return np.array([item.label for item in self.items], dtype=np.int64)

    @property
    def speakers(self) -> list[str | None]:
        return [item.speaker for item in self.items]

    def subset(self, indices: Sequence[int]) -> Dataset:
        return Dataset([self.items[i] for i in indices], self.source, self.layout)

    def describe(self) -> str:
        counts = Counter(LABELS[i.label] for i in self.items if i.label is not None)
        speakers = {i.speaker for i in self.items if i.speaker is not None}
        text = f"{len(self.items)} clips ({self.layout}), {len(speakers)} speakers, " + ", ".join(
            f"{label} {counts[label]}" for label in LABELS if counts[label]
        )
        if self.dropped:
            text += "; dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
        return text


# -- readers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvRow:
    """One data row of a listing CSV, with where it is in the file (the header is line 1)."""

    line: int
    values: dict[str, str | None]  # column -> value; None where the row has fewer fields than the header
    fields: int
    columns: int
    quoting: str | None = None  # what a strict reading says is wrong with the row's quotes, if anything

    def problem(self, source: Path, required: Sequence[str]) -> str | None:
        """Why the row cannot be used, naming the file, line and id; None when it can."""
        ident = (self.values.get("id") or "").strip()
        where = f"{source}: line {self.line}" + (f" (id {ident})" if ident and "\n" not in ident else "")
        if self.quoting:
            return f"{where}: malformed quoting ({self.quoting}); an unclosed quote swallows the lines after it"
        if self.fields > self.columns:
            return f"{where}: {self.fields} fields where the header has {self.columns} (an unquoted comma?)"
        for column in required:
            value = self.values.get(column)
            if value is None:
                return f"{where}: no {column} value (the row has {self.fields} of the {self.columns} fields)"
            if not value.strip():
                return f"{where}: the {column} column is blank"
            if "\n" in value or "\r" in value:
                return f"{where}: the {column} value runs over several lines (an unclosed quote?)"
        return None


def _read_csv_rows(path: Path) -> tuple[list[str], list[CsvRow]]:
    """The header and the non-blank rows of a CSV, read leniently; rows with broken quoting are marked."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
        reader = csv.reader(io.StringIO(text))
        header = [name.strip() for name in next(reader, [])]
        spans = []
        start = reader.line_num + 1
        for fields in reader:
            if fields:
                spans.append((start, reader.line_num, fields))
            start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path}: cannot read CSV ({error})") from None
    strict = csv.reader(io.StringIO(text), strict=True)
    bad_line, quoting = 0, None
    try:
        for _ in strict:
            pass
    except csv.Error as error:
        bad_line, quoting = strict.line_num, str(error)
    rows = []
    for first, last, fields in spans:
        values: dict[str, str | None] = {name: fields[i] if i < len(fields) else None for i, name in enumerate(header)}
        rows.append(CsvRow(first, values, len(fields), len(header), quoting if first <= bad_line <= last else None))
    return header, rows


def _read_csv(path: Path) -> list[dict[str, str | None]]:
    return [row.values for row in _read_csv_rows(path)[1]]


def _bad_row(source: Path, row: CsvRow, problem: str) -> Item:
    """A placeholder for a row that cannot be used: reported (or refused) when its audio would be read."""
    ident = (row.values.get("id") or "").strip()
    return Item(source, None, None, ident if ident and "\n" not in ident else f"line {row.line}", problem)


def _label_or_drop(value: str, dropped: Counter[str]) -> int | None | bool:
    try:
        return normalise_label(value)
    except ValueError:
        dropped[str(value).strip().lower()] += 1
        return False


def read_competition(path: Path) -> Dataset | None:
    """train.csv / test.csv of the DACON layout (id,path[,label]); a folder means its train.csv."""
    csv_path = path / "train.csv" if path.is_dir() else path
    if csv_path.suffix != ".csv" or not csv_path.is_file():
        return None
    header, rows = _read_csv_rows(csv_path)
    if not rows or not {"id", "path"} <= set(header):
        return None
    answers: dict[str, str | None] = {}
    if "label" not in header and (csv_path.parent / "test_answers.csv").is_file():
        answers = {r["id"]: r["label"] for r in _read_csv(csv_path.parent / "test_answers.csv") if r["id"]}
    items = []
    lines: dict[str, list[int]] = {}
    for row in rows:
        problem = row.problem(csv_path, ["id", "path"])
        if problem is None:
            values = row.values
            ident = str(values["id"]).strip()
            label_text = values.get("label") or answers.get(ident)
            try:
                label = normalise_label(label_text) if label_text not in (None, "") else None
            except ValueError as error:
                problem = f"{csv_path}: line {row.line} (id {ident}): {error}"
        if problem is not None:
            items.append(_bad_row(csv_path, row, problem))
            continue
        lines.setdefault(ident, []).append(row.line)
        path = str(values["path"]).strip()
        items.append(Item(csv_path.parent / path, label, values.get("speaker") or None, ident))
    repeated = {ident: at for ident, at in lines.items() if len(at) > 1}
    if repeated:  # one answer per id: a repeated id would give both rows the same, wrong, label
        shown = "; ".join(f"{ident} (lines {', '.join(map(str, at))})" for ident, at in list(repeated.items())[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise DatasetError(f"{csv_path}: ids must be unique; repeated: {shown}{more}")
    return Dataset(items, str(csv_path), "competition")


def read_manifest(path: Path) -> Dataset | None:
    csv_path = path / "manifest.csv" if path.is_dir() else path
    if not csv_path.is_file() or csv_path.suffix != ".csv":
        return None
    header, rows = _read_csv_rows(csv_path)
    if not rows or not {"path", "label"} <= set(header):
        return None
    dropped: Counter[str] = Counter()
    items = []
    for row in rows:
        problem = row.problem(csv_path, ["path", "label"])
        if problem is not None:
            items.append(_bad_row(csv_path, row, problem))
            continue
        label = _label_or_drop(str(row.values["label"]), dropped)
        if label is False:
            continue
        path = str(row.values["path"]).strip()
        # id: the id column, else the path as listed (relative to the manifest's folder, suffix kept)
        items.append(Item(csv_path.parent / path, label, row.values.get("speaker") or None,
                          (row.values.get("id") or "").strip() or path))
    return Dataset(items, str(csv_path), "manifest", dropped)


RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fear",
                    "07": "disgust", "08": "surprised"}
CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
EMODB_EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad",
                  "N": "neutral"}
TESS_EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
                 "ps": "surprised", "sad": "sad"}
SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad",
                  "su": "surprised"}

NamingRule = Callable[[Path], "tuple[str, str] | None"]


def _ravdess(file: Path) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)", file.stem)
    return (RAVDESS_EMOTIONS.get(match[3], match[3]), f"Actor_{match[7]}") if match else None


def _crema(file: Path) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})", file.stem)
    return (CREMA_EMOTIONS.get(match[3], match[3]), match[1]) if match else None


def _emodb(file: Path) -> tuple[str, str] | None:
    match = re.fullmatch(r"(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])", file.stem)
    return (EMODB_EMOTIONS[match[3]], match[1]) if match else None


def _tess(file: Path) -> tuple[str, str] | None:
    match = re.fullmatch(r"([OY]AF)_(\w+?)_(angry|disgust|fear|happy|neutral|ps|sad)", file.stem, re.IGNORECASE)
    return (TESS_EMOTIONS[match[3].lower()], match[1].upper()) if match else None


def _savee(file: Path) -> tuple[str, str] | None:
    match = re.fullmatch(r"(?:(DC|JE|JK|KL)_)?(sa|su|a|d|f|h|n)(\d\d)", file.stem)
    if not match:
        return None
    speaker = match[1] or (file.parent.name if file.parent.name in {"DC", "JE", "JK", "KL"} else None)
    return (SAVEE_EMOTIONS[match[2]], speaker) if speaker else None


NAMING_RULES: dict[str, NamingRule] = {
    "ravdess": _ravdess, "crema-d": _crema, "emodb": _emodb, "tess": _tess, "savee": _savee,
}


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def read_by_naming(path: Path) -> Dataset | None:
    if not path.is_dir():
        return None
    files = _audio_files(path)
    if not files:
        return None
    for corpus, rule in NAMING_RULES.items():
        parsed = [rule(f) for f in files]
        if sum(p is not None for p in parsed) < 0.9 * len(files):
            continue
        dropped: Counter[str] = Counter()
        items = []
        for file, result in zip(files, parsed, strict=True):
            if result is None:
                dropped["unrecognised file name"] += 1
                continue
            label = _label_or_drop(result[0], dropped)
            if label is not False:
                items.append(Item(file, label, result[1], str(file.relative_to(path))))
        return Dataset(items, str(path), corpus, dropped)
    return None


def read_label_folders(path: Path) -> Dataset | None:
    if not path.is_dir():
        return None
    items, dropped = [], Counter()
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        try:
            label = normalise_label(folder.name)
        except ValueError:
            dropped[folder.name] += len(_audio_files(folder))
            continue
        items += [Item(f, label, None, str(f.relative_to(path))) for f in _audio_files(folder)]
    return Dataset(items, str(path), "label-folders", dropped) if items else None


BUILTIN_READERS: list[tuple[str, Callable[[Path], Dataset | None]]] = [
    ("competition", read_competition),
    ("manifest", read_manifest),
    ("naming", read_by_naming),
    ("label-folders", read_label_folders),
]


def load(path: str | os.PathLike[str]) -> Dataset:
    """Read a labelled corpus from a folder or CSV file, recognising its layout."""
    from zoo.registry import get_registry

    target = Path(path)
    if not target.exists():
        raise DatasetError(f"{target}: no such file or folder")
    readers = [(name, reader) for name, reader, _ in get_registry().dataset_readers] + BUILTIN_READERS
    for _, reader in readers:
        dataset = reader(target)
        if dataset is not None:
            if not dataset.items:
                raise DatasetError(f"{target}: recognised as {dataset.layout} but holds no usable clips")
            name = corpus_name(dataset.source)
            dataset.items = [i if i.corpus else replace(i, corpus=name) for i in dataset.items]
            return dataset
    raise DatasetError(
        f"{target}: not a recognised dataset layout (expected train.csv/test.csv, manifest.csv with "
        "path,label,speaker, RAVDESS/CREMA-D/EmoDB/TESS/SAVEE file names, or one folder per emotion)"
    )


def corpus_name(source: str) -> str:
    """A corpus's short name: its folder, or the folder of its CSV file."""
    path = Path(source)
    return path.parent.name if path.suffix == ".csv" or path.is_file() else path.name


def combine(parts: Sequence[Dataset]) -> Dataset:
    """One dataset from several; speakers are prefixed with their corpus so ids never collide."""
    if len(parts) == 1:
        return parts[0]
    items, dropped = [], Counter()
    for part in parts:
        prefix = corpus_name(part.source)
        items += [replace(i, speaker=f"{prefix}/{i.speaker}" if i.speaker is not None else None) for i in part.items]
        dropped.update(part.dropped)
    return Dataset(items, " + ".join(p.source for p in parts), "+".join(p.layout for p in parts), dropped)


def load_all(paths: Sequence[str | os.PathLike[str]]) -> Dataset:
    """`load` each path and `combine` them."""
    return combine([load(p) for p in paths])


# -- splits ---------------------------------------------------------------------------------------------


def _groups(dataset: Dataset) -> np.ndarray:
    speakers = dataset.speakers
    if any(s is None for s in speakers):
        raise DatasetError(
            f"{dataset.source}: clips without speaker ids; a speaker-independent split is impossible. "
            "Add a speaker column (manifest.csv) so no speaker lands in both train and test."
        )
    return np.array(speakers)


def speaker_kfold(dataset: Dataset, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold where every speaker's clips sit in exactly one test fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = _groups(dataset)
    if len(set(groups)) < n_folds:
        raise DatasetError(f"{dataset.source}: {len(set(groups))} speakers cannot fill {n_folds} folds")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(dataset)), dataset.labels, groups))


def speaker_split(dataset: Dataset, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One train/test split by speaker, about `test_fraction` of the speakers held out."""
    folds = max(2, round(1 / test_fraction))
    return speaker_kfold(dataset, folds, seed)[0]


# -- audio ----------------------------------------------------------------------------------------------


def read_item(item: Item, sample_rate: int, *, max_seconds: float | None = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """The clip of one listed item as mono float32 at `sample_rate`; a malformed listing row is a DatasetError."""
    if item.problem is not None:
        raise DatasetError(item.problem)
    return read_audio(item.path, sample_rate, max_seconds=max_seconds)[0]


@dataclass
class LoadedAudio:
    waveforms: list[np.ndarray]
    items: list[Item]
    failures: list[tuple[Item, str]]


def load_waveforms(
    items: Sequence[Item],
    sample_rate: int,
    *,
    on_error: str = "fail",
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    threads: int | None = None,
) -> LoadedAudio:
    """Decode clips in parallel; with on_error="skip" bad files are reported and left out."""
    if on_error not in {"fail", "skip"}:
        raise ValueError("on_error must be 'fail' or 'skip'")

    def decode(item: Item) -> np.ndarray | EmozooError:
        try:
            return read_item(item, sample_rate, max_seconds=max_seconds)
        except (AudioError, DatasetError) as error:
            return error

    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        results = list(pool.map(decode, items))
    loaded = LoadedAudio([], [], [])
    for item, result in zip(items, results, strict=True):
        if isinstance(result, EmozooError):
            if on_error == "fail":
                raise result
            loaded.failures.append((item, str(result)))
        else:
            loaded.waveforms.append(result)
            loaded.items.append(item)
    if items and not loaded.items:  # "skip the bad ones" with nothing left is a failure, not an empty success
        shown = "; ".join(message for _, message in loaded.failures[:3])
        more = f"; and {len(loaded.failures) - 3} more" if len(loaded.failures) > 3 else ""
        raise DatasetError(f"none of the {len(items)} clips could be read: {shown}{more}")
    return loaded
