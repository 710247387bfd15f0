"""Daily: the countdown to when a payment can be chased (7, 3, 1 days, 今日可催款), then overdue
reminders every 3 days until paid. Each push is sent once (outbox dedup key per receivable and step)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.out import Out, Text
from bot.outbox import enqueue_many
from domain.invoicing import reminders_due
from jobs.registry import job
from storage.payments import Contract, Receivable

if TYPE_CHECKING:
    from bot.runtime import Runtime


CHUNK = 2000


@job("collection_reminders", "countdown and overdue pushes for invoiced receivables")
def collection_reminders(rt: Runtime) -> str:
    """A chunk of instalments at a time, each in its own transaction (memory stays bounded; a rerun after
    a crash sends only what is missing, by the dedup keys)."""
    today = datetime.now(rt.config.tz).date()
    due = (Receivable.invoiced_on.is_not(None), Receivable.collectible_on.is_not(None), Receivable.outstanding > 0)
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(Receivable.id).where(*due).order_by(Receivable.id)))
    sent = 0
    for start in range(0, len(ids), CHUNK):
        with rt.db.transaction() as s:
            rows = s.execute(select(Receivable, Contract).join(Contract, Contract.id == Receivable.contract_id)
                             .where(Receivable.id.in_(ids[start:start + CHUNK]), *due)).all()
            items: list[tuple[str, Out, str]] = []
            for r, contract in rows:
                assert r.invoiced_on is not None and r.collectible_on is not None
                for rem in reminders_due(invoiced_on=r.invoiced_on, due_on=r.collectible_on, today=today,
                                         sent_keys=(), subject=f"{contract.number} 第{r.seq}期"):
                    items.append((contract.owner_userid, Text(rem.text), f"collect:{r.id}:{rem.key}"))
            sent += enqueue_many(s, items)
    return f"{sent} reminders sent"
