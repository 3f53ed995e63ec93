"""tlc-status's command line: one line and exit 2 for a bad argument; colours on a tty only."""

from __future__ import annotations

import io
import os

import pytest

from pipeline.cli import status


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--colors", "red"], "--colors 'red': expected a comma list of yellow, green, fhv, fhvhv"),
        (["--sinks", "duckdb,oracle"], "--sinks 'duckdb,oracle': expected a comma list of"),
        (["--start", "2021-13"], "--start '2021-13': expected a month as YYYY-MM"),
        (["--end", "March"], "--end 'March': expected a month as YYYY-MM"),
        (["--start", "2022-01", "--end", "2021-12"], "--start 2022-01 is after --end 2021-12"),
    ],
)
def test_bad_arguments_one_line_exit_2(argv, message, capsys):
    assert status.main(argv) == status.EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"tlc-status: error: {message}")


def test_unknown_option_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        status.main(["--colour", "green"])
    assert exited.value.code == status.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "tlc-status: error: unrecognized arguments: --colour green\n"


def test_ansi_on_a_terminal_only_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not status.use_ansi(io.StringIO())  # a pipe, a file
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as tty:
            assert status.use_ansi(tty)
            monkeypatch.setenv("NO_COLOR", "1")
            assert not status.use_ansi(tty)
            monkeypatch.setenv("NO_COLOR", "")  # no-color.org: only a non-empty value counts
            assert status.use_ansi(tty)
    finally:
        os.close(leader)
        os.close(follower)


def test_families_cover_every_load_task():
    from pipeline.orchestration import config

    families = status.families()
    held_up = {sink for sinks in families.values() if sinks for sink in sinks}
    assert held_up == set(config.SINKS)
    assert families["DownloadMonth"] is None
    assert families["CleanParquet"] is None
    assert families["UploadGCS"] == {"bigquery"}
