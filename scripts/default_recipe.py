"""What the bundled default model's scripts share: their command-line options and their training data.

scripts/build_default_model.py and scripts/measure_calibration.py train the same recipe on the same clips:
EmoDB, RAVDESS and nEMO under --data-root, without the demo speaker (RAVDESS Actor_16, whose clips ship as
the demo clips and so must stay unseen).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo import datasets

DEMO_SPEAKER = "ravdess/Actor_16"
CORPORA = ("emodb", "ravdess", "nemo")
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Recipe:
    """The plugin, its parameters, the clips without the demo speaker and their decoded audio."""

    plugin: str
    params: dict[str, Any]
    data: datasets.Dataset
    audio: datasets.LoadedAudio


def recipe_parser(description: str | None) -> argparse.ArgumentParser:
    """--plugin, --param KEY=VALUE (repeatable), --data-root and --folds; a script adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--plugin", default="librosa-logreg")
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE model parameter")
    parser.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    parser.add_argument("--folds", type=int, default=5)
    return parser


def load_recipe(args: argparse.Namespace) -> Recipe:
    """The parsed parameters and every clip of CORPORA under --data-root except the demo speaker's, decoded
    at the plugin's sample rate (a bad --param or a missing corpus fails here, before any training)."""
    import zoo
    from zoo.cli.common import parse_params

    params = parse_params(args.param)
    everything = datasets.load_all([Path(args.data_root) / name for name in CORPORA])
    data = everything.subset([i for i, item in enumerate(everything.items) if item.speaker != DEMO_SPEAKER])
    print(f"training data: {data.describe()}", file=sys.stderr)
    sample_rate = zoo.create_model(args.plugin, **params).sample_rate
    return Recipe(args.plugin, params, data, datasets.load_waveforms(data.items, sample_rate))
