"""`optimize report DIR --watch`: the report follows the journal, the page refreshes, Ctrl-C ends it cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import base_study
from optimizer.cli import main
from optimizer.watch import set_refresh, watch

PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body></body></html>'


def test_watch_renders_when_the_journal_grows_and_leaves_a_page_without_refresh(tmp_path: Path) -> None:
    journal, html = tmp_path / "journal.jsonl", tmp_path / "report.html"
    journal.write_text("{}\n")
    renders, pages = [], []

    def render() -> None:
        renders.append(journal.stat().st_size)
        html.write_text(PAGE)

    def sleep(s: float) -> None:
        assert s == 2.5
        pages.append(html.read_text())
        if len(pages) in (2, 3):  # the campaign records two more events, then nothing for a while
            with journal.open("a") as fh:
                fh.write('{"event": "x"}\n')
        if len(pages) == 6:
            raise KeyboardInterrupt  # Ctrl-C

    n = watch(journal, html, render, every=2.5, say=lambda s: None, sleep=sleep)
    assert n == 3 and renders == [3, 18, 33]  # once at the start, once per change, none while unchanged
    assert all('<meta http-equiv="refresh" content="2">' in p for p in pages)  # rounded; at least 1 s
    assert "refresh" not in html.read_text() and html.read_text() == PAGE


def test_set_refresh_replaces_an_old_refresh(tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    html.write_text(PAGE)
    set_refresh(html, 10)
    set_refresh(html, 30)
    assert html.read_text().count("http-equiv") == 1 and 'content="30"' in html.read_text()


def test_report_watch_from_the_command_line(write_study, tmp_path: Path, capsys) -> None:
    root = tmp_path / "camp"
    assert main(["run", str(write_study(base_study(strategy={"name": "sobol"}))), "--output", str(root), "-q"]) == 0
    capsys.readouterr()
    assert main(["report", str(root), "--watch", "0.01", "--max-updates", "1"]) == 0
    out = capsys.readouterr().out
    assert "report updated" in out and "Ctrl-C stops" in out
    page = (root / "report" / "report.html").read_text()
    assert "<table" in page and "http-equiv" not in page


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_report_watch_refuses_a_bad_period(value: str, write_study, tmp_path: Path, capsys) -> None:
    root = tmp_path / "camp"
    assert main(["run", str(write_study(base_study(strategy={"name": "sobol"}))), "--output", str(root), "-q"]) == 0
    assert main(["report", str(root), f"--watch={value}"]) == 2
    assert "--watch:" in capsys.readouterr().err and not (root / "report").exists()
