"""Bank statement matching (PRODUCT.md §2.2): store lines once (unique on account + transaction id),
match each new one in the four steps, apply it to receivables, mark promises kept, tell the rep, and
emit the "payment received" event; lines that match nothing go to finance as a card."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Card, Text, button_card
from bot.outbox import enqueue
from domain import bank_matching as BM
from domain.money import format_yuan
from domain.names import normalise_company_name
from domain.promises import promise_keeping
from integrations.bank import BankError, Line, fetch_pages
from jobs.registry import job
from storage.models import Member
from storage.payments import Allocation, BankLine, Contract, PaymentEvent, Promise, Receivable
from storage.sales import Customer
from storage.settings import get_setting, set_setting

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def ingest(rt: Runtime, lines: Iterable[Line], source: str) -> tuple[int, int]:
    """Store new lines; (added, already there). Importing the same line twice changes nothing."""
    added = dup = 0
    with rt.db.transaction() as s:
        for line in lines:
            exists = s.scalar(select(BankLine.id).where(BankLine.account == line.account,
                                                        BankLine.transaction_id == line.transaction_id))
            if exists is not None:
                dup += 1
                continue
            try:
                with s.begin_nested():
                    s.add(BankLine(account=line.account, transaction_id=line.transaction_id, booked_on=line.booked_on,
                                   amount=line.amount, payer_name=line.payer_name, memo=line.memo, source=source))
                    s.flush()
                added += 1
            except IntegrityError:
                dup += 1
    return added, dup


def _ledger(s: Session, line: BankLine, pattern: str) -> BM.Ledger:
    """Only what this line could match: contracts named in the memo, customers named by the payer."""
    numbers = BM.contract_numbers_in_memo(line.memo, pattern)
    contracts = list(s.scalars(select(Contract).where(Contract.number.in_(numbers)))) if numbers else []
    key = normalise_company_name(line.payer_name) if line.payer_name else ""
    customers = list(s.scalars(select(Customer).where(Customer.name_key == key))) if key else []
    customer_ids = {c.id for c in customers} | {c.customer_id for c in contracts}
    if customer_ids:
        contracts = list({c.id: c for c in [*contracts, *s.scalars(
            select(Contract).where(Contract.customer_id.in_(customer_ids)))]}.values())
        customers = list(s.scalars(select(Customer).where(Customer.id.in_(customer_ids))))
    receivables = list(s.scalars(select(Receivable).where(Receivable.contract_id.in_([c.id for c in contracts]),
                                                          Receivable.outstanding > 0))) if contracts else []
    return BM.Ledger(
        customers=[BM.CustomerRef(c.id, c.name) for c in customers],
        contracts=[BM.ContractRef(c.id, c.number, c.customer_id) for c in contracts],
        receivables=[BM.OpenReceivable(r.id, r.contract_id, r.collectible_on or r.due_on, r.outstanding)
                     for r in receivables])


def match_pending(rt: Runtime) -> dict[str, int]:
    from jobs.incentives import consume_payment_events

    """Match every stored line not yet decided; one transaction per line."""
    config = BM.MatchConfig(contract_pattern=str(rt.config.get("payments.contract_pattern")))
    counts = {"matched": 0, "unmatched": 0}
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(BankLine.id).where(BankLine.status == "new").order_by(BankLine.id)))
    for line_id in ids:
        with rt.db.transaction() as s:
            line = s.scalar(select(BankLine).where(BankLine.id == line_id).with_for_update())
            if line is None or line.status != "new":
                continue
            result = BM.match_bank_line(
                BM.BankLine(line.account, line.transaction_id, line.booked_on, line.amount, line.payer_name,
                            line.memo), _ledger(s, line, config.contract_pattern), config)
            line.match_step = int(result.step)
            if result.matched:
                apply(s, line, [(a.receivable_id, a.amount) for a in result.allocations])
                consume_payment_events(rt, s)  # the bonus is credited and announced at once
                counts["matched"] += 1
            else:
                line.status = "unmatched"
                _finance_card(s, line, list(result.candidates))
                counts["unmatched"] += 1
    return counts


def apply(s: Session, line: BankLine, allocations: list[tuple[int, Decimal]]) -> None:
    """Apply parts of ``line`` to receivables; promises kept; the rep told; payment events emitted."""
    line.status = "matched"
    told: dict[str, list[str]] = {}
    for receivable_id, amount in allocations:
        r = s.get(Receivable, receivable_id)
        if r is None:
            continue
        contract = s.get(Contract, r.contract_id)
        assert contract is not None
        amount = min(amount, r.outstanding)
        if amount <= 0:
            continue
        alloc = Allocation(bank_line_id=line.id, receivable_id=r.id, amount=amount)
        s.add(alloc)
        s.flush()
        r.outstanding = r.outstanding - amount
        if r.outstanding == 0:
            r.paid_on = line.booked_on
        s.add(PaymentEvent(kind="received", allocation_id=alloc.id, rep_userid=contract.owner_userid,
                           customer_id=contract.customer_id, contract_id=contract.id, amount=amount,
                           received_on=line.booked_on))
        _keep_promises(s, r, contract, line.booked_on)
        told.setdefault(contract.owner_userid, []).append(M.PAYMENT_LINE.format(
            subject=f"{contract.number} 第{r.seq}期", amount=format_yuan(amount),
            state=M.PAYMENT_PAID if r.outstanding == 0 else M.PAYMENT_PARTIAL.format(left=format_yuan(r.outstanding))))
    for rep, lines in told.items():
        enqueue(s, rep, Text(M.PAYMENT_RECEIVED.format(day=line.booked_on.isoformat(), payer=line.payer_name or "-",
                                                       amount=format_yuan(line.amount)) + "\n" + "\n".join(lines)))


def _keep_promises(s: Session, r: Receivable, contract: Contract, received_on: date) -> None:
    """Open promises on this instalment (or on its customer without one) are kept, on time or late."""
    q = select(Promise).where(Promise.kept.is_(None), Promise.customer_id == contract.customer_id)
    for p in s.scalars(q.order_by(Promise.promised_on)):
        if p.receivable_id not in (None, r.id):
            continue
        if p.receivable_id is None and r.outstanding > 0:
            continue  # a customer-level promise is kept once the instalment is paid
        p.kept = promise_keeping(p.promised_on, received_on).value
        p.kept_on = received_on


def _finance_card(s: Session, line: BankLine, candidates: list[int]) -> None:
    rows = []
    buttons = []
    for rid in candidates[:3]:
        r = s.get(Receivable, rid)
        contract = s.get(Contract, r.contract_id) if r else None
        if r is None or contract is None:
            continue
        customer = s.get(Customer, contract.customer_id)
        label = f"{contract.number} 第{r.seq}期"
        rows.append((label, f"{customer.name if customer else ''} 未收 {format_yuan(r.outstanding)}"))
        buttons.append((f"确认 {label}"[:12], f"confirm:{rid}", 1))
    buttons.append(("忽略", "ignore", 2))
    card = button_card(M.BANK_CARD_TITLE, M.BANK_CARD_DESC.format(day=line.booked_on.isoformat(),
                                                                  amount=format_yuan(line.amount),
                                                                  payer=line.payer_name or "-"),
                       buttons, rows=[("摘要", line.memo[:40] or "-"), *rows], quote=None if rows else M.BANK_NO_CANDIDATES)
    for m in s.scalars(select(Member).where(Member.active.is_(True))):
        if "finance" in (m.roles or []):
            enqueue(s, m.userid, Card("bank_unmatched", card, {"bank_line_id": line.id}),
                    dedup_key=f"bank-card:{line.id}:{m.userid}")


@job("bank_poll", "fetch new bank lines from the connector and match them")
def bank_poll(rt: Runtime) -> str:
    settings = rt.config.section("integrations.bank")
    fetched = 0
    if settings.get("enabled") and settings.get("base_url"):
        with rt.db.sessions() as s:
            cursor = get_setting(s, "bank_cursor", None)
        try:
            for lines, next_cursor in fetch_pages(settings, cursor):
                fetched += ingest(rt, lines, "api")[0]
                with rt.db.transaction() as s:
                    set_setting(s, "bank_cursor", next_cursor, "bank_poll")
        except BankError as exc:
            log.warning("bank connector failed; will catch up next run", extra={"error": str(exc)})
            raise RuntimeError(f"bank connector failed: {exc}") from None
    counts = match_pending(rt)
    return f"{fetched} new lines, {counts['matched']} matched, {counts['unmatched']} to finance"
