from __future__ import annotations

import click

from zoo.bundled import default_model_path, demo_clips_dir
from zoo.cli.predict import predict_command


@click.command("demo")
@click.option("--model", "model", type=click.Path(exists=True), help="Model to use instead of the bundled one.")
@click.pass_context
def demo_command(ctx: click.Context, model: str | None) -> None:
    """Label the bundled demo clips (one per emotion) with the bundled default model."""
    manifest = demo_clips_dir() / "manifest.csv"
    ctx.invoke(predict_command, arguments=(model or str(default_model_path()), str(manifest)))
