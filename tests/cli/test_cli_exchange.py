"""The exchange commands of `carbon` (market, deposit/withdraw/balance, order, clear, claim, book), run
in-process against this module's fresh deployment (the `market` fixture), reached on anvil.

The settlement token is the deployment's DCNY (2 decimals); markets trade 1-tonne lots at a tick of 1.00
DCNY per tonne, so a price of 82.50 DCNY/t is a midpoint on a half tick.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli_runner

from carbon_sdk.exchange import SessionPhase
from carbon_sdk.units import tonnes


@pytest.fixture(scope="module")
def manifest_path(market, tmp_path_factory) -> Path:
    return market.manifest.save(tmp_path_factory.mktemp("cli-exchange") / "manifest.json")


@pytest.fixture
def carbon(market, manifest_path):
    """``carbon(*args, key=client, ok=True)``: run the CLI, check its exit code, return its output."""
    return cli_runner(market, manifest_path)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def traders(market, sellers: int, buyers: int):
    """A period whose allowances the sellers hold (1,000 t each) and buyers with 100,000.00 DCNY each."""
    period = market.open_period(tonnes(100_000))
    out_sellers = [market.enterprise() for _ in range(sellers)]
    out_buyers = [market.enterprise() for _ in range(buyers)]
    market.regulator.allowances.allocate(period.id, {s.address: tonnes(1_000) for s in out_sellers})
    platform = market.platform()
    for b in out_buyers:
        platform.settlement.issue(b.address, 10_000_000, fiat_reference="wire")
    return period, platform, out_sellers, out_buyers


def state(market, market_id: int, accounts) -> dict:
    """Everything an order command may change: the session, every order, the accounts' free balances."""
    x = market.regulator.exchange
    m = x.market(market_id)
    return {"market": m, "session": x.session(market_id), "orders": x.orders(market_id),
            "free": {(a, tok): x.free_balance(tok, a) for a in accounts for tok in (m.asset, m.settlement)}}


# ---------------------------------------------------------------- a whole session through the CLI


def test_a_session_through_the_cli(carbon, market, tmp_path):
    period, platform, (seller, seller2), (buyer, buyer2) = traders(market, 2, 2)
    x = market.regulator.exchange
    dcny = market.regulator.settlement.contract.address

    out = carbon("market", "create", f"allowance:{period.id}", "settlement", "--lot-size", "1", "--tick-size",
                 "1.00", "--buyer-fee-bps", "10", "--seller-fee-bps", "10", key=platform)
    m = x.contract.call("marketCount")
    assert f"market {m}" in out and "1.00 DCNY/t" in out and "buyer 10 bps, seller 10 bps" in out
    assert "midpoint" in out and "none yet" in out and platform.address in out
    market_info = x.market(m)
    assert (market_info.asset, market_info.settlement) == (period.allowance, dcny)
    assert str(m) in carbon("market", "list") and "DCNY" in carbon("market", "show", m)

    out = carbon("market", "open-session", m, "--call-deadline", "+100", "--closes-at", "+100000", key=platform)
    assert "call" in out and "auction cleared" in out
    session = x.session(m)
    assert session.phase is SessionPhase.CALL and 90 < session.call_deadline - market.now() <= 100

    # Deposits: carbon in tonnes, money in DCNY.
    for s in (seller, seller2):
        out = carbon("deposit", f"allowance:{period.id}", "500", key=s)
        assert "deposited 500.000000 t of CEA-" in out and "free in the exchange 500.000000 t" in out
    for b in (buyer, buyer2):
        out = carbon("deposit", "settlement", "20000.00", key=b)
        assert "deposited 20,000.00 DCNY" in out
    out = carbon("balance", key=buyer)
    assert "20,000.00 DCNY" in out and "80,000.00 DCNY" in out and "0.000000 t" in out
    assert x.free_balance(dcny, buyer.address) == 2_000_000

    # The call: orders from CSV files (a header, a comment, a blank line are fine).
    files = {seller: "side,lots,price\nask,100,80.00\nask,50,82\n", seller2: "# seller 2\n\nASK,30,79.00\n",
             buyer: "bid,60,85.00\nbid,40,81.00\nbid,20,78.00\n", buyer2: "bid,50,83.00\n"}
    for i, (who, text) in enumerate(files.items()):
        rows = sum(1 for line in text.splitlines() if line[:1].lower() in ("a", "b"))
        out = carbon("order", "batch", m, "--csv", write(tmp_path / f"orders{i}.csv", text), key=who)
        assert "placing" in out and f"{rows}/{rows}" in out and f"placed {rows} order" in out
        assert f"{rows} rest in the book" in out
    out = carbon("order", "list", m)
    assert "7 orders" in out and out.count("open") >= 7
    out = carbon("order", "list", m, "--owner", buyer.address)
    assert "3 orders" in out and buyer2.address not in out
    out = carbon("book", m)  # crossed during the call: nothing matches before the deadline
    assert "best bid 85.00 DCNY/t, best ask 79.00 DCNY/t, spread -6.00 DCNY/t (crossed" in out

    # Clearing after the deadline, two matching steps per transaction.
    market.mine_at(session.call_deadline + 1)
    out = carbon("clear", m, "--max-steps", "2", key=platform)
    transactions = out.count("clearing transaction")
    assert transactions >= 3 and "auction cleared" in out and "more to match" in out
    assert f"4 pairs matched, 0 self-trades cancelled, {transactions} transactions" in out
    assert "now continuous" in out and "uniform" not in out
    fills = x.fills(m)
    assert [(f.lots, f.price2) for f in fills] == [(30, 164), (30, 165), (50, 163), (20, 161)]  # half ticks
    out = carbon("market", "session", m)
    assert "continuous" in out and "yes" in out

    # Claims: the four closed orders (two bids, two asks); the open ones wait.
    out = carbon("claim", m)
    assert "claiming" in out and "4/4" in out and "4 orders settled" in out
    # 110 t to the buyers; the sellers' 10,620.00 less fees and the bids' unused locks (limit above the price)
    assert "paid 110.000000 t and 10,849.63 DCNY, fees 19.62 DCNY" in out
    # seller sold 30 @ 82.50 + 50 @ 81.50 + 20 @ 80.50 = 8,160.00, less 10 bps (8.16)
    assert x.free_balance(dcny, seller.address) == 816_000 - 816
    assert x.free_balance(period.allowance, buyer.address) == tonnes(60)
    assert x.free_balance(period.allowance, buyer2.address) == tonnes(50)
    out = carbon("claim", m)
    assert "nothing to claim now" in out

    # Continuous trading, two minutes later (a second K-line bar): takers filled at once, a market order's
    # remainder back, a resting ask.
    market.mine_at(market.now() + 120)
    out = carbon("order", "place", m, "bid", 10, "82.00", key=buyer2)
    assert "filled 10 lots for 820.00 DCNY, settled at once" in out
    carbon("deposit", f"allowance:{period.id}", "100", key=seller2)
    out = carbon("order", "place", m, "ask", 5, "81", key=seller2)
    assert "filled 5 lots for 405.00 DCNY, settled at once" in out
    out = carbon("order", "place", m, "bid", 50, "84.00", "--market-order", key=buyer2)
    assert "market bid of 50 lots" in out and "filled 40 lots for 3,280.00 DCNY" in out
    assert "10 lots came back unfilled" in out
    out = carbon("order", "place", m, "ask", 10, "90.00", key=seller)
    assert "10 lots rest in the book as order" in out
    resting = int(out.split("as order ")[1].split()[0])
    out = carbon("order", "show", resting)
    assert "90.00 DCNY/t (tick 90)" in out and "queue index" in out and seller.address in out

    out = carbon("book", "depth", m)
    assert "best bid 81.00 DCNY/t, best ask 90.00 DCNY/t, spread 9.00 DCNY/t, midpoint 85.50 DCNY/t" in out
    book = x.depth(m)
    assert [(b.quantity, b.cumulative) for b in book.bids] == [(15, 15), (20, 35)]
    assert [(a.quantity, a.cumulative) for a in book.asks] == [(10, 10)]
    assert "35.000000" in out  # the bids' cumulative tonnes

    # The partly filled bid: cancelled, then claimed by its id.
    bid81 = next(o for o in x.orders(m, owner=buyer.address) if o.tick == 81)
    out = carbon("order", "cancel", bid81.id, key=buyer)
    assert f"cancelled order {bid81.id}: 15 open lots" in out
    out = carbon("claim", m, bid81.id, key=seller)  # anyone may claim
    assert "1/1" in out and "1 order settled" in out and x.order(bid81.id).claimed
    assert x.free_balance(period.allowance, buyer.address) == tonnes(60 + 25)  # 20 in the auction + 5 after

    # Market data: bars of a minute and the chart.
    out = carbon("book", "kline", m, "--interval", 60, "--png", tmp_path / "klines.png")
    bars = x.ohlcv(m, 60)
    assert len(bars) >= 2 and f"{len(bars)} bars of 60 s" in out and "candlestick chart written" in out
    assert sum(b.volume for b in bars) == tonnes(130 + 10 + 5 + 40) and sum(b.trades for b in bars) == 7
    assert "82.50" in out and "80.50" in out and "prices in DCNY/t" in out
    assert (tmp_path / "klines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Fees, collected into the operator's deposit; a withdrawal out of the exchange.
    accrued = x.market(m).fees_accrued
    assert accrued > 0 and "accrued" in carbon("market", "fees", m)
    out = carbon("market", "fees", m, "--collect", key=buyer)
    assert "collected" in out and x.free_balance(dcny, platform.address) == accrued
    out = carbon("withdraw", f"allowance:{period.id}", "60", key=buyer)
    assert "withdrew 60.000000 t" in out
    assert market.regulator.allowances.balance(period.allowance, buyer.address) == tonnes(60)


# ---------------------------------------------------------------- errors: one line, nothing changed


def test_refusals_exit_non_zero_name_the_error_and_change_nothing(carbon, market, tmp_path):
    period, platform, (seller,), (buyer, other) = traders(market, 1, 2)
    x = market.regulator.exchange
    out = carbon("market", "create", f"allowance:{period.id}", "settlement", "--lot-size", "1", "--tick-size",
                 "1.00", "--pricing", "uniform", key=platform)
    m = x.contract.call("marketCount")
    assert "uniform" in out
    carbon("market", "open-session", m, "--call-deadline", "+100", "--closes-at", "+100000", key=platform)
    carbon("deposit", f"allowance:{period.id}", "100", key=seller)
    for b in (buyer, other):
        carbon("deposit", "settlement", "10000.00", key=b)
    out = carbon("order", "place", m, "bid", 10, "85", key=buyer)
    bid = int(out.split("as order ")[1].split()[0])
    accounts = [seller.address, buyer.address, other.address]
    before = state(market, m, accounts)

    out = carbon("order", "place", m, "bid", 10, "80.50", key=buyer, ok=False)
    assert "InvalidInput" in out and "not on the tick grid" in out and "nearest 80.00 or 81.00" in out
    assert out.count("\n") == 1
    out = carbon("order", "place", m, "ask", 10, "80.001", key=seller, ok=False)
    assert "more than 2 decimals" in out
    out = carbon("order", "place", m, "ask", 10, "65536", key=seller, ok=False)
    assert "above market" in out and "65,535.00 DCNY/t" in out
    bad = write(tmp_path / "bad.csv", "ask,10,80\nask,ten,80\nhold,1,80\nask,1,79.99\n")
    out = carbon("order", "batch", m, "--csv", bad, key=seller, ok=False)
    assert "3 invalid line(s)" in out and "line 2: lots 'ten'" in out and "line 3: side 'hold'" in out
    assert "line 4: price 79.99 DCNY/t is not on the tick grid" in out
    out = carbon("order", "place", m, "bid", 5, "84", "--market-order", key=buyer, ok=False)
    assert "ExchangeMarketOrderInCall" in out and out.count("\n") == 1
    out = carbon("order", "cancel", bid, key=other, ok=False)
    assert "ExchangeNotOrderOwner" in out and out.count("\n") == 1
    out = carbon("deposit", "settlement", "90000.01", key=other, ok=False)
    assert "ERC20InsufficientBalance" in out
    out = carbon("withdraw", "settlement", "10000.01", key=other, ok=False)
    assert "ExchangeInsufficientFree" in out
    out = carbon("market", "open-session", m, "--call-deadline", "+100", "--closes-at", "+200", key=platform,
                 ok=False)
    assert "ExchangeSessionOpen" in out
    out = carbon("market", "create", "settlement", "settlement", "--lot-size", "1", "--tick-size", "1.00",
                 key=buyer, ok=False)
    assert "ExchangeNotMarketCreator" in out or "ExchangeInvalidMarket" in out
    assert state(market, m, accounts) == before

    # After the deadline the auction must be cleared first: no orders, no claims, while it is CLEARING.
    carbon("order", "place", m, "ask", 10, "79", key=seller)
    carbon("order", "place", m, "ask", 5, "80", key=seller)
    carbon("order", "place", m, "bid", 5, "83", key=other)
    market.mine_at(x.session(m).call_deadline + 1)
    before = state(market, m, accounts)
    assert before["session"].phase is SessionPhase.CLEARING
    out = carbon("order", "place", m, "bid", 10, "85", key=buyer, ok=False)
    assert "ExchangeWrongPhase" in out and out.count("\n") == 1
    out = carbon("order", "batch", m, "--csv", write(tmp_path / "late.csv", "bid,1,85\n"), key=buyer, ok=False)
    assert "ExchangeWrongPhase" in out and out.count("\n") == 1  # the progress bar is taken down
    out = carbon("claim", m, bid, ok=False)
    assert "ExchangeNothingToClaim" in out
    assert state(market, m, accounts) == before

    # UNIFORM: every pair at the midpoint of the last matched pair, (83 + 80) / 2.
    out = carbon("clear", m)
    assert "2 pairs matched" in out and "uniform price 81.50 DCNY/t" in out and "1 transaction;" in out
    out = carbon("clear", m, ok=False)
    assert "ExchangeWrongPhase" in out
    out = carbon("claim", m)
    assert "4 orders settled" in out
    assert x.free_balance(period.allowance, buyer.address) == tonnes(10)


# ---------------------------------------------------------------- a sealed session through the CLI


def test_a_sealed_session_through_the_cli(carbon, market, tmp_path):
    period, platform, (seller,), (buyer,) = traders(market, 1, 1)
    x = market.regulator.exchange
    platform.settlement.issue(seller.address, 1_000_000, fiat_reference="bond money")
    carbon("market", "create", f"allowance:{period.id}", "settlement", "--lot-size", "1", "--tick-size", "1.00",
           key=platform)
    m = x.contract.call("marketCount")
    carbon("market", "open-session", m, "--call-deadline", "+1000", "--closes-at", "+5000", "--sealed", key=platform)
    out = carbon("market", "seal", m, "--commit-deadline", "+500", "--bond", "50.00", key=platform)
    assert "bond 50.00" in out
    carbon("deposit", f"allowance:{period.id}", "100", key=seller)
    carbon("deposit", "settlement", "10000.00", key=buyer)
    out = carbon("order", "place", m, "bid", "10", "90.00", key=buyer, ok=False)
    assert "ExchangeSealedSession" in out
    carbon("order", "commit", m, "ask", "10", "80.00", "--save", tmp_path / "ask.json", key=seller)
    carbon("order", "commit", m, "bid", "10", "90.00", "--save", tmp_path / "bid.json", key=buyer)
    assert x.orders(m) == []  # nothing in the book before the reveals
    out = carbon("order", "reveal", tmp_path / "ask.json", key=seller, ok=False)  # too early
    assert "SealedRevealClosed" in out
    round_ = x.sealed.call("roundOf", m, x.market(m).session)  # deadlines as the chain recorded them
    market.mine_at(round_["commitDeadline"])
    carbon("order", "reveal", tmp_path / "ask.json", key=seller)
    carbon("order", "reveal", tmp_path / "bid.json", key=buyer)
    assert sorted(o.open_lots for o in x.orders(m)) == [10, 10]
    market.mine_at(round_["callDeadline"])
    out = carbon("clear", m)
    assert x.session(m).phase is SessionPhase.CONTINUOUS
    [fill] = x.fills(m)
    assert (fill.lots, fill.price2) == (10, 170)
