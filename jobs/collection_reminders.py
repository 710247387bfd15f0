"""Daily: the countdown to when a payment can be chased (7, 3, 1 days, 今日可催款), then overdue
reminders every 3 days until paid. Each push is sent once (outbox dedup key per receivable and step)."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.outbox import enqueue_texts
from domain.invoicing import WITH_SUBJECT, Reminder, reminders_due
from jobs.registry import job
from storage.payments import Contract, Receivable

if TYPE_CHECKING:
    from bot.runtime import Runtime


CHUNK = 5000


@job("collection_reminders", "countdown and overdue pushes for invoiced receivables")
def collection_reminders(rt: Runtime) -> str:
    """A chunk of 5,000 instalments at a time (by id), each in its own transaction: one query for the chunk's
    instalments and contracts, the pushes decided by ``domain.invoicing.reminders_due``, one insert of
    the new outbox rows that skips keys already queued (memory stays bounded; a rerun after a crash
    sends only what is missing, by the dedup keys)."""
    today = datetime.now(rt.config.tz).date()

    # The plan and its texts depend only on (invoice date, due date) for a given day: decide once per
    # pair (a few hundred pairs for tens of thousands of instalments), then add each one's subject.
    @lru_cache(maxsize=4096)
    def plan(invoiced_on: date, due_on: date) -> tuple[Reminder, ...]:
        return tuple(reminders_due(invoiced_on=invoiced_on, due_on=due_on, today=today, sent_keys=()))

    query = (select(Receivable.id, Receivable.seq, Receivable.invoiced_on, Receivable.collectible_on,
                    Contract.number, Contract.owner_userid)
             .join(Contract, Contract.id == Receivable.contract_id)
             .where(Receivable.invoiced_on.is_not(None), Receivable.collectible_on.is_not(None),
                    Receivable.outstanding > 0)
             .order_by(Receivable.id).limit(CHUNK))
    sent = after = 0
    while True:
        with rt.db.transaction() as s:
            rows = s.connection().execute(query.where(Receivable.id > after)).all()  # Core rows: no ORM
            if not rows:
                break
            items: list[tuple[str, str, str]] = []
            for rid, seq, invoiced_on, collectible_on, number, owner in rows:
                for rem in plan(invoiced_on, collectible_on):
                    # reminders_due's text with the subject 【HT… 第N期】, as it renders it
                    items.append((owner, WITH_SUBJECT.format(subject=f"{number} 第{seq}期", text=rem.text),
                                  f"collect:{rid}:{rem.key}"))
            sent += enqueue_texts(s, items)
        after = rows[-1][0]
    return f"{sent} reminders sent"
