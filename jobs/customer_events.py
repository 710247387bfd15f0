"""What a customer event sets off: follow-up reminders to the owner and automatic stage upgrades.

Clicks and product events are stored first (the tracked-link redirect and the webhook answer at
once); ``process_event`` then runs in the background, and the ``customer_events`` job catches any
event left unprocessed (a crash, a restart) and re-evaluates the upgrade rules periodically.
Each reminder is sent at most once per customer, item and day (outbox dedup key); each rule move at
most once per opportunity, rule and target (unique rule_firings row, inserted ON CONFLICT DO NOTHING:
a move whose row another transaction already wrote is not made again).

Everything works on chunks (issue 9: the first run on a big company moves tens of thousands of
opportunities): events ``PENDING_CHUNK`` at a time and customers ``EVALUATE_CHUNK`` at a time, each chunk
one transaction. The rules' conditions are counted in SQL, one GROUP BY per chunk (``condition_counts``,
the same counting as ``domain.rules.count_events``), the decision stays in ``domain.rules``; the writes of
a chunk are one insert of firings, one of stage history, one executemany update of the opportunities
and one ordered outbox insert. A crash loses at most the chunk in flight; its rerun decides again from
what is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import messages as M
from bot import outbox
from bot.out import Card, Out, Text, button_card
from domain import rules as R
from domain.followup import FollowUpReminder, click_reminder, product_event_reminder
from domain.health import HealthSignals, health_score, per_week
from domain.stages import stage_name
from jobs.registry import job
from storage.behaviour import CustomerEvent, LinkItem, RuleFiring, UpgradeRule
from storage.models import Member
from storage.payments import Contract, Receivable, one_of
from storage.pipeline import StageMove, record_moves
from storage.sales import Customer, Opportunity
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

COUNTED = ("link_preview",)  # event types that never count in rules
PENDING_CHUNK = 500  # events per transaction
# customers per transaction in the periodic re-check: each chunk costs ~10–15 ms of statements whatever its size
# (PostgreSQL, 100k customers: 4,000 made the re-check 2.9–3.2 s against 3.7–4.5 s with 1,000; 10,000 no faster)
EVALUATE_CHUNK = 4000
MOVE_REASON = "客户行为触发自动跃迁"


def ensure_default_rule(s: Session) -> None:
    """The built-in rule exists until an admin deletes it (then it stays deleted)."""
    if s.scalar(select(UpgradeRule.id).where(UpgradeRule.builtin == "default")) is not None:
        return
    rule = R.default_rule()
    try:
        with s.begin_nested():
            s.add(UpgradeRule(text=R.rule_text(rule), target=rule.target, created_by="system", builtin="default"))
            s.flush()
    except IntegrityError:
        pass  # a concurrent first use seeded it


def active_rules(s: Session) -> list[tuple[UpgradeRule, R.Rule]]:
    ensure_default_rule(s)
    return _parsed_rules(s)


def _parsed_rules(s: Session) -> list[tuple[UpgradeRule, R.Rule]]:
    """The active rules with what they say, without seeding the built-in one (a read)."""
    out = []
    for row in s.scalars(select(UpgradeRule).where(UpgradeRule.active.is_(True)).order_by(UpgradeRule.id)):
        try:
            out.append((row, R.parse_rule(row.text)))
        except R.RuleError:
            log.error("stored rule no longer parses", extra={"rule_id": row.id})
    return out


# ---- processing stored events -------------------------------------------------------------------


def process_event(rt: Runtime, event_id: int) -> None:
    """Remind and upgrade for one stored event; does nothing when it was already processed."""
    process_events(rt, [event_id])


def process_events(rt: Runtime, event_ids: Sequence[int]) -> tuple[int, int]:
    """``process_event`` for many events in one transaction; returns (events processed, opportunities moved).

    Events already processed are skipped, and on PostgreSQL so are events another transaction is
    processing right now (locked: it will mark them). Per event, in id order: the owner's reminder (at most
    one per customer, item and day), then — at the customer's first event of the batch — the upgrades of
    the customer's opportunities with their notices, then for product events the licensed features; each
    touched customer's health score is refreshed once, at the end. Same outcome as one event at a time:
    the rules count every stored event of the customer, so a second evaluation in the batch moves nothing.
    """
    if not event_ids:
        return 0, 0
    e = CustomerEvent.__table__
    with rt.db.transaction() as s:
        q = (select(e.c.id, e.c.customer_id, e.c.type, e.c.category, e.c.item_id, e.c.source, e.c.occurred_at,
                    e.c.data)
             .where(one_of(e.c.id, event_ids, s.get_bind().dialect), e.c.processed_at.is_(None)).order_by(e.c.id))
        if rt.db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        events = s.execute(q).all()
        if not events:
            return 0, 0
        now = utcnow()
        s.execute(update(e).where(one_of(e.c.id, [ev.id for ev in events], s.get_bind().dialect))
                  .values(processed_at=now))
        customer_ids = list(dict.fromkeys(ev.customer_id for ev in events))
        customers = {c.id: c for c in s.scalars(select(Customer).where(one_of(Customer.id, customer_ids,
                                                                                  s.get_bind().dialect)))}
        item_ids = {ev.item_id for ev in events if ev.item_id is not None}
        items: dict[int, str] = dict(s.execute(select(LinkItem.id, LinkItem.name)  # type: ignore[arg-type]
                                               .where(LinkItem.id.in_(item_ids))).all()) if item_ids else {}

        rules = active_rules(s)
        moves = apply_moves(rt, s, decide_moves(s, rules, [c for c in customer_ids if c in customers], now), now)
        notices = move_notices(s, moves)

        out: list[tuple[str, Out, str | None]] = []
        evaluated: set[int] = set()
        product: list[int] = []
        for ev in events:
            customer = customers.get(ev.customer_id)
            if customer is None:
                continue
            reminder = _reminder(rt, customer, ev, items)
            if reminder is not None:
                out.append((customer.owner_userid, Text(reminder.message), reminder.dedup_key))
            if customer.id not in evaluated:
                evaluated.add(customer.id)
                out += notices.get(customer.id, [])
            if ev.source == "product":
                licensed = (ev.data or {}).get("licensed_features")
                if isinstance(licensed, int) and not isinstance(licensed, bool) and licensed > 0:
                    customer.licensed_features = licensed
                product.append(customer.id)
        enqueue_notices(s, out)
        if product:
            refresh_health_many(rt, s, [customers[cid] for cid in dict.fromkeys(product)],
                                utcnow().astimezone(rt.config.tz).date())
        return len(events), len(moves)


# the windows of the health signals, in days (NPS and tickets 90, logins 28, features used 30)
_HEALTH_WINDOWS = {"nps": 90, "login": 28, "ticket_opened": 90, "ticket_resolved": 90, "feature_used": 30}


def health_signals_many(rt: Runtime, s: Session, customers: Sequence[Customer],
                        today: date) -> dict[int, HealthSignals]:
    """The health signals of many customers with two queries (their events of the five
    kinds in the widest window, their receivables) instead of six per customer; the same signals
    (tests/test_stage_rules_batched.py: many at once or one at a time give the same signals)."""
    ids = [c.id for c in customers]
    e = CustomerEvent.__table__
    since = {kind: datetime.combine(today - timedelta(days=days), datetime.min.time(), rt.config.tz)
             for kind, days in _HEALTH_WINDOWS.items()}
    found: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for cid, kind, at, data in s.execute(
            select(e.c.customer_id, e.c.type, e.c.occurred_at, e.c.data)
            .where(one_of(e.c.customer_id, ids, s.get_bind().dialect), e.c.type.in_(list(_HEALTH_WINDOWS)),
                   e.c.occurred_at >= min(since.values())).order_by(e.c.id)).all():
        if at >= since[kind]:
            found.setdefault((cid, kind), []).append(data or {})
    due_rows: dict[int, list[tuple[date, date | None]]] = {}
    for cid, due_on, collectible_on, paid_on in s.execute(
            select(Contract.customer_id, Receivable.due_on, Receivable.collectible_on, Receivable.paid_on)
            .join(Contract, Contract.id == Receivable.contract_id)
            .where(one_of(Contract.customer_id, ids, s.get_bind().dialect))).all():
        day = collectible_on or due_on
        if today - timedelta(days=365) <= day <= today:
            due_rows.setdefault(cid, []).append((day, paid_on))
    out = {}
    for c in customers:
        def events(kind: str, cid: int = c.id) -> list[dict[str, Any]]:
            return found.get((cid, kind), [])
        nps = [d["score"] for d in events("nps")
               if isinstance(d.get("score"), int) and not isinstance(d.get("score"), bool) and 0 <= d["score"] <= 10]
        logins, opened, resolved = events("login"), events("ticket_opened"), events("ticket_resolved")
        used = {str(d.get("feature")) for d in events("feature_used") if d.get("feature")}
        due = due_rows.get(c.id, [])
        last = c.last_contact_at
        out[c.id] = HealthSignals(
            nps_answers=nps or None,
            logins_per_week=per_week(len(logins), 28) if (logins or c.licensed_features) else None,
            tickets_opened=len(opened) if opened else None,
            tickets_resolved=len(resolved) if opened else None,
            features_licensed=c.licensed_features,
            features_used=len(used) if c.licensed_features else None,
            receivables_due=len(due) if due else None,
            receivables_paid_on_time=sum(1 for d, p in due if p is not None and p <= d) if due else None,
            days_since_last_contact=(today - last.astimezone(rt.config.tz).date()).days if last else None,
        )
    return out


def refresh_health_many(rt: Runtime, s: Session, customers: Sequence[Customer], today: date) -> None:
    """``jobs.incentives.refresh_health`` for many customers (``health_signals_many``)."""
    signals = health_signals_many(rt, s, customers, today)
    now = utcnow()
    for c in customers:
        result = health_score(signals[c.id])
        c.health_score = result.rounded
        c.health_band = result.band.value if result.band else None
        c.health_at = now


def _reminder(rt: Runtime, customer: Customer, ev: Any, items: dict[int, str]) -> FollowUpReminder | None:
    tz = rt.config.tz
    if ev.type == "link_click" and ev.item_id is not None:
        name = items.get(ev.item_id)
        if name is None:
            return None
        return click_reminder(customer_id=str(customer.id), customer_name=customer.name, item_id=str(ev.item_id),
                              item_name=name, category=ev.category, clicked_at=ev.occurred_at, tz=tz)
    if ev.source == "product":
        return product_event_reminder(customer_id=str(customer.id), customer_name=customer.name,
                                      event_type=ev.type, data=ev.data, occurred_at=ev.occurred_at, tz=tz)
    return None


def enqueue_notices(s: Session, items: Sequence[tuple[str, Out, str | None]]) -> int:
    """Queue notices in this order, keyed ones (reminders) at most once per key: ``bot.outbox.enqueue_in_order``
    (one multi-row insert per table), or ``enqueue`` one by one where that bulk helper is not available."""
    bulk = getattr(outbox, "enqueue_in_order", None)
    if bulk is not None:
        return int(bulk(s, items))
    return sum(1 for recipient, out, key in items if outbox.enqueue(s, recipient, out, dedup_key=key))


# ---- deciding and making moves ------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """An upgrade decided for an open opportunity: ``rule_id`` / ``rule_text`` moves it to ``target``."""

    opportunity_id: int
    customer_id: int
    owner_userid: str
    from_stage: str
    rule_id: int
    rule_text: str
    target: str


def condition_counts(s: Session, conditions: Sequence[R.Condition], customer_ids: Iterable[int],
                     now: datetime) -> dict[int, dict[R.Condition, int | None]]:
    """For each customer, what ``domain.rules.count_events(cond, <the customer's events>, now)`` gives for
    each condition, counted in SQL: one GROUP BY over the customers' events (link previews never count),
    with the first ``since`` event of each kind from a grouped sub-select. Customers without countable
    events get 0 (None for conditions with a ``since``)."""
    ids = list(customer_ids)
    out = {cid: {c: (None if c.since is not None else 0) for c in conditions} for cid in ids}
    if not conditions or not ids:
        return out
    e = CustomerEvent.__table__
    ev = (select(e.c.customer_id, e.c.type, e.c.category, e.c.occurred_at)
          .where(one_of(e.c.customer_id, ids, s.get_bind().dialect), e.c.type.not_in(COUNTED),
                 e.c.occurred_at <= now).cte("ev"))

    def matches(kind: R.EventKind) -> Any:
        same_type = func.lower(ev.c.type) == kind.type
        return same_type if kind.category is None else and_(same_type, ev.c.category == kind.category)

    anchors = list(dict.fromkeys(c.since for c in conditions if c.since is not None))
    source: Any = ev
    first: Any = None
    if anchors:
        first = (select(ev.c.customer_id.label("cid"),
                        *[func.min(case((matches(k), ev.c.occurred_at))).label(f"a{i}") for i, k in enumerate(anchors)])
                 .group_by(ev.c.customer_id).cte("first"))
        source = ev.join(first, first.c.cid == ev.c.customer_id)
    cols = []
    for j, cond in enumerate(conditions):
        pred = [matches(cond.event)]
        if cond.window_days is not None:
            pred.append(ev.c.occurred_at > now - timedelta(days=cond.window_days))
        if cond.since is not None:
            pred.append(ev.c.occurred_at > first.c[f"a{anchors.index(cond.since)}"])
        cols.append(func.sum(case((and_(*pred), 1), else_=0)).label(f"c{j}"))
    cols += [func.count(first.c[f"a{i}"]).label(f"h{i}") for i in range(len(anchors))]
    for row in s.execute(select(ev.c.customer_id, *cols).select_from(source).group_by(ev.c.customer_id)).all():
        counts = out.get(row[0])
        if counts is None:
            continue
        for j, cond in enumerate(conditions):
            anchored = cond.since is None or row[1 + len(conditions) + anchors.index(cond.since)] > 0
            counts[cond] = int(row[1 + j]) if anchored else None
    return out


def decide_moves(s: Session, rules: Sequence[tuple[UpgradeRule, R.Rule]], customer_ids: Sequence[int],
                 now: datetime) -> list[Move]:
    """The upgrades the rules make now for the customers' open, unfrozen opportunities (``select_upgrade``
    per opportunity, over the rules that have not fired for it yet), in opportunity id order."""
    if not rules or not customer_ids:
        return []
    o = Opportunity.__table__
    movable = R.movable_stages(rule.target for _, rule in rules)
    opps = s.execute(select(o.c.id, o.c.customer_id, o.c.stage, o.c.owner_userid)
                     .where(one_of(o.c.customer_id, customer_ids, s.get_bind().dialect), o.c.stage.in_(movable),
                            o.c.frozen.is_(False))
                     .order_by(o.c.id)).all()
    if not opps:
        return []
    conditions = list(dict.fromkeys(c for _, rule in rules for c in rule.conditions))
    counts = condition_counts(s, conditions, {opp.customer_id for opp in opps}, now)
    parsed = [rule for _, rule in rules]
    hopeful = [opp for opp in opps
               if R.select_upgrade_counted(parsed, counts[opp.customer_id], current=opp.stage, frozen=False)]
    if not hopeful:
        return []
    fired: dict[int, set[tuple[int, str]]] = {}
    f = RuleFiring.__table__
    for oid, rule_id, to_stage in s.execute(select(f.c.opportunity_id, f.c.rule_id, f.c.to_stage)
                                            .where(one_of(f.c.opportunity_id, [opp.id for opp in hopeful],
                                                                   s.get_bind().dialect))).all():
        fired.setdefault(oid, set()).add((rule_id, to_stage))
    moves = []
    for opp in hopeful:
        done = fired.get(opp.id, set())
        candidates = [(row, rule) for row, rule in rules if (row.id, rule.target) not in done]
        chosen = R.select_upgrade_counted([rule for _, rule in candidates], counts[opp.customer_id],
                                          current=opp.stage, frozen=False)
        if chosen is None:
            continue
        row = next(r for r, rule in candidates if rule is chosen)
        moves.append(Move(opp.id, opp.customer_id, opp.owner_userid, opp.stage, row.id, row.text, chosen.target))
    return moves


def _insert_ignoring_conflicts(s: Session) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def apply_moves(rt: Runtime, s: Session, moves: Sequence[Move], now: datetime) -> list[Move]:
    """Make the moves still valid: the opportunity (locked on PostgreSQL) is still in the stage the move
    was decided from and not frozen, and its firing row is new — inserted ON CONFLICT DO NOTHING, so a
    move another transaction made already (a concurrent or earlier run) is not made twice. Returns the
    moves made; notices are ``move_notices``' job."""
    if not moves:
        return []
    o = Opportunity.__table__
    q = select(o.c.id, o.c.stage, o.c.frozen).where(o.c.id.in_([m.opportunity_id for m in moves]))
    if rt.db.is_postgres:
        q = q.with_for_update()
    state = {oid: (stage, bool(frozen)) for oid, stage, frozen in s.execute(q)}
    moves = [m for m in moves if state.get(m.opportunity_id) == (m.from_stage, False)]
    if not moves:
        return []
    insert = _insert_ignoring_conflicts(s)
    f = RuleFiring.__table__
    stmt = (insert(f).on_conflict_do_nothing(index_elements=["opportunity_id", "rule_id", "to_stage"])
            .returning(f.c.opportunity_id))
    made = set(s.scalars(stmt, [{"opportunity_id": m.opportunity_id, "rule_id": m.rule_id, "to_stage": m.target,
                                 "from_stage": m.from_stage, "at": now} for m in moves]))
    moves = [m for m in moves if m.opportunity_id in made]
    record_moves(s, [StageMove(m.opportunity_id, m.from_stage, m.target, now, rule=m.rule_text, reason=MOVE_REASON)
                     for m in moves])
    return moves


def move_notices(s: Session, moves: Sequence[Move]) -> dict[int, list[tuple[str, Out, str | None]]]:
    """Per customer, the notices of its moves in order: the owner's text, then the card to the owner's
    manager (when the owner has one)."""
    if not moves:
        return {}
    names = dict(s.execute(select(Customer.id, Customer.name)
                           .where(Customer.id.in_({m.customer_id for m in moves}))).all())
    owners = {u: (name, boss) for u, name, boss in s.execute(
        select(Member.userid, Member.name, Member.manager_userid)
        .where(Member.userid.in_({m.owner_userid for m in moves})))}
    out: dict[int, list[tuple[str, Out, str | None]]] = {}
    for m in moves:
        customer = names.get(m.customer_id, "")
        from_name, to_name = stage_name(m.from_stage), stage_name(m.target)
        notes = out.setdefault(m.customer_id, [])
        text = M.UPGRADE_OWNER.format(customer=customer, id=m.opportunity_id, from_stage=from_name,
                                      to_stage=to_name, rule=m.rule_text)
        notes.append((m.owner_userid, Text(text), None))
        owner = owners.get(m.owner_userid)
        if owner is not None and owner[1]:
            card = button_card(M.UPGRADE_CARD_TITLE, M.UPGRADE_CARD_DESC.format(customer=customer, owner=owner[0]),
                               [("知道了", "ack", 1), ("退回原阶段", "revert", 2)],
                               rows=[("商机", f"#{m.opportunity_id} {customer}"),
                                     ("阶段", f"{from_name} → {to_name}"),
                                     ("规则", m.rule_text[:60])])
            notes.append((owner[1], Card("stage_upgrade", card, {"opportunity_id": m.opportunity_id,
                                                                 "from_stage": m.from_stage,
                                                                 "to_stage": m.target}), None))
    return out


def _upgrade(rt: Runtime, s: Session, rules: Sequence[tuple[UpgradeRule, R.Rule]],
             customer_ids: Sequence[int]) -> int:
    now = utcnow()
    return _make_moves(rt, s, decide_moves(s, rules, customer_ids, now), now)


def _make_moves(rt: Runtime, s: Session, moves: Sequence[Move], now: datetime) -> int:
    """``apply_moves`` and queue the notices of those made; how many were made."""
    made = apply_moves(rt, s, moves, now)
    enqueue_notices(s, [note for notes in move_notices(s, made).values() for note in notes])
    return len(made)


def evaluate_customer(rt: Runtime, s: Session, customer: Customer) -> int:
    """Apply the upgrade rules to the customer's open opportunities; returns how many moved."""
    return _upgrade(rt, s, active_rules(s), [customer.id])


def _decide_chunk(rt: Runtime, customer_ids: Sequence[int]) -> tuple[datetime, list[Move]] | None:
    """When and which moves the active rules make for these customers (None: no rule is active), read in a
    session of its own."""
    with rt.db.sessions() as s:
        rules = _parsed_rules(s)
        if not rules:
            return None
        now = utcnow()
        return now, decide_moves(s, rules, customer_ids, now)


def evaluate_customers(rt: Runtime, customer_ids: list[int]) -> int:
    """``evaluate_customer`` for many customers, ``EVALUATE_CHUNK`` at a time, each chunk's moves made in one
    transaction (issue 9: the job re-checks every customer with a recent event every few minutes).

    Each chunk's moves are decided (reads only: its customers' opportunities, the rules' counts of their
    events, the rules fired) before its transaction. On PostgreSQL that is done on a second thread while this
    one makes the chunk before's, so the database counts one chunk while this process writes the other; on
    SQLite, which counts in this process, here, in turn (a second thread there cost ~1 s more CPU than it
    saved on the benchmark's data). A move decided before its chunk's transaction is checked
    again in it, as any is (``apply_moves``: the opportunity locked, still in the stage it was decided from,
    not frozen, its firing new), so a move someone made meanwhile is not made twice; a rule switched off
    meanwhile still makes the moves decided for one chunk, as it would have had it been switched off a moment
    later."""
    chunks = [customer_ids[at:at + EVALUATE_CHUNK] for at in range(0, len(customer_ids), EVALUATE_CHUNK)]
    if not chunks:
        return 0
    with rt.db.transaction() as s:
        ensure_default_rule(s)
    reader = ThreadPoolExecutor(1, thread_name_prefix="customer_events-decide") if rt.db.is_postgres else None

    def decide(chunk: list[int]) -> Callable[[], tuple[datetime, list[Move]] | None]:
        """The chunk's decision when called: on PostgreSQL being read meanwhile, on SQLite read then."""
        if reader is None:
            return partial(_decide_chunk, rt, chunk)
        return reader.submit(_decide_chunk, rt, chunk).result

    moved = 0
    try:
        ahead = decide(chunks[0])
        for i in range(len(chunks)):
            decided = ahead()
            if decided is None:
                return moved
            if i + 1 < len(chunks):
                ahead = decide(chunks[i + 1])
            with rt.db.transaction() as s:
                moved += _make_moves(rt, s, decided[1], decided[0])
    finally:
        if reader is not None:
            reader.shutdown()
    return moved


@job("customer_events", "process customer events left unprocessed and re-evaluate upgrade rules")
def customer_events_job(rt: Runtime) -> str:
    with rt.db.sessions() as s:
        pending = list(s.scalars(select(CustomerEvent.id).where(CustomerEvent.processed_at.is_(None))
                                 .order_by(CustomerEvent.id).limit(10000)))
    processed = moved = 0
    for start in range(0, len(pending), PENDING_CHUNK):
        done, made = process_events(rt, pending[start:start + PENDING_CHUNK])
        processed, moved = processed + done, moved + made
    # rules can also become true with time (windows) or after an admin adds one: re-check customers
    # with recent events and open opportunities
    since = utcnow() - timedelta(days=90)
    with rt.db.sessions() as s:
        customer_ids = list(s.scalars(
            select(CustomerEvent.customer_id).where(CustomerEvent.occurred_at >= since).distinct()
            .order_by(CustomerEvent.customer_id)))
    moved += evaluate_customers(rt, customer_ids)
    return f"{processed} events processed, {moved} opportunities upgraded"
