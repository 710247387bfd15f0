"""Writing a stage move: the opportunity's stage and the history row, together."""

from __future__ import annotations

from datetime import datetime

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
