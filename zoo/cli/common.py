"""Pieces shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from zoo.errors import EmozooError

ON_ERROR = click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="On a bad audio file: stop, or report it and go on with the rest.",
)
MAX_DURATION = click.option(
    "--max-duration", type=float, default=600.0, show_default=True, help="Longest clip accepted, in seconds."
)


def parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        key, value = pair.split("=", 1)
        params[key.strip().replace("-", "_")] = parse_value(value.strip())
    return params


def parse_model_params(pairs: Sequence[str], models: Sequence[str]) -> dict[str | None, dict[str, Any]]:
    """`KEY=VALUE` applies to every model (key None), `MODEL:KEY=VALUE` to the one named (MODEL as given)."""
    params: dict[str | None, dict[str, Any]] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise EmozooError(f"--param {pair!r} is not [MODEL:]KEY=VALUE")
        target: str | None = None
        if ":" in key:
            target, key = key.rsplit(":", 1)
            if target not in models:
                raise EmozooError(f"--param {pair!r} names {target!r}, which is not among the models given "
                                  f"({', '.join(models)})")
        params.setdefault(target, {})[key.strip().replace("-", "_")] = parse_value(value.strip())
    return params


def report_failures(failures: Sequence[tuple[Any, str]]) -> None:
    if not failures:
        return
    click.echo(f"skipped {len(failures)} bad file(s):", err=True)
    for _, message in failures:
        click.echo(f"  {message}", err=True)


INTERRUPTED = 130


def fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


class EmozooGroup(click.Group):
    """Turns EmozooError (and bad-argument ValueErrors) into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C: the shell's convention (128 + SIGINT), and no traceback
            click.echo("\ninterrupted", err=True)
            sys.exit(INTERRUPTED)
        except (EmozooError, FileNotFoundError) as error:
            fail(error)
        except ValueError as error:
            if type(error) is ValueError:
                fail(error)
            raise
