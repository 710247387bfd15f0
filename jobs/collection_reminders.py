"""Daily: the countdown to when a payment can be chased (7, 3, 1 days, 今日可催款), then overdue
reminders every 3 days until paid. Each push is sent once (outbox dedup key per receivable and step)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.out import Text
from bot.outbox import enqueue
from domain.invoicing import reminders_due
from jobs.registry import job
from storage.payments import Contract, Receivable

if TYPE_CHECKING:
    from bot.runtime import Runtime


@job("collection_reminders", "countdown and overdue pushes for invoiced receivables")
def collection_reminders(rt: Runtime) -> str:
    today = datetime.now(rt.config.tz).date()
    sent = 0
    with rt.db.transaction() as s:
        rows = s.execute(select(Receivable, Contract).join(Contract, Contract.id == Receivable.contract_id)
                         .where(Receivable.invoiced_on.is_not(None), Receivable.collectible_on.is_not(None),
                                Receivable.outstanding > 0)).all()
        for r, contract in rows:
            assert r.invoiced_on is not None and r.collectible_on is not None
            for rem in reminders_due(invoiced_on=r.invoiced_on, due_on=r.collectible_on, today=today, sent_keys=(),
                                     subject=f"{contract.number} 第{r.seq}期"):
                if enqueue(s, contract.owner_userid, Text(rem.text), dedup_key=f"collect:{r.id}:{rem.key}"):
                    sent += 1
    return f"{sent} reminders sent"
