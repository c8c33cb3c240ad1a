"""Fixed speaker folds per corpus: the committed CSV file is the definition of the benchmark's folds.

    python -m benchmarks.folds --data ../shared/data/emodb --data ../shared/data/ravdess --data ../shared/data/nemo

writes ``benchmarks/folds/<corpus>.csv`` (``path,speaker,label,fold``; path as listed in the corpus's
manifest, relative to its folder). Speakers are dealt to folds deterministically, largest first: each goes to
a fold with the fewest speakers so far, and among those to the one whose class counts it brings closest to
an even share of every class (ties: the lower fold number). Nothing is random, so regenerating from the same
manifest gives the same file; once committed the file, not this script, defines the folds, and
`read_folds` refuses a manifest that disagrees with it.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from zoo.datasets import Dataset, corpus_name
from zoo.errors import DatasetError
from zoo.labels import LABELS
from zoo.storage import atomic_write_text

FOLDS_DIR = Path(__file__).resolve().parent / "folds"
DEFAULT_FOLDS = 5
COLUMNS = ("path", "speaker", "label", "fold")


@dataclass(frozen=True)
class FoldAssignment:
    """The fold of every clip of one corpus, keyed by the clip's path as its manifest lists it."""

    corpus: str
    source: Path
    folds: dict[str, int]  # path -> fold
    speakers: dict[str, str]  # path -> speaker
    labels: dict[str, str]  # path -> label name

    @property
    def n_folds(self) -> int:
        return max(self.folds.values()) + 1


def assign_speakers(speakers: Sequence[str], labels: Sequence[int], n_folds: int) -> dict[str, int]:
    """speaker -> fold, balanced by speaker count first and class counts second (deterministic)."""
    names = sorted(set(speakers))
    if len(names) < n_folds:
        raise DatasetError(f"{len(names)} speakers cannot fill {n_folds} folds")
    counts = {name: np.zeros(len(LABELS)) for name in names}
    for speaker, label in zip(speakers, labels, strict=True):
        counts[speaker][label] += 1
    target = sum(counts.values()) / n_folds
    fold_counts = np.zeros((n_folds, len(LABELS)))
    fold_speakers = np.zeros(n_folds, dtype=int)
    chosen: dict[str, int] = {}
    for name in sorted(names, key=lambda n: (-counts[n].sum(), n)):
        open_folds = np.flatnonzero(fold_speakers == fold_speakers.min())
        cost = [float(np.sum((fold_counts[f] + counts[name] - target) ** 2)) for f in open_folds]
        fold = int(open_folds[int(np.argmin(cost))])
        chosen[name] = fold
        fold_counts[fold] += counts[name]
        fold_speakers[fold] += 1
    return chosen


def make_folds(dataset: Dataset, n_folds: int = DEFAULT_FOLDS) -> str:
    """The fold file's text for one corpus read from its manifest."""
    items = [item for item in dataset.items if item.problem is None]
    if any(item.speaker is None or item.label is None for item in items):
        raise DatasetError(f"{dataset.source}: every clip needs a speaker and a label to be given a fold")
    speaker_fold = assign_speakers([str(i.speaker) for i in items], [int(i.label) for i in items], n_folds)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in sorted(items, key=lambda i: i.id):
        writer.writerow([item.id, item.speaker, LABELS[int(item.label)], speaker_fold[str(item.speaker)]])
    return buffer.getvalue()


def fold_file(corpus: str, folds_dir: Path = FOLDS_DIR) -> Path:
    return Path(folds_dir) / f"{corpus}.csv"


def read_folds(path: Path, corpus: str | None = None) -> FoldAssignment:
    """Read one fold file, checking its columns, values and that every speaker sits in exactly one fold."""
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no fold file; generate it with python -m benchmarks.folds --data CORPUS "
                           "and commit it") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path}: cannot read the fold file ({error})") from None
    if not rows or set(COLUMNS) - set(rows[0]):
        raise DatasetError(f"{path}: a fold file needs the columns {', '.join(COLUMNS)} and at least one row")
    folds: dict[str, int] = {}
    speakers: dict[str, str] = {}
    labels: dict[str, str] = {}
    speaker_fold: dict[str, int] = {}
    for line, row in enumerate(rows, 2):
        clip, speaker, label = (row.get("path") or "").strip(), (row.get("speaker") or "").strip(), row.get("label", "")
        try:
            fold = int(row.get("fold") or "")
        except ValueError:
            raise DatasetError(f"{path}: line {line}: fold {row.get('fold')!r} is not a whole number") from None
        if not clip or not speaker or label not in LABELS or fold < 0:
            raise DatasetError(f"{path}: line {line}: needs a path, a speaker, one of the labels "
                               f"{', '.join(LABELS)} and a fold >= 0")
        if clip in folds:
            raise DatasetError(f"{path}: line {line}: {clip} is listed twice")
        if speaker_fold.setdefault(speaker, fold) != fold:
            raise DatasetError(f"{path}: line {line}: speaker {speaker} is in folds {speaker_fold[speaker]} and "
                               f"{fold}; a speaker must sit in one fold")
        folds[clip], speakers[clip], labels[clip] = fold, speaker, label
    present = sorted(set(folds.values()))
    if present != list(range(len(present))):
        raise DatasetError(f"{path}: folds must be numbered 0..k-1 without gaps, found {present}")
    return FoldAssignment(corpus or path.stem, path, folds, speakers, labels)


def folds_for(dataset: Dataset, folds_dir: Path = FOLDS_DIR) -> tuple[FoldAssignment, np.ndarray]:
    """The committed folds of a single-corpus dataset and each of its clips' fold, checked against its manifest:
    the same clips, speakers and labels, or a DatasetError naming both files and the first differences."""
    corpus = corpus_name(dataset.source)
    assignment = read_folds(fold_file(corpus, folds_dir), corpus)
    problems: list[str] = []
    listed = set()
    fold_of = np.empty(len(dataset.items), dtype=np.int64)
    for index, item in enumerate(dataset.items):
        listed.add(item.id)
        if item.problem is not None:
            problems.append(item.problem)
        elif item.id not in assignment.folds:
            problems.append(f"{item.id} is not in the fold file")
        elif str(item.speaker) != assignment.speakers[item.id] or LABELS[int(item.label)] != assignment.labels[item.id]:
            problems.append(f"{item.id}: the manifest says speaker {item.speaker}, {LABELS[int(item.label)]}; the "
                            f"fold file says {assignment.speakers[item.id]}, {assignment.labels[item.id]}")
        else:
            fold_of[index] = assignment.folds[item.id]
    extra = sorted(set(assignment.folds) - listed)
    problems += [f"{clip} is in the fold file but not in the manifest" for clip in extra]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DatasetError(f"{dataset.source} and {assignment.source} disagree: {'; '.join(problems[:3])}{more}. The "
                           "fold file defines the benchmark: restore the corpus, or regenerate the folds "
                           "(python -m benchmarks.folds) and say so")
    return assignment, fold_of


def describe(assignment: FoldAssignment) -> str:
    per_fold = Counter(assignment.folds.values())
    speakers = {f: sorted({s for c, s in assignment.speakers.items() if assignment.folds[c] == f}) for f in per_fold}
    return "; ".join(f"fold {f}: {per_fold[f]} clips, {len(speakers[f])} speakers" for f in sorted(per_fold))


@click.command()
@click.option("--data", "data", required=True, multiple=True, help="A corpus folder with manifest.csv (repeatable).")
@click.option("--folds", "n_folds", default=DEFAULT_FOLDS, show_default=True, help="Folds per corpus.")
@click.option("--out", "out", default=str(FOLDS_DIR), show_default=True, type=click.Path(),
              help="Folder for the files.")
def main(data: tuple[str, ...], n_folds: int, out: str) -> None:
    """Write one speaker-fold file per corpus (deterministic; commit the files)."""
    from zoo import datasets

    for path in data:
        dataset = datasets.load(path)
        corpus = corpus_name(dataset.source)
        target = atomic_write_text(fold_file(corpus, Path(out)), make_folds(dataset, n_folds))
        click.echo(f"{target}: {describe(read_folds(target, corpus))}", err=True)


if __name__ == "__main__":
    main()
