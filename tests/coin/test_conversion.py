"""Converting coin into settlement tokens at the deployment's rate from the regulator's pool, and repaying
debt into it: exact amounts with the documented rounding, the registry's debt flag, and every rejection with
its custom error and nothing changed."""

from __future__ import annotations

import pytest
from coin_helpers import apply, send_anyway, unchanged

from carbon_sdk import Role, errors
from carbon_sdk.coin import Reason
from carbon_sdk.units import tonnes

POOL = 1_500_000  # settlement-token units (2 decimals: 15,000.00 CNY)


@pytest.fixture(scope="module")
def platform(market):
    return market.platform()


@pytest.fixture(scope="module")
def pool(market, platform):
    """A PLATFORM issues settlement tokens to the regulator against a wire; the regulator funds the pool."""
    regulator = market.regulator
    issuance = platform.settlement.issue(regulator.address, 2_000_000, fiat_reference="wire 1")
    assert (issuance.to, issuance.amount, issuance.by) == (regulator.address, 2_000_000, platform.address)
    assert regulator.coin.fund_pool(POOL) == POOL
    assert regulator.settlement.balance(regulator.address) == 2_000_000 - POOL
    [funded] = regulator.coin.contract.logs(["PoolFunded"])
    assert funded.args == {"funder": regulator.address, "amount": POOL}
    return regulator.coin


def test_the_rate_is_the_deployments(market):
    # 1 coin (1e6 units) = 1,000 settlement units = 10.00 CNY (SystemConfig.coin_rate).
    assert market.regulator.coin.rate() == (1, 1_000)
    assert market.regulator.settlement.decimals() == 2


def test_coin_converts_at_the_rate_rounded_down(market, pool):
    enterprise = market.enterprise()
    apply(market, enterprise.address, Reason.ACCURATE_REPORT)  # 10 coin
    supply, available = pool.total_supply(), pool.pool_balance()
    assert enterprise.coin.quote_conversion(1_234_567) == 1_234  # 1,234.567 rounded down
    conversion = enterprise.coin.convert(1_234_567)
    assert (conversion.holder, conversion.coin_amount, conversion.paid) == (
        enterprise.address, 1_234_567, 1_234)
    assert pool.balance(enterprise.address) == 10_000_000 - 1_234_567
    assert pool.total_supply() == supply - 1_234_567
    assert market.regulator.settlement.balance(enterprise.address) == 1_234
    assert pool.pool_balance() == available - 1_234  # the 0.567 stays in the pool


def test_a_pool_too_small_refuses_the_conversion(market, pool):
    enterprise = market.enterprise()
    apply(market, enterprise.address, Reason.VERIFIED_REDUCTION, tonnes(10_000_000))  # 5,000,000 coin
    balance, available = pool.balance(enterprise.address), pool.pool_balance()
    assert balance == 5_000_000 * 10**6 and available < balance // 1_000
    call = enterprise.coin.contract.tx("convert", balance)
    with unchanged(market, [enterprise.address]), pytest.raises(errors.CoinPoolInsufficient) as caught:
        send_anyway(enterprise, call)
    assert caught.value.arguments == {"available": available, "needed": balance // 1_000}
    # What the pool can pay converts.
    assert enterprise.coin.convert(available * 1_000).paid == available and pool.pool_balance() == 0
    market.regulator.coin.fund_pool(POOL // 3)  # refilled for the other tests


def test_converting_more_than_the_balance_is_refused(market, pool):
    enterprise = market.enterprise()
    apply(market, enterprise.address, Reason.ACCURATE_REPORT)
    with unchanged(market, [enterprise.address]), pytest.raises(errors.CoinInsufficientBalance) as caught:
        enterprise.coin.convert(10_000_001)
    assert caught.value.arguments == {"account": enterprise.address, "balance": 10_000_000,
                                      "needed": 10_000_001}


def test_only_regulators_fund_the_pool(market, platform, pool):
    enterprise = market.enterprise()
    platform.settlement.issue(enterprise.address, 5_000, fiat_reference="wire 2")
    call = enterprise.coin.contract.tx("fundPool", 5_000)
    enterprise.settlement.approve(pool.contract.address, 5_000)
    with unchanged(market, [enterprise.address]), pytest.raises(errors.GuardMissingRole) as caught:
        send_anyway(enterprise, call)
    assert caught.value.arguments == {"account": enterprise.address, "required": Role.REGULATOR}


def test_debt_is_repaid_into_the_pool_rounded_up_and_clears_the_flag(market, platform, pool):
    debtor, sponsor = market.enterprise(), market.enterprise()
    registry = market.regulator.registry
    apply(market, debtor.address, Reason.UNREPORTED)  # 100 coin of debt
    assert registry.member(debtor.address).in_debt and not registry.can_trade(debtor.address)
    platform.settlement.issue(sponsor.address, 200_000, fiat_reference="wire 3")
    available, total_debt = pool.pool_balance(), pool.total_debt()

    first = sponsor.coin.repay_debt(debtor.address, 1_234_567)
    assert (first.debtor, first.payer, first.coin_amount, first.paid) == (
        debtor.address, sponsor.address, 1_234_567, 1_235)  # 1,234.567 rounded up: the pool never gets less
    assert pool.debt(debtor.address) == 100_000_000 - 1_234_567
    assert registry.member(debtor.address).in_debt  # still owes

    rest = sponsor.coin.repay_debt(debtor.address, 100_000_000 - 1_234_567)
    assert rest.paid == 98_766  # 98,765.433 rounded up
    assert pool.debt(debtor.address) == 0 and pool.total_debt() == total_debt - 100_000_000
    assert not registry.member(debtor.address).in_debt and registry.can_trade(debtor.address)
    assert pool.pool_balance() == available + 1_235 + 98_766
    assert market.regulator.settlement.balance(sponsor.address) == 200_000 - 1_235 - 98_766
    assert pool.balance(debtor.address) == 0  # repaying mints nothing


def test_repaying_more_than_the_debt_is_refused(market, platform, pool):
    debtor, sponsor = market.enterprise(), market.enterprise()
    apply(market, debtor.address, Reason.MISREPORT, tonnes(1))  # 22 coin
    platform.settlement.issue(sponsor.address, 100_000, fiat_reference="wire 4")
    for owed, asked in ((22_000_000, 22_000_001), (0, 1)):
        with unchanged(market, [debtor.address, sponsor.address]), \
                pytest.raises(errors.CoinDebtExceeded) as caught:
            sponsor.coin.repay_debt(debtor.address, asked)
        assert caught.value.arguments == {"debtor": debtor.address, "debt": owed, "amount": asked}
        if owed:
            sponsor.coin.repay_debt(debtor.address, owed)


def test_a_debtor_cannot_move_settlement_tokens_until_the_debt_is_cleared(market, platform, pool):
    debtor, other = market.enterprise(), market.enterprise()
    platform.settlement.issue(debtor.address, 10_000, fiat_reference="wire 5")
    apply(market, debtor.address, Reason.UNREPORTED)
    call = debtor.settlement.contract.tx("transfer", other.address, 1_000)
    with unchanged(market, [debtor.address, other.address]), \
            pytest.raises(errors.TokenTransferRefused) as caught:
        send_anyway(debtor, call)
    assert caught.value.arguments == {"from": debtor.address, "to": other.address}
    sponsor = market.enterprise()
    platform.settlement.issue(sponsor.address, 100_000, fiat_reference="wire 6")
    sponsor.coin.repay_debt(debtor.address, pool.debt(debtor.address))
    debtor.settlement.transfer(other.address, 1_000)
    assert market.regulator.settlement.balance(other.address) == 1_000


def test_a_debtor_repays_its_own_debt_and_may_trade_again(market, platform, pool):
    """The one settlement-token movement a debtor may make is paying its debt into the coin's pool."""
    debtor, other = market.enterprise(), market.enterprise()
    platform.settlement.issue(debtor.address, 150_000, fiat_reference="wire 7")
    apply(market, debtor.address, Reason.UNREPORTED)  # 100 coin of debt, worth 100,000 units (1,000.00 CNY)
    assert not market.regulator.registry.can_trade(debtor.address)
    repayment = debtor.coin.repay_debt(debtor.address, pool.debt(debtor.address))
    assert (repayment.payer, repayment.paid) == (debtor.address, 100_000)
    assert pool.debt(debtor.address) == 0 and market.regulator.registry.can_trade(debtor.address)
    assert market.regulator.settlement.balance(debtor.address) == 150_000 - 100_000
    debtor.settlement.transfer(other.address, 1)


def test_only_the_coin_collects_debt_payments(market, platform, pool):
    payer = market.enterprise()
    platform.settlement.issue(payer.address, 1_000, fiat_reference="wire 8")
    payer.settlement.approve(payer.address, 1_000)
    call = payer.settlement.contract.tx("collectDebtPayment", payer.address, 1_000)
    with unchanged(market, [payer.address]), pytest.raises(errors.SettlementNotDebtRecorder) as caught:
        send_anyway(payer, call)
    assert caught.value.arguments == {"caller": payer.address}


def test_a_conversion_that_would_pay_nothing_is_refused(market, pool):
    holder = market.enterprise()
    apply(market, holder.address, Reason.ACCURATE_REPORT)  # 10 coin
    numerator, denominator = pool.rate()
    smallest = -(-denominator // numerator)  # the least coin that pays one settlement unit
    with unchanged(market, [holder.address]), pytest.raises(errors.CoinConversionTooSmall) as caught:
        send_anyway(holder, holder.coin.contract.tx("convert", smallest - 1))
    assert caught.value.arguments == {"coinAmount": smallest - 1, "minimum": smallest}
    assert holder.coin.convert(smallest).paid == 1


def test_a_refused_repayment_or_funding_sends_no_approval(market, platform, pool):
    """The SDK checks what the contract would refuse before its approval transaction, so nothing is sent."""
    debtor, sponsor = market.enterprise(), market.enterprise()
    apply(market, debtor.address, Reason.MISREPORT, tonnes(1))  # 22 coin
    nonce = int(sponsor.rpc.call("eth_getTransactionCount", [sponsor.address, "latest"]), 16)
    with pytest.raises(errors.ERC20InsufficientBalance):  # the sponsor holds no settlement tokens
        sponsor.coin.repay_debt(debtor.address, 1_000_000)
    with pytest.raises(errors.GuardMissingRole):  # an enterprise may not fund the pool
        sponsor.coin.fund_pool(1)
    assert int(sponsor.rpc.call("eth_getTransactionCount", [sponsor.address, "latest"]), 16) == nonce
    assert sponsor.settlement.contract.call("allowance", sponsor.address, pool.contract.address) == 0
