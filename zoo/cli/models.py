from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from zoo.registry import get_registry


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(as_json: bool) -> None:
    """List the models every installed plugin registers."""
    registry = get_registry()
    rows = [
        {"name": s.name, "family": s.family, "plugin": s.plugin, "description": s.description,
         "exportable": s.family in registry.exporters}
        for s in sorted(registry.models.values(), key=lambda s: s.name)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        table = Table("model", "family", "plugin", "ONNX export", "description")
        for row in rows:
            table.add_row(row["name"], row["family"], row["plugin"], "yes" if row["exportable"] else "-",
                          row["description"])
        Console(width=160).print(table)
    if registry.broken:  # on stderr, so --json stays one parsable list
        click.echo(f"broken plugins ({len(registry.broken)}, not listed above; fix or uninstall them):", err=True)
        for broken in registry.broken:
            click.echo(f"  {broken}", err=True)
