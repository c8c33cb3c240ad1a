"""Rebuild the bundled default model, its ONNX file and its model card.

    .venv/bin/python scripts/build_default_model.py [--plugin librosa-logreg] [--data-root ../shared/data]

Trains on every shared corpus (EmoDB, RAVDESS, nEMO) except the demo speaker (RAVDESS Actor_16, whose clips
ship as demo clips and so must stay unseen), corpus- and class-balanced, after measuring the same recipe with a
5-fold speaker-grouped cross-validation and leave-one-corpus-out (with and without speaker normalisation).
The model fits its confidence temperature during training (calibrate=temperature, the classic models' default:
speaker-grouped out-of-fold probabilities of the training clips; docs/calibration.md); the card records it.
"""

from __future__ import annotations

import json
import shlex
import sys
import time

import numpy as np
from default_recipe import DEMO_SPEAKER, load_recipe, recipe_parser

import zoo
from exporters import export_model
from zoo.bundled import default_model_path
from zoo.evaluation import cross_validate, leave_one_corpus_out
from zoo.labels import LABELS
from zoo.model import fit_with_speakers
from zoo.storage import atomic_write_json, atomic_write_text


def main() -> None:
    args = recipe_parser(__doc__).parse_args()
    recipe = load_recipe(args)
    params, data, audio = recipe.params, recipe.data, recipe.audio
    model = zoo.create_model(args.plugin, **params)
    started = time.perf_counter()
    result = cross_validate(lambda: zoo.create_model(args.plugin, **params), data, audio, args.folds)
    cv = {k: round(v, 4) for k, v in result.summary().items() if k in {"accuracy", "uar", "macro_f1",
                                                                       "accuracy_std", "ece", "brier"}}
    print(f"{args.folds}-fold speaker-grouped CV: {cv}", file=sys.stderr)
    transfer = {}
    for normalize in ("none", "speaker"):
        summary = leave_one_corpus_out(lambda: zoo.create_model(args.plugin, **params), data, audio,
                                       normalize).summary()
        transfer[normalize] = {k: summary[k] for k in ("accuracy", "uar", "macro_f1", "min_uar", "per_corpus")}
        print(f"leave-one-corpus-out, normalize={normalize}: {transfer[normalize]}", file=sys.stderr)

    fit_with_speakers(model, audio.waveforms, data.labels, [i.speaker for i in data.items],
                      [i.corpus for i in data.items])
    model.metrics_ = {f"cv{args.folds}_speaker_grouped": cv, "leave_one_corpus_out": transfer,
                      "training_seconds": round(time.perf_counter() - started, 1)}
    target = default_model_path()
    report = export_model(model, target, validate_on=(audio.waveforms, data.labels))
    print(report, file=sys.stderr)

    from zoo.onnx_runtime import OnnxEmotionModel

    exported = OnnxEmotionModel(target)
    fingerprint = exported.metadata["training_data_fingerprint"]
    command = "python scripts/build_default_model.py " + shlex.join(
        ["--plugin", args.plugin, *[f"--param={p}" for p in args.param]])
    card = {
        "file": target.name,
        "plugin": args.plugin,
        "params": model.get_params(),
        "feature_set": model.feature_config().get("name"),
        "sample_rate": model.sample_rate,
        "training_data": model.training_data_,
        "training_data_fingerprint": fingerprint,
        "held_out_speaker": DEMO_SPEAKER,
        "cross_validation": {"folds": args.folds, "grouping": "speaker", **cv,
                             "per_class_recall": result.pooled["per_class_recall"]},
        "leave_one_corpus_out": transfer,
        "calibration": model.calibration_.as_dict(),
        "size_bytes": target.stat().st_size,
        "command": command,
    }
    atomic_write_json(target.with_name("model_card.json"), card)
    atomic_write_text(target.with_name("MODEL_CARD.md"), render_card(card, result.pooled))
    print(json.dumps({"model": str(target), "size_mb": round(card["size_bytes"] / 1e6, 2), **cv}))


def transfer_rows(transfer: dict) -> str:
    rows = [f"| {name} | {row['uar']:.3f} | {transfer['speaker']['per_corpus'][name]['uar']:.3f} |"
            for name, row in transfer["none"]["per_corpus"].items()]
    rows.append(f"| **mean** | **{transfer['none']['uar']:.3f}** | **{transfer['speaker']['uar']:.3f}** |")
    return "\n".join(rows)


def calibration_line(calibration: dict) -> str:
    fitted = calibration.get("fitted_on", {})
    if calibration.get("method") != "temperature":
        return f"Not calibrated ({fitted.get('skipped', 'calibrate=none')})."
    return (f"Probabilities are divided by a temperature of {calibration['temperature']:.3f} (inside the ONNX "
            f"graph), fitted on {fitted.get('folds')}-fold speaker-grouped out-of-fold predictions of the training "
            f"clips, where it took the expected calibration error from {fitted.get('ece_before', float('nan')):.3f} "
            f"to {fitted.get('ece_after', float('nan')):.3f}.")


def render_card(card: dict, pooled: dict) -> str:
    counts = card["training_data"]["class_counts"]
    recall = "\n".join(f"| {label} | {counts.get(label, 0)} | {pooled['per_class_recall'].get(label, 0):.3f} |"
                       for label in LABELS)
    confusion = np.array(pooled["confusion"])
    matrix = "\n".join(f"| {label} | " + " | ".join(str(v) for v in row) + " |"
                       for label, row in zip(LABELS, confusion, strict=True))
    cv = card["cross_validation"]
    return f"""# emozoo default model

`{card['file']}`: {card['plugin']} ({', '.join(f'{k}={v}' for k, v in card['params'].items())}), exported end to
end (waveform at {card['sample_rate']} Hz in, probabilities over the six emotions out; feature extraction inside
the graph). {card['size_bytes'] / 1e6:.2f} MB. Runs with onnxruntime alone. Feature set: `{card.get('feature_set')}`.

## Training data

EmoDB (German, 10 speakers), RAVDESS speech actors 01-15 (English) and nEMO (Polish, 7 speakers, no disgust):
{card['training_data']['n_clips']} clips, weighted so that every class, and every corpus within a class, counts
the same. RAVDESS actor 16 is held out: its clips are the bundled demo clips, so the demo shows unseen speech.
Training-data fingerprint (also in the ONNX metadata): `{card['training_data_fingerprint']}`.

**Licences.** RAVDESS is CC BY-NC-SA 4.0 (non-commercial, share-alike); EmoDB is free for research use.
This model inherits those terms: **non-commercial research use only**; share adaptations under the same terms.
nEMO is CC BY-NC-SA 4.0 as well. Cite Livingstone & Russo, PLoS ONE 2018 (RAVDESS), Burkhardt et al.,
Interspeech 2005 (EmoDB) and Christop, LREC-COLING 2024 (nEMO).

## Accuracy

{cv['folds']}-fold cross-validation grouped by speaker (no speaker in both train and test) on the same clips:
accuracy **{cv['accuracy']:.3f}** (fold std {cv['accuracy_std']:.3f}), unweighted average recall
**{cv['uar']:.3f}**, macro-F1 **{cv['macro_f1']:.3f}**. Chance is about 0.17.

**Confidence.** {calibration_line(card['calibration'])} In the same cross-validation (each fold's model
calibrated on its own training speakers) the expected calibration error on the held-out speakers is
**{cv['ece']:.3f}** and the Brier score {cv['brier']:.3f} (docs/calibration.md).

**Other corpora** (leave-one-corpus-out: trained the same way on two corpora, scored on the third, which
no training clip came from; UAR over the classes the held-out corpus has):

| held-out corpus | UAR | UAR, `--normalize speaker` |
|---|---|---|
{transfer_rows(card['leave_one_corpus_out'])}

| emotion | training clips | recall (CV) |
|---|---|---|
{recall}

Confusion matrix (rows true, columns predicted, pooled over folds):

| | {' | '.join(LABELS)} |
|---|{'---|' * len(LABELS)}
{matrix}

## Rebuild

```bash
{card['command']}
```

## Known limits

- Acted emotions from two corpora, read sentences in a quiet room: expect lower accuracy on spontaneous,
  noisy or telephone speech, and on emotions expressed in context rather than in the voice.
- Languages seen: German, North American English and Polish; 32 speakers. Expect the cross-corpus numbers
  above, not the cross-validation ones, on recordings unlike these.
- Six classes only: calm, boredom, surprise and mixed states are forced into one of them.
- Not for decisions about people (hiring, health, policing): accuracy is far from that bar.
"""


if __name__ == "__main__":
    main()
