from __future__ import annotations

import click


@click.command("leaderboard")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", "out", required=True, type=click.Path(), help="Folder for index.html, "
              "LEADERBOARD.md and the plots.")
@click.option("--markdown", type=click.Path(), help="Also write the Markdown here (image links relative to it).")
@click.option("--command", "command", default="make leaderboard", show_default=True,
              help="The command quoted as how the leaderboard was generated.")
def leaderboard_command(results: tuple[str, ...], out: str, markdown: str | None, command: str) -> None:
    """Markdown and a static HTML page (sortable table, plots) from `emozoo bench` RESULTS files."""
    from benchmarks.leaderboard import build

    board = build(results, out, markdown, command)
    for warning in board.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{len(board.rows)} rows; wrote {board.html} and {board.markdown} ({len(board.images)} plots)",
               err=True)
