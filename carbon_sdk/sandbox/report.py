"""The policy sandbox's report: Markdown + HTML, PNG plots, a comparison of two runs, the seed paper's claims.

    results = load_results("runs/default")           # typed rows; InvalidInput naming the file and column
    path = write_report("runs/default")              # runs/default/report.md, report.html, *.png
    path = write_report("runs/default", compare="runs/no-trading", out=Path("runs/compare"))
    for check in paper_checks(results):              # the seed paper's claims on the simulated market
        print(check.claim, check.agrees, check.evidence)
    check = realised_check(results)                  # check 4: the desk's realised profit and volumes vs the model
    print("\\n".join(summary_lines(results)))          # a few lines for the CLI

The results folder is the interface with the runner (docs/sandbox.md): ``data/run.json`` and the CSV files
``periods.csv``, ``enterprises.csv``, ``trades.csv``, ``individuals.csv``, ``welfare.csv`` and ``coin.csv``.
Every column listed there must be present (extra columns are ignored) and every cell must parse; empty cells
are allowed only where a value can be absent (a clearing price without an auction, the platform's prices
without an individual market, the verifier of an unreported enterprise).

Plots are drawn with matplotlib's Agg canvas directly (no pyplot), as ``carbon_sdk.market_data`` does, and the
K-lines reuse its :func:`~carbon_sdk.market_data.ohlcv` bars. The HTML is written here (no Markdown library):
it is self-contained apart from the PNGs beside it.
"""

from __future__ import annotations

import csv
import html
import json
import math
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from carbon_sdk import economics
from carbon_sdk.errors import ConfigurationError, InvalidInput
from carbon_sdk.market_data import UNITS_PER_TONNE, Bar, Trade, ohlcv

__all__ = [
    "CoinRow",
    "EnterpriseRow",
    "IndividualRow",
    "MarketStats",
    "PaperCheck",
    "PeriodRow",
    "RealisedPeriod",
    "Results",
    "RunInfo",
    "TradeRow",
    "WelfareRow",
    "load_results",
    "market_stats",
    "paper_checks",
    "realised_check",
    "realised_vs_model",
    "summary_lines",
    "write_report",
]

PLOTS = ("klines.png", "emissions.png", "consumers.png", "welfare.png", "compliance.png", "coin.png")
DEFAULT_SETTLEMENT_DECIMALS = 2  # "money in currency units with 2 decimals"
SIMILAR = 0.10  # parameters within 10 % of each other count as "similar" for Proposition 2 across periods
MAX_PAIRS = 12  # pairs of periods listed in the evidence of claim 3b


# --- typed rows -----------------------------------------------------------------------------------------------
# Field names are the CSV column names; the field types say how each cell is parsed (``X | None``: may be
# empty).


@dataclass(frozen=True)
class PeriodRow:
    period: int
    period_id: int
    cap_t: float
    free_allocated_t: float
    auctioned_t: float
    baseline_t: float
    abated_t: float
    emissions_t: float  # true emissions
    reported_t: float
    verified_t: float
    surrendered_t: float
    offsets_t: float
    shortfall_t: float
    compliant: int  # enterprises compliant
    short_enterprises: int
    clearing_price: float | None  # None: no auction clearing
    auction_volume_t: float
    continuous_volume_t: float
    vwap: float | None  # None: no trades
    delta: float
    transactions: int
    gas: int
    wall_seconds: float


@dataclass(frozen=True)
class EnterpriseRow:
    period: int
    enterprise: str
    group: str
    region: int
    baseline_t: float
    abated_t: float
    emissions_t: float
    reported_t: float
    verified_t: float
    allocated_t: float
    bought_t: float
    sold_t: float
    surrendered_t: float
    shortfall_t: float
    state: str  # compliant | shortfall | unreported
    coin_delta: float
    coin_balance: float
    coin_debt: float
    verifier: str  # empty when nothing was verified
    verifier_honest: bool | None


@dataclass(frozen=True)
class TradeRow:
    period: int
    phase: str  # auction | continuous
    block: int
    timestamp: int
    price: float  # currency per tonne
    tonnes: float
    value: float
    buyer: str
    seller: str


@dataclass(frozen=True)
class IndividualRow:
    period: int
    group: str  # low_carbon | high_carbon
    users: int
    participants: int
    emissions_with_market_t: float
    emissions_without_market_t: float
    credits_issued_t: float
    deficit_owed_t: float
    sold_t: float
    bought_t: float
    covered_t: float
    outstanding_t: float
    surplus_paid: float
    purchases_paid: float


@dataclass(frozen=True)
class WelfareRow:
    period: int
    delta: float
    N_t: float
    D: float
    W_t: float
    e: float
    c: float
    p_ph: float | None  # None: no individual market this period
    p_c: float | None
    d_all_t: float | None
    profit: float | None
    user_surplus: float | None
    welfare: float | None  # π + U
    participation: float | None
    delta_star: float | None
    welfare_at_delta_star: float | None
    social_welfare: float | None  # SW(δ) = P·N·δ − κδ²/2


@dataclass(frozen=True)
class CoinRow:
    period: int
    enterprise: str
    rule: str
    amount: float  # + reward, − penalty
    debt_after: float


@dataclass(frozen=True)
class RunInfo:
    scenario: str  # the scenario's name
    seed: int
    periods: int
    chain_id: int | None
    started: str | None
    wall_seconds: float
    personal_trading: bool
    scenario_file: str | None
    config: dict[str, Any] = field(default_factory=dict)  # the scenario as a dict ({} when run.json has none)
    description: str = ""
    settlement_decimals: int = DEFAULT_SETTLEMENT_DECIMALS


@dataclass(frozen=True)
class Results:
    folder: Path
    run: RunInfo
    periods: tuple[PeriodRow, ...]
    enterprises: tuple[EnterpriseRow, ...]
    trades: tuple[TradeRow, ...]
    individuals: tuple[IndividualRow, ...]
    welfare: tuple[WelfareRow, ...]
    coin: tuple[CoinRow, ...]

    @property
    def name(self) -> str:
        return self.run.scenario

    @property
    def period_numbers(self) -> list[int]:
        return sorted(row.period for row in self.periods)

    def period(self, period: int) -> PeriodRow | None:
        return next((row for row in self.periods if row.period == period), None)

    def welfare_of(self, period: int) -> WelfareRow | None:
        return next((row for row in self.welfare if row.period == period), None)

    def trades_of(self, period: int) -> list[TradeRow]:
        return [t for t in self.trades if t.period == period]

    def enterprises_of(self, period: int) -> list[EnterpriseRow]:
        return [e for e in self.enterprises if e.period == period]

    def individuals_of(self, period: int) -> list[IndividualRow]:
        return [i for i in self.individuals if i.period == period]

    def coin_of(self, period: int) -> list[CoinRow]:
        return [c for c in self.coin if c.period == period]

    def policy(self, key: str) -> Any:
        """A value of the scenario's ``policy`` section from run.json (None when absent)."""
        policy = self.run.config.get("policy") if isinstance(self.run.config, dict) else None
        return policy.get(key) if isinstance(policy, dict) else None


@dataclass(frozen=True)
class PaperCheck:
    claim: str
    agrees: bool | None  # None: the data cannot decide (the evidence says why)
    evidence: str


# --- loading --------------------------------------------------------------------------------------------------

_FILES: dict[str, type] = {
    "periods.csv": PeriodRow,
    "enterprises.csv": EnterpriseRow,
    "trades.csv": TradeRow,
    "individuals.csv": IndividualRow,
    "welfare.csv": WelfareRow,
    "coin.csv": CoinRow,
}
_CHOICES = {
    ("trades.csv", "phase"): ("auction", "continuous"),
    ("enterprises.csv", "state"): ("compliant", "shortfall", "unreported"),
    ("individuals.csv", "group"): ("low_carbon", "high_carbon"),
}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _parse_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def _parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        value = _parse_float(raw)
        if value != int(value):
            raise ValueError(f"{raw!r} is not a whole number") from None
        return int(value)


def _parse_bool(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not true or false")


_PARSERS: dict[Any, Callable[[str], Any]] = {float: _parse_float, int: _parse_int, bool: _parse_bool,
                                               str: lambda raw: raw}


def _column_parsers(cls: type) -> dict[str, tuple[Callable[[str], Any], bool]]:
    """column -> (parser, optional) from the row class's type hints."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        out[name] = (_PARSERS[base], optional)
    return out


def _read_table(folder: Path, filename: str) -> tuple:
    cls = _FILES[filename]
    path = folder / "data" / filename
    where = f"data/{filename}"
    if not path.is_file():
        raise InvalidInput(f"{where}: file missing from the results folder {folder}")
    parsers = _column_parsers(cls)
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise InvalidInput(f"{where}: empty file, expected a header row with the columns "
                               f"{', '.join(parsers)}")
        missing = [name for name in parsers if name not in header]
        if missing:
            raise InvalidInput(f"{where}: missing column{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(repr(m) for m in missing)}")
        for record in reader:
            line = reader.line_num
            values = {}
            for name, (parse, optional) in parsers.items():
                raw = record.get(name)
                if raw is None:
                    raise InvalidInput(f"{where} line {line}, column {name!r}: the row is too short")
                raw = raw.strip()
                if raw == "" and optional:
                    values[name] = None
                    continue
                if raw == "" and parse is not _PARSERS[str]:
                    raise InvalidInput(f"{where} line {line}, column {name!r}: empty")
                try:
                    values[name] = parse(raw)
                except ValueError as exc:
                    raise InvalidInput(f"{where} line {line}, column {name!r}: {exc}") from None
                choices = _CHOICES.get((filename, name))
                if choices and values[name] not in choices:
                    raise InvalidInput(f"{where} line {line}, column {name!r}: {raw!r} is not one of "
                                       f"{', '.join(choices)}")
            rows.append(cls(**values))
    return tuple(rows)


def _read_run(folder: Path) -> RunInfo:
    path = folder / "data" / "run.json"
    where = "data/run.json"
    if not path.is_file():
        raise InvalidInput(f"{where}: file missing from the results folder {folder}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: expected a JSON object, got {type(data).__name__}")
    # The spec lists "scenario" twice (the name, and the scenario as a dict); a JSON reader keeps the last.
    # Accept the name as "scenario" (a string), "scenario_name" or "name", and the dict as "scenario" or "config".
    scenario = data.get("scenario")
    config = scenario if isinstance(scenario, dict) else data.get("config") or data.get("scenario_config") or {}
    if not isinstance(config, dict):
        raise InvalidInput(f"{where}: key 'config' must be an object (the scenario as a dict)")
    name = scenario if isinstance(scenario, str) else data.get("scenario_name") or data.get("name") \
        or config.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}: missing key 'scenario' (the scenario's name)")

    def need(key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in data:
            if optional:
                return None
            raise InvalidInput(f"{where}: missing key {key!r}")
        value = data[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise InvalidInput(f"{where}: key {key!r} has {value!r}, expected "
                               f"{kind.__name__ if isinstance(kind, type) else ' or '.join(k.__name__ for k in kind)}")
        return value

    periods = need("periods", int)
    if periods <= 0:
        raise InvalidInput(f"{where}: key 'periods' must be positive, got {periods}")
    wall = float(need("wall_seconds", (int, float)))
    decimals = need("settlement_decimals", int, optional=True)
    return RunInfo(scenario=name, seed=need("seed", int), periods=periods, chain_id=need("chain_id", int, optional=True),
                   started=need("started", str, optional=True), wall_seconds=wall,
                   personal_trading=need("personal_trading", bool),
                   scenario_file=need("scenario_file", str, optional=True), config=config,
                   description=str(config.get("description") or data.get("description") or ""),
                   settlement_decimals=DEFAULT_SETTLEMENT_DECIMALS if decimals is None else decimals)


def load_results(folder: str | Path) -> Results:
    """The results folder written by the runner, typed; :class:`InvalidInput` naming the file and the column
    (and line) when something is missing or malformed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput(f"results folder {folder} does not exist")
    run = _read_run(folder)
    tables = {name: _read_table(folder, name) for name in _FILES}
    known = [row.period for row in tables["periods.csv"]]
    if len(set(known)) != len(known):
        duplicate = next(p for p in known if known.count(p) > 1)
        raise InvalidInput(f"data/periods.csv, column 'period': period {duplicate} appears twice")
    for name in ("welfare.csv",):
        seen = [row.period for row in tables[name]]
        if len(set(seen)) != len(seen):
            raise InvalidInput(f"data/{name}, column 'period': a period appears twice")
    pairs = [(row.period, row.group) for row in tables["individuals.csv"]]
    if len(set(pairs)) != len(pairs):
        raise InvalidInput("data/individuals.csv, columns 'period' and 'group': a group appears twice in a period")
    for name, rows in tables.items():
        unknown = sorted({row.period for row in rows} - set(known))
        if unknown:
            raise InvalidInput(f"data/{name}, column 'period': period {unknown[0]} is not in data/periods.csv")
    return Results(folder=folder, run=run, periods=tuple(sorted(tables["periods.csv"], key=lambda r: r.period)),
                   enterprises=tables["enterprises.csv"], trades=tables["trades.csv"],
                   individuals=tables["individuals.csv"], welfare=tables["welfare.csv"], coin=tables["coin.csv"])


# --- derived figures ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketStats:
    """The exchange's trades of one period (or of the whole run), from trades.csv."""

    trades: int
    volume_t: float
    auction_t: float
    continuous_t: float
    value: float  # Σ price·tonnes
    vwap: float | None  # Σ price·tonnes / Σ tonnes
    open: float | None
    high: float | None
    low: float | None
    close: float | None


def _chain_order(trades: Iterable[TradeRow]) -> list[TradeRow]:
    return sorted(trades, key=lambda t: (t.period, t.block, t.timestamp))  # stable: file order within a block


def market_stats(results: Results, period: int | None = None) -> MarketStats:
    """Volume, VWAP (Σ price·tonnes / Σ tonnes) and open/high/low/close from trades.csv."""
    trades = _chain_order(results.trades if period is None else results.trades_of(period))
    volume = sum(t.tonnes for t in trades)
    value = sum(t.price * t.tonnes for t in trades)
    prices = [t.price for t in trades]
    return MarketStats(
        trades=len(trades), volume_t=volume, value=value,
        auction_t=sum(t.tonnes for t in trades if t.phase == "auction"),
        continuous_t=sum(t.tonnes for t in trades if t.phase == "continuous"),
        vwap=value / volume if volume > 0 else None,
        open=prices[0] if prices else None, high=max(prices) if prices else None,
        low=min(prices) if prices else None, close=prices[-1] if prices else None)


@dataclass(frozen=True)
class _Compliance:
    compliant: int
    shortfall: int
    unreported: int


def _compliance(results: Results, period: int) -> _Compliance:
    states = [e.state for e in results.enterprises_of(period)]
    return _Compliance(states.count("compliant"), states.count("shortfall"), states.count("unreported"))


def _coin_totals(results: Results, period: int) -> tuple[float, float, float, int]:
    """(rewards, penalties as a positive number, debt at the period's end, events)."""
    rows = results.coin_of(period)
    rewards = sum(r.amount for r in rows if r.amount > 0)
    penalties = -sum(r.amount for r in rows if r.amount < 0)
    enterprises = results.enterprises_of(period)
    if enterprises:
        debt = sum(e.coin_debt for e in enterprises)
    else:  # the last debt_after of each enterprise in the period
        last: dict[str, float] = {}
        for r in rows:
            last[r.enterprise] = r.debt_after
        debt = sum(last.values())
    return rewards, penalties, debt, len(rows)


def _consumers(results: Results, period: int | None = None, group: str | None = None) -> tuple[float, float]:
    """(Σ emissions with the market, Σ without), of a period and/or a group (None: all)."""
    rows = [r for r in results.individuals if (period is None or r.period == period)
            and (group is None or r.group == group)]
    return sum(r.emissions_with_market_t for r in rows), sum(r.emissions_without_market_t for r in rows)


def _total(results: Results, attr: str) -> float:
    return sum(getattr(row, attr) for row in results.periods)


def _has_prices(row: WelfareRow) -> bool:
    """The platform posted prices this period (the runner writes 0 or nothing when there was no market)."""
    return row.p_ph is not None and row.p_c is not None and (row.p_ph > 0 or row.p_c > 0)


def _has_sw(row: WelfareRow) -> bool:
    """SW(δ) and SW(δ*) are known (δ* is positive whenever the model applies; 0 or empty means it did not)."""
    return (row.social_welfare is not None and row.welfare_at_delta_star is not None
            and row.delta_star is not None and row.delta_star > 0)


def _sw_star_ratio(row: WelfareRow) -> float | None:
    """SW(δ) / SW(δ*), when both are positive (a share of the best welfare means nothing otherwise)."""
    if not _has_sw(row) or row.welfare_at_delta_star <= 0 or row.social_welfare < 0:
        return None
    return row.social_welfare / row.welfare_at_delta_star


# --- formatting -----------------------------------------------------------------------------------------------

DASH = "—"


def _money(x: float | None) -> str:
    return DASH if x is None else f"{x:,.2f}"


def _price(x: float | None) -> str:
    return _money(x)


def _tonnes(x: float | None) -> str:
    """Tonnes with up to 3 decimals, trailing zeros dropped: 1,234 or 12.5."""
    if x is None:
        return DASH
    text = f"{x:,.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _count(x: int | float | None) -> str:
    return DASH if x is None else f"{int(round(x)):,}"


def _ratio(x: float | None, digits: int = 3) -> str:
    """A ratio with up to ``digits`` decimals, trailing zeros dropped: 0.25, 1."""
    if x is None:
        return DASH
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(x: float | None) -> str:
    return DASH if x is None else f"{100 * x:.1f} %"


def _signed(fmt: Callable[[float], str], x: float | None) -> str:
    if x is None:
        return DASH
    text = fmt(abs(x))
    return text if abs(x) < 1e-12 or text.strip("0.,") == "" else ("+" if x > 0 else "-") + text


def _seconds(x: float | None) -> str:
    return DASH if x is None else f"{x:,.1f}"


# --- the document: blocks rendered to Markdown and HTML ---------------------------------------------------------


@dataclass
class _Heading:
    level: int
    text: str


@dataclass
class _Para:
    text: str


@dataclass
class _Bullets:
    items: list[str]


@dataclass
class _Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str | None = None


@dataclass
class _Image:
    file: str
    alt: str


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _to_markdown(blocks: Sequence[Any]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, _Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, _Para):
            out.append(block.text)
        elif isinstance(block, _Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, _Table):
            lines = []
            if block.caption:
                lines.append(f"*{block.caption}*")
                lines.append("")
            lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            lines.append("| " + " | ".join("---" for _ in block.headers) + " |")
            lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows)
            out.append("\n".join(lines))
        elif isinstance(block, _Image):
            out.append(f"![{block.alt}]({block.file})")
    return "\n\n".join(out) + "\n"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #26a69a; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; vertical-align: top; }
th { background: #f0f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.agrees { color: #1b7f3b; font-weight: bold; } .disagrees { color: #b71c1c; font-weight: bold; }
.undecided { color: #8a6d00; font-weight: bold; }
"""

_NUMERIC = set("0123456789,.+−-% ")


def _html_cell(text: str, tag: str = "td") -> str:
    text = str(text)
    classes = []
    if tag == "td" and text and (text == DASH or set(text) <= _NUMERIC and any(ch.isdigit() for ch in text)):
        classes.append("num")
    verdict = {"agrees": "agrees", "does not agree": "disagrees", "undecided": "undecided"}.get(text)
    if verdict:
        classes.append(verdict)
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<{tag}{attr}>{html.escape(text)}</{tag}>"


def _to_html(blocks: Sequence[Any], title: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    for block in blocks:
        if isinstance(block, _Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, _Para):
            out.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, _Bullets):
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, _Table):
            caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
            head = "<tr>" + "".join(_html_cell(h, "th") for h in block.headers) + "</tr>"
            body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in block.rows)
            out.append(f"<table>{caption}<thead>{head}</thead><tbody>{body}</tbody></table>")
        elif isinstance(block, _Image):
            out.append(f'<p><img src="{html.escape(block.file)}" alt="{html.escape(block.alt)}"></p>')
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# --- tables: one run (a row per period, a column per figure) or two (a column per run) ---------------------


@dataclass(frozen=True)
class _Metric:
    label: str
    value: Callable[[Results, Any], Any]  # (run, key) -> number or None
    fmt: Callable[[Any], str]
    diff: bool = True  # show B − A in a comparison


def _key_table(runs: Sequence[Results], labels: Sequence[str], keys: Sequence[tuple], key_headers: Sequence[str],
               metrics: Sequence[_Metric], caption: str | None = None) -> _Table:
    """One run: a row per key, a column per metric. Two runs: a row per key and metric, a column per run and
    the difference (second − first)."""
    if len(runs) == 1:
        rows = [[str(k) for k in key] + [m.fmt(m.value(runs[0], key[0] if len(key) == 1 else key))
                                         for m in metrics] for key in keys]
        return _Table(list(key_headers) + [m.label for m in metrics], rows, caption)
    rows = []
    for key in keys:
        for m in metrics:
            values = [m.value(run, key[0] if len(key) == 1 else key) for run in runs]
            diff = DASH
            if m.diff and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                diff = _signed(m.fmt, values[1] - values[0])
            rows.append([str(k) for k in key] + [m.label] + [m.fmt(v) for v in values] + [diff])
    headers = list(key_headers) + ["figure"] + list(labels) + [f"{labels[1]} − {labels[0]}"]
    return _Table(headers, rows, caption)


def _periods_of(runs: Sequence[Results]) -> list[tuple[int]]:
    return [(p,) for p in sorted({p for run in runs for p in run.period_numbers})]


def _pfield(attr: str) -> Callable[[Results, int], Any]:
    def get(run: Results, period: int) -> Any:
        row = run.period(period)
        return None if row is None else getattr(row, attr)
    return get


def _wfield(attr: str) -> Callable[[Results, int], Any]:
    def get(run: Results, period: int) -> Any:
        row = run.welfare_of(period)
        return None if row is None else getattr(row, attr)
    return get


def _mfield(attr: str) -> Callable[[Results, int], Any]:
    def get(run: Results, period: int) -> Any:
        return getattr(market_stats(run, period), attr) if run.period(period) else None
    return get


def _labels(runs: Sequence[Results]) -> list[str]:
    names = [run.name for run in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{run.name} ({run.folder.name})" for run in runs]


# --- the seed paper's claims ---------------------------------------------------------------------------------


def _fmt_num(x: float) -> str:
    return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.0f}"


def _check_consumers_within(run: Results, label: str) -> PaperCheck:
    claim = (f"1a. Individual-level trading without subsidy lowers total consumer emissions ({label}: with vs "
             "without the individual market)")
    if not run.individuals:
        return PaperCheck(claim, None, "individuals.csv has no rows: no consumer emissions to compare")
    with_, without = _consumers(run)
    per_period = "; ".join(f"P{p}: {_tonnes(_consumers(run, p)[0])} vs {_tonnes(_consumers(run, p)[1])} t"
                           for p in sorted({r.period for r in run.individuals}))
    if not run.run.personal_trading:
        return PaperCheck(claim, None, f"personal trading was off in this run, so there was no individual market "
                                       f"to lower emissions (with {_tonnes(with_)} t, without {_tonnes(without)} t); "
                                       "compare it with a run that has personal trading on")
    paid = sum(r.surplus_paid for r in run.individuals)
    received = sum(r.purchases_paid for r in run.individuals)
    funding = (f" The platform received {_money(received)} from buyers and paid {_money(paid)} to sellers: "
               + ("its buy-back was financed by its sales, no subsidy needed." if received >= paid - 0.005 else
                  f"it paid {_money(paid - received)} more than it received, which the paper's no-subsidy "
                  "setting does not allow."))
    change = with_ - without
    rel = f" ({_signed(_pct, change / without)})" if without else ""
    evidence = (f"Σ emissions with the market {_tonnes(with_)} t vs without {_tonnes(without)} t: "
                f"{_signed(_tonnes, change)} t{rel}. Per period: {per_period}.{funding}")
    return PaperCheck(claim, with_ < without, evidence)


def _check_consumers_across(a: Results, b: Results, labels: Sequence[str]) -> PaperCheck:
    claim = "1b. Individual-level trading lowers total consumer emissions (across the two runs: trading on vs off)"
    if a.run.personal_trading == b.run.personal_trading:
        state = "on" if a.run.personal_trading else "off"
        return PaperCheck(claim, None, f"personal trading is {state} in both runs; the comparison needs one run "
                                       "with it on and one with it off")
    (on, on_label), (off, off_label) = sorted(zip((a, b), labels), key=lambda x: not x[0].run.personal_trading)
    if not on.individuals or not off.individuals:
        return PaperCheck(claim, None, "individuals.csv is empty in one of the runs")
    on_with, on_without = _consumers(on)
    off_with, off_without = _consumers(off)
    on_n, off_n = len({r.period for r in on.individuals}), len({r.period for r in off.individuals})
    notes = []
    if on_n != off_n:
        on_with, off_with = on_with / on_n, off_with / off_n
        notes.append(f"the runs have {on_n} and {off_n} periods, so per-period averages are compared")
    if on.run.seed != off.run.seed:
        notes.append(f"the seeds differ ({on.run.seed} vs {off.run.seed}), so the consumers drawn differ too "
                     f"(emissions without any market: {_tonnes(on_without)} vs {_tonnes(off_without)} t)")
    elif abs(on_without - off_without) > 1e-6 * max(1.0, abs(off_without)):
        notes.append(f"the consumers' emissions without any market differ ({_tonnes(on_without)} vs "
                     f"{_tonnes(off_without)} t), so the runs are not like for like")
    unit = "t per period" if on_n != off_n else "t"
    change = on_with - off_with
    rel = f" ({_signed(_pct, change / off_with)})" if off_with else ""
    evidence = (f"consumer emissions with trading ({on_label}) {_tonnes(on_with)} {unit} vs without trading "
                f"({off_label}) {_tonnes(off_with)} {unit}: {_signed(_tonnes, change)} {unit}{rel}.")
    if notes:
        evidence += " Note: " + "; ".join(notes) + "."
    return PaperCheck(claim, on_with < off_with, evidence)


@dataclass(frozen=True)
class _Point:
    label: str
    row: WelfareRow

    @property
    def demand(self) -> float:
        return self.row.N_t * self.row.delta

    @property
    def supply(self) -> float:
        return self.row.D * self.row.W_t


def _points(runs: Sequence[Results], labels: Sequence[str]) -> list[_Point]:
    prefix = len(runs) > 1
    return [_Point(f"{label} P{row.period}" if prefix else f"P{row.period}", row)
            for run, label in zip(runs, labels) for row in sorted(run.welfare, key=lambda r: r.period)]


def _check_price_order(runs: Sequence[Results], labels: Sequence[str]) -> PaperCheck:
    where = " and across runs" if len(runs) > 1 else ""
    claim = f"2a. The platform's prices p_ph and p_c rise with demand Nδ (across periods{where})"
    unit = min(10.0 ** -run.run.settlement_decimals for run in runs)
    points = [p for p in _points(runs, labels) if _has_prices(p.row)]
    if len({round(p.demand, 9) for p in points}) < 2:
        why = ("no period has platform prices (no individual market)" if not points else
               f"only one level of demand Nδ ({_tonnes(points[0].demand)} t) among the periods with prices")
        return PaperCheck(claim, None, f"{why}; an ordering needs at least two")
    points.sort(key=lambda p: (p.demand, p.row.p_ph, p.row.p_c))
    pairs = "; ".join(f"{p.label}: Nδ {_tonnes(p.demand)} t → p_ph {_price(p.row.p_ph)}, p_c {_price(p.row.p_c)}"
                      for p in points)
    breaks = []
    for name in ("p_ph", "p_c"):
        ordered = sorted(points, key=lambda p: (p.demand, getattr(p.row, name)))
        for lo, hi in zip(ordered, ordered[1:]):
            drop = getattr(lo.row, name) - getattr(hi.row, name)
            if drop > unit + 1e-9:
                supply = ""
                if abs(lo.supply - hi.supply) > 1e-9 * max(lo.supply, hi.supply, 1):
                    supply = (f"; D·W differs ({_tonnes(lo.supply)} vs {_tonnes(hi.supply)} t), which the paper's "
                              "comparative statics hold fixed")
                breaks.append(f"{name} falls from {_price(getattr(lo.row, name))} ({lo.label}, Nδ "
                              f"{_tonnes(lo.demand)} t) to {_price(getattr(hi.row, name))} ({hi.label}, Nδ "
                              f"{_tonnes(hi.demand)} t), by {_price(drop)}{supply}")
    evidence = f"ordered by Nδ: {pairs}."
    evidence += (" Breaks: " + "; ".join(breaks) + "." if breaks else
                 f" Both prices are non-decreasing in Nδ (tolerance one settlement unit, {unit:g}).")
    return PaperCheck(claim, not breaks, evidence)


def _check_closed_form(runs: Sequence[Results], labels: Sequence[str]) -> PaperCheck:
    claim = ("2b. The simulated p_ph equals the closed form δNe/(DW) (and p_c = 2δNe/(DW) + c), within one "
             "settlement unit")
    unit = min(10.0 ** -run.run.settlement_decimals for run in runs)
    matched, failed, outside, skipped = [], [], [], []
    for point in _points(runs, labels):
        row = point.row
        if not _has_prices(row):
            skipped.append(point.label)
            continue
        try:
            model = economics.platform_prices(row.N_t, row.delta, row.e, row.D, row.W_t, row.c)
            capped = ""
        except InvalidInput as exc:
            if point.demand > point.supply > 0 and row.e > 0 and row.D > 0 and row.W_t > 0:
                # δN > DW: outside the model; the runner prices where every low-carbon user sells (p_ph = e).
                exact = [Fraction(Decimal(repr(float(x)))) for x in (row.D, row.W_t, row.delta)]
                model = economics.platform_prices(exact[0] * exact[1] / exact[2], row.delta, row.e, row.D,
                                                  row.W_t, row.c)
                capped = f" (δN {_tonnes(point.demand)} t > DW {_tonnes(point.supply)} t: capped at DW)"
            else:
                skipped.append(f"{point.label} ({exc})")
                continue
        d_ph, d_c = abs(row.p_ph - float(model.p_ph)), abs(row.p_c - float(model.p_c))
        text = (f"{point.label}: p_ph {_price(row.p_ph)} vs {float(model.p_ph):.4f}, p_c {_price(row.p_c)} vs "
                f"{float(model.p_c):.4f}{capped}")
        if capped:
            outside.append(point.label)
        (matched if max(d_ph, d_c) <= unit + 1e-9 else failed).append(
            text + ("" if max(d_ph, d_c) <= unit + 1e-9 else f" — off by {max(d_ph, d_c):.4f}"))
    if not matched and not failed:
        return PaperCheck(claim, None, "no period has platform prices to compare"
                          + (f" ({'; '.join(skipped)})" if skipped else ""))
    evidence = f"{len(matched)} of {len(matched) + len(failed)} periods within {unit:g}. "
    evidence += "; ".join(failed + matched) + "."
    if outside:
        evidence += (f" In {', '.join(outside)} the high-carbon side owed more than the whole surplus (δN > DW), "
                     "outside the paper's model: compared with the price at which every low-carbon user sells.")
    if skipped:
        evidence += f" Without prices: {', '.join(skipped)}."
    return PaperCheck(claim, not failed, evidence)


def _check_sw_below_star(runs: Sequence[Results], labels: Sequence[str]) -> PaperCheck:
    claim = "3a. Proposition 2: in each period, social welfare at the period's δ is at most the welfare at δ*"
    lines, bad, notes, left_out = [], [], [], []
    for run, point in ((r, p) for r, label in zip(runs, labels) for p in _points([r], [label])):
        row = point.row
        label = f"{run.name if len(runs) > 1 else ''} {point.label}".strip()
        if not _has_sw(row) or not _has_prices(row):
            left_out.append(label)
            continue
        ok = row.social_welfare <= row.welfare_at_delta_star + 0.01 + 1e-9 * abs(row.welfare_at_delta_star)
        ratio = _sw_star_ratio(row)
        text = (f"{label}: δ {_ratio(row.delta)}, SW {_money(row.social_welfare)} "
                f"{'≤' if ok else '>'} SW(δ* {_ratio(row.delta_star)}) {_money(row.welfare_at_delta_star)}"
                + (f" ({_pct(ratio)})" if ratio is not None else ""))
        (lines if ok else bad).append(text)
        P, k = run.policy("carbon_value"), run.policy("delta_cost_k")
        if isinstance(P, (int, float)) and isinstance(k, (int, float)) and row.N_t > 0 and row.D > 0 \
                and row.W_t > 0 and row.e > 0 and P > 0 and k > 0:
            model = economics.optimal_offset_ratio(row.N_t, P, k, row.e, row.D, row.W_t)
            if abs(float(model.delta) - row.delta_star) > 1e-4 + 1e-6 * abs(row.delta_star):
                notes.append(f"{label}: welfare.csv's δ* {_ratio(row.delta_star, 4)} differs from "
                             f"optimal_offset_ratio's {float(model.delta):.4f} for the period's N, D, W, e, P, k")
            if row.profit is not None and row.user_surplus is not None:
                realised = row.profit + row.user_surplus + P * row.N_t * row.delta - k * row.delta ** 2 / 2
                if realised > row.welfare_at_delta_star + 0.01:
                    notes.append(f"{label}: with the market's own π + U, SW is {_money(realised)}, above SW(δ*)")
    if not lines and not bad:
        return PaperCheck(claim, None, "welfare.csv has no period with an individual market and both SW(δ) and "
                                       "SW(δ*)" + (f" (left out: {', '.join(left_out)})" if left_out else ""))
    evidence = "; ".join(bad + lines) + "."
    if notes:
        evidence += " Also: " + "; ".join(notes) + "."
    if left_out:
        evidence += f" Left out, without an individual market or without δ*: {', '.join(left_out)}."
    evidence += (" The results format has SW(δ) and SW(δ*) from the model's closed form, so this confirms that "
                 "the runner applies Proposition 2 consistently at the N, D and W the market produced; check 4 "
                 "compares the desk's realised profit and volumes with π and D_all.")
    return PaperCheck(claim, not bad, evidence)


def _similar(a: WelfareRow, b: WelfareRow) -> list[str]:
    """The parameters of two periods that differ by more than SIMILAR (empty: like for like)."""
    differ = []
    for name in ("N_t", "D", "W_t", "e", "delta_star"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            continue
        big = max(abs(x), abs(y))
        if big > 0 and abs(x - y) / big > SIMILAR:
            differ.append(f"{name} {_fmt_num(x)} vs {_fmt_num(y)}")
    return differ


def _check_sw_distance(runs: Sequence[Results], labels: Sequence[str]) -> PaperCheck:
    where = " and runs" if len(runs) > 1 else ""
    claim = f"3b. Proposition 2: across periods{where}, welfare is higher where δ is closer to δ*"
    points = [p for p in _points(runs, labels) if _has_sw(p.row) and _has_prices(p.row)]
    like, indicative, ratio_ok, ratio_all = [], [], 0, 0
    for i, a in enumerate(points):
        for b in points[i + 1:]:
            if abs(a.row.delta - b.row.delta) < 1e-12:
                continue
            da, db = abs(a.row.delta - a.row.delta_star), abs(b.row.delta - b.row.delta_star)
            if abs(da - db) < 1e-12:
                continue
            near, far = (a, b) if da < db else (b, a)
            ok = near.row.social_welfare >= far.row.social_welfare - 0.01
            rn, rf = _sw_star_ratio(near.row), _sw_star_ratio(far.row)
            if rn is not None and rf is not None:
                ratio_all += 1
                ratio_ok += rn >= rf - 1e-9
            text = (f"{near.label} (δ {_ratio(near.row.delta)}, |δ−δ*| {_ratio(min(da, db))}) SW "
                    f"{_money(near.row.social_welfare)} {'≥' if ok else '<'} {far.label} (δ {_ratio(far.row.delta)}, "
                    f"|δ−δ*| {_ratio(max(da, db))}) SW {_money(far.row.social_welfare)}")
            differ = _similar(near.row, far.row)
            if differ:
                indicative.append((ok, f"{text} [indicative: {', '.join(differ)}]"))
            else:
                like.append((ok, f"{text} [like for like]"))
    if not like and not indicative:
        return PaperCheck(claim, None, "fewer than two periods with different δ (and different distances to δ*) "
                                       "and welfare figures: nothing to compare")
    ratio_text = (f" Normalised by each period's SW(δ*), {ratio_ok} of {ratio_all} pairs rank as the claim says."
                  if ratio_all else "")
    shown = [text for _, text in like + indicative]
    listed = "; ".join(shown[:MAX_PAIRS]) + (f"; and {len(shown) - MAX_PAIRS} more pairs" if len(shown) > MAX_PAIRS
                                             else "")
    if not like:
        agree = sum(ok for ok, _ in indicative)
        return PaperCheck(claim, None, f"no pair of periods has similar N, D, W, e and δ* (within "
                                       f"{SIMILAR:.0%}): the comparison is only indicative, and {agree} of "
                                       f"{len(indicative)} pairs rank as the claim says. {listed}.{ratio_text}")
    agree = sum(ok for ok, _ in like)
    evidence = (f"{agree} of {len(like)} like-for-like pairs (N, D, W, e and δ* within {SIMILAR:.0%}) rank as "
                f"the claim says")
    if indicative:
        evidence += (f"; {sum(ok for ok, _ in indicative)} of {len(indicative)} other pairs, only indicative "
                     "because the parameters differ, do")
    evidence += f". {listed}.{ratio_text}"
    return PaperCheck(claim, agree == len(like), evidence)


def paper_checks(results: Results, other: Results | None = None) -> list[PaperCheck]:
    """The seed paper's claims on the simulated market(s): agrees True/False, or None when the data cannot decide.

    1. individual-level trading lowers consumer emissions: within each run (personal trading on), and across
       the two runs when one has personal trading on and the other off;
    2. p_ph and p_c rise with Nδ (over the periods of both runs), and p_ph matches δNe/(DW);
    3. Proposition 2: SW(δ_t) ≤ SW(δ*_t), and welfare is higher for δ closer to δ* (decided only on pairs of
       periods with similar parameters; the rest is indicative).
    """
    runs = [results] if other is None else [results, other]
    labels = _labels(runs)
    checks = [_check_consumers_within(run, label) for run, label in zip(runs, labels)]
    if other is not None:
        checks.append(_check_consumers_across(results, other, labels))
    checks += [_check_price_order(runs, labels), _check_closed_form(runs, labels),
               _check_sw_below_star(runs, labels), _check_sw_distance(runs, labels)]
    return checks


def _verdict(check: PaperCheck) -> str:
    return "undecided" if check.agrees is None else "agrees" if check.agrees else "does not agree"


# --- the desk's realised trades against the model's equilibrium (check 4) -------------------------------------
# Check 3a only confirms that the runner applies the closed form consistently. Check 4 compares what the chain
# executed on the platform's desk (individuals.csv) with the model's π, participation and D_all (welfare.csv).

SAMPLING_SIGMAS = 3  # realised participation within this many standard deviations of P_ph/e counts as agreeing
GRAMS_PER_USER = 2e-6  # tonnes: each user's surplus or deficit is rounded to a gram, each debt down to a gram
REALISED_CLAIM = ("4. The desk's realised profit, participation and volumes match the model's π, P_ph/e and D_all "
                  "(per period)")


@dataclass(frozen=True)
class RealisedPeriod:
    """One period's desk trades executed on chain (individuals.csv) against the model's equilibrium (welfare.csv).

    Tonnes and currency. The platform buys back surplus from low-carbon sellers (``sold_t`` of the low-carbon row)
    and resells credits to debtors (``bought_t`` of the high-carbon row).

    Realised profit: ``purchases_paid − surplus_paid − c·bought_back_t``. The model's π = (P_c − P_ph − c)·D_all
    charges its cost c on each tonne of D_all, the surplus it buys (which equals what it sells when the market
    clears), so the cost term here is c times the tonnes actually bought back. Stock bought and not resold this
    period is counted at its cost, with no revenue, as the model's single-period π would.

    ``realised_profit − profit`` splits exactly into four terms: ``payments_vs_posted`` (payments against the posted
    prices times the volumes: only rounding, under one settlement unit per payment, unless something is wrong),
    ``price_rounding`` (the posted spread against the model's, times the tonnes resold), ``resold_volume``
    ((P_c − P_ph − c)·resold − π, which is (P_c − P_ph − c)·(resold − D_all)) and ``unsold_stock`` (−(posted
    buy-back + c)·(bought back − resold)). ``sellers`` counts the low-carbon users who chose to sell, including any
    the runner skipped because their payment rounds to zero (individuals.csv does not count executed sales separately).
    """

    period: int
    # the model (welfare.csv) and the prices posted on chain
    p_ph: float
    p_c: float
    c: float
    buy_back: float  # p_ph rounded down to a settlement unit, as posted
    sale: float  # p_c rounded up, as posted
    d_all_t: float  # D_all: what the platform buys, and sells, in the model
    debt_t: float  # δN: what the high-carbon side owes in the model
    W_t: float
    D: float
    participation: float  # P_ph/e
    profit: float  # π
    user_surplus: float  # U (no realised counterpart: it needs each seller's θ)
    # realised (individuals.csv)
    users: int  # low-carbon users
    sellers: int  # low-carbon users who chose to sell (participants)
    debtors: int  # high-carbon users who owed credits (participants)
    owed_t: float  # the debt recorded on chain (deficit_owed_t)
    bought_back_t: float
    resold_t: float
    covered_t: float
    outstanding_t: float
    paid_to_sellers: float
    paid_by_debtors: float
    # derived
    realised_participation: float | None
    realised_profit: float
    payments_vs_posted: float
    price_rounding: float
    resold_volume: float
    unsold_stock: float
    tolerance_t: float
    tolerance_participation: float | None
    tolerance_profit: float
    volumes_agree: bool
    participation_agrees: bool | None
    profit_agrees: bool
    differences: tuple[str, ...]  # where and why the period differs (empty when it agrees)
    matches: tuple[str, ...]  # what agrees, and within what

    @property
    def agrees(self) -> bool:
        return self.volumes_agree and self.participation_agrees is not False and self.profit_agrees

    @property
    def mean_sale_t(self) -> float | None:
        """What a seller sold on average (tonnes); None without sellers."""
        return self.bought_back_t / self.sellers if self.sellers else None


def _rel(x: float, ref: float) -> float | None:
    return (x - ref) / abs(ref) if ref else None


def _rel_pct(x: float | None, ref: float | None) -> str:
    """(x − ref)/|ref| as a signed percentage, "0.0 %" when it rounds to nothing, a dash without a reference."""
    rel = None if x is None or ref is None else _rel(x, ref)
    if rel is None:
        return DASH
    return "0.0 %" if abs(rel) < 0.0005 else _signed(_pct, rel)


def _rel_text(x: float, ref: float) -> str:
    return "" if _rel(x, ref) is None else f" ({_rel_pct(x, ref)})"


def _pct_points(x: float | None) -> str:
    """A difference of shares in percentage points: +1.4, -0.4."""
    return DASH if x is None else ("0.0" if abs(x) < 0.0005 else f"{100 * x:+.1f}")


def _posted(price: float, decimals: int, *, up: bool) -> float:
    """A model price as posted: rounded to a settlement unit, down (buy-back) or up (sale), from its shortest decimal
    (so 8.0 stays 8.00 and a float's last bit does not move it by a unit)."""
    scaled = Fraction(Decimal(repr(float(price)))) * 10**decimals
    return (math.ceil(scaled) if up else math.floor(scaled)) / 10**decimals


def _realised_period(row: WelfareRow, low: list[IndividualRow], high: list[IndividualRow],
                     decimals: int) -> RealisedPeriod:
    unit = 10.0 ** -decimals
    p_ph, p_c, c = row.p_ph, row.p_c, row.c
    buy_back, sale = _posted(p_ph, decimals, up=False), _posted(p_c, decimals, up=True)
    d_all = row.d_all_t or 0.0
    debt = row.delta * row.N_t
    q = row.participation if row.participation is not None else (p_ph / row.e if row.e else 0.0)
    users = sum(i.users for i in low)
    sellers = sum(i.participants for i in low)
    debtors = sum(i.participants for i in high)
    owed = sum(i.deficit_owed_t for i in high)
    bought_back = sum(i.sold_t for i in low)
    resold = sum(i.bought_t for i in high)
    covered = sum(i.covered_t for i in high)
    outstanding = sum(i.outstanding_t for i in high)
    paid_out = sum(i.surplus_paid for i in low)
    paid_in = sum(i.purchases_paid for i in high)
    profit = row.profit or 0.0

    realised = paid_in - paid_out - c * bought_back
    at_posted = sale * resold - (buy_back + c) * bought_back
    payments_vs_posted = realised - at_posted
    price_rounding = ((sale - buy_back) - (p_c - p_ph)) * resold
    resold_volume = (p_c - p_ph - c) * resold - profit
    unsold_stock = -(buy_back + c) * (bought_back - resold)

    # Tolerances: what rounding alone can explain.
    bps_error = abs(row.delta - round(row.delta * 10_000) / 10_000) * row.N_t  # δ goes on chain in basis points
    tol_t = GRAMS_PER_USER * (users + sum(i.users for i in high)) + 1e-6 + bps_error
    trades = sellers + debtors
    tol_profit = unit * (2 * max(resold, d_all) + trades) + 0.01 + 2 * tol_t * (p_c + c)
    tol_payments = unit * trades + 0.01 + 1e-6 * (sale + buy_back + c)
    share = sellers / users if users else None
    tol_q = (SAMPLING_SIGMAS * math.sqrt(max(q * (1 - q), 0.0) / users) + 1 / users) if users else None

    diffs: list[str] = []
    matches: list[str] = []
    within = f"±{_tonnes(tol_t)} t"
    for name, value, ref, ref_name in (("owed on chain", owed, debt, "δN"),
                                       ("bought back", bought_back, d_all, "D_all"),
                                       ("resold", resold, d_all, "D_all")):
        if abs(value - ref) <= tol_t:
            matches.append(f"{name} {_tonnes(value)} t vs {ref_name} {_tonnes(ref)} t ({within})")
    if debt > d_all + tol_t and d_all > 0:
        diffs.append(f"δN {_tonnes(debt)} t is more than the low-carbon side's whole surplus DW, so the model "
                     f"caps D_all at {_tonnes(d_all)} t: outside the paper's model, which needs δN ≤ DW")
    if abs(owed - debt) > tol_t:
        diffs.append(f"the debt recorded on chain, {_tonnes(owed)} t, differs from δN {_tonnes(debt)} t by more "
                     f"than rounding to grams and basis points ({_tonnes(tol_t)} t)")
    if abs(bought_back - d_all) > tol_t:
        text = (f"bought back {_tonnes(bought_back)} t, {_rel_pct(bought_back, d_all)} on D_all"
                if d_all else f"bought back {_tonnes(bought_back)} t against D_all 0")
        if sellers and row.D and row.W_t and q:
            mean = bought_back / sellers
            text += (f": {_pct(sellers / row.D)} of D = {_count(row.D)} low-carbon users sold (P_ph/e "
                     f"{_pct(q)}, ×{_ratio(sellers / row.D / q)}), {_ratio(mean, 4)} t each on average against "
                     f"W {_ratio(row.W_t, 4)} t (×{_ratio(mean / row.W_t)})")
        diffs.append(text)
    if resold < d_all - tol_t:
        if outstanding > tol_t:
            diffs.append(f"the platform's stock ran out: debtors owed {_tonnes(owed)} t and bought "
                         f"{_tonnes(resold)} t, leaving {_tonnes(outstanding)} t outstanding")
        elif owed < d_all - tol_t:
            diffs.append(f"debtors owed only {_tonnes(owed)} t on chain and bought {_tonnes(resold)} t, less "
                         f"than D_all {_tonnes(d_all)} t")
        else:
            diffs.append(f"debtors bought {_tonnes(resold)} t, less than D_all {_tonnes(d_all)} t")
    elif resold > d_all + tol_t:
        diffs.append(f"debtors bought {_tonnes(resold)} t, more than D_all {_tonnes(d_all)} t")
    if bought_back - resold > tol_t:
        diffs.append(f"{_tonnes(bought_back - resold)} t bought back and not resold this period: stock costing "
                     f"{_money((buy_back + c) * (bought_back - resold))} at the posted buy-back price + c, which the "
                     "model, where what is bought is sold, does not have")
    elif resold - bought_back > tol_t:
        diffs.append(f"the platform resold {_tonnes(resold - bought_back)} t more than it bought back this period, "
                     "from stock bought earlier (whose cost was counted in its own period)")
    if resold - covered > tol_t:
        diffs.append(f"{_tonnes(resold - covered)} t bought by debtors were not surrendered against deficits")
    volumes_agree = not diffs
    participation_agrees = None if share is None or tol_q is None else abs(share - q) <= tol_q + 1e-12
    if participation_agrees:
        matches.append(f"participation {_pct(share)} vs P_ph/e {_pct(q)} (±{100 * tol_q:.1f} percentage points: "
                       f"{SAMPLING_SIGMAS} standard deviations of the share of {_count(users)} users with θ ≤ "
                       "P_ph/e, plus one user)")
    if participation_agrees is False:
        sigma = math.sqrt(max(q * (1 - q), 0.0) / users)
        away = f"{abs(share - q) / sigma:.1f} standard deviations" if sigma else "a share the model rules out"
        diffs.append(f"{_pct(share)} of low-carbon users sold against P_ph/e {_pct(q)}: {away} of a binomial share "
                     f"of {_count(users)} users, beyond the {SAMPLING_SIGMAS} allowed for sampling θ")
    profit_agrees = abs(realised - profit) <= tol_profit
    if profit_agrees:
        matches.append(f"profit {_money(realised)} vs π {_money(profit)} (±{_money(tol_profit)})")
    if not profit_agrees:
        terms = sorted([("unsold stock", unsold_stock), ("resold volume ≠ D_all", resold_volume),
                        ("posted-price rounding", price_rounding), ("payments vs posted prices", payments_vs_posted)],
                       key=lambda t: -abs(t[1]))
        diffs.append(f"profit off by {_signed(_money, realised - profit)}, beyond the ±{_money(tol_profit)} "
                     "rounding allows: " + ", ".join(f"{name} {_signed(_money, value)}" for name, value in terms))
    if abs(payments_vs_posted) > tol_payments:
        diffs.append(f"payments differ from the posted prices times the volumes by "
                     f"{_signed(_money, payments_vs_posted)}, more than one settlement unit per trade ({_money(tol_payments)}): not rounding")
        profit_agrees = False
        matches = [m for m in matches if not m.startswith("profit ")]
    return RealisedPeriod(
        period=row.period, p_ph=p_ph, p_c=p_c, c=c, buy_back=buy_back, sale=sale, d_all_t=d_all, debt_t=debt,
        W_t=row.W_t, D=row.D, participation=q, profit=profit, user_surplus=row.user_surplus or 0.0, users=users,
        sellers=sellers, debtors=debtors, owed_t=owed, bought_back_t=bought_back, resold_t=resold, covered_t=covered,
        outstanding_t=outstanding, paid_to_sellers=paid_out, paid_by_debtors=paid_in, realised_participation=share,
        realised_profit=realised, payments_vs_posted=payments_vs_posted, price_rounding=price_rounding,
        resold_volume=resold_volume, unsold_stock=unsold_stock, tolerance_t=tol_t, tolerance_participation=tol_q,
        tolerance_profit=tol_profit, volumes_agree=volumes_agree, participation_agrees=participation_agrees,
        profit_agrees=profit_agrees, differences=tuple(diffs), matches=tuple(matches))


def realised_vs_model(results: Results) -> tuple[list[RealisedPeriod], list[str]]:
    """Each period with platform prices, its desk trades against the model (:class:`RealisedPeriod`); and the
    periods left out, with why."""
    compared, left_out = [], []
    for row in sorted(results.welfare, key=lambda r: r.period):
        if not _has_prices(row) or row.d_all_t is None or row.profit is None:
            left_out.append(f"P{row.period} (no platform prices)")
            continue
        rows = results.individuals_of(row.period)
        low = [i for i in rows if i.group == "low_carbon"]
        high = [i for i in rows if i.group == "high_carbon"]
        if not low or not high:
            left_out.append(f"P{row.period} (individuals.csv lacks the "
                            f"{'low-carbon' if not low else 'high-carbon'} row)")
            continue
        compared.append(_realised_period(row, low, high, results.run.settlement_decimals))
    return compared, left_out


def realised_check(results: Results, label: str | None = None) -> PaperCheck:
    """Check 4: the desk's realised profit, participation and volumes against the model's π, P_ph/e and D_all.

    Agrees when, in every period with platform prices, the volumes match D_all within rounding to grams (and δ to
    basis points), participation is within ``SAMPLING_SIGMAS`` standard deviations of P_ph/e (θ is sampled), and
    the realised profit is within what the rounding of posted prices, payments and volumes allows. Users' surplus U
    is not compared: it needs each seller's θ, which the results do not record.
    """
    return _realised_verdict(results, *realised_vs_model(results), label)


def _realised_verdict(results: Results, compared: list[RealisedPeriod], left_out: list[str],
                      label: str | None) -> PaperCheck:
    """realised_check's verdict on what realised_vs_model gave (the report computes that once per run)."""
    claim = REALISED_CLAIM + (f" ({label})" if label else "")
    if not compared:
        why = ("personal trading was off in this run" if not results.run.personal_trading else
               "no period has both platform prices and the individuals' rows")
        return PaperCheck(claim, None, f"{why}: no desk trades to compare with the model"
                          + (f" (left out: {', '.join(left_out)})" if left_out else ""))
    lines = []
    for r in compared:
        text = (f"P{r.period} {'agrees' if r.agrees else 'does not agree'}: profit {_money(r.realised_profit)} vs "
                f"π {_money(r.profit)}{_rel_text(r.realised_profit, r.profit)}")
        if r.matches:
            text += ". Agrees: " + "; ".join(r.matches)
        if r.differences:
            text += ". Differs: " + "; ".join(r.differences)
        lines.append(text)
    agree = sum(r.agrees for r in compared)
    evidence = f"{agree} of {len(compared)} periods agree. " + ". ".join(lines) + "."
    above = [f"P{r.period}" for r in compared if r.bought_back_t > r.d_all_t + r.tolerance_t
             and r.mean_sale_t is not None and r.mean_sale_t > r.W_t * (1 + 1e-6)]
    if above:
        evidence += (f" In {', '.join(above)} each seller sold more than W on average: a seller also cuts its "
                     "emissions in response to P_ph (agents.py), so sellers' surplus is above the low-carbon average "
                     "W that D_all = (P_ph/e)·D·W uses, and the platform, which buys every seller's whole surplus, "
                     "buys more than debtors owe.")
    if left_out:
        evidence += f" Left out: {', '.join(left_out)}."
    evidence += (" Users' surplus U is not compared: it needs each seller's θ, which the results do not record; "
                 "what sellers were paid is compared with the model's P_ph·D_all (= 2U) in the table.")
    return PaperCheck(claim, agree == len(compared), evidence)


# --- summary --------------------------------------------------------------------------------------------------


def summary_lines(results: Results) -> list[str]:
    """A few lines for the CLI at the end of a run (the caller adds the report's path)."""
    run = results.run
    stats = market_stats(results)
    lines = [f"scenario {run.scenario} (seed {run.seed}): {len(results.periods)} of {run.periods} periods in "
             f"{_seconds(run.wall_seconds)} s, {_count(_total(results, 'transactions'))} transactions, "
             f"{_count(_total(results, 'gas'))} gas"]
    vwaps = [market_stats(results, p).vwap for p in results.period_numbers]
    if stats.trades:
        lines.append(f"allowance price {_price(stats.low)} to {_price(stats.high)} per t; VWAP by period "
                     + ", ".join(_price(v) for v in vwaps) + f"; {_tonnes(stats.volume_t)} t traded")
    else:
        lines.append("no allowance trades")
    cap, true, verified = (_total(results, a) for a in ("cap_t", "emissions_t", "verified_t"))
    lines.append(f"enterprise emissions {_tonnes(true)} t (verified {_tonnes(verified)} t) against a cap of "
                 f"{_tonnes(cap)} t" + (f" ({_pct(true / cap)})" if cap else ""))
    if results.periods:
        last = results.periods[-1].period
        comp = _compliance(results, last)
        total = comp.compliant + comp.shortfall + comp.unreported
        lines.append(f"compliance in period {last}: {comp.compliant} of {total} enterprises compliant, "
                     f"{comp.shortfall} short, {comp.unreported} unreported; shortfall over the run "
                     f"{_tonnes(_total(results, 'shortfall_t'))} t")
    if results.individuals:
        with_, without = _consumers(results)
        change = f" ({_signed(_pct, (with_ - without) / without)})" if without else ""
        lines.append(f"consumer emissions {_tonnes(with_)} t with the individual market vs {_tonnes(without)} t "
                     f"without{change}" + ("" if run.personal_trading else " (personal trading off)"))
    return lines


# --- plots ----------------------------------------------------------------------------------------------------

_RUN_STYLES = ({"linestyle": "-", "marker": "o"}, {"linestyle": "--", "marker": "s"})
_HATCHES = (None, "//")
_UP, _DOWN = "#26a69a", "#ef5350"


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigurationError("the sandbox report needs matplotlib: pip install matplotlib") from None
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _legend(ax, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


def _bars_of_period(trades: Sequence[TradeRow], target: int = 12) -> list[Bar]:
    """About ``target`` OHLCV bars over a period's trades, from market_data.ohlcv (time-based, from the first
    trade's timestamp)."""
    ordered = sorted(trades, key=lambda t: (t.block, t.timestamp))
    first, last = ordered[0].timestamp, ordered[-1].timestamp
    interval = max(1, math.ceil((last - first + 1) / target))
    converted = [Trade(time=t.timestamp, price=Decimal(repr(t.price)), quantity=round(t.tonnes * UNITS_PER_TONNE),
                       block_number=t.block) for t in ordered]
    return ohlcv(converted, interval, origin=first)


def _plot_klines(runs: Sequence[Results], labels: Sequence[str], path: Path) -> None:
    from matplotlib.patches import Rectangle

    figure = _figure(11, 4.2 * len(runs))
    axes = figure.subplots(2 * len(runs), 1, gridspec_kw={"height_ratios": [3, 1] * len(runs)}, squeeze=False)
    for index, (run, label) in enumerate(zip(runs, labels)):
        price_ax, volume_ax = axes[2 * index][0], axes[2 * index + 1][0]
        volume_ax.sharex(price_ax)
        x, ticks = 0, []
        for period in run.period_numbers:
            trades = run.trades_of(period)
            start = x
            if trades:
                for bar in _bars_of_period(trades):
                    o, h, lo, c = (float(v) for v in (bar.open, bar.high, bar.low, bar.close))
                    color = _UP if c >= o else _DOWN
                    flat = max(abs(h), 1.0) / 400
                    price_ax.vlines(x, lo, h, color=color, linewidth=1)
                    price_ax.add_patch(Rectangle((x - 0.35, min(o, c)), 0.7, abs(c - o) or flat, facecolor=color,
                                                 edgecolor=color))
                    volume_ax.bar(x, bar.volume / UNITS_PER_TONNE, width=0.7, color=color)
                    x += 1
            else:
                x += 1  # an empty slot for a period without trades
            row = run.period(period)
            if row is not None and row.clearing_price:
                price_ax.hlines(row.clearing_price, start - 0.45, x - 0.55, colors="#555", linestyles=":",
                                linewidth=1.2, label="auction clearing price" if period == run.period_numbers[0] else None)
            ticks.append(((start + x - 1) / 2, f"P{period}" + (f"\nδ={_ratio(row.delta)}" if row else "")
                          + ("" if trades else "\n(no trades)")))
            if period != run.period_numbers[-1]:
                for ax in (price_ax, volume_ax):
                    ax.axvline(x - 0.5, color="#888", linestyle="--", linewidth=0.8)
        price_ax.autoscale_view()
        price_ax.set_xlim(-0.8, max(x, 1) - 0.2)
        price_ax.set_ylabel("price (currency / t)")
        volume_ax.set_ylabel("volume (t)")
        price_ax.set_title(f"{label}: allowance price and volume (K-lines) by period")
        volume_ax.set_xticks([t for t, _ in ticks], [text for _, text in ticks])
        price_ax.tick_params(labelbottom=False)
        price_ax.grid(alpha=0.3)
        volume_ax.grid(alpha=0.3)
        if not run.trades:
            price_ax.text(0.5, 0.5, "no trades in this run", transform=price_ax.transAxes, ha="center")
        elif any(r.clearing_price for r in run.periods):
            _legend(price_ax, loc="upper left", fontsize=8)
    _save(figure, path)


def _run_lines(ax, runs: Sequence[Results], labels: Sequence[str],
               series: Sequence[tuple[str, str, Callable[[Results, int], Any]]]) -> None:
    """Lines over the periods: one colour per series, one line style per run."""
    for r, (run, label) in enumerate(zip(runs, labels)):
        for name, color, get in series:
            xs, ys = [], []
            for p in run.period_numbers:
                y = get(run, p)
                if y is not None:
                    xs.append(p)
                    ys.append(y)
            if xs:
                ax.plot(xs, ys, color=color, label=f"{name} ({label})" if len(runs) > 1 else name,
                        **_RUN_STYLES[r % 2])
    ax.set_xlabel("period")
    periods = sorted({p for run in runs for p in run.period_numbers})
    if periods:
        ax.set_xticks(periods)
    ax.grid(alpha=0.3)


def _plot_emissions(runs, labels, path: Path) -> None:
    figure = _figure(10, 5)
    ax = figure.subplots()
    _run_lines(ax, runs, labels, [
        ("cap", "black", _pfield("cap_t")),
        ("true emissions", "#1f77b4", _pfield("emissions_t")),
        ("reported", "#ff7f0e", _pfield("reported_t")),
        ("verified", "#2ca02c", _pfield("verified_t")),
    ])
    ax.set_ylabel("tonnes CO2e")
    ax.set_title("Enterprises: emissions against the cap")
    _legend(ax, fontsize=8)
    _save(figure, path)


def _plot_consumers(runs, labels, path: Path) -> None:
    figure = _figure(12, 4.2)
    axes = figure.subplots(1, 3)
    for ax, group in zip(axes, ("low_carbon", "high_carbon", None)):
        def with_(run, p, g=group):
            return _consumers(run, p, g)[0] if run.individuals_of(p) else None

        def without(run, p, g=group):
            return _consumers(run, p, g)[1] if run.individuals_of(p) else None
        _run_lines(ax, runs, labels, [("with the individual market", "#2ca02c", with_),
                                      ("without", "#d62728", without)])
        ax.set_title({"low_carbon": "low-carbon users", "high_carbon": "high-carbon users"}.get(group, "all users"))
        ax.set_ylabel("tonnes CO2e")
        if not any(run.individuals for run in runs):
            ax.text(0.5, 0.5, "no individuals' data", transform=ax.transAxes, ha="center")
    _legend(axes[0], fontsize=7)
    figure.suptitle("Consumer emissions with and without the individual market")
    _save(figure, path)


def _plot_welfare(runs, labels, path: Path) -> None:
    figure = _figure(12, 4.8)
    left, right = figure.subplots(1, 2)
    _run_lines(left, runs, labels, [
        ("profit π", "#1f77b4", _wfield("profit")),
        ("users' surplus U", "#ff7f0e", _wfield("user_surplus")),
        ("π + U", "#2ca02c", _wfield("welfare")),
        ("social welfare SW", "#9467bd", _wfield("social_welfare")),
    ])
    left.set_ylabel("currency")
    left.set_title("Welfare terms per period")
    if any(r.welfare for r in runs):
        _legend(left, fontsize=7)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    for r, (run, label) in enumerate(zip(runs, labels)):
        P, k = run.policy("carbon_value"), run.policy("delta_cost_k")
        for i, row in enumerate(sorted(run.welfare, key=lambda w: w.period)):
            if not _has_sw(row):
                continue
            color = colors[i % len(colors)]
            name = f"P{row.period}" + (f" {label}" if len(runs) > 1 else "")
            curve = _sw_curve(row, P, k)
            if curve:
                right.plot(*curve, color=color, linestyle=_RUN_STYLES[r % 2]["linestyle"], linewidth=1, alpha=0.7)
            right.plot([row.delta], [row.social_welfare], color=color, marker=_RUN_STYLES[r % 2]["marker"],
                       linestyle="none", label=f"{name}: SW(δ)")
            right.plot([row.delta_star], [row.welfare_at_delta_star], color=color, marker="*", markersize=12,
                       linestyle="none", label=f"{name}: SW(δ*)")
    right.set_xlabel("offset ratio δ")
    right.set_ylabel("social welfare SW")
    right.set_title("Social welfare SW against δ (stars: at δ*)")
    right.grid(alpha=0.3)
    if any(r.welfare for r in runs):
        _legend(right, fontsize=7)
    else:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no individual market", transform=ax.transAxes, ha="center")
    _save(figure, path)


def _sw_curve(row: WelfareRow, P: Any, k: Any) -> tuple[list[float], list[float]] | None:
    if not (isinstance(P, (int, float)) and isinstance(k, (int, float)) and P > 0 and k > 0
            and row.N_t > 0 and row.D > 0 and row.W_t > 0 and row.e > 0):
        return None
    top = min(1.0, row.D * row.W_t / row.N_t) * (1 - 1e-9)
    xs = [top * i / 60 for i in range(1, 61)]
    try:
        ys = [float(economics.regulator_welfare(x, row.N_t, P, k, row.e, row.D, row.W_t)) for x in xs]
    except InvalidInput:
        return None
    return xs, ys


def _grouped_bars(ax, runs, labels, series, periods) -> None:
    """Bars per period: one colour per series, the runs side by side (the second hatched)."""
    n = len(series) * len(runs)
    width = 0.8 / n
    for r, (run, label) in enumerate(zip(runs, labels)):
        for s, (name, color, get) in enumerate(series):
            offset = (r * len(series) + s) * width - 0.4 + width / 2
            values = [get(run, p) if run.period(p) else 0 for p in periods]
            ax.bar([p + offset for p in periods], [v or 0 for v in values], width=width, color=color,
                   hatch=_HATCHES[r % 2], edgecolor="white" if r == 0 else "black", linewidth=0.3,
                   label=f"{name} ({label})" if len(runs) > 1 else name)
    ax.set_xticks(periods)
    ax.set_xlabel("period")
    ax.grid(alpha=0.3, axis="y")


def _plot_compliance(runs, labels, path: Path) -> None:
    figure = _figure(12, 4.6)
    left, right = figure.subplots(1, 2)
    periods = sorted({p for run in runs for p in run.period_numbers})
    _grouped_bars(left, runs, labels, [
        ("compliant", "#2ca02c", lambda run, p: _compliance(run, p).compliant),
        ("shortfall", "#d62728", lambda run, p: _compliance(run, p).shortfall),
        ("unreported", "#7f7f7f", lambda run, p: _compliance(run, p).unreported),
    ], periods)
    left.set_ylabel("enterprises")
    from matplotlib.ticker import MaxNLocator
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title("Compliance per period (enterprises)")
    _legend(left, fontsize=7)
    _grouped_bars(right, runs, labels, [
        ("surrendered", "#1f77b4", _pfield("surrendered_t")),
        ("offsets", "#17becf", _pfield("offsets_t")),
        ("shortfall", "#d62728", _pfield("shortfall_t")),
    ], periods)
    right.set_ylabel("tonnes CO2e")
    right.set_title("Surrendered, offsets and shortfall")
    _legend(right, fontsize=7)
    _save(figure, path)


def _plot_coin(runs, labels, path: Path) -> None:
    figure = _figure(10, 5)
    ax = figure.subplots()
    periods = sorted({p for run in runs for p in run.period_numbers})
    _grouped_bars(ax, runs, labels, [
        ("rewards", "#2ca02c", lambda run, p: _coin_totals(run, p)[0]),
        ("penalties (negative)", "#d62728", lambda run, p: -_coin_totals(run, p)[1]),
    ], periods)
    for r, (run, label) in enumerate(zip(runs, labels)):
        ps = run.period_numbers
        ax.plot(ps, [_coin_totals(run, p)[2] for p in ps], color="#555", label="debt at period end"
                + (f" ({label})" if len(runs) > 1 else ""), **_RUN_STYLES[r % 2])
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("coin")
    ax.set_title("Rewards, penalties and debts (coin)")
    _legend(ax, fontsize=8)
    _save(figure, path)


# --- the report -----------------------------------------------------------------------------------------------


def _fmt_bool(x: Any) -> str:
    return DASH if x is None else "on" if x else "off"


def _summary_blocks(runs, labels) -> list[Any]:
    def info(get: Callable[[Results], Any]) -> list[str]:
        return [str(v) if v not in (None, "") else DASH for v in (get(run) for run in runs)]

    items = [
        ("scenario", lambda r: r.run.scenario),
        ("description", lambda r: r.run.description),
        ("seed", lambda r: r.run.seed),
        ("periods", lambda r: f"{len(r.periods)} of {r.run.periods}"),
        ("personal trading", lambda r: _fmt_bool(r.run.personal_trading)),
        ("chain id", lambda r: r.run.chain_id),
        ("started", lambda r: r.run.started),
        ("wall time (s)", lambda r: _seconds(r.run.wall_seconds)),
        ("transactions", lambda r: _count(_total(r, "transactions"))),
        ("gas", lambda r: _count(_total(r, "gas"))),
        ("scenario file", lambda r: r.run.scenario_file),
        ("results folder", lambda r: str(r.folder)),
    ]
    table = _Table(["", *(labels if len(runs) > 1 else ["run"])], [[name, *info(get)] for name, get in items])
    per_period = _key_table(runs, labels, _periods_of(runs), ["period"], [
        _Metric("period id", _pfield("period_id"), lambda x: DASH if x is None else str(x), diff=False),
        _Metric("transactions", _pfield("transactions"), _count),
        _Metric("gas", _pfield("gas"), _count),
        _Metric("gas per transaction", lambda r, p: (r.period(p).gas / r.period(p).transactions)
                if r.period(p) and r.period(p).transactions else None, _count),
        _Metric("wall time (s)", _pfield("wall_seconds"), _seconds),
    ], caption="Transactions and gas per period (periods.csv)")
    return [_Heading(2, "Run summary"), table, per_period]


def _market_blocks(runs, labels) -> list[Any]:
    table = _key_table(runs, labels, _periods_of(runs), ["period"], [
        _Metric("δ", _pfield("delta"), _ratio),
        _Metric("cap (t)", _pfield("cap_t"), _tonnes),
        _Metric("free (t)", _pfield("free_allocated_t"), _tonnes),
        _Metric("auctioned (t)", _pfield("auctioned_t"), _tonnes),
        _Metric("clearing price", _pfield("clearing_price"), _price),
        _Metric("trades", _mfield("trades"), _count),
        _Metric("auction volume (t)", _mfield("auction_t"), _tonnes),
        _Metric("continuous volume (t)", _mfield("continuous_t"), _tonnes),
        _Metric("volume (t)", _mfield("volume_t"), _tonnes),
        _Metric("VWAP", _mfield("vwap"), _price),
        _Metric("open", _mfield("open"), _price),
        _Metric("high", _mfield("high"), _price),
        _Metric("low", _mfield("low"), _price),
        _Metric("close", _mfield("close"), _price),
    ], caption="Allowance market per period: volumes, VWAP (Σ price·tonnes / Σ tonnes) and open/high/low/close "
               "from trades.csv; the clearing price from periods.csv")
    return [_Heading(2, "Allowance market per period"), table,
            _Para("K-lines: each period's trades in about a dozen time bars (market_data.ohlcv), periods "
                  "separated by dashed lines; the dotted line is the period's auction clearing price."),
            _Image("klines.png", "price and volume K-lines per period")]


def _emission_blocks(runs, labels) -> list[Any]:
    table = _key_table(runs, labels, _periods_of(runs), ["period"], [
        _Metric("cap (t)", _pfield("cap_t"), _tonnes),
        _Metric("baseline (t)", _pfield("baseline_t"), _tonnes),
        _Metric("abated (t)", _pfield("abated_t"), _tonnes),
        _Metric("true (t)", _pfield("emissions_t"), _tonnes),
        _Metric("reported (t)", _pfield("reported_t"), _tonnes),
        _Metric("verified (t)", _pfield("verified_t"), _tonnes),
        _Metric("true / cap", lambda r, p: r.period(p).emissions_t / r.period(p).cap_t
                if r.period(p) and r.period(p).cap_t else None, _pct),
        _Metric("unreported share", lambda r, p: 1 - r.period(p).reported_t / r.period(p).emissions_t
                if r.period(p) and r.period(p).emissions_t else None, _pct),
    ], caption="Enterprises' emissions against the cap (periods.csv)")
    return [_Heading(2, "Emissions against the cap"), table, _Image("emissions.png", "emissions against cap")]


def _compliance_blocks(runs, labels) -> list[Any]:
    blocks: list[Any] = [_Heading(2, "Compliance")]
    blocks.append(_key_table(runs, labels, _periods_of(runs), ["period"], [
        _Metric("compliant", lambda r, p: _compliance(r, p).compliant if r.period(p) else None, _count),
        _Metric("shortfall", lambda r, p: _compliance(r, p).shortfall if r.period(p) else None, _count),
        _Metric("unreported", lambda r, p: _compliance(r, p).unreported if r.period(p) else None, _count),
        _Metric("surrendered (t)", _pfield("surrendered_t"), _tonnes),
        _Metric("offsets (t)", _pfield("offsets_t"), _tonnes),
        _Metric("shortfall (t)", _pfield("shortfall_t"), _tonnes),
    ], caption="Enterprises by state (enterprises.csv) and tonnes (periods.csv)"))
    blocks.append(_Image("compliance.png", "compliance per period"))
    for run, label in zip(runs, labels):
        if not run.periods:
            continue
        last = run.periods[-1].period
        rows = sorted(run.enterprises_of(last), key=lambda e: (e.group, e.enterprise))
        title = f"Enterprises in the last period (period {last})" + (f": {label}" if len(runs) > 1 else "")
        blocks.append(_Heading(3, title))
        blocks.append(_Table(
            ["enterprise", "group", "region", "emissions (t)", "reported (t)", "verified (t)", "allocated (t)",
             "bought (t)", "sold (t)", "surrendered (t)", "shortfall (t)", "state", "coin Δ", "coin balance",
             "coin debt", "verifier"],
            [[e.enterprise, e.group, str(e.region), _tonnes(e.emissions_t), _tonnes(e.reported_t),
              _tonnes(e.verified_t), _tonnes(e.allocated_t), _tonnes(e.bought_t), _tonnes(e.sold_t),
              _tonnes(e.surrendered_t), _tonnes(e.shortfall_t), e.state, _money(e.coin_delta), _money(e.coin_balance),
              _money(e.coin_debt), (e.verifier or DASH) + ("" if e.verifier_honest is not False else " (dishonest)")]
             for e in rows]))
    return blocks


def _coin_blocks(runs, labels) -> list[Any]:
    blocks: list[Any] = [_Heading(2, "Rewards and penalties (coin)")]
    blocks.append(_key_table(runs, labels, _periods_of(runs), ["period"], [
        _Metric("events", lambda r, p: _coin_totals(r, p)[3] if r.period(p) else None, _count),
        _Metric("rewards", lambda r, p: _coin_totals(r, p)[0] if r.period(p) else None, _money),
        _Metric("penalties", lambda r, p: _coin_totals(r, p)[1] if r.period(p) else None, _money),
        _Metric("net", lambda r, p: _coin_totals(r, p)[0] - _coin_totals(r, p)[1] if r.period(p) else None, _money),
        _Metric("debt at period end", lambda r, p: _coin_totals(r, p)[2] if r.period(p) else None, _money),
    ], caption="coin.csv: rewards (+) and penalties (−); debts from enterprises.csv"))
    rules = sorted({c.rule for run in runs for c in run.coin})
    if rules:
        keys = [(rule,) for rule in rules]
        blocks.append(_key_table(runs, labels, keys, ["rule"], [
            _Metric("events", lambda r, rule: sum(1 for c in r.coin if c.rule == rule), _count),
            _Metric("total (coin)", lambda r, rule: sum(c.amount for c in r.coin if c.rule == rule), _money),
        ], caption="By rule, over the run"))
    blocks.append(_Image("coin.png", "rewards, penalties and debts"))
    return blocks


def _individual_blocks(runs, labels) -> list[Any]:
    blocks: list[Any] = [_Heading(2, "Individuals' market")]
    keys = sorted({(i.period, i.group) for run in runs for i in run.individuals})
    keys += [(p, "all") for p in sorted({k[0] for k in keys})]
    keys.sort(key=lambda k: (k[0], {"low_carbon": 0, "high_carbon": 1}.get(k[1], 2)))

    def rows_of(run: Results, key: tuple) -> list[IndividualRow]:
        period, group = key
        return [i for i in run.individuals_of(period) if group in ("all", i.group)]

    def total(attr: str) -> Callable[[Results, tuple], Any]:
        def get(run: Results, key: tuple) -> Any:
            rows = rows_of(run, key)
            return sum(getattr(i, attr) for i in rows) if rows else None
        return get

    def change(run: Results, key: tuple) -> Any:
        rows = rows_of(run, key)
        without = sum(i.emissions_without_market_t for i in rows)
        return (sum(i.emissions_with_market_t for i in rows) - without) / without if rows and without else None

    if not keys:
        blocks.append(_Para("individuals.csv has no rows."))
        return blocks
    blocks.append(_key_table(runs, labels, keys, ["period", "group"], [
        _Metric("users", total("users"), _count),
        _Metric("participants", total("participants"), _count),
        _Metric("emissions with market (t)", total("emissions_with_market_t"), _tonnes),
        _Metric("without market (t)", total("emissions_without_market_t"), _tonnes),
        _Metric("change", change, lambda x: _signed(_pct, x), diff=False),
        _Metric("credits issued (t)", total("credits_issued_t"), _tonnes),
        _Metric("deficit owed (t)", total("deficit_owed_t"), _tonnes),
        _Metric("sold (t)", total("sold_t"), _tonnes),
        _Metric("bought (t)", total("bought_t"), _tonnes),
        _Metric("covered (t)", total("covered_t"), _tonnes),
        _Metric("outstanding (t)", total("outstanding_t"), _tonnes),
        _Metric("surplus paid", total("surplus_paid"), _money),
        _Metric("purchases paid", total("purchases_paid"), _money),
    ], caption="individuals.csv by period and group (all = both groups)"))
    blocks.append(_Image("consumers.png", "consumer emissions with and without the individual market"))
    return blocks


def _welfare_blocks(runs, labels) -> list[Any]:
    blocks: list[Any] = [_Heading(2, "Welfare")]
    if not any(run.welfare for run in runs):
        blocks.append(_Para("welfare.csv has no rows."))
    else:
        blocks.append(_key_table(runs, labels, _periods_of(runs), ["period"], [
            _Metric("δ", _wfield("delta"), _ratio),
            _Metric("δ*", _wfield("delta_star"), _ratio),
            _Metric("N (t)", _wfield("N_t"), _tonnes),
            _Metric("D", _wfield("D"), _count),
            _Metric("W (t)", _wfield("W_t"), lambda x: _ratio(x, 4)),
            _Metric("e", _wfield("e"), _price),
            _Metric("c", _wfield("c"), _price),
            _Metric("p_ph", _wfield("p_ph"), _price),
            _Metric("p_c", _wfield("p_c"), _price),
            _Metric("D_all (t)", _wfield("d_all_t"), _tonnes),
            _Metric("participation", _wfield("participation"), _pct),
            _Metric("π", _wfield("profit"), _money),
            _Metric("U", _wfield("user_surplus"), _money),
            _Metric("π + U", _wfield("welfare"), _money),
            _Metric("SW(δ)", _wfield("social_welfare"), _money),
            _Metric("SW(δ*)", _wfield("welfare_at_delta_star"), _money),
            _Metric("SW / SW(δ*)", lambda r, p: _sw_star_ratio(r.welfare_of(p)) if r.welfare_of(p) else None, _pct,
                    diff=False),
        ], caption="welfare.csv: the platform's prices and welfare per period"))
    blocks.append(_Para("Left: the welfare terms per period. Right: social welfare against δ, a marker at each "
                        "period's δ and a star at its δ*; the curves are SW(δ) = P·N·δ − κδ²/2 for the period's N, "
                        "D, W and e, drawn when run.json's scenario has P (policy.carbon_value) and k "
                        "(policy.delta_cost_k)."))
    blocks.append(_Image("welfare.png", "welfare terms and social welfare against delta"))
    return blocks


def _paper_blocks(checks: Sequence[PaperCheck]) -> list[Any]:
    agree = [c for c in checks if c.agrees is True]
    disagree = [c for c in checks if c.agrees is False]
    undecided = [c for c in checks if c.agrees is None]
    summary = (f"Of {len(checks)} checks, the simulation agrees with the seed paper on {len(agree)}, does not agree "
               f"on {len(disagree)}, and {len(undecided)} cannot be decided from these data.")
    if disagree:
        summary += " It does not agree on: " + "; ".join(c.claim for c in disagree) + "."
    if undecided:
        summary += " Undecided: " + "; ".join(c.claim for c in undecided) + "."
    return [_Heading(2, "Comparison with the seed paper"),
            _Para("The seed paper (Wang, Zhao, Chen, Tang, Sustainability 2024, 16(13), 5810) claims that "
                  "individual-level trading without subsidies lowers consumers' total emissions; its pricing "
                  "model (P_ph = δNe/(DW), P_c = 2δNe/(DW) + c) makes prices rise with demand Nδ; Proposition 2, "
                  "as rebuilt in docs/economics.md, gives the regulator's welfare-maximising δ*. Each claim is "
                  "checked on the simulated market below."),
            _Table(["claim", "verdict", "evidence"], [[c.claim, _verdict(c), c.evidence] for c in checks]),
            _Para(summary)]


def _realised_blocks(runs: Sequence[Results], labels: Sequence[str]) -> list[Any]:
    """Check 4's tables: per run, the desk's volumes, participation, sellers' revenue and profit against the model,
    what makes up the profit's difference, and the verdict."""
    blocks: list[Any] = [
        _Heading(3, "4. Realised desk trades against the model"),
        _Para("Check 3a only confirms that the runner applies the closed form consistently. This check compares what "
              "the chain executed on the platform's desk (individuals.csv) with the model's equilibrium "
              "(welfare.csv). Realised profit = paid by debtors (purchases_paid) − paid to sellers (surplus_paid) − "
              "c × tonnes bought back: the model's π = (P_c − P_ph − c)·D_all charges c on each tonne of D_all, the "
              "surplus it buys, which is also what it sells because its market clears. Stock bought and not resold "
              "in the period is counted at its cost, with no revenue. Posted prices are the model's rounded to a "
              "settlement unit (buy-back down, sale up)."),
        _Para(f"Tolerances, for what rounding alone can explain: volumes within {GRAMS_PER_USER * 1e6:g} g per user "
              "(surpluses and deficits rounded to grams, debts at the offset ratio rounded down to a gram) plus δ's "
              "rounding to basis points; profit within two settlement units per tonne (the posted spread), one per "
              "trade (each payment is rounded) and one cent per payment total (the CSV), plus the volume tolerance "
              f"at P_c + c per tonne. Participation is P_ph/e only in expectation, since θ is drawn: the share of "
              f"low-carbon users who sold must be within {SAMPLING_SIGMAS} standard deviations of a binomial share, "
              "plus one user. Users' surplus U cannot be computed from the results: it needs each seller's θ, which "
              "is not recorded. What sellers were paid is compared with the model's P_ph·D_all, which is 2U in the "
              "model."),
    ]
    for run, label in zip(runs, labels):
        compared, left_out = realised_vs_model(run)
        suffix = f" ({label})" if len(runs) > 1 else ""
        if compared:
            blocks.append(_Table(
                ["period", "D_all (t)", "owed on chain (t)", "bought back (t)", "bought back vs D_all", "resold (t)",
                 "resold vs D_all", "unsold (t)", "covered (t)", "tolerance (t)"],
                [[f"P{r.period}", _tonnes(r.d_all_t), _tonnes(r.owed_t), _tonnes(r.bought_back_t),
                  _rel_pct(r.bought_back_t, r.d_all_t), _tonnes(r.resold_t),
                  _rel_pct(r.resold_t, r.d_all_t), _tonnes(r.bought_back_t - r.resold_t),
                  _tonnes(r.covered_t), _tonnes(r.tolerance_t)] for r in compared],
                caption=f"Volumes: the model buys D_all and sells all of it{suffix}"))
            blocks.append(_Table(
                ["period", "P_ph/e", "sellers / users", "difference (points)", "tolerance (points)",
                 "sold each (t)", "W (t)",
                 "paid to sellers", "P_ph·D_all (= 2U)", "vs model", "U (model)"],
                [[f"P{r.period}", _pct(r.participation), _pct(r.realised_participation),
                  _pct_points(None if r.realised_participation is None else
                              r.realised_participation - r.participation),
                  DASH if r.tolerance_participation is None else f"±{100 * r.tolerance_participation:.1f}",
                  _ratio(r.mean_sale_t, 4), _ratio(r.W_t, 4), _money(r.paid_to_sellers),
                  _money(r.p_ph * r.d_all_t), _rel_pct(r.paid_to_sellers, r.p_ph * r.d_all_t),
                  _money(r.user_surplus)] for r in compared],
                caption=f"Participation and the sellers' side; realised U needs each seller's θ, not recorded{suffix}"))
            blocks.append(_Table(
                ["period", "posted p_ph", "posted p_c", "paid by debtors", "paid to sellers", "c × bought back",
                 "realised profit", "π (model)", "difference", "relative", "tolerance", "verdict"],
                [[f"P{r.period}", _price(r.buy_back), _price(r.sale), _money(r.paid_by_debtors),
                  _money(r.paid_to_sellers), _money(r.c * r.bought_back_t), _money(r.realised_profit),
                  _money(r.profit), _signed(_money, r.realised_profit - r.profit),
                  _rel_pct(r.realised_profit, r.profit), f"±{_money(r.tolerance_profit)}",
                  "agrees" if r.agrees else "does not agree"] for r in compared],
                caption=f"The platform's profit (the verdict covers volumes, participation and profit){suffix}"))
            blocks.append(_Table(
                ["period", "payments vs posted prices", "posted-price rounding", "resold volume ≠ D_all",
                 "unsold stock", "realised profit − π"],
                [[f"P{r.period}", _signed(_money, r.payments_vs_posted), _signed(_money, r.price_rounding),
                  _signed(_money, r.resold_volume), _signed(_money, r.unsold_stock),
                  _signed(_money, r.realised_profit - r.profit)] for r in compared],
                caption="What makes up the profit's difference: payments − posted prices × volumes; (posted spread − "
                        "model spread) × resold; (P_c − P_ph − c) × resold − π; −(posted p_ph + c) × (bought back − "
                        f"resold){suffix}"))
        check = _realised_verdict(run, compared, left_out, label if len(runs) > 1 else None)
        blocks.append(_Table(["claim", "verdict", "evidence"], [[check.claim, _verdict(check), check.evidence]]))
        if not compared and left_out:
            blocks.append(_Para(f"Left out{suffix}: {', '.join(left_out)}."))
    return blocks


def _json(value: Any) -> str:
    return DASH if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): config}


def _differs_blocks(a: Results, b: Results, labels: Sequence[str]) -> list[Any]:
    la, lb = labels

    def avg_price(run: Results) -> float | None:
        return market_stats(run).vwap

    def last_compliant(run: Results) -> float | None:
        return _compliance(run, run.periods[-1].period).compliant if run.periods else None

    def sum_welfare(attr: str) -> Callable[[Results], float | None]:
        def get(run: Results) -> float | None:
            values = [getattr(w, attr) for w in run.welfare if getattr(w, attr) is not None]
            return sum(values) if values else None
        return get

    figures: list[tuple[str, Callable[[Results], Any], Callable[[Any], str]]] = [
        ("consumer emissions with the market (t)", lambda r: _consumers(r)[0] if r.individuals else None, _tonnes),
        ("consumer emissions without the market (t)", lambda r: _consumers(r)[1] if r.individuals else None,
         _tonnes),
        ("average allowance price (VWAP)", avg_price, _price),
        ("allowances traded (t)", lambda r: market_stats(r).volume_t, _tonnes),
        ("enterprise emissions, true (t)", lambda r: _total(r, "emissions_t"), _tonnes),
        ("enterprise emissions, verified (t)", lambda r: _total(r, "verified_t"), _tonnes),
        ("cap (t)", lambda r: _total(r, "cap_t"), _tonnes),
        ("shortfall (t)", lambda r: _total(r, "shortfall_t"), _tonnes),
        ("compliant enterprises, last period", last_compliant, _count),
        ("π + U, all periods", sum_welfare("welfare"), _money),
        ("social welfare SW, all periods", sum_welfare("social_welfare"), _money),
        ("coin rewards", lambda r: sum(c.amount for c in r.coin if c.amount > 0), _money),
        ("coin penalties", lambda r: -sum(c.amount for c in r.coin if c.amount < 0), _money),
        ("transactions", lambda r: _total(r, "transactions"), _count),
        ("gas", lambda r: _total(r, "gas"), _count),
    ]
    rows, bullets = [], []
    for name, get, fmt in figures:
        va, vb = get(a), get(b)
        both = va is not None and vb is not None
        rows.append([name, fmt(va), fmt(vb), _signed(fmt, vb - va) if both else DASH,
                     _signed(_pct, (vb - va) / va) if both and va else DASH])
    key = {"consumer emissions with the market (t)", "average allowance price (VWAP)",
           "social welfare SW, all periods", "compliant enterprises, last period", "shortfall (t)"}
    for name, get, fmt in figures:
        if name not in key:
            continue
        va, vb = get(a), get(b)
        if va is None or vb is None:
            bullets.append(f"{name}: {fmt(va)} ({la}) vs {fmt(vb)} ({lb}); not comparable")
        elif abs(vb - va) <= 1e-9 * max(1.0, abs(va)):
            bullets.append(f"{name}: the same in both runs ({fmt(va)})")
        else:
            rel = f", {_signed(_pct, (vb - va) / va)}" if va else ""
            bullets.append(f"{name}: {fmt(va)} ({la}) vs {fmt(vb)} ({lb}), {lb} {'higher' if vb > va else 'lower'} "
                           f"by {fmt(abs(vb - va))}{rel}")
    fa, fb = _flatten(a.run.config), _flatten(b.run.config)
    changed = [f"{k}: {_json(fa.get(k))} → {_json(fb.get(k))}" for k in sorted(set(fa) | set(fb))
               if fa.get(k) != fb.get(k) and k not in ("name", "description")]
    if a.run.seed != b.run.seed and not any(c.startswith("seed:") for c in changed):
        changed.insert(0, f"seed: {a.run.seed} → {b.run.seed}")
    if a.run.personal_trading != b.run.personal_trading and not any("personal_trading" in c for c in changed):
        changed.insert(0, f"personal trading: {_fmt_bool(a.run.personal_trading)} → "
                          f"{_fmt_bool(b.run.personal_trading)}")
    blocks: list[Any] = [_Heading(2, "What differs"),
                         _Para(f"Totals over each run's periods; the difference is {lb} − {la}."),
                         _Table(["figure", la, lb, "difference", "relative"], rows),
                         _Bullets(bullets)]
    blocks.append(_Para("Scenario settings that differ (run.json): " + ("; ".join(changed) if changed else
                        "none recorded (run.json carries no scenario dict, or the scenarios are identical).")))
    return blocks


def _consistency_notes(run: Results, label: str) -> list[str]:
    """Where the runner's own summaries disagree with its detail files (a hint of a runner bug)."""
    notes = []
    for row in run.periods:
        stats = market_stats(run, row.period)
        if row.vwap is not None and stats.vwap is not None and abs(row.vwap - stats.vwap) > 0.01:
            notes.append(f"{label} P{row.period}: periods.csv vwap {_price(row.vwap)}, trades.csv gives "
                         f"{_price(stats.vwap)}")
        for name, mine, theirs in (("auction_volume_t", stats.auction_t, row.auction_volume_t),
                                   ("continuous_volume_t", stats.continuous_t, row.continuous_volume_t)):
            if abs(mine - theirs) > 1e-6:
                notes.append(f"{label} P{row.period}: periods.csv {name} {_tonnes(theirs)}, trades.csv gives "
                             f"{_tonnes(mine)}")
        comp = _compliance(run, row.period)
        if run.enterprises_of(row.period) and (row.compliant != comp.compliant or row.short_enterprises not in
                                               (comp.shortfall, comp.shortfall + comp.unreported)):
            notes.append(f"{label} P{row.period}: periods.csv has {row.compliant} compliant and "
                         f"{row.short_enterprises} short, enterprises.csv {comp.compliant} compliant, "
                         f"{comp.shortfall} short and {comp.unreported} unreported")
        w = run.welfare_of(row.period)
        if w is not None and abs(w.delta - row.delta) > 1e-9:
            notes.append(f"{label} P{row.period}: δ is {w.delta} in welfare.csv and {row.delta} in periods.csv")
    if len(run.periods) != run.run.periods:
        notes.append(f"{label}: run.json says {run.run.periods} periods, periods.csv has {len(run.periods)}")
    return notes


def write_report(folder: str | Path, *, compare: str | Path | None = None, out: Path | None = None) -> Path:
    """Write report.md, report.html and the PNG plots into ``folder`` (or ``out``); returns report.md's path.

    With ``compare`` (another results folder) the report shows both runs side by side: tables with a column
    per run, plots overlaying both (labelled by scenario name), a "What differs" section, and the seed paper's
    claims checked across the two runs as well. A comparison written without ``out`` goes into the first run's
    folder and replaces its single-run report there (same file names): pass ``out`` to keep both.
    """
    results = load_results(folder)
    other = load_results(compare) if compare is not None else None
    runs = [results] if other is None else [results, other]
    labels = _labels(runs)
    target = Path(out) if out is not None else results.folder
    target.mkdir(parents=True, exist_ok=True)

    _plot_klines(runs, labels, target / "klines.png")
    _plot_emissions(runs, labels, target / "emissions.png")
    _plot_consumers(runs, labels, target / "consumers.png")
    _plot_welfare(runs, labels, target / "welfare.png")
    _plot_compliance(runs, labels, target / "compliance.png")
    _plot_coin(runs, labels, target / "coin.png")

    title = (f"Policy sandbox: {labels[0]}" if other is None else f"Policy sandbox: {labels[0]} vs {labels[1]}")
    blocks: list[Any] = [_Heading(1, title)]
    lines = summary_lines(results) if other is None else [f"{label}: {line}" for run, label in zip(runs, labels)
                                                          for line in summary_lines(run)]
    blocks.append(_Bullets(lines))
    if other is not None:
        blocks += _differs_blocks(results, other, labels)
    blocks += _summary_blocks(runs, labels)
    blocks += _market_blocks(runs, labels)
    blocks += _emission_blocks(runs, labels)
    blocks += _compliance_blocks(runs, labels)
    blocks += _coin_blocks(runs, labels)
    blocks += _individual_blocks(runs, labels)
    blocks += _welfare_blocks(runs, labels)
    blocks += _paper_blocks(paper_checks(results, other))
    blocks += _realised_blocks(runs, labels)
    notes = [n for run, label in zip(runs, labels) for n in _consistency_notes(run, label)]
    blocks += [_Heading(2, "Data checks"),
               _Bullets(notes) if notes else _Para("The summaries in periods.csv agree with trades.csv and "
                                                   "enterprises.csv, and δ agrees between periods.csv and welfare.csv.")]

    md_path = target / "report.md"
    md_path.write_text(_to_markdown(blocks), encoding="utf-8")
    (target / "report.html").write_text(_to_html(blocks, title), encoding="utf-8")
    return md_path
