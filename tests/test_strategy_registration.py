"""Where strategies come from: the bundled folder, a user's folder (--strategy-path,
QT_STRATEGY_PATH), a module reference (package.module:NAME), or a Strategy object passed to
the library's backtest(); and the README's script example, run as written."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from cli_runner import REPO_ROOT, run_module

from quant_trading import Parameter, backtest
from quant_trading.strategy import StrategyError, configure, registered_strategies

README = (REPO_ROOT / "README.md").read_text()
DATA = str(REPO_ROOT / "market_data")


def readme_block(after: str) -> str:
    """The first fenced block that follows the line containing ``after``."""
    return re.search(re.escape(after) + r".*?```\w*\n(.*?)```", README, re.S).group(1)


BREAKOUT = readme_block("`strategies/breakout.py`:")
ARGS = ["--symbols", "SPY", "--timeframe", "5m", "--data-dir", DATA, "--start", "2026-09-01"]


@pytest.fixture
def user_folder(tmp_path):
    folder = tmp_path / "my_strategies"
    folder.mkdir()
    (folder / "breakout.py").write_text(BREAKOUT)
    return folder


def test_strategy_path_flag_adds_a_users_folder(user_folder, tmp_path):
    done = run_module(
        "quant_trading.backtesting.run_backtest",
        "--strategy", "breakout", "--strategy-path", str(user_folder), *ARGS,
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("BREAKOUT backtest on 5m bars: n=20")
    assert (tmp_path / "cache" / "5m" / "SPY_backtest.json").is_file()


def test_strategy_path_setting_and_parallel_jobs(user_folder, tmp_path):
    # Worker processes (--jobs) must find a strategy loaded from a user's file too.
    done = run_module(
        "quant_trading.backtesting.run_backtest",
        "--strategy", "BREAKOUT", *ARGS, "--symbols", "SPY", "AAPL", "--jobs", "2", "--no-cache",
        env={"QT_STRATEGY_PATH": str(user_folder), "QT_JOBS_MIN_BARS": "1"},  # a real worker
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "BREAKOUT backtest" in done.stdout and "AAPL" in done.stdout


def test_module_reference(tmp_path):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "trend.py").write_text(BREAKOUT.replace('name="BREAKOUT"', 'name="MY_TREND"'))
    done = run_module(
        "quant_trading.backtesting.run_backtest",
        "--strategy", "mypkg.trend:STRATEGY", *ARGS, "--no-cache",
        env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MY_TREND backtest")


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("nope.module:STRATEGY", "strategy 'nope.module:STRATEGY': cannot import nope.module"),
        ("quant_trading.macd:macd", "strategy 'quant_trading.macd:macd': macd is not a Strategy"),
    ],
)
def test_bad_references_get_one_line(strategy, message):
    done = run_module(
        "quant_trading.backtesting.run_backtest", "--strategy", strategy, *ARGS, "--no-cache"
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"run_backtest: error: {message}")


def test_a_broken_user_file_is_named(tmp_path):
    (tmp_path / "broken.py").write_text("def positions(:\n")
    done = run_module(
        "quant_trading.backtesting.run_backtest",
        "--strategy", "x", "--strategy-path", str(tmp_path), *ARGS, "--no-cache",
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert str(tmp_path / "broken.py") in line and "SyntaxError" in line


def test_registry_lists_user_strategies_after_the_bundled_ones(user_folder):
    found = registered_strategies([user_folder])
    assert "BREAKOUT" in found and "MACD" in found
    with pytest.raises(StrategyError, match="not a folder"):
        registered_strategies([user_folder / "missing"])


def test_backtest_a_strategy_object_from_a_script(tmp_path):
    namespace: dict = {}
    exec(compile(BREAKOUT, "breakout.py", "exec"), namespace)
    strategy = namespace["STRATEGY"]
    run = backtest(
        strategy, "SPY", "15m", data_dir=DATA, params={"N": 10}, start="2026-06-01",
        cache_dir=tmp_path,
    )  # fmt: skip
    # The same run through the CLI machinery gives the same numbers.
    config = configure(strategy, {}, timeframe="15m", symbols=["SPY"], params={"N": 10})
    assert config.params == {"N": 10} and run.results[0].config == config
    assert run.statistics.trades == run.results[0].statistics.trades > 0
    assert (tmp_path / "15m" / "SPY_backtest.json").is_file()
    assert str(run).startswith("BREAKOUT backtest on 15m bars: n=10")
    with pytest.raises(StrategyError, match="BREAKOUT has no parameter M"):
        backtest(strategy, "SPY", "15m", data_dir=DATA, params={"M": 3})
    with pytest.raises(StrategyError, match="N=1 must be between 2 and 500"):
        backtest(strategy, "SPY", "15m", data_dir=DATA, params={"N": 1})


def test_parameters_declare_their_own_bounds():
    offset = Parameter("OFFSET", 0.0, float, bounds=(-5, 5))
    assert offset.parse("-2.5", "X_OFFSET") == -2.5 and offset.parse("0", "X_OFFSET") == 0
    with pytest.raises(StrategyError, match=r"X_OFFSET='6' must be between -5 and 5"):
        offset.parse("6", "X_OFFSET")
    assert Parameter("N", 3).check(0) == "must be positive"  # no bounds: positive


def test_readme_script_example_prints_what_the_readme_shows():
    code = readme_block("### Backtest from a script")
    shown = readme_block("It prints:")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == textwrap.dedent(shown)
