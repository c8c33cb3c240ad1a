from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

import click

from zoo.api import DEVICES
from zoo.cli.common import ON_ERROR, report_failures
from zoo.distributed.cli import ENGINES, check_engine_options, run_ray_timeline
from zoo.labels import LABELS
from zoo.storage import atomic_write_text
from zoo.vad import VAD_KINDS

COLUMNS = ["file", "start", "end", "label", "confidence", *LABELS]


@click.command("timeline")
@click.argument("model", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", type=click.Path(), help="Write the rows here instead of standard output.")
@click.option("--format", "output_format", type=click.Choice(["csv", "json", "parquet"]), default=None,
              help="Row format [default: from the --output suffix, else csv; parquet: --engine ray only].")
@click.option("--plot", type=click.Path(), help="Draw the timeline to this PNG (one per input: NAME-STEM.png).")
@click.option("--vad", type=click.Choice(VAD_KINDS), default="auto", show_default=True,
              help="auto: Silero VAD, or an energy VAD with a warning where silero-vad is not installed.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Speech probability that starts a segment.")
@click.option("--min-speech", type=click.FloatRange(0), default=0.25, show_default=True,
              help="Drop segments shorter than this (seconds).")
@click.option("--min-silence", type=click.FloatRange(0), default=0.1, show_default=True,
              help="Pause (seconds) that ends speech.")
@click.option("--merge-gap", type=click.FloatRange(0), default=0.5, show_default=True,
              help="Join segments whose pause is shorter than this (seconds; 0: never).")
@click.option("--pad", type=click.FloatRange(0), default=0.1, show_default=True,
              help="Widen each segment by this on both sides (seconds).")
@click.option("--max-segment", type=click.FloatRange(1), default=10.0, show_default=True,
              help="Cut longer speech at its quietest point (seconds).")
@click.option("--smooth", type=click.IntRange(0), default=0, show_default=True,
              help="Average each segment's probabilities with this many neighbours on each side.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for the model [default: every core].")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--max-duration", type=click.FloatRange(0, min_open=True), default=None,
              help="Refuse files longer than this (seconds) [default: no limit].")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
              help="ray: on Ray Data into partitions in the folder -o names, resumable (docs/ray.md).")
@click.option("--address", default=None, help="--engine ray: the Ray cluster to join [default: Ray on this machine].")
@click.option("--num-workers", type=click.IntRange(1), default=None,
              help="--engine ray: actors, each holding the model and the VAD once [default: one per CPU].")
@ON_ERROR
def timeline_command(model: str, inputs: tuple[str, ...], output: str | None, output_format: str | None,
                     plot: str | None, vad: str, threshold: float, min_speech: float, min_silence: float,
                     merge_gap: float, pad: float, max_segment: float, smooth: int, batch_size: int,
                     threads: int | None, device: str, max_duration: float | None, engine: str,
                     address: str | None, num_workers: int | None, on_error: str) -> None:
    """Find the speech in long recordings and the emotion of each segment, with MODEL (directory or .onnx).

    INPUT: audio files of any length (read in blocks, at constant memory), folders of audio, or CSV lists.
    Writes one row per segment: file,start,end,label,confidence and a probability per emotion.
    """
    from zoo.segments import SegmentParams
    from zoo.timeline import timeline
    from zoo.vad import VadFallbackWarning, load_vad

    params = SegmentParams(threshold=threshold, min_speech=min_speech, min_silence=min_silence,
                           merge_gap=merge_gap, pad=pad, max_segment=max_segment)
    partition_format = check_engine_options(engine, output=output, output_format=output_format or "table",
                                            normalize="none", address=address, num_workers=num_workers)
    if partition_format is not None:
        if plot:
            raise click.UsageError("--plot is for the local engine: plot files from the partitions afterwards")
        return run_ray_timeline(model, list(inputs), output, partition_format=partition_format, vad=vad,
                                params=params, smooth=smooth, address=address, num_workers=num_workers,
                                batch_size=batch_size, threads=threads, device=device, max_duration=max_duration)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VadFallbackWarning)
        detector = load_vad(vad)
    for warning in caught:
        click.secho(f"WARNING: {warning.message}", fg="yellow", bold=True, err=True)
    results = timeline(model, list(inputs), params=params, vad=detector, smooth=smooth, batch_size=batch_size,
                       on_error=on_error, max_seconds=max_duration, threads=threads, device=device, progress=True)
    report_failures([(r.file, r.error) for r in results if r.error])
    done = [r for r in results if not r.error]
    for result in done:
        click.echo(f"{result.file}: {len(result.segments)} speech segment(s) in {result.duration:.1f} s"
                   + ("" if result.segments else " (no speech found)"), err=True)
    rows = [row for result in done for row in result.rows()]
    chosen = output_format or ("json" if output and output.lower().endswith(".json") else "csv")
    text = render(rows, chosen)
    if output:
        atomic_write_text(output, text)
        click.echo(f"wrote {len(rows)} segment rows to {output}", err=True)
    else:
        click.echo(text, nl=False)
    if plot:
        from zoo.timeline_plot import plot_timeline

        target = Path(plot)
        for result in done:
            path = target if len(done) == 1 else target.with_name(f"{target.stem}-{Path(result.file).stem}"
                                                                   f"{target.suffix or '.png'}")
            click.echo(f"plotted {plot_timeline(result, path)}", err=True)


def render(rows: list[dict[str, Any]], output_format: str) -> str:
    if output_format == "json":
        return json.dumps(rows, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
