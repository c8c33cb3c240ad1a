"""Export acceptance run (not a test): train classic models on part of the real corpora, export each to ONNX
and validate native vs ONNX on the held-out speakers' clips.

    .venv/bin/python benchmarks/export_acceptance.py [--data-root ../shared/data] [--models librosa-svc:default ...]

Training: RAVDESS actors 01-12 and the first half of the EmoDB speakers; validation: every clip of the
other speakers (RAVDESS 13-16, the other EmoDB half), none of which the model saw. Tolerances are
reported, not enforced here (the export is run with a permissive config so that every number prints).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import zoo
from exporters import ExportConfig, export_model
from zoo import datasets

DEFAULT_RUNS = ("librosa-svc:default", "librosa-logreg:default", "librosa-rf:default", "librosa-svc:seed")
RAVDESS_TRAIN = {f"Actor_{i:02d}" for i in range(1, 13)}


def split(root: Path) -> tuple[datasets.Dataset, datasets.Dataset]:
    ravdess = datasets.load(root / "ravdess")
    emodb = datasets.load(root / "emodb")
    emodb_speakers = sorted({item.speaker for item in emodb})
    emodb_train = set(emodb_speakers[: len(emodb_speakers) // 2])
    both = datasets.combine([ravdess, emodb])
    chosen = RAVDESS_TRAIN | emodb_train
    train = [i for i, item in enumerate(both) if str(item.speaker).split("/")[-1] in chosen]
    held_out = sorted(set(range(len(both))) - set(train))
    return both.subset(train), both.subset(held_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_RUNS),
                        help="PLUGIN:FEATURES for classic models, PLUGIN for the others")
    parser.add_argument("--param", action="append", default=[],
                        help="KEY=VALUE for the non-classic models (e.g. epochs=2)")
    parser.add_argument("--out", default="/tmp/emozoo-export-acceptance")
    parser.add_argument("--max-train", type=int, help="train on the first N training clips only")
    parser.add_argument("--max-held-out", type=int, help="validate on N held-out clips spread over the speakers")
    args = parser.parse_args()
    train, held_out = split(Path(args.data_root))
    if args.max_train:
        train = train.subset(range(min(args.max_train, len(train))))
    if args.max_held_out and args.max_held_out < len(held_out):
        held_out = held_out.subset(np.linspace(0, len(held_out) - 1, args.max_held_out).round().astype(int))
    print(f"train: {train.describe()}\nheld out: {held_out.describe()}", flush=True)
    audio: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    permissive = ExportConfig(max_abs_diff=1.0, min_agreement=0.0)
    results = []
    for run in args.models:
        plugin, _, features = run.partition(":")
        if features:
            model = zoo.create_model(plugin, features=features)
        else:
            from zoo.cli.common import parse_params

            model = zoo.create_model(plugin, **parse_params(args.param))
        rate = model.sample_rate
        if rate not in audio:
            audio[rate] = (datasets.load_waveforms(train.items, rate).waveforms,
                           datasets.load_waveforms(held_out.items, rate).waveforms)
        started = time.perf_counter()
        model.fit(audio[rate][0], train.labels)
        fitted = time.perf_counter() - started
        target = Path(args.out) / f"{plugin}-{features}.onnx"
        report = export_model(model, target, validate_on=(audio[rate][1], held_out.labels), config=permissive,
                              validation_source=f"{len(held_out)} held-out clips")
        validation = report.validation
        from exporters.export import _export_config
        from zoo.registry import exporter_for

        default, family = ExportConfig(), _export_config(exporter_for(model.family), model)
        row = {
            "model": run, "fit_seconds": round(fitted, 1), "export_seconds": report.seconds,
            "size_mb": round(report.size_bytes / 1e6, 2), "held_out_clips": validation.clips,
            "agreement": round(validation.agreement, 5), "max_abs_diff": float(f"{validation.max_abs_diff:.3e}"),
            "passes": [(p.name, p.clips, round(p.agreement, 5), float(f"{p.max_abs_diff:.3e}"))
                       for p in validation.passes],
            "native_accuracy": validation.native_accuracy, "onnx_accuracy": validation.onnx_accuracy,
            "meets_default_tolerance": validation.agreement >= default.min_agreement
            and validation.max_abs_diff <= default.max_abs_diff,
            "family_tolerance": {"min_agreement": family.min_agreement, "max_abs_diff": family.max_abs_diff},
            "meets_family_tolerance": validation.agreement >= family.min_agreement
            and validation.max_abs_diff <= family.max_abs_diff,
        }
        results.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
