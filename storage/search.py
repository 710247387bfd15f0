"""Archive search with the database's own index: FTS5 trigram on SQLite, pg_trgm on PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from storage.models import InboundMessage


@dataclass(frozen=True)
class Hit:
    id: int
    from_user: str
    sent_at: datetime
    content: str
    customer_id: int | None


def search_messages(s: Session, keyword: str, *, owners: set[str] | None, owned_customers: set[int] | None,
                    customer_id: int | None = None, since: datetime | None = None, until: datetime | None = None,
                    limit: int = 10) -> list[Hit]:
    """Messages containing ``keyword``, newest first, within what the asker may see.

    ``owners``/``owned_customers`` None: everything (admins); otherwise messages sent by those members
    or about those customers.
    """
    q = select(InboundMessage.id, InboundMessage.from_user, InboundMessage.sent_at, InboundMessage.content,
               InboundMessage.customer_id)
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        # Plan this search for its own keyword. psycopg prepares a statement run five times, and a plan
        # cached for any keyword cannot tell a two-character word (no trigram: walk the newest messages)
        # from a rare phrase (the trigram index): a rep's sixth search took seconds instead of milliseconds.
        s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if dialect == "sqlite" and len(keyword) >= 3:
        phrase = '"' + keyword.replace('"', '""') + '"'
        ids = select(text("rowid")).select_from(text("inbound_fts")).where(text("inbound_fts MATCH :phrase"))
        q = q.where(InboundMessage.id.in_(ids)).params(phrase=phrase)
    else:
        escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        column = InboundMessage.content
        q = q.where(column.ilike(f"%{escaped}%", escape="\\") if dialect == "postgresql"
                    else column.like(f"%{escaped}%", escape="\\"))
    if owners is not None:
        conditions = [InboundMessage.from_user.in_(owners)]
        if owned_customers:
            conditions.append(InboundMessage.customer_id.in_(owned_customers))
        q = q.where(or_(*conditions))
    if customer_id is not None:
        q = q.where(InboundMessage.customer_id == customer_id)
    if since is not None:
        q = q.where(InboundMessage.sent_at >= since)
    if until is not None:
        q = q.where(InboundMessage.sent_at < until)
    q = q.where(InboundMessage.msg_type.in_(("text", "voice"))).order_by(InboundMessage.sent_at.desc(),
                                                                        InboundMessage.id.desc()).limit(limit)
    return [Hit(*row) for row in s.execute(q).all()]
