"""What a handler gets: the asker, the message, the open transaction and ways to answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import messages as M
from bot.inbound import Inbound
from bot.out import Out, Text
from bot.outbox import enqueue
from bot.runtime import Runtime
from storage.models import InboundMessage, Member
from storage.types import utcnow


@dataclass
class Ctx:
    rt: Runtime
    session: Session
    member: Member
    msg: Inbound
    archived: InboundMessage | None = None  # this message's archive row (tag it with its customer)
    replies: list[Out] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)  # audit_log rows, written at the end (dispatch)

    # ---- answering -------------------------------------------------------------------------

    def reply(self, out: Out | str) -> None:
        """Answer the asker (a passive reply when quick enough, else through the outbox)."""
        self.replies.append(Text(out) if isinstance(out, str) else out)

    def notify(self, userid: str, out: Out | str, *, dedup_key: str | None = None) -> None:
        """Tell someone else; delivered through the outbox when this transaction commits."""
        enqueue(self.session, userid, Text(out) if isinstance(out, str) else out, dedup_key=dedup_key)

    def about_customer(self, customer_id: int) -> None:
        """File this message under a customer in the archive (for search and its scoping)."""
        if self.archived is not None and self.archived.customer_id is None:
            self.archived.customer_id = customer_id

    def audit(self, action: str, target: str = "", **detail: Any) -> None:
        """Record who changed what; written with the message's archive row when its transaction commits."""
        self.audits.append({"at": utcnow(), "actor": self.member.userid, "action": action, "target": target,
                            "detail": detail})

    # ---- who is asking ---------------------------------------------------------------------

    @property
    def userid(self) -> str:
        return self.member.userid

    def has_role(self, *roles: str) -> bool:
        mine = set(self.member.roles or [])
        return "admin" in mine or bool(mine.intersection(roles))

    @property
    def roles_text(self) -> str:
        return role_names(self.member.roles)

    @property
    def now(self) -> datetime:
        return self.rt.now()


def role_names(roles: list[str] | None) -> str:
    return "、".join(M.ROLE_NAMES.get(r, r) for r in roles or []) or M.NONE_ROLE
