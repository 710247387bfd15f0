"""Writing a stage move: the opportunity's stage and the history row, together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, update
from sqlalchemy.orm import Session

from storage.sales import Opportunity, StageChange

CLOSED = ("won", "lost")


def record_move(session: Session, opp: Opportunity, to_stage: str, at: datetime, *, actor: str | None = None,
                rule: str | None = None, reason: str = "") -> StageChange:
    """Move ``opp`` to ``to_stage`` and record who (actor) or what (rule) moved it and why."""
    change = StageChange(opportunity_id=opp.id, from_stage=opp.stage, to_stage=to_stage, at=at, actor=actor,
                         rule=rule, reason=reason)
    session.add(change)
    opp.stage = to_stage
    opp.stage_entered_at = at
    opp.pending_stage = None
    opp.pending_by = None
    if to_stage in CLOSED:
        opp.closed_at = at
    session.flush()
    return change


@dataclass(frozen=True)
class StageMove:
    """One move for ``record_moves``: the opportunity (by id) was in ``from_stage``."""

    opportunity_id: int
    from_stage: str | None
    to_stage: str
    at: datetime
    actor: str | None = None
    rule: str | None = None
    reason: str = ""


def record_moves(session: Session, moves: Sequence[StageMove]) -> None:
    """``record_move`` for many opportunities at once, without loading them: one multi-row insert of the
    history rows and one executemany update of the opportunities (same columns as ``record_move``).

    The caller has made sure each opportunity is still in ``from_stage`` (e.g. read it FOR UPDATE); ORM
    objects of these opportunities already in ``session`` are not refreshed."""
    if not moves:
        return
    session.execute(StageChange.__table__.insert(), [
        {"opportunity_id": m.opportunity_id, "from_stage": m.from_stage, "to_stage": m.to_stage, "at": m.at,
         "actor": m.actor, "rule": m.rule, "reason": m.reason} for m in moves])
    t = Opportunity.__table__
    session.execute(
        update(t).where(t.c.id == bindparam("b_id")).values(
            stage=bindparam("b_stage"), stage_entered_at=bindparam("b_at", type_=t.c.stage_entered_at.type),
            pending_stage=None, pending_by=None,
            closed_at=func.coalesce(bindparam("b_closed", type_=t.c.closed_at.type), t.c.closed_at)),
        [{"b_id": m.opportunity_id, "b_stage": m.to_stage, "b_at": m.at,
          "b_closed": m.at if m.to_stage in CLOSED else None} for m in moves])
