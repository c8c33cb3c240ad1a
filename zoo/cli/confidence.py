"""The `--min-confidence` option `emozoo predict` and `emozoo serve` share."""

from __future__ import annotations

import math
from typing import Any

import click


class Probability(click.ParamType):
    """A number in [0, 1] (click.FloatRange lets NaN through)."""

    name = "P"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if math.isnan(number) or not 0.0 <= number <= 1.0:
            self.fail(f"{value!r} is not a probability in [0, 1]", param, ctx)
        return number


def min_confidence_option(extra_help: str = "") -> Any:
    return click.option(
        "--min-confidence", type=Probability(), default=None,
        help="Below this top probability the label is 'uncertain', the probabilities still given"
             f"{extra_help}. See docs/calibration.md.")
