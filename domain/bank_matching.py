"""Match a bank credit to open receivables, in the four steps of PRODUCT.md §2.2.

1. contract number in the memo → that contract's open receivables, earliest due first (full or partial);
2. payer name → one customer, and exactly one of its receivables has outstanding == amount, due ±60 days;
3. payer name → one customer, and 2 to 5 of its receivables sum exactly to the amount;
4. otherwise unmatched, with up to 3 ranked candidates for the finance card.
Amounts are Decimal; the search for step 3 runs on integer fen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import IntEnum
from functools import lru_cache

from domain.names import normalise_company_name, to_halfwidth

DEFAULT_CONTRACT_PATTERN = r"[A-Z]{1,6}-?[0-9]{4,}(?:-[0-9]+)*"
_CENT = Decimal("0.01")


class MatchStep(IntEnum):
    """Which rule decided: 1 contract number, 2 payer + exact amount, 3 payer + subset sum, 4 none."""

    CONTRACT_NUMBER = 1
    PAYER_EXACT_AMOUNT = 2
    PAYER_SUBSET_SUM = 3
    UNMATCHED = 4


@dataclass(frozen=True)
class BankLine:
    """One credit on a bank statement."""

    account: str
    transaction_id: str
    booked_on: date
    amount: Decimal
    payer_name: str
    memo: str

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the line: (account, transaction id); importing the same key twice changes nothing."""
        return (self.account, self.transaction_id)


@dataclass(frozen=True)
class CustomerRef:
    """A customer as matching sees it."""

    id: int
    name: str


@dataclass(frozen=True)
class ContractRef:
    """A contract as matching sees it: its number and whose it is."""

    id: int
    number: str
    customer_id: int


@dataclass(frozen=True)
class OpenReceivable:
    """A receivable (contract instalment) with money still outstanding (> 0)."""

    id: int
    contract_id: int
    due_on: date
    outstanding: Decimal


@dataclass(frozen=True)
class Ledger:
    """What a line is matched against: customers, contracts, and the open receivables of those contracts."""

    customers: Sequence[CustomerRef]
    contracts: Sequence[ContractRef]
    receivables: Sequence[OpenReceivable]


@dataclass(frozen=True)
class MatchConfig:
    """Tunable parts of matching (defaults from the spec).

    ``contract_pattern`` is searched in the memo after half-width conversion and upper-casing; a named
    group ``number`` is used when present, else the whole match. ``subset_search_limit`` bounds step 3
    to the customer's earliest-due receivables so that a customer with hundreds of them stays fast.
    """

    contract_pattern: str = DEFAULT_CONTRACT_PATTERN
    date_window_days: int = 60
    max_subset_size: int = 5
    max_candidates: int = 3
    subset_search_limit: int = 30


@dataclass(frozen=True)
class Allocation:
    """``amount`` of the line applied to receivable ``receivable_id``."""

    receivable_id: int
    amount: Decimal


@dataclass(frozen=True)
class MatchResult:
    """The decision for one line.

    Matched (steps 1–3): ``allocations`` sum exactly to the line amount. Unmatched (step 4):
    no allocations, ``candidates`` = up to ``max_candidates`` receivable ids, most plausible first.
    ``contract_id`` / ``customer_id`` say what the memo / payer name identified, when anything.
    """

    step: MatchStep
    allocations: tuple[Allocation, ...] = ()
    candidates: tuple[int, ...] = ()
    contract_id: int | None = None
    customer_id: int | None = None

    @property
    def matched(self) -> bool:
        """True for steps 1–3."""
        return self.step is not MatchStep.UNMATCHED


def contract_numbers_in_memo(memo: str, pattern: str = DEFAULT_CONTRACT_PATTERN) -> list[str]:
    """Every contract-number-looking token of the memo, normalised (half-width, upper case), in order."""
    regex = _compiled(pattern)
    text = to_halfwidth(memo).upper()
    found: list[str] = []
    for m in regex.finditer(text):
        token = m.group("number") if "number" in regex.groupindex else m.group(0)
        found.append(_normalise_number(token))
    return found


def match_bank_line(line: BankLine, ledger: Ledger, config: MatchConfig | None = None) -> MatchResult:
    """Apply the four steps of §2.2 in order and return the first that decides (see the module doc).

    A line with amount ≤ 0 or finer than a fen is unmatched with no candidates.
    Step 1 needs exactly one known contract named in the memo and 0 < amount ≤ its outstanding total.
    Steps 2–3 need exactly one customer whose normalised name equals the normalised payer name.
    Step 3 considers subsets of 2…max_subset_size receivables (a single one is step 2's business, with
    its uniqueness and date rules) and picks the lexicographically first subset of the receivables in
    (due_on, id) order — i.e. it prefers the earliest due.
    """
    cfg = config or MatchConfig()
    if line.amount <= 0 or line.amount != line.amount.quantize(_CENT):
        # a debit, a zero line or a sub-fen amount is a feed problem for a person, not a guess
        return MatchResult(MatchStep.UNMATCHED)
    contracts = {c.id: c for c in ledger.contracts}
    receivables_by_contract: dict[int, list[OpenReceivable]] = {}
    for r in sorted(ledger.receivables, key=_due_order):
        if r.outstanding > 0 and r.contract_id in contracts:
            receivables_by_contract.setdefault(r.contract_id, []).append(r)

    named_contracts = _contracts_named(line.memo, ledger.contracts, cfg.contract_pattern)
    if len(named_contracts) == 1:
        (contract_id,) = named_contracts
        open_ones = receivables_by_contract.get(contract_id, [])
        if line.amount <= sum((r.outstanding for r in open_ones), Decimal(0)):
            return MatchResult(
                MatchStep.CONTRACT_NUMBER,
                allocations=_earliest_due_first(open_ones, line.amount),
                contract_id=contract_id,
                customer_id=contracts[contract_id].customer_id,
            )

    payer_customers = _customers_named(line.payer_name, ledger.customers)
    if len(payer_customers) == 1:
        (customer_id,) = payer_customers
        own = [
            r
            for cid, rs in receivables_by_contract.items()
            if contracts[cid].customer_id == customer_id
            for r in rs
        ]
        own.sort(key=_due_order)
        exact = [
            r
            for r in own
            if r.outstanding == line.amount and abs((r.due_on - line.booked_on).days) <= cfg.date_window_days
        ]
        if len(exact) == 1:
            return MatchResult(
                MatchStep.PAYER_EXACT_AMOUNT,
                allocations=(Allocation(exact[0].id, line.amount),),
                customer_id=customer_id,
            )
        subset = _first_exact_subset(
            own[: cfg.subset_search_limit], line.amount, min_size=2, max_size=cfg.max_subset_size
        )
        if subset is not None:
            return MatchResult(
                MatchStep.PAYER_SUBSET_SUM,
                allocations=tuple(Allocation(r.id, r.outstanding) for r in subset),
                customer_id=customer_id,
            )

    return MatchResult(
        MatchStep.UNMATCHED,
        candidates=_candidates(line, ledger, contracts, receivables_by_contract, named_contracts, cfg),
        contract_id=next(iter(named_contracts)) if len(named_contracts) == 1 else None,
        customer_id=next(iter(payer_customers)) if len(payer_customers) == 1 else None,
    )


def outstanding_after(
    receivables: Iterable[OpenReceivable], allocations: Iterable[Allocation]
) -> dict[int, Decimal]:
    """Outstanding per receivable id once ``allocations`` are applied: outstanding − Σ allocated."""
    left = {r.id: r.outstanding for r in receivables}
    for a in allocations:
        left[a.receivable_id] = left[a.receivable_id] - a.amount
    return left


def _due_order(r: OpenReceivable) -> tuple[date, int]:
    return (r.due_on, r.id)


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=65536)
def _normalise_number(number: str) -> str:
    return re.sub(r"\s+", "", to_halfwidth(number)).upper()


def _contracts_named(memo: str, contracts: Sequence[ContractRef], pattern: str) -> set[int]:
    by_number: dict[str, list[int]] = {}
    for c in contracts:
        by_number.setdefault(_normalise_number(c.number), []).append(c.id)
    named: set[int] = set()
    for number in contract_numbers_in_memo(memo, pattern):
        named.update(by_number.get(number, []))
    return named


def _customers_named(payer_name: str, customers: Sequence[CustomerRef]) -> set[int]:
    payer = normalise_company_name(payer_name)
    if not payer:
        return set()
    return {c.id for c in customers if normalise_company_name(c.name) == payer}


def _earliest_due_first(receivables: Sequence[OpenReceivable], amount: Decimal) -> tuple[Allocation, ...]:
    return tuple(Allocation(rid, applied) for rid, applied in earliest_due_first(receivables, amount))


def earliest_due_first(receivables: Sequence[OpenReceivable], amount: Decimal) -> list[tuple[int, Decimal]]:
    """(receivable id, part of ``amount``) for step 1: the receivables in the order given (earliest due
    first), each taking what it has outstanding until the amount is spent."""
    allocations: list[tuple[int, Decimal]] = []
    remaining = amount
    for r in receivables:
        if remaining <= 0:
            break
        applied = min(remaining, r.outstanding)
        allocations.append((r.id, applied))
        remaining -= applied
    return allocations


def _first_exact_subset(
    receivables: Sequence[OpenReceivable], amount: Decimal, *, min_size: int, max_size: int
) -> tuple[OpenReceivable, ...] | None:
    """Depth-first in index order, so the first hit is the lexicographically smallest index tuple."""
    values = [_fen(r.outstanding) for r in receivables]
    target = _fen(amount)
    chosen: list[int] = []

    def search(start: int, remaining: int) -> bool:
        for i in range(start, len(values)):
            v = values[i]
            if v > remaining:
                continue
            chosen.append(i)
            if v == remaining:
                if len(chosen) >= min_size:
                    return True
            elif len(chosen) < max_size and search(i + 1, remaining - v):
                return True
            chosen.pop()
        return False

    if search(0, target):
        return tuple(receivables[i] for i in chosen)
    return None


def _fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _candidates(
    line: BankLine,
    ledger: Ledger,
    contracts: Mapping[int, ContractRef],
    receivables_by_contract: Mapping[int, Sequence[OpenReceivable]],
    named_contracts: set[int],
    cfg: MatchConfig,
) -> tuple[int, ...]:
    """Rank open receivables by evidence for the finance card.

    A receivable scores one point each for: its contract is named in the memo; its customer's name
    equals, contains or is contained in the payer name (normalised); its outstanding equals the amount.
    Those with at least one point are ranked by points (desc), |outstanding − amount|,
    |due − booked|, id.
    """
    payer = normalise_company_name(line.payer_name)
    customer_names = {c.id: normalise_company_name(c.name) for c in ledger.customers}

    def payer_points(customer_id: int) -> int:
        name = customer_names.get(customer_id, "")
        return int(bool(payer) and len(name) >= 2 and (name in payer or payer in name))

    scored: list[tuple[int, Decimal, int, int]] = []
    for contract_id, receivables in receivables_by_contract.items():
        customer_point = payer_points(contracts[contract_id].customer_id)
        for r in receivables:
            points = int(contract_id in named_contracts) + customer_point + int(r.outstanding == line.amount)
            if points:
                scored.append(
                    (-points, abs(r.outstanding - line.amount), abs((r.due_on - line.booked_on).days), r.id)
                )
    scored.sort()
    return tuple(s[3] for s in scored[: cfg.max_candidates])
