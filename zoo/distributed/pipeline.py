"""The loop both Ray engines share: light tasks prepare the listed rows, an actor pool holding the model does
the work, and its results are written as partitions of OUT.

predict (zoo/distributed/engine.py) and timeline (zoo/distributed/timeline_engine.py) differ only in the
functions they plug in: the preparing task, the actor class and how a batch of the actors' output becomes a
partition table.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.distributed.partitions import write_partition

DECODE_BLOCK = 32  # listed inputs per preparing task: small enough to spread a few thousand clips over many tasks
DECODE_CPUS = 0.25  # a preparing task is mostly file reading; the actors get the rest of each CPU
POOL_SHARE = 0.75  # the actor pool together asks for at most this share of the cluster's CPUs (never starves decode)


@dataclass
class Stage:
    """A step of the pipeline: a function (tasks) or a class (one instance per actor) and its keyword arguments."""

    run: Callable[..., Any] | type
    kwargs: dict[str, Any]


@dataclass
class PipelineRun:
    """What the loop did: the stamp its partitions are named by, how many it wrote, the size of the actor pool
    and when Ray was ready (a `time.perf_counter()` reading)."""

    stamp: str
    written: int
    workers: int
    ready: float


def start_ray(ray: Any, address: str | None) -> bool:
    """Join `address` or start Ray here, unless this process already did; True when we started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine unless asked for
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="warning",
             configure_logging=True)
    return True


def block_count(rows: int) -> int:
    return max(1, math.ceil(rows / DECODE_BLOCK))


def pool_size(ray: Any, num_workers: int | None, rows: int) -> int:
    """--num-workers, else one actor per CPU; never more actors than blocks to work on (each would idle)."""
    return min(num_workers or max(1, int(ray.cluster_resources().get("CPU", 1))), block_count(rows))


def run_pipeline(ray: Any, rows: list[dict[str, Any]], target: Path, *, address: str | None,
                 num_workers: int | None, progress: bool, output_format: str, prepare: Stage, work: Stage,
                 work_batch: int, partition_batch: int, to_table: Callable[[Any], Any], fields: Any = None,
                 on_partition: Callable[[Path], None] | None = None) -> PipelineRun:
    """Run `rows` through `prepare` (tasks) and `work` (an actor pool), and write each batch of
    `partition_batch` results, as `to_table` turns it into a table of `fields`, to a partition in `target`.

    Ray is started here unless this process already runs it, and shut down again if so. `on_partition` is
    called with each partition written (progress reporting; tests stop a run there).
    """
    owns_ray = start_ray(ray, address)
    try:
        ready = time.perf_counter()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.print_on_execution_start = progress
        workers = pool_size(ray, num_workers, len(rows))
        cpus = float(ray.cluster_resources().get("CPU", 1))
        # fault tolerance is Ray Data's own, left at its defaults: a task lost with its worker is retried, and a
        # dead actor is restarted and its batch retried (max_retries / max_restarts / max_task_retries = -1,
        # unlimited). An exception from our code is a bug and stops the run.
        prepared = ray.data.from_items(rows, override_num_blocks=block_count(len(rows))).map_batches(
            prepare.run, batch_format="pyarrow", batch_size=None, num_cpus=DECODE_CPUS, fn_kwargs=prepare.kwargs)
        results = prepared.map_batches(
            work.run, batch_format="pyarrow", batch_size=work_batch, compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=min(1.0, POOL_SHARE * cpus / workers), fn_constructor_kwargs=work.kwargs)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        written = 0
        for batch in results.iter_batches(batch_size=partition_batch, batch_format="pyarrow"):
            path = target / f"part-{stamp}-{written:05d}.{output_format}"
            write_partition(path, to_table(batch), output_format, fields)
            written += 1
            if on_partition is not None:
                on_partition(path)
    finally:
        if owns_ray:
            ray.shutdown()
    return PipelineRun(stamp=stamp, written=written, workers=workers, ready=ready)
