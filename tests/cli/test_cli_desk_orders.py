"""`carbon credits order sign | settle`: holders sign desk orders into a file (no transaction), their platform
settles the files in bulk, run in-process against this module's fresh deployment (the `market` fixture).

The settlement token is the deployment's DCNY (2 decimals); desk prices are DCNY per PCC (1 PCC = 1 tCO2e =
1,000,000 units). Every refusal exits non-zero, names the file and order, and sends nothing: no block is mined.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli_helpers import cli_runner
from eth_account import Account

from carbon_sdk import Role
from carbon_sdk.desk_orders import SELL, DeskOrder, load_orders, save_orders, sign_desk_order
from carbon_sdk.units import tonnes

PERIOD = 2061
BUY_BACK, SALE = 1_000, 2_500  # 10.00 and 25.00 DCNY per PCC
DELTA_BPS = 5_000  # a deficit of 1 t owes 0.5 PCC


@pytest.fixture(scope="module")
def manifest_path(market, tmp_path_factory) -> Path:
    return market.manifest.save(tmp_path_factory.mktemp("cli-desk-orders") / "manifest.json")


@pytest.fixture(scope="module")
def rules(market):
    market.regulator.credits.register_methodology(1, b"desk orders methodology")
    market.regulator.credits.set_offset_ratio(PERIOD, delta_bps=DELTA_BPS)


@pytest.fixture
def carbon(market, manifest_path, rules):
    """``carbon(*args, key=client, ok=True)``: run the CLI, check its exit code, return its output."""
    return cli_runner(market, manifest_path)


def desk(market, sellers: int, debtors: int):
    """A platform with an open, funded desk (10.00 / 25.00 DCNY), sellers holding 2 PCC each, and debtors
    holding 50.00 DCNY and owing 0.5 PCC each for PERIOD; clients for all."""
    platform = market.credits_platform()
    people = [Account.create() for _ in range(sellers + debtors)]
    platform.registry.enrol_batch([p.address for p in people], Role.INDIVIDUAL)
    market.regulator.credits.set_issuance_ceiling(PERIOD, platform.address, tonnes(1_000))
    batch = platform.credits.build_batch([(p.address, tonnes(2), 0) for p in people[:sellers]]
                                         + [(p.address, 0, tonnes(1)) for p in people[sellers:]])
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    platform.credits.claim_many(batch)
    market.open_desk(platform, BUY_BACK, SALE)
    if debtors:
        platform.settlement.issue_many({p.address: 5_000 for p in people[sellers:]}, fiat_reference="top-ups")
    clients = [market.client(p) for p in people]
    return platform, clients[:sellers], clients[sellers:]


def state(platform, holders) -> dict:
    """Everything settling may change, and the holders' own transaction counts."""
    credits, cash = platform.credits, platform.settlement
    parties = [h.address for h in holders] + [platform.address]
    return {"pcc": [credits.balance(a) for a in parties], "cash": [cash.balance(a) for a in parties],
            "supply": credits.token.call("totalSupply"),
            "deficits": [credits.deficit(PERIOD, a)["covered"] for a in parties],
            "order nonces": [credits.order_nonce(a) for a in parties],
            "permit nonces": [cash.permit_nonce(a) for a in parties],
            "allowances": [cash.contract.call("allowance", a, credits.contract.address) for a in parties],
            "sent": [platform.rpc.call("eth_getTransactionCount", [a, "latest"]) for a in parties[:-1]]}


def value(out: str, field: str) -> str:
    """A kv table's value, by its field."""
    line = next(line for line in out.splitlines() if line.startswith("│") and line.split("│")[1].strip() == field)
    return line.split("│")[2].strip()


# ---------------------------------------------------------------- signing and settling


def test_holders_sign_into_files_and_the_platform_settles_them_exactly(carbon, market, tmp_path):
    platform, (alice, ann), (bob, ben) = desk(market, 2, 2)
    holders = [alice, ann, bob, ben]
    before = state(platform, holders)
    orders, ben_file = tmp_path / "orders.json", tmp_path / "ben.json"

    # Alice signs two sells into one file (nonces 0 and 1), Ann one, Bob a buy-and-cover with his permit; Ben a
    # buy at a limit of his own, with his permit, into a file of his own. Nobody sends anything.
    out = carbon("credits", "order", "sign", "sell", "0.4", "--platform", platform.address, "--out", orders,
                 key=alice)
    assert f"signed: {alice.address} will sell 0.400000 PCC to {platform.address} at no less than 10.00 DCNY/PCC, " \
           "nonce 0" in out
    assert f"{orders} holds 1 order for {platform.credits.contract.address}" in out and "nothing was sent" in out
    out = carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--out", orders,
                 "--append", key=alice)
    assert "nonce 1" in out and "holds 2 orders" in out
    carbon("credits", "order", "sign", "sell", "1.5", "--platform", platform.address, "--limit-price", "10.00",
           "--out", orders, "--append", key=ann)
    out = carbon("credits", "order", "sign", "buy-and-cover", "0.5", "--platform", platform.address, "--period",
                 PERIOD, "--permit", "--out", orders, "--append", key=bob)
    assert f"will buy 0.500000 PCC from {platform.address} and cover its deficit of period {PERIOD} at no more " \
           "than 25.00 DCNY/PCC" in out and "with a permit letting the credit manager draw its payments" in out and "holds 4 orders and 1 permit" in out
    out = carbon("credits", "order", "sign", "buy", "0.25", "--platform", platform.address, "--limit-price", "26.50",
                 "--valid-for", 600, "--permit", "--out", ben_file, key=ben)
    assert "at no more than 26.50 DCNY/PCC" in out

    desk_file = load_orders(orders)  # the SDK's own reader
    signed = desk_file.orders
    assert (desk_file.manager, desk_file.chain_id) == (platform.credits.contract.address, platform.chain_id)
    assert [(s.order.holder, s.order.kind, s.order.amount, s.order.nonce) for s in signed] == [
        (alice.address, 0, tonnes("0.4"), 0), (alice.address, 0, tonnes("0.1"), 1), (ann.address, 0, tonnes("1.5"), 0),
        (bob.address, 2, tonnes("0.5"), 0)]
    assert signed[3].order.period == PERIOD and signed[3].order.limit_price == SALE
    (ben_order,) = load_orders(ben_file).orders
    assert ben_order.order.limit_price == 2_650
    assert ben_order.order.deadline - platform.chain_time() <= 600
    permits = json.loads(orders.read_text())["permits"]
    assert [(p["owner"], p["spender"], p["nonce"]) for p in permits] == [
        (bob.address, platform.credits.contract.address, 0)]
    assert [(p.owner, p.nonce) for p in desk_file.permits] == [(bob.address, 0)]
    assert state(platform, holders) == before

    # The platform settles both files: one transaction.
    stock = platform.credits.balance(platform.address)
    out = carbon("credits", "order", "settle", orders, ben_file, key=platform)
    assert value(out, "orders settled") == "5 (3 sell, 1 buy, 1 buy-and-cover)"
    assert value(out, "sold to the desk") == "2.000000 PCC; the platform paid 20.00 DCNY"
    assert value(out, "bought from the desk") == "0.750000 PCC; buyers paid 18.75 DCNY"  # ⌈0.25 × 25.00⌉ = 6.25
    assert value(out, "covered (burned)") == "0.500000 PCC"
    assert value(out, "permits relayed") == "2" and value(out, "transactions") == "1"
    tx = value(out, "tx 0")
    receipt = platform.rpc.call("eth_getTransactionReceipt", [tx])
    assert int(receipt["status"], 16) == 1 and receipt["from"].lower() == platform.address.lower()
    for holder, kind, amount, paid in ((alice.address, "sell", "0.400000 PCC", "4.00 DCNY"),
                                       (ann.address, "sell", "1.500000 PCC", "15.00 DCNY"),
                                       (bob.address, "buy-and-cover", "0.500000 PCC", "12.50 DCNY"),
                                       (ben.address, "buy", "0.250000 PCC", "6.25 DCNY")):
        assert any(holder in line and f" {kind} " in line and amount in line and paid in line
                   for line in out.splitlines()), (holder, out)

    after = state(platform, holders)
    assert after["pcc"] == [before["pcc"][0] - tonnes("0.5"), before["pcc"][1] - tonnes("1.5"), 0, tonnes("0.25"),
                            stock + tonnes(2) - tonnes("0.75")]
    assert after["cash"] == [500, 1_500, 5_000 - 1_250, 5_000 - 625, before["cash"][4] - 2_000 + 1_875]
    assert after["supply"] == before["supply"] - tonnes("0.5")  # only the cover burned
    assert after["deficits"] == [0, 0, tonnes("0.5"), 0, 0]
    assert platform.credits.deficit(PERIOD, bob.address)["outstanding"] == 0
    assert after["order nonces"] == [2, 1, 1, 1, 0] and after["permit nonces"] == [0, 0, 1, 1, 0]
    assert after["sent"] == before["sent"]  # the holders sent nothing at any point

    # The same file again: every order is settled already, so it is refused, and nothing is sent.
    block = platform.block_number()
    out = carbon("credits", "order", "settle", orders, key=platform, ok=False)
    assert f"4 of the 4 orders were settled before (their nonces are used; the first: {orders}: order 0 " \
           f"({alice.address}, nonce 0))" in out
    assert "--skip-settled" in out and "nothing was sent" in out
    out = carbon("credits", "order", "settle", orders, "--skip-settled", key=platform, ok=False)
    assert "nothing to settle (4 orders settled before, left out; 1 permit relayed before, left out)" in out
    assert platform.block_number() == block and state(platform, holders) == after

    # A new order appended to the settled file gets the holder's next nonce; --skip-settled settles just it.
    carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--out", orders, "--append",
           key=ann)
    assert load_orders(orders).orders[-1].order.nonce == 1
    out = carbon("credits", "order", "settle", orders, "--skip-settled", key=platform)
    assert value(out, "orders settled") == "1 (1 sell, 0 buy, 0 buy-and-cover)"
    assert value(out, "left out") == "4 orders settled before, left out; 1 permit relayed before, left out"
    assert platform.credits.balance(ann.address) == after["pcc"][1] - tonnes("0.1")
    assert platform.settlement.balance(ann.address) == 1_600


def test_a_long_list_settles_in_several_transactions_with_a_progress_bar(carbon, market, tmp_path):
    platform, sellers, _ = desk(market, 5, 0)
    before = state(platform, sellers)
    now, domain = platform.chain_time(), platform.credits.order_domain
    # 250 small sells, 50 per holder, signed with the SDK straight into one file: two transactions.
    signed = [sign_desk_order(s.sender.signer.signing_key,
                              DeskOrder(s.address, platform.address, SELL, tonnes("0.01"), BUY_BACK, n, now + 3_600),
                              domain) for n in range(50) for s in sellers]
    path = save_orders(tmp_path / "week.json", signed, manager=platform.credits.contract.address,
                       chain_id=platform.chain_id)
    trades_csv = tmp_path / "trades.csv"
    out = carbon("credits", "order", "settle", path, "--csv", trades_csv, key=platform)
    assert "settling" in out and "250/250" in out
    assert value(out, "orders settled") == "250 (250 sell, 0 buy, 0 buy-and-cover)"
    assert value(out, "sold to the desk") == "2.500000 PCC; the platform paid 25.00 DCNY"
    assert value(out, "transactions") == "2" and value(out, "tx 1").startswith("0x")
    assert "desk trades (first 50 of 250)" in out
    with trades_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 250 and {r["holder"] for r in rows} == {s.address for s in sellers}
    assert rows[0] == {"holder": sellers[0].address, "kind": "sell", "amount": "0.010000", "price": "10.00",
                       "paid": "0.10", "covered": "0.000000", "tx": value(out, "tx 0")}
    assert {r["tx"] for r in rows} == {value(out, "tx 0"), value(out, "tx 1")}
    after = state(platform, sellers)
    assert after["pcc"] == [tonnes("1.5")] * 5 + [tonnes("2.5")]
    assert after["cash"] == [500] * 5 + [before["cash"][5] - 2_500]
    assert after["order nonces"] == [50] * 5 + [0]


def test_a_later_transaction_refused_on_chain_leaves_the_earlier_ones_and_says_how_to_go_on(carbon, market,
                                                                                          tmp_path):
    platform, sellers, _ = desk(market, 5, 0)
    now, domain = platform.chain_time(), platform.credits.order_domain
    # 250 sells; the very last one, in the second transaction, for more than its holder has left.
    signed = [sign_desk_order(s.sender.signer.signing_key,
                              DeskOrder(s.address, platform.address, SELL, tonnes(5) if (n, i) == (49, 4)
                                        else tonnes("0.01"), BUY_BACK, n, now + 3_600), domain)
              for n in range(50) for i, s in enumerate(sellers)]
    path = save_orders(tmp_path / "week.json", signed, manager=platform.credits.contract.address,
                       chain_id=platform.chain_id)
    out = carbon("credits", "order", "settle", path, key=platform, ok=False)
    assert "ERC20InsufficientBalance" in out
    assert "the transactions before it settled 200 of the 250 orders: settle the same files again with " \
           "--skip-settled for the rest" in out
    assert [platform.credits.order_nonce(s.address) for s in sellers] == [40] * 5
    assert [platform.credits.balance(s.address) for s in sellers] == [tonnes("1.6")] * 5
    # Again, the rest only: now the first transaction holds the bad order, and it is named before sending.
    block = platform.block_number()
    out = carbon("credits", "order", "settle", path, "--skip-settled", key=platform, ok=False)
    assert f"the chain refuses the first settlement transaction at {path}: order 249 ({sellers[4].address}, " \
           "nonce 49): ERC20InsufficientBalance" in out and "nothing was sent" in out
    assert platform.block_number() == block


# ---------------------------------------------------------------- refusals


def test_a_file_for_another_deployment_is_refused_and_nothing_changes(carbon, market, other_market, tmp_path):
    platform, (alice,), (bob,) = desk(market, 1, 1)
    holders = [alice, bob]
    other = cli_runner(other_market, other_market.manifest.save(tmp_path / "other-manifest.json"))
    theirs = other_market.regulator.credits.contract.address

    # Alice and Bob sign with the other deployment's manifest (explicit limits: no prices to read there).
    path = tmp_path / "other.json"
    other("credits", "order", "sign", "sell", "0.5", "--platform", platform.address, "--limit-price", "10.00",
          "--out", path, key=alice)
    other("credits", "order", "sign", "buy", "0.1", "--platform", platform.address, "--limit-price", "25.00",
          "--permit", "--out", path, "--append", key=bob)
    before, block = state(platform, holders), platform.block_number()
    out = carbon("credits", "order", "settle", path, key=platform, ok=False)
    assert f"{path} holds desk orders for credit manager {theirs} on chain {platform.chain_id}, not this " \
           f"deployment's ({platform.credits.contract.address}" in out and "nothing was sent" in out
    # Nor can it be appended to with this deployment's manifest.
    text = path.read_text()
    out = carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--out", path,
                 "--append", key=alice, ok=False)
    assert f"for credit manager {theirs}" in out and path.read_text() == text

    # The same orders relabelled as this deployment's: their signatures are not, so they are refused too.
    data = json.loads(text)
    data["manager"] = platform.credits.contract.address
    relabelled = tmp_path / "relabelled.json"
    relabelled.write_text(json.dumps(data))
    out = carbon("credits", "order", "settle", relabelled, key=platform, ok=False)
    assert f"{relabelled}: order 0 ({alice.address}, nonce 0) is not signed by its holder for this deployment" in out
    data["orders"] = data["orders"][1:]  # only Bob's order: his permit's signature is checked too
    data["orders"][0]["kind"] = "sell"
    relabelled.write_text(json.dumps(data))
    assert "is not signed by its holder" in carbon("credits", "order", "settle", relabelled, key=platform, ok=False)
    data["orders"] = []
    data["permits"][0]["spender"] = platform.credits.contract.address
    relabelled.write_text(json.dumps(data))
    out = carbon("credits", "order", "settle", relabelled, key=platform, ok=False)
    assert f"{relabelled}: permit 0 ({bob.address}, nonce 0) is not signed by its owner" in out
    data["chain_id"] = platform.chain_id + 1
    relabelled.write_text(json.dumps(data))
    out = carbon("credits", "order", "settle", relabelled, key=platform, ok=False)
    assert f"on chain {platform.chain_id + 1}, not this deployment's" in out
    assert platform.block_number() == block and state(platform, holders) == before


def test_expired_misdirected_and_unsettleable_orders_are_refused_before_anything_is_sent(carbon, market, tmp_path):
    platform, (alice,), (bob,) = desk(market, 1, 1)
    other_platform = market.platform()  # its desk never opened
    holders = [alice, bob]

    # Signing: wrong combinations are usage errors, and an existing file is only added to on request.
    path = tmp_path / "orders.json"
    out = carbon("credits", "order", "sign", "buy-and-cover", "0.1", "--platform", platform.address, "--out", path,
                 key=bob, ok=False)
    assert "needs --period" in out
    out = carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--period", PERIOD,
                 "--out", path, key=alice, ok=False)
    assert "only buy-and-cover orders take --period" in out
    out = carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--permit", "--out",
                 path, key=alice, ok=False)
    assert "--permit is for buy orders" in out
    out = carbon("credits", "order", "sign", "buy", "0.1", "--platform", platform.address, "--limit-price", "25.001",
                 "--out", path, key=bob, ok=False)
    assert "more than 2 decimals" in out
    out = carbon("credits", "order", "sign", "buy", "0.1", "--platform", platform.address, "--limit-price", "0",
                 "--out", path, key=bob, ok=False)
    assert "could never be settled" in out
    out = carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--limit-price", "0",
                 "--out", tmp_path / "any.json", key=alice)
    assert "will sell 0.100000 PCC to" in out and "at any price, nonce 0" in out
    out = carbon("credits", "order", "sign", "sell", "0.1", "--platform", other_platform.address, "--out", path,
                 key=alice, ok=False)  # no price to default the limit to
    assert "CreditsDeskClosed" in out
    assert not path.exists()
    carbon("credits", "order", "sign", "sell", "1", "--platform", platform.address, "--out", path, key=alice)
    out = carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--out", path,
                 key=alice, ok=False)
    assert "exists: pass --append" in out and len(load_orders(path).orders) == 1

    before, block = state(platform, holders), platform.block_number()

    def refused(*files, expect: str) -> str:
        out = carbon("credits", "order", "settle", *files, key=platform, ok=False)
        assert expect in out and out.count("\n") <= 2, out
        return out

    # Orders for another platform.
    foreign = tmp_path / "foreign.json"
    carbon("credits", "order", "sign", "sell", "0.1", "--platform", other_platform.address, "--limit-price", "10.00",
           "--out", foreign, key=alice)
    refused(path, foreign, expect=f"{foreign}: order 0 ({alice.address}, nonce 0) is for platform "
                                  f"{other_platform.address}, not the signer {platform.address}")
    # Files that are not desk-orders files, or are damaged.
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused(bad, expect="cannot read desk orders")
    bad.write_text("[]")
    refused(bad, expect="not a desk-orders file")
    data = json.loads(path.read_text())
    bad.write_text(json.dumps({k: v for k, v in data.items() if k != "manager"}))
    refused(bad, expect=f"{bad}: missing field 'manager'")
    damaged = dict(data, orders=[dict(data["orders"][0], amount="a lot")])
    bad.write_text(json.dumps(damaged))
    refused(bad, expect=f"{bad}: order 0")
    damaged = dict(data, orders=[dict(data["orders"][0], r=5)])
    bad.write_text(json.dumps(damaged))
    refused(bad, expect=f"{bad}")
    bad.write_text(json.dumps(dict(data, permits=[{"owner": bob.address}])))
    refused(bad, expect=f"{bad}: permit 0: missing field 'spender'")
    # More than the holder has: the chain would refuse the first transaction, so it is not sent.
    big = tmp_path / "big.json"
    carbon("credits", "order", "sign", "sell", "2.5", "--platform", platform.address, "--out", big, key=alice)
    out = refused(big, expect="the chain refuses the first settlement transaction")
    assert "ERC20InsufficientBalance" in out and "nothing was sent" in out
    # A buyer without a permit or an allowance: the same, naming the order.
    needy = tmp_path / "needy.json"
    carbon("credits", "order", "sign", "buy", "0.1", "--platform", platform.address, "--out", needy, key=bob)
    out = refused(path, needy, expect=f"at {needy}: order 0 ({bob.address}, nonce 0)")
    assert "ERC20InsufficientAllowance" in out
    # A buy-and-cover of more than the deficit owed (0.5 PCC), from the stock Alice's sale brings.
    greedy = tmp_path / "greedy.json"
    carbon("credits", "order", "sign", "buy-and-cover", "0.6", "--platform", platform.address, "--period", PERIOD,
           "--permit", "--out", greedy, key=bob)
    refused(path, greedy, expect="CreditsCoverExceedsDeficit")
    assert platform.block_number() == block and state(platform, holders) == before

    # An order that expired: valid for one second, then the chain's clock moves on.
    late = tmp_path / "late.json"
    carbon("credits", "order", "sign", "sell", "0.1", "--platform", platform.address, "--valid-for", 1,
           "--out", late, key=alice)
    (order,) = load_orders(late).orders
    market.mine_at(order.order.deadline + 5)
    block = platform.block_number()
    refused(path, late, expect=f"{late}: order 0 ({alice.address}, nonce 0) expired at")
    assert platform.block_number() == block and state(platform, holders) == before

    # Nothing wrong with the first file on its own: it settles.
    out = carbon("credits", "order", "settle", path, key=platform)
    assert value(out, "orders settled") == "1 (1 sell, 0 buy, 0 buy-and-cover)"
    assert platform.credits.balance(alice.address) == before["pcc"][0] - tonnes(1)
