"""Batch MACD equals TA-Lib's to 1e-9, and the incremental state equals the batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from quant_trading.csv_store import read_bars
from quant_trading.macd import MacdState, macd

TOL = 1e-9


def assert_matches_talib(close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9):
    ours = macd(close, fast, slow, signal)
    ref_macd, ref_signal, ref_hist = talib.MACD(close, fast, slow, signal)
    # TA-Lib blanks all three outputs until Signal exists; ours keeps the MACD line from
    # index slow-1 (where it is already defined), so compare where TA-Lib has values.
    np.testing.assert_array_equal(np.isnan(ours.signal), np.isnan(ref_signal))
    np.testing.assert_array_equal(np.isnan(ours.hist), np.isnan(ref_hist))
    defined = ~np.isnan(ref_macd)
    np.testing.assert_allclose(ours.macd[defined], ref_macd[defined], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.signal[defined], ref_signal[defined], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.hist[defined], ref_hist[defined], rtol=0, atol=TOL)
    return ours


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("length", [25, 26, 33, 34, 35, 100, 5_000])
def test_random_walks_match_talib(seed, length):
    rng = np.random.default_rng(seed)
    close = 50 + np.cumsum(rng.standard_normal(length)) * rng.uniform(0.01, 2)
    ours = assert_matches_talib(np.abs(close) + 1)
    if length >= 34:
        assert np.isnan(ours.signal[:33]).all() and not np.isnan(ours.signal[33:]).any()
        assert np.isnan(ours.macd[:25]).all() and not np.isnan(ours.macd[25:]).any()


def test_long_random_walk_matches_talib():
    close = 100 * np.exp(np.cumsum(np.random.default_rng(42).normal(0, 0.001, 400_000)))
    assert_matches_talib(close)


@pytest.mark.parametrize(
    ("fast", "slow", "signal"), [(3, 10, 16), (5, 35, 5), (2, 3, 1), (12, 26, 1)]
)
def test_other_periods_match_talib(fast, slow, signal):
    close = 20 + np.cumsum(np.random.default_rng(fast * slow).standard_normal(500))
    assert_matches_talib(np.abs(close) + 1, fast, slow, signal)


def test_flat_series_is_zero():
    result = assert_matches_talib(np.full(200, 123.45))
    assert np.abs(result.macd[25:]).max() < TOL and np.abs(result.hist[33:]).max() < TOL


def test_gapped_series_matches_talib():
    # Overnight gaps and limit moves: flat stretches broken by jumps of +-20%.
    rng = np.random.default_rng(3)
    steps = np.where(rng.random(3_000) < 0.01, rng.choice([-0.2, 0.2], 3_000), 0.0)
    close = 80 * np.exp(np.cumsum(steps + rng.normal(0, 0.0005, 3_000)))
    assert_matches_talib(close)


def test_leading_nans_are_skipped_like_talib():
    close = np.r_[[np.nan] * 7, 10 + np.cumsum(np.random.default_rng(9).standard_normal(120))]
    result = assert_matches_talib(close)
    assert np.isnan(result.macd[: 7 + 25]).all() and not np.isnan(result.macd[7 + 25]).any()


def test_short_series_is_all_nan():
    result = macd([1.0, 2.0, 3.0])
    assert all(np.isnan(a).all() for a in (result.macd, result.signal, result.hist))


@pytest.mark.parametrize("bad", [(26, 12, 9), (0, 26, 9), (12, 26, 0), (12.5, 26, 9)])
def test_bad_periods_are_refused(bad):
    with pytest.raises(ValueError, match="MACD"):
        macd(np.arange(100.0), *bad)
    with pytest.raises(ValueError, match="MACD"):
        MacdState(*bad)


def test_real_series_match_talib(shared_data):
    files = sorted(p for p in shared_data.glob("*/*") if p.suffix.lower() in {".csv", ".txt"})
    checked = 0
    for path in files:
        if path.name.startswith("nt-spy"):  # headerless NinjaTrader export: rejected by design
            continue
        close = read_bars(path)["close"].to_numpy()
        assert_matches_talib(close)
        checked += 1
    assert checked >= 10


def _stream(close, *periods):
    state = MacdState(*periods)
    points = [state.update(c) for c in close]
    return (np.array([getattr(p, name) for p in points]) for name in ("macd", "signal", "hist"))


@pytest.mark.parametrize("periods", [(12, 26, 9), (3, 10, 16), (1, 2, 1)])
def test_incremental_equals_batch(periods):
    close = 100 + np.cumsum(np.random.default_rng(7).standard_normal(3_000))
    batch = macd(close, *periods)
    for streamed, batched in zip(_stream(close, *periods), (batch.macd, batch.signal, batch.hist)):
        np.testing.assert_array_equal(np.isnan(streamed), np.isnan(batched))
        np.testing.assert_allclose(streamed, batched, rtol=0, atol=TOL, equal_nan=True)


def test_incremental_equals_batch_on_real_data(shared_data):
    close = read_bars(shared_data / "lumibot" / "UPRO_Minute.csv")["close"].to_numpy()
    batch = macd(close)
    streamed_macd, streamed_signal, streamed_hist = _stream(close, 12, 26, 9)
    np.testing.assert_allclose(streamed_signal, batch.signal, rtol=0, atol=TOL, equal_nan=True)
    np.testing.assert_allclose(streamed_hist, batch.hist, rtol=0, atol=TOL, equal_nan=True)


def test_incremental_warm_up():
    state = MacdState()
    points = [state.update(100.0 + i) for i in range(34)]
    assert all(math.isnan(p.macd) for p in points[:25]) and not math.isnan(points[25].macd)
    assert all(math.isnan(p.signal) for p in points[:33]) and not math.isnan(points[33].signal)
    assert state.count == 34
