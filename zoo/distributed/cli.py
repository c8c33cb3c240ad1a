"""`emozoo predict ... --engine ray`: the CLI side of the Ray engine (option checks, running, reporting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

ENGINES = ("local", "ray")


def check_engine_options(engine: str, *, output: str | None, output_format: str, normalize: str,
                         address: str | None, num_workers: int | None) -> str | None:
    """Refuse option mixes that cannot work; return the partition format for --engine ray (else None)."""
    if engine != "ray":
        if address is not None or num_workers is not None:
            raise click.UsageError("--address and --num-workers are for --engine ray")
        if output_format == "parquet":
            raise click.UsageError("--format parquet writes partitions of a Ray run: add --engine ray -o OUT/")
        return None
    if not output:
        raise click.UsageError("--engine ray writes partitions and a summary into a folder: give -o OUT/")
    if output_format not in ("table", "csv", "parquet"):
        raise click.UsageError(f"--engine ray writes csv or parquet partitions, not {output_format}")
    if normalize != "none":
        raise click.UsageError("--normalize needs every clip of a group at once; it is not available with "
                               "--engine ray (normalise the partitions afterwards)")
    return "parquet" if output_format == "parquet" else "csv"


def run_ray_predict(model_path: Path, inputs: list[str], out: str, *, partition_format: str, address: str | None,
                    num_workers: int | None, batch_size: int, threads: int | None, device: str,
                    max_duration: float) -> None:
    from zoo.distributed.engine import RayOptions, score_with_ray

    options = RayOptions(address=address, num_workers=num_workers, threads=threads, device=device,
                         batch_size=batch_size, output_format=partition_format, max_seconds=max_duration)
    summary = score_with_ray(model_path, inputs, out, options)
    run = summary.run
    click.echo(f"scored {run['scored']} and recorded {run['failed']} bad file(s) of {run['listed']} input(s) "
               f"({run['already_done']} already done) in {run['seconds']['total']:.1f} s with {run['workers']} "
               f"worker(s); {out} holds {summary.rows} rows in {summary.partitions} partition(s)", err=True)
    if summary.failed:
        click.echo(f"{summary.failed} bad file(s), with their errors, are listed in {Path(out) / 'summary.json'}",
                   err=True)


def run_ray_timeline(model_path: str, inputs: list[str], out: str, *, partition_format: str, vad: str, params: Any,
                     smooth: int, address: str | None, num_workers: int | None, batch_size: int,
                     threads: int | None, device: str, max_duration: float | None) -> None:
    from dataclasses import asdict

    from zoo.distributed.engine import RayOptions
    from zoo.distributed.timeline_engine import timeline_with_ray

    options = RayOptions(address=address, num_workers=num_workers, threads=threads, device=device,
                         batch_size=batch_size, output_format=partition_format, max_seconds=max_duration)
    summary = timeline_with_ray(model_path, inputs, out, options, vad=vad, params=asdict(params), smooth=smooth)
    run = summary.run
    click.echo(f"processed {run['processed']} file(s) ({run['failed']} bad) of {run['listed']} listed "
               f"({run['already_done']} already done) in {run['seconds']['total']:.1f} s with {run['workers']} "
               f"worker(s); {out} holds {summary.segments} segment(s) of {summary.files} file(s) "
               f"({summary.no_speech} without speech) in {summary.partitions} partition(s)", err=True)
    if summary.failed:
        click.echo(f"{summary.failed} bad file(s), with their errors, are listed in {Path(out) / 'summary.json'}",
                   err=True)
