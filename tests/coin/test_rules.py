"""The reward-penalty coin's rules: fixed at deployment, applied by regulators (and the bound modules) with
the amount computed by the contract, once per key; debts; no transfers; every rejection with its custom
error and nothing changed."""

from __future__ import annotations

import pytest
from coin_helpers import apply, fresh_key, send_anyway, unchanged
from eth_account import Account
from eth_utils import keccak

from carbon_sdk import errors
from carbon_sdk.coin import DEFAULT_RULES, Reason
from carbon_sdk.units import tonnes


def test_the_rules_are_those_fixed_at_deployment(market):
    coin = market.regulator.coin
    assert coin.rules() == {r.reason: r for r in DEFAULT_RULES}
    assert coin.contract.call("reasons") == [int(r.reason) for r in DEFAULT_RULES]
    for rule in DEFAULT_RULES:
        assert coin.rule_amount(rule.reason, tonnes("12.345678")) == rule.amount(tonnes("12.345678"))
    assert coin.rule_amount(Reason.SHORT_SURRENDER, tonnes(3)) == 30_000_000  # 10 coin per tonne
    assert coin.rule_amount(Reason.SHORT_SURRENDER, 1) == 10  # per gram: 10 units, nothing rounded away
    assert coin.rule_amount(Reason.VERIFIED_REDUCTION, 1) == 0  # 0.5 unit per gram, rounded down
    assert coin.contract.call("decimals") == 6


def test_a_regulator_applies_a_rule_and_the_contract_computes_the_amount(market):
    enterprise = market.enterprise()
    coin = market.regulator.coin
    applied = coin.apply_rule(enterprise.address, Reason.SHORT_SURRENDER, quantity=tonnes("2.5"),
                              evidence=b"inspection 17", audit_key="inspection 17")
    assert (applied.subject, applied.reason, applied.quantity) == (enterprise.address, Reason.SHORT_SURRENDER,
                                                                   tonnes("2.5"))
    assert applied.amount == 25_000_000 and applied.penalty
    assert (applied.minted, applied.burned, applied.debt_change) == (0, 0, 25_000_000)
    assert applied.evidence_hash == keccak(b"inspection 17") and applied.by == market.regulator.address
    assert applied.audit_key == keccak(text="inspection 17")
    assert coin.is_applied(Reason.SHORT_SURRENDER, enterprise.address, "inspection 17")
    assert not coin.is_applied(Reason.MISREPORT, enterprise.address, "inspection 17")
    assert coin.applications(enterprise.address) == [applied]


def test_a_reward_repays_debt_before_minting(market):
    verifier = market.verifier()  # verifiers have coin accounts too
    coin = market.regulator.coin
    apply(market, verifier.address, Reason.UNREPORTED)  # 100 coin of debt (nothing to burn)
    assert coin.debt(verifier.address) == 100_000_000
    assert not market.regulator.registry.can_trade(verifier.address)
    rewards = [apply(market, verifier.address, Reason.VERIFIED_REDUCTION, tonnes(150)) for _ in range(2)]
    assert [(r.amount, r.minted, r.debt_change) for r in rewards] == [
        (75_000_000, 0, -75_000_000),  # all of it repays debt
        (75_000_000, 50_000_000, -25_000_000),  # the last 25 coin of debt, then 50 minted
    ]
    assert coin.debt(verifier.address) == 0 and coin.balance(verifier.address) == 50_000_000
    assert market.regulator.registry.can_trade(verifier.address)
    penalty = apply(market, verifier.address, Reason.FALSE_VERIFICATION, tonnes(1))  # 52 coin: burns 50
    assert (penalty.burned, penalty.debt_change) == (50_000_000, 2_000_000)
    assert market.regulator.registry.member(verifier.address).in_debt


def test_only_regulators_apply_rules(market):
    subject = market.enterprise(region=21)
    for caller in (subject, market.enterprise(region=21), market.verifier(), market.regional_regulator(22)):
        with unchanged(market, [subject.address, caller.address]), \
                pytest.raises(errors.CoinNotAuthorised) as caught:
            caller.coin.apply_rule(subject.address, Reason.ACCURATE_REPORT, evidence="self-reward",
                                   audit_key=fresh_key())
        assert caught.value.arguments == {"caller": caller.address}
    # A regulator of the subject's region may.
    regional = market.regional_regulator(21)
    assert regional.coin.apply_rule(subject.address, Reason.ACCURATE_REPORT, evidence="regional",
                                    audit_key=fresh_key()).by == regional.address


def test_a_rule_needs_evidence(market):
    enterprise = market.enterprise()
    call = market.regulator.coin.contract.tx("applyRule", enterprise.address, int(Reason.MISREPORT),
                                             tonnes(1), keccak(text=fresh_key()), b"\0" * 32)
    with unchanged(market, [enterprise.address]), pytest.raises(errors.CoinMissingEvidence) as caught:
        send_anyway(market.regulator, call)
    assert caught.value.arguments == {} and caught.value.tx_hash is not None


def test_an_unknown_reason_is_refused(market):
    enterprise = market.enterprise()
    coin = market.regulator.coin.contract
    for reason in (0, 7, 255):
        call = coin.tx("applyRule", enterprise.address, reason, tonnes(1), keccak(text=fresh_key()),
                       keccak(b"e"))
        with unchanged(market, [enterprise.address]), pytest.raises(errors.CoinUnknownReason) as caught:
            send_anyway(market.regulator, call)
        assert caught.value.arguments == {"reason": reason}
        with pytest.raises(errors.CoinUnknownReason):
            coin.call("ruleAmount", reason, 1)
        with pytest.raises(errors.InvalidInput, match="unknown reason"):  # the SDK names the reasons it knows
            market.regulator.coin.apply_rule(enterprise.address, reason, evidence="e", audit_key="k")


def test_rules_apply_only_to_enterprises_and_verifiers(market):
    for address in (market.platform().address, market.regulator.address, Account.create().address):
        with unchanged(market, [address]), pytest.raises(errors.CoinInvalidSubject) as caught:
            market.regulator.coin.apply_rule(address, Reason.ACCURATE_REPORT, evidence="e",
                                             audit_key=fresh_key())
        assert caught.value.arguments == {"subject": address}


def test_the_same_reason_subject_and_key_apply_once(market):
    enterprise, other = market.enterprise(), market.enterprise()
    coin = market.regulator.coin
    key = fresh_key()
    coin.apply_rule(enterprise.address, Reason.MISREPORT, evidence="first", audit_key=key, quantity=tonnes(1))
    call = coin.contract.tx("applyRule", enterprise.address, int(Reason.MISREPORT), tonnes(5),
                            keccak(text=key), keccak(text="second, other evidence"))
    with unchanged(market, [enterprise.address]), pytest.raises(errors.CoinRuleAlreadyApplied) as caught:
        send_anyway(market.regulator, call)
    assert caught.value.arguments == {"reason": Reason.MISREPORT, "subject": enterprise.address,
                                      "auditKey": keccak(text=key)}
    # Another reason, or another subject, under the same key is a different application.
    coin.apply_rule(enterprise.address, Reason.SHORT_SURRENDER, evidence="e", audit_key=key, quantity=1)
    coin.apply_rule(other.address, Reason.MISREPORT, evidence="e", audit_key=key, quantity=1)


def test_the_coin_is_not_transferable(market):
    enterprise, other = market.enterprise(), market.enterprise()
    apply(market, enterprise.address, Reason.ACCURATE_REPORT)
    coin = enterprise.coin.contract
    with unchanged(market, [enterprise.address, other.address]), pytest.raises(errors.CoinNotTransferable):
        enterprise.transact(coin.tx("transfer", other.address, 1_000_000))
    enterprise.transact(coin.tx("approve", other.address, 1_000_000))  # approving moves nothing...
    with unchanged(market, [enterprise.address, other.address]), pytest.raises(errors.CoinNotTransferable):
        # ...and the spender cannot move it either.
        send_anyway(other, coin.tx("transferFrom", enterprise.address, other.address, 1_000_000))


def test_the_modules_are_bound_once(market):
    coin = market.regulator.coin.contract
    manifest = market.manifest
    assert coin.call("isModule", manifest.contract("EmissionsMRV").address)
    assert coin.call("isModule", manifest.contract("AllowanceManager").address)
    rogue = Account.create().address
    with unchanged(market, []), pytest.raises(errors.CoinModulesLocked) as caught:
        send_anyway(market.regulator, coin.tx("authoriseModules", [rogue]))
    assert caught.value.arguments == {}
    regional = market.regional_regulator(5)
    with pytest.raises(errors.CoinNotAuthorised) as caught:
        regional.transact(coin.tx("authoriseModules", [rogue]))
    assert caught.value.arguments == {"caller": regional.address}
    assert not coin.call("isModule", rogue)
