"""Market data (carbon_sdk.market_data): OHLCV bars on hand-made trades, depth of book, the K-line chart."""

from __future__ import annotations

import sys
from decimal import Decimal
from fractions import Fraction

import pytest

from carbon_sdk.errors import ConfigurationError, InvalidInput
from carbon_sdk.exchange_model import ExchangeModel, MarketSpec
from carbon_sdk.market_data import Bar, DepthLevel, Trade, depth, ohlcv, plot_klines

T = 10**6  # one tonne in asset units
H = 3600


def trade(time: int, price, tonnes: int = 1) -> Trade:
    return Trade(time, Fraction(price), tonnes * T, block_number=time // 2, tx_hash=f"0x{time:064x}")


def test_ohlcv_buckets_at_interval_boundaries():
    trades = [trade(180, 12), trade(120, 10, 2), trade(150, 13), trade(150, 9), trade(179, 11), trade(240, 8)]
    bars = ohlcv(trades, 60)
    # [120, 180): 10 (2 t), 13, 9, 11 in time order, same-second trades in the given order; 180 opens the next.
    assert bars == [
        Bar(120, 10, 13, 9, 11, 5 * T, 20 + 13 + 9 + 11, 4),
        Bar(180, 12, 12, 12, 12, T, 12, 1),
        Bar(240, 8, 8, 8, 8, T, 8, 1),
    ]
    assert bars[0].vwap == Fraction(53, 5)


def test_ohlcv_value_is_exact():
    trades = [Trade(10, Fraction(205, 2), 3 * T // 10), Trade(20, Decimal("102.25"), 2 * T)]
    (bar,) = ohlcv(trades, 60)
    assert bar.value == Fraction(205, 2) * Fraction(3, 10) + Fraction(409, 2) == Fraction(941, 4)
    assert trades[1].value == 409 // 2 + Fraction(1, 2) and isinstance(Trade(0, 7, 2 * T).value, int)
    assert (bar.open, bar.high, bar.low, bar.close) == (Fraction(205, 2), Fraction(205, 2), Decimal("102.25"),
                                                        Decimal("102.25"))


def test_ohlcv_omits_empty_intervals():
    bars = ohlcv([trade(10 * H + 5, 100), trade(13 * H, 99, 3)], H)
    assert [(b.start, b.close, b.volume) for b in bars] == [(10 * H, 100, T), (13 * H, 99, 3 * T)]


def test_ohlcv_fill_carries_the_previous_close_forward():
    bars = ohlcv([trade(10 * H + 5, 101), trade(10 * H + 50, 102), trade(13 * H, 99, 3)], H, fill=True)
    assert [(b.start, b.open, b.high, b.low, b.close, b.volume, b.value, b.trades) for b in bars] == [
        (10 * H, 101, 102, 101, 102, 2 * T, 203, 2),
        (11 * H, 102, 102, 102, 102, 0, 0, 0),
        (12 * H, 102, 102, 102, 102, 0, 0, 0),
        (13 * H, 99, 99, 99, 99, 3 * T, 297, 1),
    ]
    assert bars[1].vwap is None
    # With an end, carried on to the bar holding end - 1; nothing before the first trade, even from start.
    bars = ohlcv([trade(10 * H + 5, 101)], H, start=8 * H, end=12 * H + 1, fill=True)
    assert [(b.start, b.close, b.trades) for b in bars] == [(10 * H, 101, 1), (11 * H, 101, 0), (12 * H, 101, 0)]
    assert len(ohlcv([trade(10 * H + 5, 101)], H, end=12 * H, fill=True)) == 2
    assert ohlcv([], H, fill=True) == []


def test_ohlcv_start_and_end_select_a_half_open_range():
    trades = [trade(100, 1), trade(200, 2), trade(299, 3), trade(300, 4)]
    bars = ohlcv(trades, 1000, start=200, end=300)
    assert [(b.open, b.close, b.trades) for b in bars] == [(2, 3, 2)]


def test_ohlcv_origin_shifts_the_grid():
    # Daily bars for UTC+8: a day starts at 16:00 UTC.
    trades = [trade(86400 + 15 * H, 10), trade(86400 + 17 * H, 11)]
    assert [b.start for b in ohlcv(trades, 86400)] == [86400]
    assert [b.start for b in ohlcv(trades, 86400, origin=-8 * H)] == [16 * H, 86400 + 16 * H]


@pytest.mark.parametrize("interval", [0, -60, 1.5, True])
def test_ohlcv_rejects_a_bad_interval(interval):
    with pytest.raises(InvalidInput):
        ohlcv([trade(1, 1)], interval)


def test_depth_sorts_sides_and_cumulates():
    book = depth([("ask", 104, 7), ("bid", 101, 5), ("sell", 103, 2), ("bid", 102, 3), ("buy", 101, 1),
                  ("ask", 103, 4), ("bid", 99, 0)])
    assert book.bids == (DepthLevel(102, 3, 3), DepthLevel(101, 6, 9))
    assert book.asks == (DepthLevel(103, 6, 6), DepthLevel(104, 7, 13))
    assert (book.best_bid, book.best_ask, book.spread, book.midpoint) == (102, 103, 1, Fraction(205, 2))
    empty = depth([])
    assert empty.bids == empty.asks == () and empty.spread is None and empty.midpoint is None


def test_depth_of_the_models_book():
    m = ExchangeModel(MarketSpec(10**6, 2, fee_recipient="platform"))
    for account in "ab":
        m.deposit(account, "settlement", 10**6)
        m.deposit(account, "asset", 10**8)
    m.open_session()
    m.place("a", "bid", 2, 100)
    m.place("b", "bid", 3, 100)
    m.place("a", "bid", 1, 101)
    m.place("b", "ask", 4, 103)
    book = depth(m.book())
    assert book.bids == (DepthLevel(101, 1, 1), DepthLevel(100, 5, 6)) and book.asks == (DepthLevel(103, 4, 4),)


@pytest.mark.parametrize("level", [("long", 100, 1), ("bid", 100, -1), ("ask", 100, 1.5)])
def test_depth_rejects_bad_levels(level):
    with pytest.raises(InvalidInput):
        depth([level])


def hourly_bars() -> list[Bar]:
    trades = [trade(H * h + m * 60, 100 + (h * 7 + m) % 11, 1 + m % 3) for h in range(12) if h != 5 for m in (1, 20, 40)]
    return ohlcv(trades, H, fill=True)


def test_plot_klines_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    bars = hourly_bars()
    assert len(bars) == 12 and bars[5].trades == 0
    path = plot_klines(bars, tmp_path / "klines.png", title="allowances, hourly")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    single = plot_klines(bars[:1], str(tmp_path / "one.png"))  # one flat bar still draws
    assert single.stat().st_size > 1_000


def test_plot_klines_needs_bars(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(InvalidInput):
        plot_klines([], tmp_path / "none.png")


def test_plot_klines_without_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules makes the import fail
    with pytest.raises(ConfigurationError, match="pip install matplotlib"):
        plot_klines(hourly_bars(), tmp_path / "k.png")
    assert not (tmp_path / "k.png").exists()
