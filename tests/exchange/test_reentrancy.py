"""A hostile token that calls back into the exchange while it moves: every re-entry is refused, nothing moves."""

from __future__ import annotations

import pytest

from carbon_sdk import errors
from carbon_sdk.deploy import deploy_contract
from carbon_sdk.units import tonnes


@pytest.fixture(scope="module")
def hostile(market, artifacts):
    platform, trader = market.platform(), market.enterprise()
    token_address = deploy_contract(trader.sender, artifacts["ReentrantToken"]).contract_address
    token = trader.bind("ReentrantToken", token_address, artifacts["ReentrantToken"].abi)
    settlement = market.manifest.contract("SettlementToken").address
    exchange = platform.exchange.create_market(token_address, settlement, lot_size=tonnes(1), tick_size=100)
    trader.transact(token.tx("approve", trader.exchange.contract.address, 10**30))
    return {"trader": trader, "token": token, "market": exchange.id}


def balances(h) -> tuple[int, int, int]:
    trader, token = h["trader"], h["token"]
    return (token.call("balanceOf", trader.address), token.call("balanceOf", trader.exchange.contract.address),
            trader.exchange.free_balance(token.address))


@pytest.mark.parametrize("function, args", [
    ("withdraw", lambda h: (h["token"].address, 1)),
    ("deposit", lambda h: (h["token"].address, 1)),
    ("claim", lambda h: ([1],)),
    ("clear", lambda h: (h["market"], 10)),
])
def test_a_callback_into_the_exchange_during_a_deposit_is_refused(hostile, function, args):
    trader, token = hostile["trader"], hostile["token"]
    exchange = trader.exchange.contract
    payload = exchange.abi.function(function).encode(*args(hostile))
    trader.transact(token.tx("arm", exchange.address, payload))
    before = balances(hostile)
    with pytest.raises(errors.ReentrancyGuardReentrantCall):
        trader.transact(exchange.tx("deposit", token.address, tonnes(5)))
    assert balances(hostile) == before
    trader.transact(token.tx("arm", "0x" + "00" * 20, b""))


def test_a_callback_during_a_withdrawal_is_refused(hostile):
    trader, token = hostile["trader"], hostile["token"]
    exchange = trader.exchange.contract
    trader.transact(exchange.tx("deposit", token.address, tonnes(5)))
    payload = exchange.abi.function("withdraw").encode(token.address, tonnes(5))
    trader.transact(token.tx("arm", exchange.address, payload))
    before = balances(hostile)
    with pytest.raises(errors.ReentrancyGuardReentrantCall):
        trader.transact(exchange.tx("withdraw", token.address, tonnes(5)))
    assert balances(hostile) == before  # nothing withdrawn, let alone twice
    trader.transact(token.tx("arm", "0x" + "00" * 20, b""))
    trader.transact(exchange.tx("withdraw", token.address, tonnes(5)))
    assert balances(hostile)[2] == 0
