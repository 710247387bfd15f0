"""Bank credits find their receivables in the four steps of §2.2, and only when the evidence is unambiguous."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from domain.bank_matching import (
    Allocation,
    BankLine,
    ContractRef,
    CustomerRef,
    Ledger,
    MatchConfig,
    MatchStep,
    OpenReceivable,
    contract_numbers_in_memo,
    match_bank_line,
    outstanding_after,
)
from tests.domain.worked_example import (
    BANK_LINE,
    HAISHU,
    HT2026001,
    INSTALMENT_1,
    INSTALMENT_2,
    LEDGER,
    YUNQI,
)


def D(text: str) -> Decimal:
    return Decimal(text)


def line(
    amount: str, *, memo: str = "", payer: str = "杭州云栖科技有限公司", on: date = date(2026, 12, 9)
) -> BankLine:
    return replace(BANK_LINE, amount=D(amount), memo=memo, payer_name=payer, booked_on=on)


# --- the worked example ----------------------------------------------------------------------------------


def test_worked_example_120k_with_contract_number_pays_instalment_1_and_part_of_instalment_2() -> None:
    result = match_bank_line(BANK_LINE, LEDGER)

    assert result.step is MatchStep.CONTRACT_NUMBER
    assert result.matched
    assert result.allocations == (
        Allocation(INSTALMENT_1.id, D("100000.00")),
        Allocation(INSTALMENT_2.id, D("20000.00")),
    )
    assert result.contract_id == HT2026001.id
    assert result.customer_id == YUNQI.id
    assert outstanding_after(LEDGER.receivables, result.allocations) == {
        INSTALMENT_1.id: D("0.00"),
        INSTALMENT_2.id: D("30000.00"),
    }


def test_the_same_line_twice_has_the_same_identity() -> None:
    # storage enforces uniqueness on this key; a re-import is recognised by it
    again = replace(BANK_LINE)
    assert again.key == BANK_LINE.key == ("33050161000000000001", "TX20261209-0001")
    other_account = replace(BANK_LINE, account="33050161000000000002")
    assert other_account.key != BANK_LINE.key


# --- step 1: contract number in the memo -----------------------------------------------------------------


def test_step1_partial_payment_goes_to_the_earliest_due_instalment_only() -> None:
    result = match_bank_line(line("80000", memo="HT2026001"), LEDGER)
    assert result.step is MatchStep.CONTRACT_NUMBER
    assert result.allocations == (Allocation(INSTALMENT_1.id, D("80000")),)


def test_step1_wins_over_step2_even_when_the_amount_equals_a_later_instalment() -> None:
    # ¥50,000 equals instalment 2 exactly, but the contract rule comes first: earliest due first
    result = match_bank_line(line("50000", memo="HT2026001 二期款"), LEDGER)
    assert result.step is MatchStep.CONTRACT_NUMBER
    assert result.allocations == (Allocation(INSTALMENT_1.id, D("50000")),)


def test_step1_exactly_the_outstanding_total_pays_everything() -> None:
    result = match_bank_line(line("150000", memo="HT2026001"), LEDGER)
    assert result.step is MatchStep.CONTRACT_NUMBER
    assert outstanding_after(LEDGER.receivables, result.allocations) == {101: D("0"), 102: D("0")}


def test_step1_amount_over_the_outstanding_total_is_not_applied_to_the_contract() -> None:
    result = match_bank_line(line("150000.01", memo="HT2026001"), LEDGER)
    assert result.step is MatchStep.UNMATCHED
    assert result.allocations == ()
    # finance still sees the contract's instalments first
    assert result.candidates == (INSTALMENT_1.id, INSTALMENT_2.id)


def test_step1_memo_naming_two_contracts_is_ambiguous() -> None:
    other = ContractRef(11, "HT2026002", customer_id=YUNQI.id)
    other_instalment = OpenReceivable(111, other.id, date(2026, 12, 20), D("70000"))
    ledger = Ledger(LEDGER.customers, (HT2026001, other), (*LEDGER.receivables, other_instalment))
    result = match_bank_line(line("80000", memo="HT2026001/HT2026002 货款"), ledger)
    assert result.step is not MatchStep.CONTRACT_NUMBER
    assert result.step is MatchStep.UNMATCHED
    assert result.contract_id is None


def test_step1_the_same_number_twice_still_names_one_contract() -> None:
    result = match_bank_line(line("80000", memo="HT2026001 货款 (HT2026001)"), LEDGER)
    assert result.step is MatchStep.CONTRACT_NUMBER


def test_step1_two_contracts_sharing_a_number_are_ambiguous() -> None:
    twin = ContractRef(12, "HT2026001", customer_id=HAISHU.id)
    twin_instalment = OpenReceivable(121, twin.id, date(2026, 12, 10), D("100000"))
    ledger = Ledger(LEDGER.customers, (HT2026001, twin), (*LEDGER.receivables, twin_instalment))
    result = match_bank_line(line("80000", memo="HT2026001", payer="某某贸易"), ledger)
    assert result.step is MatchStep.UNMATCHED


def test_step1_unknown_or_longer_number_names_no_contract() -> None:
    assert (
        match_bank_line(line("80000", memo="HT2099999 货款", payer="x"), LEDGER).step is MatchStep.UNMATCHED
    )
    assert match_bank_line(line("80000", memo="HT20260011", payer="x"), LEDGER).step is MatchStep.UNMATCHED


def test_step1_reads_full_width_lower_case_and_glued_numbers() -> None:
    for memo in ("ＨＴ２０２６００１货款", "ht2026001", "付HT2026001货款"):
        result = match_bank_line(line("80000", memo=memo, payer="代付公司"), LEDGER)
        assert result.step is MatchStep.CONTRACT_NUMBER, memo


def test_step1_pattern_is_configurable_with_a_named_group() -> None:
    config = MatchConfig(contract_pattern=r"合同(?P<number>[0-9]{7})")
    ledger = replace(LEDGER, contracts=(replace(HT2026001, number="2026001"),))
    result = match_bank_line(line("80000", memo="合同2026001 货款", payer="代付公司"), ledger, config)
    assert result.step is MatchStep.CONTRACT_NUMBER
    assert contract_numbers_in_memo("合同2026001，合同2026002", config.contract_pattern) == [
        "2026001",
        "2026002",
    ]


# --- step 2: payer name + one receivable with exactly that outstanding -----------------------------------


def test_step2_payer_name_and_exact_amount_within_60_days() -> None:
    result = match_bank_line(line("50000", payer="杭州云栖科技 有限公司", on=date(2026, 12, 20)), LEDGER)
    assert result.step is MatchStep.PAYER_EXACT_AMOUNT
    assert result.allocations == (Allocation(INSTALMENT_2.id, D("50000")),)
    assert result.customer_id == YUNQI.id


def test_step2_the_60_day_window_is_inclusive_and_stops_there() -> None:
    due = INSTALMENT_2.due_on  # 2027-01-10
    inside = match_bank_line(line("50000", on=date(2026, 11, 11)), LEDGER)  # 60 days before
    outside = match_bank_line(line("50000", on=date(2026, 11, 10)), LEDGER)  # 61 days before
    assert (due - date(2026, 11, 11)).days == 60
    assert inside.step is MatchStep.PAYER_EXACT_AMOUNT
    assert outside.step is MatchStep.UNMATCHED
    assert outside.candidates[0] == INSTALMENT_2.id
    late = match_bank_line(line("50000", on=date(2027, 3, 12)), LEDGER)  # 61 days after
    assert late.step is MatchStep.UNMATCHED


def test_step2_two_receivables_with_the_same_amount_are_not_guessed() -> None:
    twin = OpenReceivable(103, HT2026001.id, date(2026, 12, 20), D("50000"))
    ledger = replace(LEDGER, receivables=(*LEDGER.receivables, twin))
    result = match_bank_line(line("50000"), ledger)
    assert result.step is MatchStep.UNMATCHED  # not step 2, and a single item is not a step-3 "set"
    assert set(result.candidates[:2]) == {INSTALMENT_2.id, twin.id}


def test_step2_two_customers_with_the_same_normalised_name_are_not_guessed() -> None:
    lookalike = CustomerRef(3, "杭州云栖科技股份有限公司")
    ledger = replace(LEDGER, customers=(*LEDGER.customers, lookalike))
    result = match_bank_line(line("50000"), ledger)
    assert result.step is MatchStep.UNMATCHED
    assert result.customer_id is None


def test_step2_unknown_payer_matches_nothing() -> None:
    result = match_bank_line(line("50000", payer="温州某某实业有限公司"), LEDGER)
    assert result.step is MatchStep.UNMATCHED
    assert result.candidates == (INSTALMENT_2.id,)  # the amount alone still makes it a candidate


# --- step 3: a set of at most 5 receivables of the customer sums to the amount ---------------------------

_CUSTOMER = CustomerRef(5, "温州瓯江机械有限公司")
_CONTRACT = ContractRef(50, "HT2026050", customer_id=_CUSTOMER.id)


def _customer_with(amounts: list[str]) -> Ledger:
    receivables = tuple(
        OpenReceivable(500 + i, _CONTRACT.id, date(2026, 7, 1) + timedelta(days=i), D(a))
        for i, a in enumerate(amounts)
    )
    return Ledger((_CUSTOMER, YUNQI), (_CONTRACT, HT2026001), (*receivables, *LEDGER.receivables))


def test_step3_five_receivables_summing_exactly() -> None:
    ledger = _customer_with(["11000", "12000", "13000", "14000", "15000", "99999"])
    result = match_bank_line(line("65000", payer="温州瓯江机械有限公司"), ledger)
    assert result.step is MatchStep.PAYER_SUBSET_SUM
    assert [a.receivable_id for a in result.allocations] == [500, 501, 502, 503, 504]
    assert sum(a.amount for a in result.allocations) == D("65000")
    assert all(
        a.amount == r.outstanding for a, r in zip(result.allocations, ledger.receivables, strict=False)
    )


def test_step3_six_receivables_are_too_many() -> None:
    ledger = _customer_with(["10000"] * 6)
    result = match_bank_line(line("60000", payer="温州瓯江机械有限公司"), ledger)
    assert result.step is MatchStep.UNMATCHED
    assert len(result.candidates) == 3


def test_step3_prefers_the_set_with_the_earliest_due_receivables() -> None:
    # 10k+40k and 20k+30k both make 50k; the set holding the earliest due one wins
    ledger = _customer_with(["10000", "20000", "30000", "40000"])
    result = match_bank_line(line("50000", payer="温州瓯江机械有限公司"), ledger)
    assert result.step is MatchStep.PAYER_SUBSET_SUM
    assert [a.receivable_id for a in result.allocations] == [500, 503]


def test_step3_is_deterministic_whatever_the_input_order() -> None:
    ledger = _customer_with(["10000", "20000", "30000", "40000"])
    shuffled = replace(ledger, receivables=tuple(reversed(ledger.receivables)))
    line_ = line("50000", payer="温州瓯江机械有限公司")
    assert match_bank_line(line_, ledger) == match_bank_line(line_, shuffled)


def test_step3_amounts_are_exact_to_the_fen() -> None:
    ledger = _customer_with(["0.10", "0.20"])
    assert (
        match_bank_line(line("0.30", payer="温州瓯江机械有限公司"), ledger).step is MatchStep.PAYER_SUBSET_SUM
    )
    assert match_bank_line(line("0.31", payer="温州瓯江机械有限公司"), ledger).step is MatchStep.UNMATCHED


def test_step3_stays_fast_for_a_customer_with_many_receivables() -> None:
    # nothing sums to ¥1,000,000, so every set of up to 5 is tried: bounded to the 30 earliest due
    ledger = _customer_with([str(1000 + 7 * i) for i in range(200)])
    started = time.perf_counter()
    result = match_bank_line(line("1000000", payer="温州瓯江机械有限公司"), ledger)
    assert result.step is MatchStep.UNMATCHED
    assert time.perf_counter() - started < 5


# --- step 4: unmatched, with candidates for finance ------------------------------------------------------


def test_step4_ranks_up_to_three_candidates_by_evidence() -> None:
    ledger = _customer_with(["33000", "47000", "5000", "9000"])
    # payer is the customer, no subset sums to 46,000; closest amounts first
    result = match_bank_line(line("46000", payer="温州瓯江机械有限公司"), ledger)
    assert result.step is MatchStep.UNMATCHED
    assert result.customer_id == _CUSTOMER.id
    assert result.candidates == (501, 500, 503)


def test_step4_memo_and_payer_evidence_outrank_amount_alone() -> None:
    ledger = _customer_with(["90000"])
    result = match_bank_line(line("160000", memo="HT2026001", payer="杭州云栖科技"), ledger)
    assert result.step is MatchStep.UNMATCHED
    # both instalments are named by memo and payer (closer amount first); the other customer's ¥90,000 is not
    assert result.candidates == (INSTALMENT_1.id, INSTALMENT_2.id)


def test_step4_no_evidence_at_all_means_no_candidates() -> None:
    result = match_bank_line(line("777.77", payer="不认识的公司"), LEDGER)
    assert result.step is MatchStep.UNMATCHED
    assert result.candidates == ()


def test_a_debit_zero_or_sub_fen_line_is_never_applied() -> None:
    for amount in ("0", "-120000", "50000.001"):
        result = match_bank_line(line(amount, memo="HT2026001"), LEDGER)
        assert result.step is MatchStep.UNMATCHED
        assert result.allocations == ()


def test_receivables_already_paid_are_ignored() -> None:
    paid = replace(INSTALMENT_1, outstanding=D("0"))
    ledger = replace(LEDGER, receivables=(paid, INSTALMENT_2))
    result = match_bank_line(line("50000", memo="HT2026001"), ledger)
    assert result.allocations == (Allocation(INSTALMENT_2.id, D("50000")),)
