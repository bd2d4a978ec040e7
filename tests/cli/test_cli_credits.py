"""The personal-credit commands of `carbon` (methodology, credits, batch, price), run in-process against this
module's fresh deployment (the `market` fixture), reached on anvil; `price model`, `ratio` and `fees` offline.

The settlement token is the deployment's DCNY (2 decimals); desk prices and merchant rates are DCNY per PCC
(1 PCC = 1 tCO2e = 1,000,000 units).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from cli_helpers import cli_runner
from click.testing import CliRunner
from eth_account import Account

from carbon_sdk import Role
from carbon_sdk.activities import batch_totals
from carbon_sdk.cli import main
from carbon_sdk.credits import CreditBatchTree, credit_entries
from carbon_sdk.economics import optimal_offset_ratio, platform_prices
from carbon_sdk.methodology import Methodology
from carbon_sdk.units import tonnes

PERIOD = 2025
WEEK = ("2025-03-03T00:00:00Z", "2025-03-10T00:00:00Z")


@pytest.fixture(scope="module")
def manifest_path(market, tmp_path_factory) -> Path:
    return market.manifest.save(tmp_path_factory.mktemp("cli-credits") / "manifest.json")


@pytest.fixture
def carbon(market, manifest_path):
    """``carbon(*args, key=client, ok=True)``: run the CLI, check its exit code, return its output."""
    return cli_runner(market, manifest_path)


_apps = itertools.count(1)


def community(market, people: int):
    """A platform whose organisation enrols individuals, the individuals (clients), a merchant, and
    settlement tokens: 10,000.00 DCNY for the platform, 100.00 DCNY for each individual."""
    admin = Account.create()
    market.regulator.registry.register_organisation(f"Green App {next(_apps)}", admin.address, Role.PLATFORM,
                                                    allowed_roles=[Role.PLATFORM, Role.INDIVIDUAL])
    platform = market.client(admin)
    accounts = [Account.create() for _ in range(people)]
    platform.registry.enrol_batch([a.address for a in accounts], Role.INDIVIDUAL)
    merchant = market.member(Role.MERCHANT)
    platform.settlement.issue(platform.address, 1_000_000, fiat_reference="wire")
    for a in accounts:
        platform.settlement.issue(a.address, 10_000, fiat_reference="wire")
    return platform, [market.client(a) for a in accounts], merchant


def write_activities(path: Path, rows) -> str:
    path.write_text("account,activity,quantity,unit,region,time\n"
                    + "".join(",".join(str(c) for c in row) + "\n" for row in rows))
    return str(path)


def holdings(market, addresses) -> dict:
    credits, money = market.regulator.credits, market.regulator.settlement
    return {a: (credits.balance(a), money.balance(a)) for a in addresses}


# ---------------------------------------------------------------- the whole cycle through the CLI


def test_build_commit_claim_then_sell_buy_cover_redeem_and_donate(carbon, market, tmp_path):
    platform, (alice, bob, carol), merchant = community(market, 3)
    credits = market.regulator.credits

    # The regulator registers the shipped methodology and sets the period's rules.
    out = carbon("methodology", "register")
    m = Methodology.default()
    assert m.content_hash_hex in out and "carbon_sdk/data/methodology_v1.json" in out
    assert "matches the shipped file" in carbon("methodology", "status", 1)
    assert "offset ratio δ = 50 % (5000 bps)" in carbon("credits", "offset-ratio", PERIOD, "--delta-bps", 5000)
    assert "region 31: per-capita quota 1.000000 t" in carbon("credits", "quota", PERIOD, "--region", 31,
                                                                "--per-capita", 1)
    out = carbon("credits", "ceiling", PERIOD, platform.address, 100)
    assert "issuance ceiling 100.000000 PCC, committed so far 0.000000 PCC" in out

    # A week of activity. By hand, with methodology 1 and a quota of 1 t (1,000,000 g) each:
    #   alice: walking 5,000 km x 162.72 = 813,600 reduced; electricity 1,000 kWh x 561.7 (31) = 561,700 emitted
    #          -> credits 1,000,000 - 561,700 + 813,600 = 1,251,900, no deficit
    #   bob:   car 10,000 km x 162.72 = 1,627,200 emitted; cycling 1,000 km = 162,720 reduced
    #          -> credits 162,720, deficit 627,200 (owes 313,600 at 50 %)
    #   carol: walking 20,000 km = 3,254,400 reduced -> credits 4,254,400
    rows = [(alice.address, "walking", 5000, "km", 31, "2025-03-03T08:00:00Z"),
            (alice.address, "electricity", 1000, "kWh", 31, "2025-03-04T23:00:00Z"),
            (bob.address, "car", "10000", "km", 44, "2025-03-05T08:00:00Z"),
            (bob.address, "cycling", "1000.0", "km", 44, "2025-03-06T08:00:00Z"),
            (carol.address, "walking", 20000, "km", 0, "2025-03-09T23:59:59Z")]
    activities = write_activities(tmp_path / "week.csv", rows)
    expected = {alice.address: (1_251_900, 0), bob.address: (162_720, 627_200), carol.address: (4_254_400, 0)}
    assert {a: (amount, deficit) for a, amount, deficit in credit_entries(
        batch_totals(activities, m, period=WEEK), tonnes(1))} == expected

    batch_file, claims_file = tmp_path / "batch.json", tmp_path / "claims.jsonl"
    next_id = credits.contract.call("nextBatchId")
    out = carbon("batch", "build", activities, "--quota", 1, "--period-start", WEEK[0], "--period-end", WEEK[1],
                 "--out", batch_file, "--claims", claims_file, key=platform)
    batch = CreditBatchTree.load(batch_file)
    assert batch.batch_id == next_id and batch.methodology == 1
    assert {e.account: (e.amount, e.deficit) for e in batch.entries} == expected
    for field, value in (("records", 5), ("accounts", 3), ("entries", 3), ("total credits", "5.669020 PCC"),
                         ("total deficit", "0.627200 t"), ("root", batch.root), ("batch id", next_id)):
        assert any(field in line and str(value) in line for line in out.splitlines()), (field, out)
    claims = [json.loads(line) for line in claims_file.read_text().splitlines()]
    assert [c["account"] for c in claims] == [e.account for e in batch.entries] and claims[0]["proof"]

    out = carbon("batch", "commit", batch_file, "--period", PERIOD, key=platform)
    assert batch.root in out and "5.669020 PCC" in out
    assert credits.batch(next_id)["root"] == batch.root
    assert credits.issued(PERIOD, platform.address) == (5_669_020, tonnes(100))

    # Carol claims her own entry; the platform claims the rest in bulk.
    carol_index = next(e.index for e in batch.entries if e.account == carol.address)
    out = carbon("batch", "claim", batch_file, "--index", carol_index, key=carol)
    assert f"4.254400 PCC to {carol.address}" in out
    out = carbon("batch", "claim", batch_file, key=platform)
    assert "claiming" in out and "2/2" in out and "claimed 2 entries (1 claimed before)" in out
    out = carbon("batch", "show", next_id)
    assert "claimed" in out and "remaining" in out and "0.000000 PCC" in out and batch.root in out
    assert {a: credits.balance(a) for a in expected} == {a: amount for a, (amount, _) in expected.items()}
    assert f"{alice.address}: 1.251900 PCC; wallet 100.00 DCNY" in carbon("credits", "balance", alice.address)
    assert "owes 0.313600 PCC, covered 0.000000 PCC, outstanding 0.313600 PCC" in carbon(
        "credits", "deficit", PERIOD, key=bob)

    # The platform prices from the model at the period's ratio (δ = 0.5): P_ph = 10, P_c = 25 DCNY per PCC.
    out = carbon("price", "post", "--N", 1000, "--e", 100, "--D", 10000, "--W", "0.5", "--c", 5, "--period", PERIOD,
                 key=platform)
    assert "posted buy-back 10.00 DCNY/PCC, sale 25.00 DCNY/PCC" in out and "1000 (10.00 DCNY)" in out
    out = carbon("credits", "fund-desk", "500.00", key=platform)
    assert "the desk may draw 500.00 DCNY (wallet 10,000.00 DCNY)" in out
    out = carbon("credits", "prices", platform.address)
    assert "10.00 DCNY/PCC" in out and "25.00 DCNY/PCC" in out and "500.00 DCNY" in out

    # Carol sells 2 PCC to the desk at 10.00: 20.00 DCNY from the platform to her.
    who = [alice.address, bob.address, carol.address, platform.address, merchant.address]
    before = holdings(market, who)
    out = carbon("credits", "sell", platform.address, 2, "--min-price", "10.00", key=carol)
    assert f"{carol.address} sold 2.000000 PCC to {platform.address} at 10.00 DCNY/PCC: paid 20.00 DCNY" in out
    after = holdings(market, who)
    assert after[carol.address] == (before[carol.address][0] - tonnes(2), before[carol.address][1] + 2_000)
    assert after[platform.address] == (tonnes(2), before[platform.address][1] - 2_000)
    assert credits.desk_allowance(platform.address) == 48_000

    # Bob buys 0.5 PCC at 25.00 (12.50 DCNY) and covers his deficit.
    out = carbon("credits", "buy", platform.address, "0.5", key=bob)
    assert "bought 0.500000 PCC from" in out and "paid 12.50 DCNY" in out
    out = carbon("credits", "cover", PERIOD, "0.3136", key=bob)
    assert "covered 0.313600 PCC" in out and "outstanding 0.000000 PCC" in out
    mid = holdings(market, who)
    assert mid[bob.address] == (162_720 + 500_000 - 313_600, 10_000 - 1_250)
    assert mid[platform.address] == (tonnes("1.5"), after[platform.address][1] + 1_250)

    # Alice redeems 1 PCC at a merchant the platform pays 8.00 DCNY per PCC.
    out = carbon("credits", "merchant-rate", merchant.address, "8.00", key=platform)
    assert f"pays {merchant.address} 8.00 DCNY/PCC redeemed there" in out
    redemption = credits.contract.call("redemptions") + 1
    out = carbon("credits", "redeem", platform.address, merchant.address, 1, "--receipt", "till 42 #1007",
                 key=alice)
    assert f"redemption {redemption}:" in out and "redeemed 1.000000 PCC" in out and "paid the merchant 8.00 DCNY" in out
    end = holdings(market, who)
    assert end[alice.address] == (1_251_900 - tonnes(1), 10_000)
    assert end[merchant.address] == (0, 800)
    assert end[platform.address] == (tonnes("1.5"), mid[platform.address][1] - 800)

    # Carol donates to a welfare project, which is then closed.
    beneficiary = Account.create().address
    out = carbon("credits", "project", "register", 7, beneficiary, "--name", "Tree planting, Inner Mongolia")
    assert "Tree planting, Inner Mongolia" in out and "open" in out
    out = carbon("credits", "donate", 7, "0.2544", key=carol)
    assert f"donated 0.254400 PCC to project 7 (Tree planting, Inner Mongolia), retired in the name of " \
           f"{beneficiary}" in out
    assert credits.balance(carol.address) == tonnes(2)
    assert "closed" in carbon("credits", "project", "close", 7)
    out = carbon("credits", "donate", 7, "1", key=carol, ok=False)
    assert "CreditsProjectClosed" in out and out.count("\n") == 1
    out = carbon("credits", "project", "show", 7)
    assert "closed" in out and "0.254400 PCC" in out
    assert credits.balance(carol.address) == tonnes(2)


# ---------------------------------------------------------------- refusals


def test_refusals_exit_non_zero_name_the_error_and_change_nothing(carbon, market, tmp_path):
    platform, (dave, erin), _ = community(market, 2)
    credits = market.regulator.credits

    # A methodology of its own (version 2, from a file), registered once.
    document = Methodology.default().document
    document["version"] = 2
    v2 = tmp_path / "methodology-v2.json"
    v2.write_text(json.dumps(document))
    out = carbon("methodology", "register", "--file", v2, "--uri", "ipfs://v2")
    assert "ipfs://v2" in out and Methodology.load(v2).content_hash_hex in out
    out = carbon("methodology", "register", "--file", v2, ok=False)
    assert "CreditsMethodologyExists" in out
    assert "matches" in carbon("methodology", "status", 2, "--file", v2)
    assert "not registered" in carbon("methodology", "status", 3, ok=False)

    credits.set_issuance_ceiling(PERIOD, platform.address, tonnes(10))
    batch = platform.credits.build_batch([(dave.address, tonnes(1), 0), (erin.address, tonnes(1), 0)], methodology=2)
    batch_file = batch.save(tmp_path / "batch.json")
    carbon("batch", "commit", batch_file, "--period", PERIOD, key=platform)
    out = carbon("batch", "commit", batch_file, "--period", PERIOD, key=platform, ok=False)
    assert "CreditsBatchIdMismatch" in out
    carbon("batch", "claim", batch_file, key=platform)
    out = carbon("batch", "claim", batch_file, "--index", 0, key=dave, ok=False)
    assert "CreditsAlreadyClaimed" in out
    platform.credits.post_prices(1_000, 2_500)  # 10.00 and 25.00 DCNY per PCC; the desk is not funded

    who = [dave.address, erin.address, platform.address]
    before = holdings(market, who)
    out = carbon("credits", "sell", platform.address, "1.000001", key=dave, ok=False)  # beyond his balance
    assert "ERC20InsufficientBalance" in out and out.count("\n") == 1
    out = carbon("credits", "sell", platform.address, "0.5", key=dave, ok=False)  # the chain: no desk funds
    assert "ERC20InsufficientAllowance" in out
    out = carbon("credits", "sell", platform.address, "0.5", "--min-price", "10.01", key=dave, ok=False)
    assert "CreditsPriceMoved" in out
    out = carbon("credits", "buy", platform.address, "0.5", key=erin, ok=False)  # the platform holds none
    assert "ERC20InsufficientBalance" in out
    out = carbon("credits", "redeem", platform.address, erin.address, "0.5", key=erin, ok=False)
    assert "CreditsMerchantNotAccepted" in out
    out = carbon("credits", "merchant-rate", erin.address, "1.00", key=platform, ok=False)  # not a merchant
    assert "CreditsNotMerchant" in out
    out = carbon("credits", "cover", PERIOD, "0.1", key=erin, ok=False)
    assert "CreditsNothingToCover" in out
    out = carbon("credits", "offset-ratio", PERIOD, "--delta-bps", 5000, key=platform, ok=False)
    assert "GuardMissingRole" in out
    out = carbon("credits", "sell", platform.address, "0.5", "--min-price", "10.001", key=dave, ok=False)
    assert "more than 2 decimals" in out
    assert holdings(market, who) == before == {dave.address: (tonnes(1), 10_000), erin.address: (tonnes(1), 10_000),
                                               platform.address: (0, 1_000_000)}


def test_an_activity_file_with_bad_lines_is_refused_whole(carbon, market, tmp_path):
    person = Account.create().address
    activities = write_activities(tmp_path / "bad.csv", [
        (person, "walking", 5, "km", 31, "2025-03-03T08:00:00Z"),
        (person, "flying", 500, "km", 31, "2025-03-03T09:00:00Z"),  # line 3: no such activity
        (person, "car", 12, "miles", 31, "2025-03-03T10:00:00Z"),  # line 4: wrong unit
        (person, "metro", 3, "km", 31, "2025-03-03T11:00:00Z"),
        (person, "bus", "-3", "km", 31, "2025-03-03T12:00:00Z"),  # line 6: negative
        (person, "bus", "3", "km", 31, "2025-04-01T12:00:00Z"),  # line 7: outside the period
    ])
    out_file = tmp_path / "batch.json"
    out = carbon("batch", "build", activities, "--quota", 1, "--period-start", WEEK[0], "--period-end", WEEK[1],
                 "--out", out_file, ok=False)
    assert "ActivityFileError: 4 invalid activity record(s) of 6; nothing was ingested" in out
    for line, what in ((3, "flying"), (4, "miles"), (6, "-3"), (7, "2025-04-01")):
        assert any(f"line {line}:" in text and what in text for text in out.splitlines()), (line, out)
    assert "line 2:" not in out and "line 5:" not in out and not out_file.exists()
    out = carbon("batch", "build", activities, "--quota", 1, "--period-start", WEEK[0], ok=False)
    assert "--period-end" in out


# ---------------------------------------------------------------- the model, offline


def test_price_model_ratio_and_fees_offline(tmp_path):
    runner = CliRunner()
    env = {"CARBON_MANIFEST": str(tmp_path / "none.json"), "CARBON_RPC_URL": "http://127.0.0.1:9",
           "CARBON_DEVNET_FOLDER": str(tmp_path / "no-devnet"), "COLUMNS": "250"}

    def carbon(*args, ok: bool = True) -> str:
        result = runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    def value(out: str, field: str) -> str:
        line = next(line for line in out.splitlines() if field in line)
        return line.split("│")[2].strip()

    # The worked example of docs/economics.md, and one whose prices are not finite decimals.
    for inputs in (dict(N=1000, delta="0.5", e=100, D=10000, W="0.5", c=5),
                   dict(N=100, delta="0.5", e=10, D=30, W=7, c="1.5")):
        expected = platform_prices(**inputs)
        args = [a for name, v in inputs.items() for a in (f"--{name}", v)]
        out = carbon("price", "model", *args, "--decimals", 2)
        for field, exact in (("P_c", expected.p_c), ("P_ph", expected.p_ph), ("D_all", expected.d_all),
                             ("profit", expected.profit), ("U:", expected.user_surplus),
                             ("welfare", expected.welfare), ("participation", expected.participation)):
            shown = value(out, field)
            if exact.denominator in (1, 2, 4, 5, 10, 20, 25, 50, 100):
                assert shown == f"{float(exact):g}", (field, shown)
            else:
                assert shown.endswith(f"({exact.numerator}/{exact.denominator})"), (field, shown)
                assert abs(float(shown.split("…")[0]) - float(exact)) < 1e-6
        posted = expected.posted(2)
        assert value(out, "posted buy-back").startswith(f"{posted.buy_back} (")
        assert value(out, "posted sale").startswith(f"{posted.sale} (")
    out = carbon("price", "model", "--N", 1000, "--delta", "0.5", "--e", 100, "--D", 10000, "--W", "0.5")
    assert value(out, "P_c") == "20" and "give --decimals" in out and "posted sale" not in out
    out = carbon("price", "model", "--N", 1000, "--delta", "0.5", "--e", 100, "--D", 1, "--W", "0.5", ok=False)
    assert "InvalidInput" in out and "more than the low-carbon side's whole surplus" in out

    ratio = optimal_offset_ratio(N=1000, P=60, k=180_000, e=100, D=10_000, W="0.5")
    out = carbon("price", "ratio", "--N", 1000, "--P", 60, "--k", 180000, "--e", 100, "--D", 10000, "--W", "0.5")
    assert value(out, "δ*") == "0.5" and value(out, "δ* in bps") == str(ratio.delta_bps) == "5000"
    assert "holds, κ = 120000" in out and "interior" in out

    out = carbon("price", "fees", "--q", 5, "--sellers", 100, "--buyers", 100, "--seller-spread", 10,
                 "--buyer-spread", 10, "--seller-network", "0.05", "--buyer-network", "0.05")
    assert value(out, "seller fee") == "2.5" and value(out, "profit") == "250" and "interior" in out
