"""The stage-gate engine over the database: evidence, missing items, moves, pending moves.

Used by the chat handlers (推进, 拜访 and their dialogs) and by the upload page; replies are
returned as text so each caller says them its own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages as M
from domain.gates import GateConfig, Item, missing_items, missing_text
from domain.stages import DEFAULT_PIPELINE, LOST, is_closed, is_forward, stage_name
from storage.models import Member
from storage.pipeline import record_move
from storage.sales import Customer, Evidence, Opportunity, Submission


def required_for_move(config: GateConfig, current: str, target: str) -> list[Item]:
    """Items of every stage entered on the way from ``current`` (exclusive) to ``target`` (inclusive)."""
    if target == LOST:
        return []
    lo, hi = DEFAULT_PIPELINE.get(current).rank, DEFAULT_PIPELINE.get(target).rank
    passed = [s.key for s in DEFAULT_PIPELINE if lo < s.rank < hi] + [target]
    items: list[Item] = []
    for stage in passed:
        for item in config.required(stage):
            if item.key not in {i.key for i in items}:
                items.append(item)
    return items


def satisfied(session: Session, opp: Opportunity) -> set[str]:
    return set(session.scalars(select(Evidence.item).where(Evidence.opportunity_id == opp.id)))


def add_evidence(session: Session, opp: Opportunity, item: str, by: str, *, text: str | None = None,
                 attachment_id: int | None = None, visit_id: int | None = None) -> None:
    session.add(Evidence(opportunity_id=opp.id, item=item, text=text, attachment_id=attachment_id,
                         visit_id=visit_id, by_userid=by))
    if item == "contract_no" and text:
        opp.contract_no = text
    if item == "signed_amount" and text:
        from decimal import Decimal

        opp.signed_amount = Decimal(text)
    session.flush()


def missing_for(session: Session, config: GateConfig, opp: Opportunity, target: str) -> list[Item]:
    return missing_items(required_for_move(config, opp.stage, target), satisfied(session, opp))


@dataclass(frozen=True)
class MoveOutcome:
    moved: bool
    missing: list[Item]
    refusal: str | None = None  # frozen, closed, backwards: not a matter of evidence

    def text(self, opp: Opportunity, customer: Customer, from_stage: str, target: str) -> str:
        if self.refusal:
            return self.refusal
        if self.moved:
            return M.MOVE_DONE.format(id=opp.id, customer=customer.name, from_stage=stage_name(from_stage),
                                      to_stage=stage_name(target))
        return M.MOVE_MISSING.format(stage=stage_name(target), missing=missing_text(self.missing))


def refusal(opp: Opportunity, target: str) -> str | None:
    if opp.frozen:
        return M.OPP_FROZEN.format(id=opp.id, reason=opp.frozen_reason or "客户信用预警")
    if is_closed(opp.stage):
        return M.OPP_CLOSED.format(id=opp.id, stage=stage_name(opp.stage))
    if opp.stage == target:
        return M.MOVE_SAME.format(id=opp.id, stage=stage_name(target))
    if target != LOST and not is_forward(opp.stage, target):
        return M.MOVE_BACKWARD.format(current=stage_name(opp.stage), target=stage_name(target))
    return None


def attempt_move(session: Session, config: GateConfig, opp: Opportunity, target: str, actor: str,
                 now: datetime, reason: str = "") -> MoveOutcome:
    """Move now when every item is there; otherwise remember the wish (pending) and say what is missing."""
    why_not = refusal(opp, target)
    if why_not:
        return MoveOutcome(False, [], why_not)
    missing = missing_for(session, config, opp, target)
    log_submission(session, actor, "move", [i.name for i in missing])
    if missing:
        opp.pending_stage = target
        opp.pending_by = actor
        return MoveOutcome(False, missing)
    record_move(session, opp, target, now, actor=actor, reason=reason or "手动推进")
    return MoveOutcome(True, [])


def complete_pending(session: Session, config: GateConfig, opp: Opportunity, now: datetime) -> bool:
    """Finish a pending move whose last item just arrived. True when it moved."""
    target = opp.pending_stage
    if not target or refusal(opp, target) or missing_for(session, config, opp, target):
        return False
    record_move(session, opp, target, now, actor=opp.pending_by, reason="证据补齐后自动完成")
    return True


def log_submission(session: Session, userid: str, kind: str, missing: list[str]) -> None:
    member = session.scalar(select(Member).where(Member.userid == userid))
    team = (member.manager_userid or member.userid) if member else userid
    session.add(Submission(userid=userid, team=team, kind=kind, accepted=not missing, missing=missing))
