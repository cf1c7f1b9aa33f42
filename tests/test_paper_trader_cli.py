"""The paper trader's command line on bad input: one line, a non-zero exit, no traceback,
and nothing on disk changed. None of these needs TWS: they are refused before connecting."""

from __future__ import annotations

import json

import pytest
from cli_runner import run_module

MODULE = "quant_trading.trading.paper_trader"


def _state(folder, **changes) -> None:
    settings = {
        "strategy": "MACD", "params": {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"},
        "tag": "MACD.65eae8", "capital": 100000.0, "commission": 0.005, "slippage": 0.0,
        "allocation": 1.0, "size": None, "fractional": False, "session_close": False,
    }  # fmt: skip
    settings.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "settings": settings, "books": {"AAPL 5m": "2026-10-30T10:05:00-04:00"}}
    (folder / "state.json").write_text(json.dumps(doc))


def _run(tmp_path, *args):
    (tmp_path / "empty.env").touch()
    return run_module(MODULE, "--port", "1", "--symbols", "AAPL", "--timeframe", "5m",
                      "--strategy", "MACD", "--env-file", str(tmp_path / "empty.env"), *args,
                      cwd=tmp_path)  # fmt: skip


def _one_line(result, code: int, text: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paper_trader: error: "), result.stderr
    assert text in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", ["http://example.com:8000", "http://192.168.1.5:8000"])
def test_a_dashboard_beyond_this_machine_is_refused(tmp_path, url):
    result = _run(tmp_path, "--post-to", url)
    _one_line(result, 2, "only a dashboard on this machine")
    assert not (tmp_path / "paper_trading").exists()


def test_a_folder_made_with_other_settings_is_refused_untouched(tmp_path):
    folder = tmp_path / "paper_trading"
    _state(folder, commission=0.01)
    before = (folder / "state.json").read_bytes()
    result = _run(tmp_path)
    _one_line(result, 2, "state.json was made with MACD FAST=12")
    assert "commission 0.01" in result.stderr and "use the same settings or another --dir" in (
        result.stderr
    )
    assert (folder / "state.json").read_bytes() == before


def test_a_damaged_blotter_names_its_row(tmp_path):
    folder = tmp_path / "paper_trading"
    _state(folder)
    header = ("client_order_id,strategy,symbol,timeframe,bar_time,time,action,shares,price,"
              "commission,reason,position,recorded_at")  # fmt: skip
    row = ("MACD.65eae8-5m-AAPL-20261030-1010-E,MACD.65eae8,AAPL,5m,"
           "2026-10-30T10:10:00-04:00,2026-10-30T10:10:00-04:00,BUY,abc,300.0,1.6,entry,330.0,"
           "2026-12-01T00:00:00+00:00")  # fmt: skip
    (folder / "blotter.csv").write_text(f"{header}\n{row}\n")
    result = _run(tmp_path)
    _one_line(result, 2, "blotter.csv, row 2:")
    assert (folder / "blotter.csv").read_text() == f"{header}\n{row}\n"


def test_compare_needs_a_paper_trading_folder(tmp_path):
    result = run_module(MODULE, "--compare", str(tmp_path / "nothing"), cwd=tmp_path)
    _one_line(result, 2, "state.json: not found")


def test_an_unknown_strategy_is_one_line(tmp_path):
    result = run_module(MODULE, "--strategy", "NOPE", "--symbols", "AAPL", cwd=tmp_path)
    _one_line(result, 2, "NOPE")


def test_tws_not_running_is_said_with_the_checklist(tmp_path):
    result = _run(tmp_path, "--timeout", "2")
    assert result.returncode == 1
    assert result.stderr.startswith("paper_trader: error: ") and "Check that:" in result.stderr
    assert not (tmp_path / "paper_trading").exists()


def test_a_missing_settings_file_is_one_line(tmp_path):
    result = run_module(MODULE, "--env-file", str(tmp_path / "none.env"), cwd=tmp_path)
    _one_line(result, 2, "none.env: settings file not found")
