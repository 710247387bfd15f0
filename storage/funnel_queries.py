"""Stage-history intervals for the funnel heatmap, loaded set-based for a group of reps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.funnel import StageInterval
from storage.sales import Opportunity, StageChange


def stage_intervals(session: Session, reps: Iterable[str], start: datetime, end: datetime) -> list[StageInterval]:
    """Every stay in a stage of the reps' opportunities that overlaps [start, end)."""
    reps = list(reps)
    if not reps:
        return []
    rows = session.execute(
        select(StageChange.opportunity_id, StageChange.to_stage, StageChange.at, Opportunity.owner_userid)
        .join(Opportunity, Opportunity.id == StageChange.opportunity_id)
        .where(Opportunity.owner_userid.in_(reps), StageChange.at < end)
        .order_by(StageChange.opportunity_id, StageChange.at, StageChange.id)
    ).all()
    intervals: list[StageInterval] = []
    for i, (opp_id, stage, at, owner) in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) and rows[i + 1][0] == opp_id else None
        left = nxt[2] if nxt is not None else None
        if left is not None and left < start:
            continue
        intervals.append(StageInterval(owner, str(opp_id), stage, at, left))
    return intervals
