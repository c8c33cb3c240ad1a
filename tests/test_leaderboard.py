"""`emozoo leaderboard`: Markdown, plots and the HTML page, the latter checked in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.leaderboard import build
from tests.bench_support import results
from zoo.cli.main import cli

ROWS = [  # model, runtime, device, correct of 12, p50 ms
    ("slow-accurate", "native", "cpu", 12, 90.0),
    ("slow-accurate", "onnx", "cpu", 12, 40.0),
    ("fast-rough", "onnx", "cpu", 6, 2.0),
    ("dominated", "native", "cpu", 5, 60.0),
]


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("board")
    source = results(ROWS).write(folder / "results.json")
    return source, folder / "site"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("EMOZOO_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; EMOZOO_REQUIRE_BROWSER=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    return found


def dump_dom(page: Path, fragment: str = "") -> str:
    """The page's DOM after its scripts ran and its images loaded, as headless Chromium sees it."""
    completed = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--no-first-run", f"--user-data-dir={page.parent / '.chromium'}",
         "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri() + fragment],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "<table" in completed.stdout, completed.stderr[-2000:]
    return completed.stdout


def row_order(dom: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-model="([^"]+)"', dom)


def test_cli_writes_markdown_html_and_plots(board: tuple[Path, Path], tmp_path: Path) -> None:
    source, site = board
    outcome = CliRunner().invoke(cli, ["leaderboard", str(source), "-o", str(site), "--markdown",
                                       str(tmp_path / "LEADERBOARD.md")])
    assert outcome.exit_code == 0, outcome.output
    for name in ("index.html", "LEADERBOARD.md", "pareto.png", "latency.png", "confusion-slow-accurate.png",
                 "confusion-fast-rough.png", "confusion-dominated.png"):
        assert (site / name).is_file(), name
        assert (site / name).stat().st_size > 500
    markdown = (tmp_path / "LEADERBOARD.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [line.split(" | ")[1:3] for line in table] == [
        ["slow-accurate", "onnx"], ["slow-accurate", "native"], ["fast-rough", "onnx"], ["dominated", "native"]]
    pareto = {tuple(line.split(" | ")[1:3]) for line in table if line.rstrip(" |").endswith("★")}
    assert pareto == {("slow-accurate", "onnx"), ("fast-rough", "onnx")}
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)  # image links relative to the Markdown file
    assert len(links) == 5 and all((tmp_path / link).resolve().is_file() for link in links)
    assert "no GPU" in markdown  # the skipped combination and its reason
    assert "different machines" not in markdown


def test_records_from_two_machines_are_flagged(tmp_path: Path) -> None:
    here = results(ROWS[:2]).write(tmp_path / "a.json")
    there = results(ROWS[2:], cpu_model="Some Other CPU", gpus=[{"name": "NVIDIA H100"}]).write(tmp_path / "b.json")
    made = build([here, there], tmp_path / "site")
    assert any("different machines" in w for w in made.warnings)
    assert "different machines" in made.markdown.read_text()
    assert "different machines" in made.html.read_text()
    assert len(made.rows) == 4


def test_html_renders_in_chromium_with_table_and_images(board: tuple[Path, Path]) -> None:
    source, site = board
    made = build([source], site)
    dom = dump_dom(made.html)
    assert row_order(dom) == ["slow-accurate · onnx · cpu", "slow-accurate · native · cpu", "fast-rough · onnx · cpu",
                              "dominated · native · cpu"]
    images = re.findall(r'<img src="([^"]+)"', dom)
    assert {"pareto.png", "latency.png", "confusion-fast-rough.png"} <= set(images)
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-images-loaded="{len(images)}"' in body and 'data-images-broken="0"' in body


def test_sorting_by_url_hash_and_by_clicking(board: tuple[Path, Path]) -> None:
    source, site = board
    made = build([source], site)
    fastest_first = dump_dom(made.html, "#sort=p50")
    assert row_order(fastest_first) == ["fast-rough · onnx · cpu", "slow-accurate · onnx · cpu",
                                        "dominated · native · cpu", "slow-accurate · native · cpu"]
    assert 'data-sorted-by="p50" data-sort-order="asc"' in fastest_first
    # a copy of the page that clicks the "model" heading twice (ascending, then descending)
    clicking = made.html.with_name("clicked.html")
    clicking.write_text(made.html.read_text().replace(
        "</body>", "<script>var h = document.querySelector('th[data-key=model]'); h.click(); h.click();</script>"
                   "</body>"))
    clicked = dump_dom(clicking)
    assert [r.split(" · ")[0] for r in row_order(clicked)] == ["slow-accurate", "slow-accurate", "fast-rough",
                                                              "dominated"]
    assert 'data-sorted-by="model" data-sort-order="desc"' in clicked


def test_a_busy_machine_is_flagged_and_a_quiet_one_is_not(tmp_path: Path) -> None:
    busy = results(ROWS, load_average=[9.5, 8.0, 7.0], usable_cores=2).write(tmp_path / "busy.json")
    quiet = results(ROWS, load_average=[0.5, 0.4, 0.3], usable_cores=2).write(tmp_path / "quiet.json")
    assert any("busy while measuring (load average up to 9.5 on 2 cores)" in w
               for w in build([busy], tmp_path / "a").warnings)
    assert not any("busy while measuring" in w for w in build([quiet], tmp_path / "b").warnings)


def test_a_leaderboard_made_by_hand_names_its_own_command(board: tuple[Path, Path], tmp_path: Path) -> None:
    source, _ = board
    site = tmp_path / "site"
    outcome = CliRunner().invoke(cli, ["leaderboard", str(source), "-o", str(site)])
    assert outcome.exit_code == 0, outcome.output
    for page in (site / "LEADERBOARD.md", site / "index.html"):
        text = page.read_text()
        assert "make leaderboard" not in text
        assert f"emozoo leaderboard {source} -o {site}" in text
    from_make = CliRunner().invoke(cli, ["leaderboard", str(source), "-o", str(site), "--command", "make leaderboard"])
    assert from_make.exit_code == 0, from_make.output
    assert "Generated by `make leaderboard`" in (site / "LEADERBOARD.md").read_text()


def test_bench_summary_is_not_cut_to_80_columns_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.report import print_summary

    name = "librosa-svc features=seed C=10 gamma=scale"
    print_summary(results([(name, "native", "cpu", 10, 3.0)]))
    lines = capsys.readouterr().err.splitlines()
    assert any("p99 ms" in line and "clips/s" in line and "RTF" in line for line in lines), lines
    row = [line for line in lines if name in line]
    assert len(row) == 1 and "native" in row[0] and "0.833" in row[0], lines
