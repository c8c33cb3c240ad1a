from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.common import MAX_DURATION, ON_ERROR, report_failures


@click.command("bench")
@click.argument("models", nargs=-1, required=True)
@click.option("--data", "data", required=True, multiple=True,
              help="Labelled dataset with speaker ids (repeat to combine corpora); split by speaker.")
@click.option("--runtime", "runtimes", default="native,onnx,int8", show_default=True,
              help="Comma-separated runtimes: native, onnx (exported here), int8 (dynamic int8 export).")
@click.option("--device", "devices", default="cpu,cuda", show_default=True,
              help="Comma-separated devices; cuda is skipped, with the reason recorded, where unusable.")
@click.option("--out", "out", default="bench-results.json", show_default=True, type=click.Path(),
              help="Results JSON file to write.")
@click.option("--work-dir", type=click.Path(), help="Where trained models and ONNX exports go "
              "[default: OUT's name with -models, next to it].")
@click.option("--param", "params", multiple=True,
              help="Model parameter [MODEL:]KEY=VALUE, for every model or the one named (repeatable).")
@click.option("--test-fraction", default=0.2, show_default=True, help="Share of speakers held out for testing.")
@click.option("--seed", default=0, show_default=True, help="Seed of the speaker split.")
@click.option("--warmup", default=2, show_default=True, help="Untimed warm-up queries per scenario.")
@click.option("--min-iterations", default=10, show_default=True, help="Least timed single-stream queries.")
@click.option("--min-seconds", default=1.0, show_default=True, help="Least timed seconds per single-stream run.")
@click.option("--max-seconds", default=60.0, show_default=True, help="Most timed seconds per scenario run.")
@click.option("--batch-size", default=16, show_default=True, help="Clips per batch in the offline scenario.")
@click.option("--offline-iterations", default=3, show_default=True, help="Least timed offline batches.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads per model while it is measured: onnxruntime "
              "and torch intra-op threads, joblib/scikit-learn jobs [default: each library's own choice].")
@click.option("--robustness", is_flag=True, help="Also score each model under fixed, seeded degradations (gain, "
              "white and babble noise, telephone, MP3/Opus, reverberation) on its first runtime; see "
              "benchmarks/robustness.py.")
@click.option("--protocol", type=click.Choice(["split", "speakers", "corpora"]), default="split", show_default=True,
              help="split: one speaker split, accuracy and speed per runtime; speakers: k-fold per corpus on the "
                   "committed fold files (benchmarks/folds); corpora: train-corpus x test-corpus matrix and "
                   "leave-one-corpus-out. The last two give 95 % intervals (bootstrap over speakers), calibration "
                   "and take reference names (chance, seed-recipe, egemaps-svm, compare-svm) as MODELS.")
@click.option("--resamples", default=1000, show_default=True, help="Bootstrap resamples (speakers, corpora).")
@click.option("--restrict", "restrict", multiple=True, help="MODEL=CORPUS,... runs MODEL on those corpora only "
              "(speakers, corpora; the row says so).")
@click.option("--note", "notes", multiple=True, help="MODEL=TEXT: why a row is cut down, shown with it.")
@click.option("--folds-dir", type=click.Path(file_okay=False), help="Folder of fold files [default: benchmarks/folds].")
@ON_ERROR
@MAX_DURATION
def bench_command(models: tuple[str, ...], data: tuple[str, ...], runtimes: str, devices: str, out: str,
                  work_dir: str | None, params: tuple[str, ...], test_fraction: float, seed: int, warmup: int,
                  min_iterations: int, min_seconds: float, max_seconds: float, batch_size: int,
                  offline_iterations: int, threads: int | None, robustness: bool, protocol: str, resamples: int,
                  restrict: tuple[str, ...], notes: tuple[str, ...], folds_dir: str | None, on_error: str,
                  max_duration: float) -> None:
    """Accuracy on held-out speakers and latency/throughput of MODELS (plugin names, which are trained on the
    other speakers, saved model directories or .onnx files) on every runtime and device asked for; with
    --protocol speakers|corpora, accuracy with intervals and calibration on fixed folds or across corpora."""
    if protocol != "split":
        run_protocol_command(models, data, protocol, out, params, seed, resamples, restrict, notes, folds_dir,
                             on_error, max_duration)
        return
    from benchmarks.bench import BenchSettings, run_bench
    from benchmarks.options import parse_list, parse_model_params
    from benchmarks.report import print_summary
    from benchmarks.results import DEVICES, RUNTIMES
    from benchmarks.subjects import Split
    from benchmarks.timing import TimingConfig
    from zoo import datasets

    settings = BenchSettings(
        runtimes=parse_list(runtimes, RUNTIMES, "runtime"), devices=parse_list(devices, DEVICES, "device"),
        timing=TimingConfig(warmup, min_iterations, min_seconds, max_seconds=max_seconds),
        offline_timing=TimingConfig(min(warmup, 1), offline_iterations, 0.0, max_seconds=max_seconds),
        offline_batch_size=batch_size, threads=threads, test_fraction=test_fraction, seed=seed, robustness=robustness,
    )
    per_model = parse_model_params(params, models)
    dataset = datasets.load_all(data)
    click.echo(f"data: {dataset.describe()}", err=True)
    split = Split.of(dataset, test_fraction, seed, on_error=on_error, max_seconds=max_duration)
    target = Path(out)
    models_dir = Path(work_dir) if work_dir else target.with_name(target.stem + "-models")
    results = run_bench(models, split, settings, models_dir, per_model, log=lambda line: click.echo(line, err=True))
    report_failures(split.failures)
    results.write(target)
    print_summary(results)
    click.echo(f"wrote {len(results.records)} records to {target} ({len(results.skipped)} combinations skipped)",
               err=True)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    from zoo.errors import EmozooError

    pairs = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key.strip() or not text.strip():
            raise EmozooError(f"{option} {value!r} is not MODEL=VALUE")
        pairs[key.strip()] = text.strip()
    return pairs


def run_protocol_command(models: tuple[str, ...], data: tuple[str, ...], protocol: str, out: str,
                         params: tuple[str, ...], seed: int, resamples: int, restrict: tuple[str, ...],
                         notes: tuple[str, ...], folds_dir: str | None, on_error: str, max_duration: float) -> None:
    from benchmarks import protocols
    from benchmarks.options import parse_model_params

    settings = protocols.ProtocolSettings(
        protocol, resamples=resamples, seed=seed, notes=_pairs(notes, "--note"),
        restrict={k: [c.strip() for c in v.split(",") if c.strip()] for k, v in _pairs(restrict, "--restrict").items()})
    per_model = parse_model_params(params, models)
    corpora = protocols.load_corpora(data, protocol, Path(folds_dir) if folds_dir else protocols.FOLDS_DIR,
                                     on_error=on_error, max_seconds=max_duration)
    for name, entry in corpora.describe.items():
        click.echo(f"{name}: {entry['clips']} clips, {entry['speakers']} speakers"
                   + (f", {entry['folds']} folds ({entry['fold_file']})" if "folds" in entry else ""), err=True)
    document = protocols.run_protocol(models, corpora, settings, per_model, log=lambda line: click.echo(line, err=True))
    report_failures(corpora.failures)
    target = protocols.write(document, out)
    click.echo(f"wrote {len(document['models'])} models to {target} ({len(document['skipped'])} skipped)", err=True)
