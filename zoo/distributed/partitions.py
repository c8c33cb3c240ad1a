"""Partition files: one Arrow table of results written atomically as CSV or Parquet, and read back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from zoo.labels import LABELS
from zoo.storage import atomic_write_bytes

FORMATS = ("csv", "parquet")
PROBABILITY_COLUMNS = [f"p_{label}" for label in LABELS]
# id, path (absolute), sha256, true as in `emozoo predict --format csv`; error is set instead of a prediction
COLUMNS = ["id", "path", "sha256", "true", "label", "label_id", "confidence", *PROBABILITY_COLUMNS, "error"]


def schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [("id", pa.string()), ("path", pa.string()), ("sha256", pa.string()), ("true", pa.string()),
         ("label", pa.string()), ("label_id", pa.int64()), ("confidence", pa.float64())]
        + [(name, pa.float64()) for name in PROBABILITY_COLUMNS]
        + [("error", pa.string())]
    )


def write_partition(path: Path, table: Any, output_format: str, fields: Any = None) -> Path:
    """Write `table` to `path` as csv or parquet; a crash never leaves a partial file there.

    `fields`: the partition's schema (default: `schema()`, predict's rows; timeline rows have their own).
    """
    import pyarrow.csv
    import pyarrow.parquet

    fields = fields or schema()
    buffer = io.BytesIO()
    table = table.select(fields.names).cast(fields)
    if output_format == "parquet":
        pyarrow.parquet.write_table(table, buffer)
    elif output_format == "csv":
        pyarrow.csv.write_csv(table, buffer)
    else:
        raise ValueError(f"unknown partition format {output_format!r}; choose one of: {', '.join(FORMATS)}")
    return atomic_write_bytes(path, buffer.getvalue())


def read_partition(path: Path, fields: Any = None) -> list[dict[str, Any]]:
    """The rows of one partition as dicts, typed as `fields` (default `schema()`; empty CSV cells are None)."""
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet

    from zoo.errors import DatasetError

    try:
        if path.suffix == ".parquet":
            table = pyarrow.parquet.read_table(path)
        else:
            types = {field.name: field.type for field in fields or schema()}
            table = pyarrow.csv.read_csv(path, convert_options=pyarrow.csv.ConvertOptions(
                column_types=types, strings_can_be_null=True))
    except (OSError, pa.ArrowException) as error:
        raise DatasetError(f"{path}: not a readable partition ({error}); move it out of the output folder") from None
    columns = (fields or schema()).names
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DatasetError(f"{path}: not an emozoo partition of this kind (no column {', '.join(missing)})")
    return table.select(columns).to_pylist()
