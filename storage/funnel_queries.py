"""Stage-history intervals for the funnel heatmap, loaded set-based for a group of reps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from domain.funnel import StageInterval
from storage.sales import Opportunity, StageChange


def stage_intervals(session: Session, reps: Iterable[str], start: datetime, end: datetime,
                    stages: Iterable[str] | None = None) -> list[StageInterval]:
    """Every stay in a stage of the reps' opportunities that overlaps [start, end) (only in ``stages``
    when given), ordered by opportunity and time."""
    return [iv for ivs in stage_intervals_by_rep(session, reps, start, end, stages).values() for iv in ivs]


def stage_intervals_by_rep(session: Session, reps: Iterable[str], start: datetime, end: datetime,
                           stages: Iterable[str] | None = None) -> dict[str, list[StageInterval]]:
    """``stage_intervals`` grouped by rep, for many reps (e.g. every manager's team) in one query: the end
    of each stay is the opportunity's next stage change before ``end`` (LEAD() in SQL), so only the stays
    that overlap the week leave the database."""
    reps = list(dict.fromkeys(reps))
    if not reps:
        return {}
    sc, o = StageChange.__table__, Opportunity.__table__
    left = func.lead(sc.c.at, type_=sc.c.at.type).over(partition_by=sc.c.opportunity_id, order_by=(sc.c.at, sc.c.id))
    stays = (select(o.c.owner_userid.label("rep"), sc.c.opportunity_id, sc.c.to_stage, sc.c.at,
                    left.label("left_at"), sc.c.id)
             .join(o, o.c.id == sc.c.opportunity_id)
             .where(o.c.owner_userid.in_(reps), sc.c.at < end)).subquery()
    q = (select(stays.c.rep, stays.c.opportunity_id, stays.c.to_stage, stays.c.at, stays.c.left_at)
         .where(or_(stays.c.left_at.is_(None), stays.c.left_at >= start))
         .order_by(stays.c.opportunity_id, stays.c.at, stays.c.id))
    if stages is not None:
        q = q.where(stays.c.to_stage.in_(list(stages)))
    out: dict[str, list[StageInterval]] = {}
    for rep, opp_id, stage, at, left_at in session.execute(q).all():  # one fetch, not a fetchone a row
        out.setdefault(rep, []).append(StageInterval(rep, str(opp_id), stage, at, left_at))
    return out
