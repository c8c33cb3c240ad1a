from __future__ import annotations

import click

from zoo.cli.bench import bench_command
from zoo.cli.common import EmozooGroup
from zoo.cli.demo import demo_command
from zoo.cli.evaluate import cv_command, evaluate_command
from zoo.cli.export import export_command
from zoo.cli.leaderboard import leaderboard_command
from zoo.cli.models import models_command
from zoo.cli.predict import predict_command
from zoo.cli.serve import serve_command
from zoo.cli.timeline import timeline_command
from zoo.cli.train import train_command


@click.group(cls=EmozooGroup)
@click.version_option(package_name="emozoo")
def cli() -> None:
    """emozoo: speech-emotion recognition models: train, evaluate, export, serve, compare."""


COMMANDS = (
    models_command,
    train_command,
    cv_command,
    evaluate_command,
    predict_command,
    timeline_command,
    demo_command,
    bench_command,
    leaderboard_command,
    export_command,
    serve_command,
)

for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli()
