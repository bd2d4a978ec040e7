"""Market data from the exchange's trades: OHLCV bars (K-lines), depth of book, a candlestick chart.

    bars = ohlcv(trades, 3600)                     # hourly bars, aligned to the hour (UTC)
    bars = ohlcv(trades, 86400, fill=True)         # daily, quiet days carried at the last close
    book = depth([("bid", 101, 5), ("ask", 103, 2), ...])
    plot_klines(bars, "klines.png", title="2025 allowances")   # needs matplotlib

Prices are exact (``Fraction`` or ``Decimal``, settlement units per tonne); quantities are integer asset
units (6 decimals); a bar's value is exact too (an ``int`` when whole, as every exchange trade's is).
Nothing here reads the chain: the exchange's SDK module turns ``Trade`` events into :class:`Trade` s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

from carbon_sdk.errors import ConfigurationError, InvalidInput

UNITS_PER_TONNE = 10**6

Price = Union[Fraction, Decimal, int]


@dataclass(frozen=True)
class Trade:
    time: int  # unix seconds (the block's timestamp)
    price: Price  # settlement units per tonne
    quantity: int  # asset units
    block_number: int | None = None
    tx_hash: str | None = None

    @property
    def value(self) -> Fraction | int:
        """Settlement units paid: price x quantity in tonnes, exactly."""
        return _exact(Fraction(self.price) * self.quantity / UNITS_PER_TONNE)


@dataclass(frozen=True)
class Bar:
    """One interval's trades: [start, start + interval)."""

    start: int  # unix seconds
    open: Price
    high: Price
    low: Price
    close: Price
    volume: int  # asset units
    value: Fraction | int  # settlement units
    trades: int  # 0 for a bar carried forward by fill=True

    @property
    def vwap(self) -> Fraction | None:
        """Volume-weighted average price per tonne (None without volume)."""
        return Fraction(self.value) * UNITS_PER_TONNE / self.volume if self.volume else None


@dataclass(frozen=True)
class DepthLevel:
    price: Price
    quantity: int
    cumulative: int  # this level and every better one


@dataclass(frozen=True)
class Depth:
    bids: tuple[DepthLevel, ...]  # best (highest) first
    asks: tuple[DepthLevel, ...]  # best (lowest) first

    @property
    def best_bid(self) -> Price | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Price | None:
        return self.asks[0].price if self.asks else None

    @property
    def spread(self) -> Price | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid

    @property
    def midpoint(self) -> Fraction | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return (Fraction(self.best_bid) + Fraction(self.best_ask)) / 2


def _exact(value: Fraction) -> Fraction | int:
    return int(value) if value.denominator == 1 else value


def _positive_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(f"{what} must be a positive integer, got {value!r}")
    return value


def ohlcv(trades: Iterable[Trade], interval_seconds: int, start: int | None = None, end: int | None = None,
          fill: bool = False, origin: int = 0) -> list[Bar]:
    """Bars of ``interval_seconds`` over the trades with ``start <= time < end``.

    Bars start at ``origin + k * interval_seconds`` (the epoch by default, so hourly bars begin on the hour
    UTC), whatever ``start`` is. Trades at the same second keep their given order (pass them in chain order:
    open and close depend on it). Intervals without trades are omitted, or with ``fill=True`` carried forward
    from the previous close with zero volume, up to the last trade (or to ``end`` when given); nothing is
    carried before the first trade, having no price to carry.
    """
    interval = _positive_int(interval_seconds, "interval_seconds")
    selected = sorted((t for t in trades if (start is None or t.time >= start) and (end is None or t.time < end)),
                      key=lambda t: t.time)
    bars: list[Bar] = []
    for trade in selected:
        if trade.quantity < 0:
            raise InvalidInput(f"trade {trade} has a negative quantity")
        bar_start = trade.time - (trade.time - origin) % interval
        if bars and bars[-1].start == bar_start:
            last = bars[-1]
            bars[-1] = Bar(last.start, last.open, max(last.high, trade.price), min(last.low, trade.price),
                           trade.price, last.volume + trade.quantity, _exact(Fraction(last.value) + trade.value),
                           last.trades + 1)
            continue
        if fill and bars:
            bars.extend(_carried(bars[-1], bar_start, interval))
        bars.append(Bar(bar_start, trade.price, trade.price, trade.price, trade.price, trade.quantity,
                        trade.value, 1))
    if fill and bars and end is not None:
        last_start = (end - 1) - ((end - 1) - origin) % interval  # the bar holding the last second before end
        bars.extend(_carried(bars[-1], last_start + interval, interval))
    return bars


def _carried(previous: Bar, until: int, interval: int) -> list[Bar]:
    """Empty bars after ``previous`` up to (not including) the bar starting at ``until``."""
    close = previous.close
    return [Bar(t, close, close, close, close, 0, 0, 0) for t in range(previous.start + interval, until, interval)]


def _side(side: Any) -> str:
    name = getattr(side, "name", side)
    if isinstance(name, str) and name.lower() in ("bid", "buy"):
        return "bid"
    if isinstance(name, str) and name.lower() in ("ask", "sell"):
        return "ask"
    raise InvalidInput(f"unknown side {side!r}: expected bid/buy or ask/sell")


def depth(levels: Iterable[tuple[Any, Price, int]]) -> Depth:
    """Depth of book from (side, price, quantity) entries, in any order, several per price allowed.

    Bids come highest first, asks lowest first, each level with the quantity at that price and the
    cumulative quantity up to it. The book is not required to be uncrossed (during the call it may be).
    """
    totals: dict[str, dict[Price, int]] = {"bid": {}, "ask": {}}
    for side, price, quantity in levels:
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise InvalidInput(f"quantity must be a non-negative integer, got {quantity!r}")
        if quantity:
            book = totals[_side(side)]
            book[price] = book.get(price, 0) + quantity

    def ladder(book: dict[Price, int], descending: bool) -> tuple[DepthLevel, ...]:
        cumulative, out = 0, []
        for price in sorted(book, reverse=descending):
            cumulative += book[price]
            out.append(DepthLevel(price, book[price], cumulative))
        return tuple(out)

    return Depth(ladder(totals["bid"], True), ladder(totals["ask"], False))


def plot_klines(bars: Sequence[Bar], path: str | Path, title: str | None = None,
                up_color: str = "#26a69a", down_color: str = "#ef5350", interval_seconds: int | None = None) -> Path:
    """Write a PNG candlestick chart of ``bars`` with volume (tonnes) below; returns the path.

    ``interval_seconds`` is the bars' length; without it, the smallest gap between bars, which is right only
    when no interval was omitted (``ohlcv(..., fill=True)``): pass it for bars with gaps.

    Draws with matplotlib's Agg canvas directly (no pyplot, no global backend switch), so it works headless
    and leaves the caller's matplotlib setup alone.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError:
        raise ConfigurationError("plotting K-lines needs matplotlib: pip install matplotlib") from None
    bars = list(bars)
    if not bars:
        raise InvalidInput("no bars to plot")
    starts = [b.start for b in bars]
    steps = [b - a for a, b in zip(starts, starts[1:]) if b > a]
    interval = (_positive_int(interval_seconds, "interval_seconds") if interval_seconds is not None
                else min(steps) if steps else 60)
    width = 0.8 * interval / 86400  # matplotlib dates are in days
    highs, lows = [float(b.high) for b in bars], [float(b.low) for b in bars]
    flat = (max(highs) - min(lows)) / 200 or max(abs(max(highs)), 1.0) / 1000  # a flat bar's body still shows

    figure = Figure(figsize=(10, 6))
    FigureCanvasAgg(figure)
    price_ax, volume_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for bar in bars:
        middle = datetime.fromtimestamp(bar.start + interval / 2, tz=timezone.utc)  # the bar spans its interval
        x = date2num(middle.replace(tzinfo=None))
        o, h, lo, c = (float(v) for v in (bar.open, bar.high, bar.low, bar.close))
        color = "#9e9e9e" if not bar.trades else up_color if c >= o else down_color  # grey: carried forward
        price_ax.vlines(x, lo, h, color=color, linewidth=1)
        price_ax.add_patch(Rectangle((x - width / 2, min(o, c)), width, abs(c - o) or flat, facecolor=color,
                                     edgecolor=color))
        volume_ax.bar(x, bar.volume / UNITS_PER_TONNE, width=width, color=color)
    price_ax.autoscale_view()
    price_ax.set_ylabel("price (settlement units / t)")
    volume_ax.set_ylabel("volume (t)")
    locator = AutoDateLocator()
    volume_ax.xaxis.set_major_locator(locator)
    volume_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    price_ax.grid(alpha=0.3)
    volume_ax.grid(alpha=0.3)
    if title:
        price_ax.set_title(title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    return path
