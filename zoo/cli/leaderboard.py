from __future__ import annotations

import click


@click.command("leaderboard")
@click.argument("results", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", "out", required=True, type=click.Path(), help="Folder for index.html, "
              "LEADERBOARD.md and the plots.")
@click.option("--markdown", type=click.Path(), help="Also write the Markdown here (image links relative to it).")
@click.option("--command", "command", default=None,
              help="The command quoted as how the leaderboard was generated [default: this emozoo leaderboard "
                   "command itself; `make leaderboard` passes its own name].")
def leaderboard_command(results: tuple[str, ...], out: str, markdown: str | None, command: str | None) -> None:
    """Markdown and a static HTML page (sortable table, plots) from `emozoo bench` RESULTS files."""
    import shlex

    from benchmarks.leaderboard import build

    if command is None:  # say what really made it: a page made by hand never claims `make leaderboard`
        words = ["emozoo", "leaderboard", *results, "-o", out] + (["--markdown", markdown] if markdown else [])
        command = shlex.join(words)
    board = build(results, out, markdown, command)
    for warning in board.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{len(board.rows)} rows; wrote {board.html} and {board.markdown} ({len(board.images)} plots)",
               err=True)
