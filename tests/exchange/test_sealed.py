"""Sealed sessions: commit (with a bond), reveal, forfeit; every refusal with its error and nothing changed."""

from __future__ import annotations

import pytest

from carbon_sdk import errors
from carbon_sdk.exchange import OrderSpec, SessionPhase, Side
from carbon_sdk.units import tonnes

BOND = 5_000  # 50.00 DCNY


@pytest.fixture(scope="module")
def setup(market):
    """A market with a sealed session in its call phase, two sellers and two buyers with deposits."""
    regulator = market.regulator
    platform = market.platform()
    sellers = [market.enterprise() for _ in range(2)]
    buyers = [market.enterprise() for _ in range(2)]
    period = market.open_period(tonnes(100_000))
    regulator.allowances.allocate(period.id, {s.address: tonnes(1_000) for s in sellers})
    settlement = market.manifest.contract("SettlementToken").address
    exchange = platform.exchange.create_market(period.allowance, settlement, lot_size=tonnes(1), tick_size=100)
    now = market.now()
    platform.exchange.open_session(exchange.id, call_deadline=now + 1_000, closes_at=now + 5_000, sealed=True)
    round_ = platform.exchange.configure_sealed(exchange.id, commit_deadline=now + 500, bond=BOND)
    for client in sellers + buyers:
        platform.settlement.issue(client.address, 2_000_000, fiat_reference="wire")
    for s in sellers:
        s.exchange.deposit(period.allowance, tonnes(500))
    for b in buyers:
        b.exchange.deposit(settlement, 1_000_000)
    return {"market": market, "platform": platform, "sellers": sellers, "buyers": buyers, "id": exchange.id,
            "settlement": settlement, "now": now, "round": round_}


def state(setup) -> dict:
    ex = setup["platform"].exchange
    people = setup["sellers"] + setup["buyers"] + [setup["platform"]]
    return {
        "wallets": [p.settlement.balance(p.address) for p in people],
        "bonds": ex.sealed.call("roundOf", setup["id"], 1),
        "held": setup["platform"].settlement.balance(ex.sealed.address),
        "session": ex.session(setup["id"]),
        "orders": [(o.id, o.open_lots) for o in ex.orders(setup["id"])],
    }


def test_a_sealed_session_takes_no_open_orders_in_its_call_phase(setup):
    buyer = setup["buyers"][0]
    before = state(setup)
    with pytest.raises(errors.ExchangeSealedSession) as caught:
        buyer.exchange.place_order(setup["id"], Side.BID, 10, 90)
    assert caught.value.arguments == {"market": setup["id"], "session": 1}
    assert state(setup) == before
    assert setup["platform"].exchange.session(setup["id"]).sealed


def test_commit_reveal_forfeit(setup):
    market, ex = setup["market"], setup["platform"].exchange
    seller, buyer, idle = setup["sellers"][0], setup["buyers"][0], setup["buyers"][1]
    ask = seller.exchange.commit_order(setup["id"], Side.ASK, 100, 80)
    bid = buyer.exchange.commit_order(setup["id"], Side.BID, 60, 90)
    lost = idle.exchange.commit_order(setup["id"], Side.BID, 10, 95)
    assert seller.settlement.balance(seller.address) == 2_000_000 - BOND
    assert ex.orders(setup["id"]) == []  # nothing visible before the reveal

    # Revealing before the commit deadline is refused; so is committing after it.
    before = state(setup)
    with pytest.raises(errors.SealedRevealClosed):
        seller.exchange.reveal(ask)
    assert state(setup) == before
    market.mine_at(setup["now"] + 500)
    with pytest.raises(errors.SealedCommitClosed) as caught:
        buyer.exchange.commit_order(setup["id"], Side.BID, 5, 99)
    assert caught.value.arguments["commitDeadline"] == setup["now"] + 500
    assert state(setup) == before

    # A wrong salt, another account's reveal, or a changed order do not match any commitment.
    for client, order, salt in ((seller, ask.order, b"\x01" * 32), (buyer, ask.order, ask.salt),
                                (seller, OrderSpec(Side.ASK, 100, 79), ask.salt)):
        forged = type(ask)(ask.market, ask.session, order, salt, ask.commitment, ask.tx_hash)
        with pytest.raises(errors.SealedUnknownCommitment):
            client.exchange.reveal(forged)
    assert state(setup) == before

    placed_ask = seller.exchange.reveal(ask)
    placed_bid = buyer.exchange.reveal(bid)
    assert placed_ask.order_id and placed_bid.order_id
    assert seller.settlement.balance(seller.address) == 2_000_000  # bond back
    with pytest.raises(errors.SealedUnknownCommitment):  # revealed once only
        seller.exchange.reveal(ask)

    with pytest.raises(errors.SealedNotForfeitable):  # not before the call deadline
        ex.forfeit([lost.commitment])
    market.mine_at(setup["now"] + 1_000)
    operator_before = setup["platform"].settlement.balance(setup["platform"].address)
    assert ex.forfeit([lost.commitment]) == BOND
    assert setup["platform"].settlement.balance(setup["platform"].address) == operator_before + BOND
    with pytest.raises(errors.SealedNotForfeitable):
        ex.forfeit([lost.commitment])
    with pytest.raises(errors.SealedNotForfeitable):  # a revealed commitment keeps its bond
        ex.forfeit([ask.commitment])

    # The revealed orders clear like any other: 60 lots at the midpoint of 80 and 90.
    result = ex.clear_all(setup["id"])
    assert result.done and result.pairs == 1
    [fill] = ex.fills(setup["id"])
    assert (fill.lots, fill.price2) == (60, 170)
    assert ex.session(setup["id"]).phase is SessionPhase.CONTINUOUS


def test_only_the_sealer_places_revealed_orders(setup):
    buyer = setup["buyers"][1]
    call = buyer.exchange.contract.tx("placeRevealed", buyer.address, setup["id"], (0, 0, 1, 50), gas=500_000)
    with pytest.raises(errors.ExchangeNotSealer) as caught:
        buyer.transact(call)
    assert caught.value.arguments == {"caller": buyer.address}
