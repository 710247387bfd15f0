"""Jobs at scale on generated data (bench/jobs_data.py), on SQLite and PostgreSQL, each against a
hand-written SQL baseline of the same aggregation, measured in the same run.

Each job and each baseline runs in a fresh process (so its peak RSS is its own), the baseline first, on
the same data; the job runs as the scheduler would (``run_job``). Jobs and their baselines:

- stage rules (``customer_events``): process the pending events, then evaluate the upgrade rules (the
  built-in one and ``竞品对比 点击>=2 且 登录>=1 则 报价谈判``) for every customer with an event in the last
  90 days. Baseline: one SQL statement selecting the opportunities each rule moves.
- funnel heatmap (``funnel_heatmap``): every manager's team heatmap of last week, rendered to PNG and
  queued. Baseline: one SQL statement with LEAD() over the stage history → dwell per rep and stage.
- bank matching (``bank_poll`` → ``match_pending``): match every new bank line. Baseline: SQL joining the
  lines to contracts (number in the memo) and to customers (payer name) → the receivable each pays.
- credit check (``credit_check``): ask the fake provider (bench/fake_credit.py, gunicorn on loopback) for
  every customer with an open opportunity; store changes; freeze on a fall. Baseline: one SQL select, the
  same HTTP requests through one keep-alive session, one bulk insert of the ratings (rolled back).
- countdown pushes (``collection_reminders``). Baseline: SQL selecting the instalments whose reminder is
  due today (countdown 7/3/1, due day, every 3rd day overdue).

    python -m bench.jobs_bench [--backend sqlite|postgresql|both] [--scale 1.0] [--timeout 600]
                               [--jobs customer_events,funnel_heatmap,…]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text

from bench.common import (
    PG_URL,
    PY,
    REDIS_URL,
    ROOT,
    config_from_env,
    flush_redis,
    free_port,
    gunicorn_cmd,
    print_machine,
    process,
    reset_postgres,
    reset_sqlite,
    salesbot_env,
    table,
)

JOBS = ["funnel_heatmap", "customer_events", "collection_reminders", "credit_check", "bank_poll", "incentive_close",
        "archive_search"]
LABELS = {"customer_events": "stage rules (customer_events)", "funnel_heatmap": "funnel heatmap",
          "bank_poll": "bank matching (match_pending)", "credit_check": "credit check",
          "collection_reminders": "countdown pushes (collection_reminders)",
          "incentive_close": "incentive month close (incentive_close)",
          "archive_search": "archive search (search_messages, 20 queries × 3 askers)"}
EXTRA_RULE = "竞品对比 点击>=2 且 登录>=1 则 报价谈判"
STAGE_RANK_SQL = ("CASE o.stage WHEN 'lead' THEN 0 WHEN 'diagnosis' THEN 1 WHEN 'demo' THEN 2 "
                  "WHEN 'solution_confirmed' THEN 3 WHEN 'negotiation' THEN 4 ELSE 5 END")


# ---- the SQL baselines ------------------------------------------------------------------------------


def _tz_params(*names: str) -> list[Any]:
    from storage.types import TZDateTime

    return [bindparam(n, type_=TZDateTime()) for n in names]


def baseline_customer_events(rt: Any) -> int:
    """The job's decisions and writes in hand-written SQL, in one transaction rolled back at the end (so the
    job finds the same data): the upgrade decision set of both rules in one statement (kept in a temporary
    table), then INSERT … SELECT of the firings, the stage history, the owners' texts and the managers'
    cards (texts and card bodies rendered in SQL), one UPDATE … FROM of the opportunities; the pending
    events marked processed, their reminders (one per customer, item and day) inserted, and the health
    score of the customers with a pending product event recomputed (signals by one GROUP BY, the formula
    ``domain.health``'s, one executemany UPDATE). Returns the opportunities moved (the job's
    "opportunities upgraded": those moved while processing the pending events plus by the re-check)."""
    from sqlalchemy import Numeric

    from domain.health import HealthSignals, health_score, per_week
    from domain.rules import DEFAULT_RULE_TEXT
    from domain.stages import DEFAULT_PIPELINE
    from storage.types import utcnow

    now = utcnow()
    pg = rt.db.is_postgres
    obj, arr = ("json_build_object", "json_build_array") if pg else ("json_object", "json_array")
    day = ("to_char(e.occurred_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')" if pg
           else "date(e.occurred_at, '+8 hours')")
    token = "substr(md5(random()::text || m.id), 1, 24)" if pg else "lower(hex(randomblob(12)))"
    task = "b.body->>'task_id'" if pg else "json_extract(b.body, '$.task_id')"
    names = "CASE {col} " + " ".join(f"WHEN '{s.key}' THEN '{s.name}'" for s in DEFAULT_PIPELINE) + " END"
    tz = _tz_params("since", "now")
    decisions = text(f"""
        CREATE TEMP TABLE bl_moves AS
        WITH recent AS (SELECT DISTINCT customer_id FROM customer_events WHERE occurred_at >= :since),
        ev AS (SELECT e.customer_id, e.type, e.category, e.occurred_at FROM customer_events e
               JOIN recent r ON r.customer_id = e.customer_id
               WHERE e.type <> 'link_preview' AND e.occurred_at <= :now),
        ft AS (SELECT customer_id, MIN(occurred_at) AS t FROM ev WHERE type = 'trial_requested' GROUP BY customer_id),
        r1 AS (SELECT ft.customer_id FROM ft JOIN ev ON ev.customer_id = ft.customer_id AND ev.type = 'login'
               AND ev.occurred_at > ft.t GROUP BY ft.customer_id HAVING COUNT(*) >= 3),
        r2 AS (SELECT customer_id FROM ev GROUP BY customer_id
               HAVING SUM(CASE WHEN type = 'link_click' AND category = 'competitor' THEN 1 ELSE 0 END) >= 2
                  AND SUM(CASE WHEN type = 'login' THEN 1 ELSE 0 END) >= 1),
        opp AS (SELECT o.id, o.customer_id, o.stage, o.owner_userid, {STAGE_RANK_SQL} AS rank FROM opportunities o
                JOIN recent r ON r.customer_id = o.customer_id
                WHERE o.stage NOT IN ('won', 'lost') AND NOT o.frozen)
        SELECT opp.id, opp.customer_id, opp.stage AS from_stage, opp.owner_userid,
               CASE WHEN r2.customer_id IS NOT NULL AND opp.rank < 4 THEN 'negotiation'
                    ELSE 'solution_confirmed' END AS target
        FROM opp LEFT JOIN r1 ON r1.customer_id = opp.customer_id LEFT JOIN r2 ON r2.customer_id = opp.customer_id
        WHERE ((r2.customer_id IS NOT NULL AND opp.rank < 4) OR (r1.customer_id IS NOT NULL AND opp.rank < 3))
          AND NOT EXISTS (SELECT 1 FROM rule_firings f WHERE f.opportunity_id = opp.id)
    """).bindparams(*tz)  # noqa: S608  (constants only)
    moves = """FROM bl_moves m JOIN upgrade_rules u ON u.target = m.target AND u.active
               AND (u.builtin = 'default' OR u.text = :extra)
               JOIN customers c ON c.id = m.customer_id LEFT JOIN members w ON w.userid = m.owner_userid"""
    owner_text = ("'📈 客户「' || c.name || '」的行为满足自动跃迁规则，商机 #' || m.id || ' 已从「' || "
                  f"{names.format(col='m.from_stage')} || '」推进到「' || {names.format(col='m.target')} || "
                  "'」。规则：' || u.text")
    card = (f"{obj}('card_type', 'button_interaction', 'task_id', 'stage_upgrade-' || {token}, "
            f"'main_title', {obj}('title', '商机自动跃迁', 'desc', w.name || ' 的客户「' || c.name || '」因客户行为自动推进'), "
            f"'button_list', {arr}({obj}('text', '知道了', 'key', 'ack', 'style', 1), "
            f"{obj}('text', '退回原阶段', 'key', 'revert', 'style', 2)), "
            f"'horizontal_content_list', {arr}({obj}('keyname', '商机', 'value', '#' || m.id || ' ' || c.name), "
            f"{obj}('keyname', '阶段', 'value', {names.format(col='m.from_stage')} || ' → ' || "
            f"{names.format(col='m.target')}), {obj}('keyname', '规则', 'value', substr(u.text, 1, 60))))")
    writes = [
        f"INSERT INTO rule_firings (opportunity_id, rule_id, to_stage, from_stage, at) "
        f"SELECT m.id, u.id, m.target, m.from_stage, :now {moves}",
        f"INSERT INTO stage_changes (opportunity_id, from_stage, to_stage, at, rule, reason) "
        f"SELECT m.id, m.from_stage, m.target, :now, u.text, '客户行为触发自动跃迁' {moves}",
        "UPDATE opportunities SET stage = m.target, stage_entered_at = :now, pending_stage = NULL, pending_by = NULL "
        "FROM bl_moves m WHERE opportunities.id = m.id",
        f"INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, created_at) "
        f"SELECT m.owner_userid, 'text', {obj}('content', {owner_text}), 'pending', 0, :now, :now {moves} ORDER BY m.id",
        f"CREATE TEMP TABLE bl_cards AS SELECT m.id, w.manager_userid AS addressee, {card} AS body {moves} "
        "WHERE w.manager_userid IS NOT NULL",
        f"INSERT INTO cards (task_id, kind, addressee, card_type, subject, status, created_at) "  # noqa: S608
        f"SELECT {task}, 'stage_upgrade', "
        f"b.addressee, 'button_interaction', {obj}('opportunity_id', b.id), 'open', :now FROM bl_cards b",
        f"INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, card_task_id, "  # noqa: S608
        f"created_at) SELECT b.addressee, 'template_card', b.body, 'pending', 0, :now, {task}, :now "
        "FROM bl_cards b ORDER BY b.id",
        # the pending events: their reminders (first per customer, item and day, not queued before), marked processed
        f"""INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, dedup_key, created_at)
            SELECT c.owner_userid, 'text', {obj}('content', '【' || c.name || '】' || CASE
                     WHEN r.category = 'competitor' THEN '客户刚查看了《' || i.name || '》，建议 2 小时内发送我方差异化对比'
                     WHEN r.category = 'pricing' THEN '客户刚查看了《' || i.name || '》，建议 2 小时内电话沟通预算和采购时间，确认报价是否需要调整'
                     ELSE '客户刚申请了试用，建议 1 小时内联系客户，协助开通试用并约定演示时间' END),
                   'pending', 0, :now, r.key, :now
            FROM (SELECT e.customer_id, e.item_id, e.category, 'followup:' || e.customer_id || ':' ||
                         CASE WHEN e.type = 'link_click' THEN 'link:' || e.item_id ELSE 'event:' || e.type END
                         || ':' || {day} AS key, ROW_NUMBER() OVER (PARTITION BY e.customer_id, e.type, e.item_id,
                         {day} ORDER BY e.id) AS n, MIN(e.id) OVER (PARTITION BY e.customer_id, e.type, e.item_id,
                         {day}) AS first_id
                  FROM customer_events e WHERE e.processed_at IS NULL
                  AND ((e.type = 'link_click' AND e.category IN ('pricing', 'competitor')) OR e.type = 'trial_requested'))
                 r JOIN customers c ON c.id = r.customer_id LEFT JOIN link_items i ON i.id = r.item_id
            WHERE r.n = 1 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedup_key = r.key) ORDER BY r.first_id""",  # noqa: S608
    ]
    health = text(f"""
        SELECT c.id, c.licensed_features, c.last_contact_at,
               (SELECT COUNT(*) FROM customer_events e WHERE e.customer_id = c.id AND e.type = 'login'
                AND e.occurred_at >= :d28) AS logins,
               (SELECT COUNT(*) FROM customer_events e WHERE e.customer_id = c.id AND e.type = 'ticket_opened'
                AND e.occurred_at >= :d90) AS opened,
               (SELECT COUNT(*) FROM customer_events e WHERE e.customer_id = c.id AND e.type = 'ticket_resolved'
                AND e.occurred_at >= :d90) AS resolved,
               (SELECT COUNT(DISTINCT {"e.data->>'feature'" if pg else "json_extract(e.data, '$.feature')"})
                FROM customer_events e WHERE e.customer_id = c.id AND e.type = 'feature_used' AND e.occurred_at >= :d30)
                AS used,
               (SELECT COUNT(*) FROM receivables r JOIN contracts k ON k.id = r.contract_id WHERE k.customer_id = c.id
                AND COALESCE(r.collectible_on, r.due_on) BETWEEN :y365 AND :today) AS due,
               (SELECT COUNT(*) FROM receivables r JOIN contracts k ON k.id = r.contract_id WHERE k.customer_id = c.id
                AND COALESCE(r.collectible_on, r.due_on) BETWEEN :y365 AND :today AND r.paid_on IS NOT NULL
                AND r.paid_on <= COALESCE(r.collectible_on, r.due_on)) AS on_time
        FROM customers c WHERE c.id IN (SELECT customer_id FROM customer_events
                                        WHERE processed_at IS NULL AND source = 'product')
    """).bindparams(*_tz_params("d28", "d30", "d90"))  # noqa: S608
    today = now.astimezone(rt.config.tz).date()

    def day_start(days: int) -> datetime:
        return datetime.combine(today - timedelta(days=days), datetime.min.time(), rt.config.tz)

    with rt.db.engine.connect() as conn:
        trans = conn.begin()
        if conn.execute(text("SELECT id FROM upgrade_rules WHERE builtin = 'default'")).first() is None:
            conn.execute(text("INSERT INTO upgrade_rules (text, target, active, builtin, created_by, created_at) "
                              "VALUES (:t, 'solution_confirmed', :yes, 'default', 'system', :now)")
                         .bindparams(*_tz_params("now")), {"t": DEFAULT_RULE_TEXT, "yes": True, "now": now})
        conn.execute(decisions, {"since": now - timedelta(days=90), "now": now})
        params = {"now": now, "extra": EXTRA_RULE}
        moved = 0
        for i, sql in enumerate(writes):
            stmt = text(sql).bindparams(*_tz_params("now")) if ":now" in sql else text(sql)
            result = conn.execute(stmt, params)
            moved = result.rowcount if i == 0 else moved
        updates = []
        for cid, licensed, last, logins, opened, resolved, used, due, on_time in conn.execute(health, {
                "d28": day_start(28), "d30": day_start(30), "d90": day_start(90), "y365": today - timedelta(days=365),
                "today": today}):
            if isinstance(last, str):
                last = datetime.fromisoformat(last)
            result = health_score(HealthSignals(
                logins_per_week=per_week(logins, 28) if (logins or licensed) else None,
                tickets_opened=opened or None, tickets_resolved=resolved if opened else None,
                features_licensed=licensed, features_used=used if licensed else None,
                receivables_due=due or None, receivables_paid_on_time=on_time if due else None,
                days_since_last_contact=(today - last.astimezone(rt.config.tz).date()).days if last else None))
            updates.append({"id": cid, "score": result.rounded,
                            "band": result.band.value if result.band else None, "now": now})
        if updates:
            conn.execute(text("UPDATE customers SET health_score = :score, health_band = :band, health_at = :now "
                              "WHERE id = :id").bindparams(*_tz_params("now"), bindparam("score", type_=Numeric(5, 2))),
                         updates)
        conn.execute(text("UPDATE customer_events SET processed_at = :now WHERE processed_at IS NULL")
                     .bindparams(*_tz_params("now")), {"now": now})
        trans.rollback()
    return int(moved)


def baseline_funnel_heatmap(rt: Any) -> int:
    from domain.funnel import previous_week

    start, end = previous_week(datetime.now(rt.config.tz), rt.config.tz)
    if rt.db.is_postgres:
        dwell = "EXTRACT(EPOCH FROM (LEAST(COALESCE(left_at, :end), :end) - GREATEST(entered, :start)))"
        longest = "EXTRACT(EPOCH FROM (COALESCE(left_at, :end) - entered))"
    else:
        dwell = "(julianday(MIN(COALESCE(left_at, :end), :end)) - julianday(MAX(entered, :start))) * 86400"
        longest = "(julianday(COALESCE(left_at, :end)) - julianday(entered)) * 86400"
    sql = text(f"""
        WITH sc AS (SELECT o.owner_userid AS rep, s.to_stage AS stage, s.at AS entered,
                           LEAD(s.at) OVER (PARTITION BY s.opportunity_id ORDER BY s.at, s.id) AS left_at
                    FROM stage_changes s JOIN opportunities o ON o.id = s.opportunity_id
                    JOIN members m ON m.userid = o.owner_userid AND m.active AND m.manager_userid IS NOT NULL
                    WHERE s.at < :end)
        SELECT rep, stage, COUNT(*) AS n, SUM({dwell}) AS dwell_s, MAX({longest}) AS longest_s
        FROM sc WHERE left_at IS NULL OR left_at >= :start GROUP BY rep, stage
    """).bindparams(*_tz_params("start", "end"))  # noqa: S608
    with rt.db.sessions() as s:
        return len(s.execute(sql, {"start": start, "end": end}).all())


def baseline_bank_poll(rt: Any, inspect: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The job's decisions and writes in hand-written SQL, in one transaction rolled back at the end (so the
    job finds the same data; ``inspect(connection)``, when given, is called before the rollback and what it
    returns is the result's "effects": ``bank_effects`` compares them with the job's), in three waves in
    the job's order (on this data every memo line comes before every payer line):

    1. memo names a contract (the configured pattern, upper-cased) and the amount ≤ the contract's open total
       → spread over its open receivables earliest due first (collectible_on, else due_on), with a running
       sum; the receivables are updated before wave 2, so it sees what wave 1 consumed;
    2. the rest: payer name, normalised in SQL (spaces, case, the legal suffixes 股份有限公司 / 有限责任公司 /
       有限公司; not full-width or brackets), equals exactly one customer's name_key and exactly one of its
       open receivables has outstanding = amount, due within ±60 days;
    3. the rest of those lines: the first subset of 2–5 of the customer's open receivables (its first 30,
       earliest due first), in lexicographic order of their positions, whose outstanding sums to the amount
       (self-joins) → each receivable of the subset paid in full.

    Then the same writes as the job: line status and step, allocations, receivables (outstanding, paid_on),
    promises kept, payment events (consumed), the 3% commission rows, and the outbox rows (the rep's notice
    per line and contract owner, one part per receivable paid, the bonus announcement per payment, a card and
    its outbox row per finance member for each unmatched line with its candidates: the open receivables of the
    contract its memo names and of the customers its payer name names, scored as the job scores them on the
    ledger as the line saw it, i.e. without what later lines paid, the best 3 as rows and confirm buttons),
    texts and card JSON rendered in SQL; INSERT … SELECT / UPDATE … WHERE, no Python per line.
    What differs from the job: lines within a wave do not see each other's consumption (two lines naming the
    same contract in one run both get its earliest receivable — none on this data); a memo with several
    numbers counts its first; commission is the flat default (no per product line or health rules); amounts
    on SQLite are REAL arithmetic (the subset sums compare whole fen). Returns the decision counts."""
    from storage.types import utcnow

    pattern = str(rt.config.get("payments.contract_pattern"))
    pg = rt.db.is_postgres
    if pg:
        number = "substring(upper(b.memo) from :pattern)"
        near = "ABS({} - b.booked_on) <= 60"
        days = "ABS({} - {})"
        num = "{}"
        fen = "CAST({} * 100 AS BIGINT)"
        least = "LEAST"
        money = "'¥' || to_char({0}, 'FM999,999,999,990.00')"
        yuan = "'¥' || to_char({0}, 'FM999,999,999,990')"
        obj = "json_build_object"
        cast_json = "CAST({} AS json)"
        agg = "json_agg({} ORDER BY {})"
        concat = "string_agg({}, {} ORDER BY {})"
        contains = "strpos({}, {}) > 0"
        whole = "{0} = ROUND({0}, 2)"
        day = "to_char(b.booked_on, 'YYYY-MM-DD')"
        nl = "chr(10)"
    else:
        number = "contract_no(b.memo)"
        near = "ABS(julianday({}) - julianday(b.booked_on)) <= 60"
        days = "ABS(julianday({}) - julianday({}))"
        num = "CAST({} AS NUMERIC)"
        fen = "CAST(ROUND(CAST({} AS REAL) * 100) AS INTEGER)"
        least = "MIN"
        money = "('¥' || printf('%,d', CAST({0} AS INTEGER)) || substr(printf('%.2f', {0}), -3))"  # ',': integers only
        yuan = "('¥' || printf('%,d', CAST({0} AS INTEGER)))"
        obj = "json_object"
        cast_json = "json({})"
        agg = "json_group_array(json({}))"  # over a subquery in the order wanted (SQLite 3.40: no ORDER BY in it)
        concat = "group_concat({}, {})"  # likewise
        contains = "instr({}, {}) > 0"
        whole = "ROUND({0}, 2) = {0}"
        day = "b.booked_on"
        nl = "char(10)"
    js = "{}" if pg else "json({})"  # a JSON value through a subquery's column (SQLite loses its JSON subtype)
    due = "COALESCE(r.collectible_on, r.due_on)"
    bonus = f"CASE WHEN {{0}} = ROUND({{0}}) THEN {yuan} ELSE {money} END"  # format_bonus_amount: ¥8,200 / ¥840.50
    main, buttons, rows = js.format("main"), js.format("buttons"), js.format("rows_")
    task = "'bank_unmatched-' || b.id || '-' || f.userid"  # the card's task id (as the cards statement makes it)
    bare = "lower(replace(b.payer_name, ' ', ''))"
    key = "CASE " + " ".join(f"WHEN {bare} LIKE '%{sfx}' AND length({bare}) > {len(sfx)} "
                             f"THEN substr({bare}, 1, length({bare}) - {len(sfx)})"
                             for sfx in ("股份有限公司", "有限责任公司", "有限公司")) + f" ELSE {bare} END"
    amount, outstanding = num.format("b.amount"), num.format("r.outstanding")
    # what a receivable had left once allocation ``a`` was applied: its final outstanding plus what later lines paid
    left = (f"({outstanding} + COALESCE((SELECT SUM(x.amount) FROM bb_alloc x WHERE x.receivable_id = r.id "  # noqa: S608
            "AND x.line_id > a.bank_line_id), 0))")
    unallocated = "NOT EXISTS (SELECT 1 FROM bb_alloc a WHERE a.line_id = {})"
    # wave 3: a subset of k receivables, positions p1 < … < pk, whose fen sum to the line's; positions past k are
    # 0, so a subset sorts before its extensions (the order of the job's depth-first search)
    subsets = []
    for size in range(2, 6):
        joins = " ".join(f"JOIN bb_open o{i} ON o{i}.line_id = o1.line_id AND o{i}.k > o{i - 1}.k"
                         for i in range(2, size + 1))
        total = " + ".join(f"o{i}.fen" for i in range(1, size + 1))
        picks = ", ".join([f"o{i}.k AS k{i}" for i in range(1, size + 1)] + [f"0 AS k{i}" for i in range(size + 1, 6)])
        subsets.append(f"SELECT o1.line_id, {picks} FROM bb_open o1 {joins} "  # noqa: S608
                       f"JOIN bb_one l ON l.line_id = o1.line_id WHERE {total} = l.fen")
    def analyze(*tables: str) -> list[str]:  # PostgreSQL: autovacuum never analyzes temporary tables
        return [f"ANALYZE {t}" for t in tables] if pg else []

    stmts = [
        "CREATE TEMP TABLE bb_alloc (line_id BIGINT, receivable_id BIGINT, amount NUMERIC, step INTEGER, pos INTEGER)",
        "CREATE INDEX bb_alloc_line ON bb_alloc (line_id)",
        "CREATE INDEX bb_alloc_receivable ON bb_alloc (receivable_id)",
        # wave 1: the contract named in the memo, spread earliest due first
        f"""INSERT INTO bb_alloc
            WITH l AS (SELECT b.id, {amount} AS amount, c.id AS contract_id FROM bank_lines b
                       JOIN contracts c ON c.number = {number} WHERE b.status = 'new'),
            o AS (SELECT l.id AS line_id, l.amount, r.id AS rid, {outstanding} AS outstanding,
                         SUM({outstanding}) OVER (PARTITION BY l.id ORDER BY {due}, r.id
                                                  ROWS UNBOUNDED PRECEDING) - {outstanding} AS before,
                         SUM({outstanding}) OVER (PARTITION BY l.id) AS total,
                         ROW_NUMBER() OVER (PARTITION BY l.id ORDER BY {due}, r.id) AS pos
                  FROM l JOIN receivables r ON r.contract_id = l.contract_id AND {outstanding} > 0)
            SELECT line_id, rid, {least}(outstanding, amount - before), 1, pos FROM o
            WHERE amount > 0 AND amount <= total AND before < amount""",  # noqa: S608
        # wave 2 sees wave 1's consumption
        """UPDATE receivables SET outstanding = outstanding - (SELECT SUM(a.amount) FROM bb_alloc a
                                                                  WHERE a.receivable_id = receivables.id)
            WHERE id IN (SELECT receivable_id FROM bb_alloc)""",  # noqa: S608
        # the lines left whose payer name names exactly one customer (waves 2 and 3)
        f"""CREATE TEMP TABLE bb_one AS
            WITH p AS (SELECT b.id, {amount} AS amount, b.booked_on, {key} AS name_key FROM bank_lines b
                       WHERE b.status = 'new' AND b.payer_name <> '' AND {amount} > 0 AND {whole.format(amount)}
                         AND {unallocated.format('b.id')})
            SELECT p.id AS line_id, p.amount, {fen.format('p.amount')} AS fen, p.booked_on,
                   MIN(cu.id) AS customer_id
            FROM p JOIN customers cu ON cu.name_key = p.name_key GROUP BY p.id, p.amount, p.booked_on
            HAVING COUNT(*) = 1""",  # noqa: S608
        *analyze("bb_alloc", "bb_one"),
        f"""INSERT INTO bb_alloc
            SELECT b.line_id, MIN(r.id), MIN(b.amount), 2, 1 FROM bb_one b
            JOIN contracts c ON c.customer_id = b.customer_id
            JOIN receivables r ON r.contract_id = c.id AND {outstanding} = b.amount AND {near.format(due)}
            GROUP BY b.line_id HAVING COUNT(*) = 1""",  # noqa: S608
        """UPDATE receivables SET outstanding = outstanding - (SELECT SUM(a.amount) FROM bb_alloc a
                                                                  WHERE a.receivable_id = receivables.id AND a.step = 2)
            WHERE id IN (SELECT receivable_id FROM bb_alloc WHERE step = 2)""",  # noqa: S608
        # wave 3: the customer's first 30 open receivables, earliest due first, and the first exact subset
        f"""CREATE TEMP TABLE bb_open AS SELECT * FROM (
                SELECT b.line_id, r.id AS rid, {outstanding} AS outstanding, {fen.format('r.outstanding')} AS fen,
                       ROW_NUMBER() OVER (PARTITION BY b.line_id ORDER BY {due}, r.id) AS k
                FROM bb_one b JOIN contracts c ON c.customer_id = b.customer_id
                JOIN receivables r ON r.contract_id = c.id AND {outstanding} > 0
                WHERE {unallocated.format('b.line_id')}) x WHERE k <= 30""",  # noqa: S608
        "CREATE INDEX bb_open_line ON bb_open (line_id, k)",
        *analyze("bb_alloc", "bb_open"),
        f"""INSERT INTO bb_alloc
            WITH s AS ({' UNION ALL '.join(subsets)}),
            first AS (SELECT * FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY line_id ORDER BY k1, k2, k3, k4, k5)
                                            AS n FROM s) x WHERE n = 1)
            SELECT o.line_id, o.rid, o.outstanding, 3, o.k FROM first f
            JOIN bb_open o ON o.line_id = f.line_id AND o.k IN (f.k1, f.k2, f.k3, f.k4, f.k5)""",  # noqa: S608
        """UPDATE receivables SET outstanding = outstanding - (SELECT SUM(a.amount) FROM bb_alloc a
                                                                  WHERE a.receivable_id = receivables.id AND a.step = 3)
            WHERE id IN (SELECT receivable_id FROM bb_alloc WHERE step = 3)""",  # noqa: S608
        f"""UPDATE receivables SET paid_on = (SELECT MAX(b.booked_on) FROM bb_alloc a
                                             JOIN bank_lines b ON b.id = a.line_id
                                             WHERE a.receivable_id = receivables.id)
            WHERE id IN (SELECT receivable_id FROM bb_alloc) AND {num.format('outstanding')} = 0""",  # noqa: S608
        f"""UPDATE promises SET kept = CASE WHEN :today <= promised_on THEN 'on_time' ELSE 'late' END,
                                kept_on = :today
            WHERE kept IS NULL AND (receivable_id IN (SELECT a.receivable_id FROM bb_alloc a
                                                       JOIN receivables r ON r.id = a.receivable_id
                                                       WHERE {num.format('r.outstanding')} = 0)
                                    OR receivable_id IS NULL AND customer_id IN (
                                       SELECT c.customer_id FROM bb_alloc a JOIN receivables r ON r.id = a.receivable_id
                                       JOIN contracts c ON c.id = r.contract_id WHERE {num.format('r.outstanding')} = 0))""",  # noqa: S608
        """UPDATE bank_lines SET status = CASE WHEN id IN (SELECT line_id FROM bb_alloc) THEN 'matched'
                                              ELSE 'unmatched' END,
                                match_step = COALESCE((SELECT MIN(step) FROM bb_alloc a WHERE a.line_id = bank_lines.id), 4)
            WHERE status = 'new'""",  # noqa: S608
        """INSERT INTO allocations (bank_line_id, receivable_id, amount, at)
            SELECT line_id, receivable_id, amount, :now FROM bb_alloc ORDER BY line_id, pos""",  # noqa: S608
        """INSERT INTO payment_events (kind, allocation_id, rep_userid, customer_id, contract_id, amount, received_on,
                                       created_at, consumed_at)
            SELECT 'received', a.id, c.owner_userid, c.customer_id, c.id, a.amount, b.booked_on, :now, :now
            FROM allocations a JOIN bank_lines b ON b.id = a.bank_line_id JOIN receivables r ON r.id = a.receivable_id
            JOIN contracts c ON c.id = r.contract_id WHERE a.at = :now ORDER BY a.id""",  # noqa: S608
        f"""INSERT INTO bonus_ledger (payment_id, userid, amount, kind, booked_on, at)
            SELECT 'alloc:' || e.allocation_id, e.rep_userid, ROUND({num.format('e.amount')} * 0.03, 2), 'credit',
                   e.received_on, :now
            FROM payment_events e WHERE e.created_at = :now AND NOT EXISTS (
                SELECT 1 FROM bonus_ledger x WHERE x.payment_id = 'alloc:' || e.allocation_id AND x.kind = 'credit')
            ORDER BY e.id""",  # noqa: S608
        # the notice per line to each owner of a contract it paid: a part per receivable, in allocation order
        f"""INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, created_at)
            SELECT owner, 'text', {obj}('content', '💰 到账通知：' || {day} || ' 收到 '
                   || CASE WHEN b.payer_name = '' THEN '-' ELSE b.payer_name END || ' '
                   || {money.format(num.format('b.amount'))} || {nl} || parts), 'pending', 0, :now, :now
            FROM (SELECT line_id, owner, MIN(id) AS first, {concat.format('part', nl, 'id')} AS parts FROM (
                      SELECT a.bank_line_id AS line_id, c.owner_userid AS owner, a.id,
                             '  · ' || c.number || ' 第' || r.seq || '期：' || {money.format(num.format('a.amount'))}
                             || '，' || CASE WHEN {left} = 0 THEN '已结清' ELSE '尚欠 ' || {money.format(left)} END
                             AS part
                      FROM allocations a JOIN receivables r ON r.id = a.receivable_id
                      JOIN contracts c ON c.id = r.contract_id WHERE a.at = :now ORDER BY a.id) x
                  GROUP BY line_id, owner) n
            JOIN bank_lines b ON b.id = n.line_id ORDER BY n.first""",  # noqa: S608
        f"""INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, created_at)
            SELECT g.userid, 'text', {obj}('content', '恭喜！您促成的' || cu.name || '客户完成新签，奖金'
                   || {bonus.format(num.format('g.amount'))} || '已发放'), 'pending', 0, :now, :now
            FROM payment_events e JOIN bonus_ledger g ON g.payment_id = 'alloc:' || e.allocation_id AND g.at = :now
            JOIN customers cu ON cu.id = e.customer_id WHERE e.created_at = :now ORDER BY g.id""",  # noqa: S608
        # the candidates of each unmatched line: the receivables open when the line was decided (what later
        # lines paid added back) of its ledger, one point each for the contract named in the memo, a customer
        # name containing or contained in the payer's, outstanding = amount; the best 3 by points,
        # |outstanding − amount|, |due − booked|, id
        f"""CREATE TEMP TABLE bb_cand AS SELECT * FROM (
                SELECT line_id, rid, label, value, ROW_NUMBER() OVER (PARTITION BY line_id
                           ORDER BY points DESC, ABS(left_ - amount), {days.format('due', 'booked_on')}, rid) AS n
                FROM (SELECT *, cu_name || ' 未收 ' || {money.format('left_')} AS value,
                             named + CASE WHEN payer <> '' AND length(name_key) >= 2
                                           AND ({contains.format('name_key', 'payer')}
                                                OR {contains.format('payer', 'name_key')}) THEN 1 ELSE 0 END
                             + CASE WHEN left_ = amount THEN 1 ELSE 0 END AS points
                      FROM (SELECT l.line_id, l.amount, l.booked_on, l.payer, l.named, r.id AS rid, {due} AS due,
                                   c.number || ' 第' || r.seq || '期' AS label, cu.name AS cu_name, cu.name_key,
                                   {outstanding} + COALESCE((SELECT SUM(a.amount) FROM bb_alloc a
                                       WHERE a.receivable_id = r.id AND a.line_id > l.line_id), 0) AS left_
                            FROM (SELECT line_id, amount, booked_on, payer, contract_id, MAX(named) AS named FROM (
                                      SELECT b.id AS line_id, {amount} AS amount, b.booked_on, {key} AS payer,
                                             c.id AS contract_id, 1 AS named
                                      FROM bank_lines b JOIN contracts c ON c.number = {number}
                                      WHERE b.match_step = 4 AND b.status = 'unmatched'
                                      UNION ALL
                                      SELECT b.id, {amount}, b.booked_on, {key}, c.id, 0 FROM bank_lines b
                                      JOIN customers cu ON cu.name_key = {key} JOIN contracts c ON c.customer_id = cu.id
                                      WHERE b.match_step = 4 AND b.status = 'unmatched' AND b.payer_name <> '') y
                                  WHERE amount > 0 AND {whole.format('amount')}
                                  GROUP BY line_id, amount, booked_on, payer, contract_id) l
                            JOIN contracts c ON c.id = l.contract_id JOIN customers cu ON cu.id = c.customer_id
                            JOIN receivables r ON r.contract_id = c.id) z0) z
                WHERE points > 0 AND left_ > 0) w WHERE n <= 3""",  # noqa: S608
        "CREATE INDEX bb_cand_line ON bb_cand (line_id, n)",
        *analyze("bb_cand"),
        # the finance card of each unmatched line, to each finance member
        """CREATE TEMP TABLE bb_fin AS SELECT userid FROM members WHERE active = :yes AND CAST(roles AS TEXT) LIKE '%finance%'""",  # noqa: S608
        f"""INSERT INTO cards (task_id, kind, addressee, card_type, subject, status, created_at)
            SELECT 'bank_unmatched-' || b.id || '-' || f.userid, 'bank_unmatched', f.userid, 'button_interaction',
                   {cast_json.format(obj + "('bank_line_id', b.id)")}, 'open', :now
            FROM bank_lines b CROSS JOIN bb_fin f WHERE b.match_step = 4 AND b.status = 'unmatched'
              AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedup_key = 'bank-card:' || b.id || ':' || f.userid)
            ORDER BY b.id, f.userid""",  # noqa: S608
        f"""INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, dedup_key,
                                card_task_id, created_at)
            SELECT f.userid, 'template_card', CASE WHEN EXISTS (SELECT 1 FROM bb_cand x WHERE x.line_id = b.id)
                   THEN {obj}('card_type', 'button_interaction', 'main_title', {main}, 'button_list', {buttons},
                              'horizontal_content_list', {rows}, 'task_id', {task})
                   ELSE {obj}('card_type', 'button_interaction', 'main_title', {main}, 'button_list', {buttons},
                              'horizontal_content_list', {rows}, 'quote_area',
                              {obj}('type', 0, 'quote_text', '没有找到可能对应的应收款，请核实后处理。'),
                              'task_id', {task}) END,
                   'pending', 0, :now, 'bank-card:' || b.id || ':' || f.userid, {task}, :now
            FROM (SELECT b.*, {obj}('title', '银行流水待确认', 'desc', {day} || ' 收到 '
                             || CASE WHEN b.payer_name = '' THEN '-' ELSE b.payer_name END || ' '
                             || {money.format(amount)} || '，未能自动匹配') AS main,
                         (SELECT {agg.format('e', 'n')} FROM (
                              SELECT n, {obj}('text', substr('确认 ' || label, 1, 12), 'key', 'confirm:' || rid,
                                              'style', 1) AS e FROM bb_cand x WHERE x.line_id = b.id
                              UNION ALL SELECT 9, {obj}('text', '忽略', 'key', 'ignore', 'style', 2)
                              ORDER BY 1) q) AS buttons,
                         (SELECT {agg.format('e', 'n')} FROM (
                              SELECT 0 AS n, {obj}('keyname', '摘要', 'value',
                                                   COALESCE(NULLIF(substr(b.memo, 1, 40), ''), '-')) AS e
                              UNION ALL SELECT n, {obj}('keyname', label, 'value', value) FROM bb_cand x
                              WHERE x.line_id = b.id ORDER BY 1) q) AS rows_
                  FROM bank_lines b WHERE b.match_step = 4 AND b.status = 'unmatched') b
            CROSS JOIN bb_fin f WHERE NOT EXISTS (SELECT 1 FROM outbox o
                                                  WHERE o.dedup_key = 'bank-card:' || b.id || ':' || f.userid)
            ORDER BY b.id, f.userid""",  # noqa: S608
    ]
    counts = ("SELECT COUNT(DISTINCT line_id) FILTER (WHERE step = 1), COUNT(DISTINCT line_id) FILTER (WHERE step = 2), "
              "COUNT(DISTINCT line_id) FILTER (WHERE step = 3) FROM bb_alloc") if pg else (
              "SELECT COUNT(DISTINCT CASE WHEN step = 1 THEN line_id END), "
              "COUNT(DISTINCT CASE WHEN step = 2 THEN line_id END), "
              "COUNT(DISTINCT CASE WHEN step = 3 THEN line_id END) FROM bb_alloc")
    params = {"pattern": pattern, "now": utcnow(), "today": datetime.now(rt.config.tz).date(), "yes": True}
    with rt.db.engine.connect() as conn:
        if not pg:
            import re

            rx = re.compile(pattern)
            raw = conn.connection.driver_connection
            raw.create_function("contract_no", 1,  # type: ignore[union-attr]
                                lambda m: (rx.search((m or "").upper()) or [None])[0], deterministic=True)
        trans = conn.begin()
        for sql in stmts:
            names = [n for n in params if f":{n}" in sql]
            stmt = text(sql)
            if "now" in names:
                stmt = stmt.bindparams(*_tz_params("now"))
            conn.execute(stmt, {n: params[n] for n in names})
        step1, step2, step3 = conn.execute(text(counts)).one()
        unmatched = conn.execute(text("SELECT COUNT(*) FROM bank_lines WHERE status = 'unmatched' "
                                      "AND match_step = 4")).scalar()
        outbox = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE created_at = :now")
                              .bindparams(*_tz_params("now")), {"now": params["now"]}).scalar()
        effects = inspect(conn) if inspect is not None else None
        trans.rollback()
    counted = {"matched": int(step1) + int(step2) + int(step3), "step1": int(step1), "step2": int(step2),
               "step3": int(step3), "unmatched": int(unmatched or 0), "outbox": int(outbox or 0)}
    return counted if inspect is None else {**counted, "effects": effects}


def bank_effects(conn: Any) -> dict[str, Counter[tuple[Any, ...]]]:
    """What bank matching wrote, table by table, as multisets comparable between the job and its baseline:
    allocations by (line, receivable), amounts to the fen, card bodies without their (random) task ids."""
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(text(sql))]

    def fen(v: Any) -> Decimal | None:
        return None if v is None else Decimal(str(v)).quantize(Decimal("0.01"))

    def body(b: Any) -> str:
        d = json.loads(b) if isinstance(b, str) else b
        d.pop("task_id", None)
        return json.dumps(d, ensure_ascii=False, sort_keys=True)

    alloc = {i: (line, r) for i, line, r in rows("SELECT id, bank_line_id, receivable_id FROM allocations")}
    # a commission row of this run's: its allocation's, booked at the same moment (rows from before may name ids
    # that only now exist, which are not the same from run to run on PostgreSQL)
    booked = {g: alloc[a] for g, a in rows(
        "SELECT g.id, a.id FROM allocations a JOIN bonus_ledger g ON g.payment_id = 'alloc:' || a.id AND g.at = a.at")}
    return {
        "lines": Counter(rows("SELECT id, status, match_step FROM bank_lines")),
        "allocations": Counter((line, r, fen(m)) for line, r, m in rows(
            "SELECT bank_line_id, receivable_id, amount FROM allocations")),
        "receivables": Counter((i, fen(m), str(p)) for i, m, p in rows(
            "SELECT id, outstanding, paid_on FROM receivables")),
        "promises": Counter((i, k, str(on)) for i, k, on in rows("SELECT id, kept, kept_on FROM promises")),
        "events": Counter((alloc.get(a), k, u, cu, co, fen(m), str(d), done is not None)
                          for a, k, u, cu, co, m, d, done in rows(
                              "SELECT allocation_id, kind, rep_userid, customer_id, contract_id, amount, received_on, "
                              "consumed_at FROM payment_events")),
        "bonus": Counter((booked.get(g, p), u, fen(m), k)
                         for g, p, u, m, k in rows("SELECT id, payment_id, userid, amount, kind FROM bonus_ledger")),
        "outbox": Counter((r, m, body(b), k) for r, m, b, k in rows(
            "SELECT recipient, msgtype, body, dedup_key FROM outbox")),
        "cards": Counter(rows("SELECT addressee, kind, card_type, status FROM cards")),
    }


def baseline_collection_reminders(rt: Any) -> int:
    """Per unpaid invoiced instalment, the key of its latest planned push (domain/invoicing.py's plan),
    unless the outbox already has it, and the push itself: one INSERT … SELECT of the outbox rows with
    their texts rendered in SQL (the job's work: decide and queue; rolled back so the job finds the same
    data). Returns the rows inserted."""
    from storage.types import utcnow

    today = datetime.now(rt.config.tz).date()
    if rt.db.is_postgres:
        day = "to_char(r.collectible_on, 'YYYY-MM-DD')"
        late = "(CAST(:today AS date) - r.collectible_on)"
        before = "(r.collectible_on - {n} <= CAST(:today AS date) AND r.collectible_on - {n} > r.invoiced_on)"
        positive, invoiced = "r.outstanding > 0", "r.invoiced_on <= CAST(:today AS date)"
        body = "json_build_object('content', {text})"
    else:
        day = "r.collectible_on"
        late = "CAST(julianday(:today) - julianday(r.collectible_on) AS INTEGER)"
        before = ("(date(r.collectible_on, '-{n} day') <= :today "
                  "AND date(r.collectible_on, '-{n} day') > r.invoiced_on)")
        positive, invoiced = "CAST(r.outstanding AS NUMERIC) > 0", "r.invoiced_on <= :today"
        body = "json_object('content', {text})"
    # domain/invoicing.py's texts: days left (or 今日) for the countdown and the invoiced notice, days late after
    rendered = ("'【' || c.number || ' 第' || r.seq || '期】' || CASE "
                "WHEN k.late > 0 THEN '已逾期 ' || k.late || ' 天，请尽快催款' "
                "WHEN k.late = 0 THEN CASE WHEN k.step = 'invoiced' THEN '已开票，今日可催款' ELSE '今日可催款' END "
                "WHEN k.step = 'invoiced' THEN '已开票，距可催款还有 ' || (-k.late) || ' 天' "
                "ELSE '距可催款还有 ' || (-k.late) || ' 天' END")
    sql = text(f"""
        INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, dedup_key, created_at)
        WITH k AS (
          SELECT r.id, {late} AS late, CASE
            WHEN {late} >= 3 THEN 'overdue-' || ({late} / 3 * 3)
            WHEN {late} >= 0 AND r.collectible_on > r.invoiced_on THEN 'due'
            WHEN {before.format(n=1)} THEN 'countdown-1'
            WHEN {before.format(n=3)} THEN 'countdown-3'
            WHEN {before.format(n=7)} THEN 'countdown-7'
            ELSE 'invoiced' END AS step, {day} AS day
          FROM receivables r
          WHERE r.invoiced_on IS NOT NULL AND r.collectible_on IS NOT NULL AND {positive} AND {invoiced})
        SELECT c.owner_userid, 'text', {body.format(text=rendered)}, 'pending', 0, :now,
               'collect:' || r.id || ':' || k.step || '@' || k.day, :now
        FROM k JOIN receivables r ON r.id = k.id
        JOIN contracts c ON c.id = r.contract_id
        LEFT JOIN outbox o ON o.dedup_key = 'collect:' || r.id || ':' || k.step || '@' || k.day
        WHERE o.id IS NULL
        ORDER BY r.id
    """).bindparams(*_tz_params("now"))  # noqa: S608
    with rt.db.engine.connect() as conn:
        trans = conn.begin()
        inserted = conn.execute(sql, {"today": today, "now": utcnow()}).rowcount
        trans.rollback()
    return int(inserted)


def baseline_credit_check(rt: Any) -> int:
    """The job's requests by hand — batch POSTs of ``batch_size`` when ``batch_url`` is configured, else one
    GET per customer; ``concurrency`` in flight, one keep-alive session per thread, the job's timeout —
    and its SQL: the customers, their latest ratings in one query, one bulk insert of the changed
    ratings, and for a fall below the threshold the opportunities frozen in one UPDATE, the owners'
    messages and the risk officers' cards in one insert each (rolled back). Returns the customers rated."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from domain.credit import crossed_below
    from storage.types import utcnow

    settings = rt.config.section("integrations.credit")
    timeout, size = float(settings["timeout_s"]), int(settings["batch_size"])
    headers = {"Authorization": f"Bearer {settings.get('key', '')}"}
    with rt.db.sessions() as s:
        rows = s.execute(text("SELECT DISTINCT c.id, c.credit_code, c.name FROM opportunities o "
                              "JOIN customers c ON c.id = o.customer_id WHERE o.stage NOT IN ('won', 'lost') "
                              "ORDER BY c.id")).all()
    local = threading.local()

    def http() -> requests.Session:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        return local.http  # type: ignore[no-any-return]

    def batch(part: list[Any]) -> list[dict[str, Any]]:
        items = [{"ref": str(i), "credit_code": code} if code else {"ref": str(i), "name": name}
                 for i, (_, code, name) in enumerate(part)]
        res = http().post(str(settings["batch_url"]), json={"items": items}, headers=headers, timeout=timeout)
        by_ref = {r["ref"]: r for r in res.json()["results"]}
        return [{**by_ref[str(i)], "customer_id": cid} for i, (cid, _, _) in enumerate(part) if str(i) in by_ref]

    def one(row: Any) -> list[dict[str, Any]]:
        cid, code, name = row
        res = http().get(str(settings["base_url"]), params={"credit_code": code} if code else {"name": name},
                         headers=headers, timeout=timeout)
        return [] if res.status_code == 404 else [{**res.json(), "customer_id": cid}]

    with ThreadPoolExecutor(int(settings["concurrency"])) as pool:
        if settings.get("batch_url"):
            parts = pool.map(batch, [rows[i:i + size] for i in range(0, len(rows), size)])
        else:
            parts = pool.map(one, rows)
        ratings = [r for part in parts for r in part]
    threshold = str(rt.config.get("payments.credit_threshold"))
    names = {cid: name for cid, _, name in rows}
    now = utcnow()
    with rt.db.engine.connect() as conn:
        trans = conn.begin()
        previous = dict(conn.execute(text(
            "SELECT customer_id, rating FROM (SELECT customer_id, rating, ROW_NUMBER() OVER (PARTITION BY customer_id "
            "ORDER BY rated_on DESC, id DESC) AS n FROM credit_ratings) r WHERE n = 1")).all())
        changed = [r for r in ratings if previous.get(r["customer_id"]) != r["rating"]]
        if changed:
            conn.execute(text("INSERT INTO credit_ratings (customer_id, rating, agency, scale, rated_on, source, created_at) "
                              "VALUES (:customer_id, :rating, :agency, :scale, :rated_on, 'provider', :now)")
                         .bindparams(*_tz_params("now")),
                         [{**r, "rated_on": datetime.fromisoformat(r["rated_on"]).date(), "now": now} for r in changed])
        falls = [r["customer_id"] for r in changed if crossed_below(previous.get(r["customer_id"]), r["rating"],
                                                                    threshold)]
        if falls:
            frozen = conn.execute(text("UPDATE opportunities SET frozen = true, frozen_reason = 'credit' "
                                       "WHERE customer_id IN :ids AND stage NOT IN ('won', 'lost') AND NOT frozen "
                                       "RETURNING customer_id, owner_userid")
                                  .bindparams(bindparam("ids", expanding=True)), {"ids": falls}).all()
            risk = [u for u, roles in conn.execute(text("SELECT userid, roles FROM members WHERE active"))
                    if "risk" in (json.loads(roles) if isinstance(roles, str) else roles or [])]
            owners = sorted({(cid, owner) for cid, owner in frozen})
            cards = [{"task_id": f"bench-{cid}-{u}", "addressee": u} for cid in sorted({c for c, _ in frozen})
                     for u in risk]
            out = text("INSERT INTO outbox (recipient, msgtype, body, status, attempts, next_attempt_at, "
                       "card_task_id, created_at) VALUES (:recipient, :msgtype, :body, 'pending', 0, :now, :task, :now)"
                       ).bindparams(*_tz_params("now"))
            conn.execute(out, [{"recipient": owner, "msgtype": "text", "task": None, "now": now,
                                "body": json.dumps({"content": f"客户「{names[cid]}」已冻结"}, ensure_ascii=False)}
                               for cid, owner in owners])
            if cards:
                conn.execute(text("INSERT INTO cards (task_id, kind, addressee, card_type, subject, status, created_at) "
                                  "VALUES (:task_id, 'credit_freeze', :addressee, 'button_interaction', '{}', 'open', "
                                  ":now)")
                             .bindparams(*_tz_params("now")), [{**c, "now": now} for c in cards])
                conn.execute(out, [{"recipient": c["addressee"], "msgtype": "template_card", "task": c["task_id"],
                                    "now": now, "body": json.dumps({"card_type": "button_interaction"})}
                                   for c in cards])
        trans.rollback()
    return len(ratings)


# ---- incentive month close and archive search (their baselines and the search's measuring) ---------


def close_month(rt: Any) -> Any:
    """The month incentive_close closes: the one before today in the scheduler's zone."""
    today = datetime.now(rt.config.tz).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def close_summary(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Reps scored, Σ process, Σ result, Σ total (rounded to 0.01 each, as stored) and Σ attained."""
    from decimal import ROUND_HALF_UP, Decimal

    def cents(v: Any) -> Decimal:  # SQLite's REAL arithmetic: 44.9475 may come out as 44.94749999999
        return Decimal(str(round(v, 9) if isinstance(v, float) else v)).quantize(Decimal("0.01"), ROUND_HALF_UP)

    return {"reps": len(rows), "process": str(sum((cents(p) for _, p, _, _, _ in rows), Decimal(0))),
            "result": str(sum((cents(r) for _, _, r, _, _ in rows if r is not None), Decimal(0))),
            "total": str(sum((cents(t) for _, _, _, t, _ in rows if t is not None), Decimal(0))),
            "attained": str(sum((cents(a) for _, _, _, _, a in rows), Decimal(0))),
            "unscored": sum(1 for _, _, r, _, _ in rows if r is None)}


def stored_close(rt: Any) -> dict[str, Any]:
    """What incentive_close stored for the month (read after the job, outside its time)."""
    with rt.db.sessions() as s:
        rows = s.execute(text("SELECT userid, process, result, total, attained FROM monthly_scores "
                              "WHERE month = :m"), {"m": close_month(rt).strftime("%Y-%m")}).all()
    return close_summary([tuple(r) for r in rows])


def baseline_incentive_close(rt: Any) -> dict[str, Any]:
    """One statement: per active rep, quality visits in the month's owned weeks, opportunities entering
    需求诊断 and those with a report, won deals per track (renewals × 0.7 under health 60), the month's
    targets → process, result, total and attained, as incentive_close computes them (§3)."""
    from domain.incentives import scoring_period

    period = scoring_period(close_month(rt))
    tz = rt.config.tz

    def start(d: Any) -> datetime:
        return datetime.combine(d, datetime.min.time(), tz)

    if rt.db.is_postgres:
        is_rep, num = "m.roles::jsonb ? 'rep'", "{}"
        least, greatest = "LEAST", "GREATEST"
    else:
        is_rep, num = "EXISTS (SELECT 1 FROM json_each(m.roles) WHERE value = 'rep')", "CAST({} AS REAL)"
        least, greatest = "MIN", "MAX"
    amount = num.format("COALESCE(NULLIF(" + num.format("o.signed_amount") + ", 0), " + num.format("o.amount") + ")")
    credited = (f"{amount} * CASE WHEN o.kind = 'renewal' AND c.health_score IS NOT NULL "
                f"AND ROUND({num.format('c.health_score')}, 2) < 60 THEN 0.7 ELSE 1 END")
    sql = text(f"""
        WITH reps AS (SELECT m.userid FROM members m WHERE m.active AND {is_rep}),
        v AS (SELECT rep_userid AS userid, COUNT(*) AS n FROM visits
              WHERE quality AND completed_at >= :v_from AND completed_at < :v_to GROUP BY rep_userid),
        d AS (SELECT o.owner_userid AS userid, COUNT(DISTINCT sc.opportunity_id) AS entered,
                     COUNT(DISTINCT e.opportunity_id) AS reports
              FROM stage_changes sc JOIN opportunities o ON o.id = sc.opportunity_id
              LEFT JOIN evidence e ON e.opportunity_id = sc.opportunity_id AND e.item = 'report'
              WHERE sc.to_stage = 'diagnosis' AND sc.at >= :d_from AND sc.at < :d_to GROUP BY o.owner_userid),
        w AS (SELECT o.owner_userid AS userid,
                     SUM(CASE WHEN o.kind NOT IN ('renewal', 'upsell') THEN {credited} ELSE 0 END) AS a_new,
                     SUM(CASE WHEN o.kind = 'renewal' THEN {credited} ELSE 0 END) AS a_renewal,
                     SUM(CASE WHEN o.kind = 'upsell' THEN {credited} ELSE 0 END) AS a_upsell
              FROM opportunities o JOIN customers c ON c.id = o.customer_id
              WHERE o.stage = 'won' AND o.closed_at >= :d_from AND o.closed_at < :d_to GROUP BY o.owner_userid),
        x AS (SELECT r.userid, COALESCE(v.n, 0) AS n, COALESCE(d.entered, 0) AS entered,
                     COALESCE(d.reports, 0) AS reports, COALESCE(w.a_new, 0) AS a_new,
                     COALESCE(w.a_renewal, 0) AS a_renewal, COALESCE(w.a_upsell, 0) AS a_upsell,
                     0.5 * {num.format('t.new')} + 0.3 * {num.format('t.renewal')}
                       + 0.2 * {num.format('t.upsell')} AS weighted_target
              FROM reps r LEFT JOIN v ON v.userid = r.userid LEFT JOIN d ON d.userid = r.userid
              LEFT JOIN w ON w.userid = r.userid
              LEFT JOIN targets t ON t.userid = r.userid AND t.month = :month),
        y AS (SELECT userid, a_new + a_renewal + a_upsell AS attained,
                     CASE WHEN entered > 0
                          THEN 50 * {least}(1.0, n / :weeks / 8) + 50 * {least}(1.0, 1.0 * reports / entered)
                          ELSE 100 * {least}(1.0, n / :weeks / 8) END AS process,
                     CASE WHEN weighted_target > 0
                          THEN {least}(150, (0.5 * a_new + 0.3 * a_renewal + 0.2 * a_upsell) / weighted_target * 100)
                          END AS result
              FROM x)
        SELECT userid, process, result, 0.6 * process + 0.4 * result AS total, {greatest}(attained, 0) AS attained
        FROM y
    """).bindparams(*_tz_params("v_from", "v_to", "d_from", "d_to"))  # noqa: S608  (constants only)
    params = {"v_from": start(period.visits_from), "v_to": start(period.visits_to + timedelta(days=1)),
              "d_from": start(period.days_from), "d_to": start(period.days_to + timedelta(days=1)),
              "month": period.month.strftime("%Y-%m"), "weeks": float(period.weeks)}
    with rt.db.sessions() as s:
        rows = [tuple(r) for r in s.execute(sql, params).all()]
    return close_summary(rows)


SEARCH_QUERIES = [
    "{customer}",  # a customer as people write it (about 10 messages)
    "{customer_full}",  # a customer's full name (its messages are about it; the name is never written in full)
    "¥128,000", "12.8万", "50万",  # amounts
    "预算", "合同", "回款", "发票", "张总",  # two characters (no trigram: a scan on either backend)
    "采购预算", "产品演示", "同行业案例", "银行流水", "刘总监", "Salesforce",  # words and phrases, common to rare
    "区块链", "元宇宙",  # rare
    "量子纠缠", "XYZ123",  # no hit
]
SEARCH_USERS = ("admin", "mgr000", "rep0007")  # everything; a manager's team of ten reps; one rep


def search_plan(rt: Any) -> tuple[list[str], list[tuple[str, set[str] | None, set[int] | None]]]:
    """The queries and each asker's scope, computed as 搜索 computes them (handlers/archive.py)."""
    from sqlalchemy import select

    from domain.access import visible_owners
    from storage.models import Member
    from storage.sales import Customer

    with rt.db.sessions() as s:
        managers = {m.userid: m.manager_userid for m in s.scalars(select(Member))}
        roles = {m.userid: m.roles for m in s.scalars(select(Member).where(Member.userid.in_(SEARCH_USERS)))}
        n_reps = int(s.scalar(text("SELECT COUNT(*) FROM members WHERE userid LIKE 'rep%'")) or 1)
        scopes: list[tuple[str, set[str] | None, set[int] | None]] = []
        for userid in SEARCH_USERS:
            owners = visible_owners(userid, roles[userid], managers)
            owned = None if owners is None else set(s.scalars(select(Customer.id).where(
                Customer.owner_userid.in_(owners))))
            scopes.append((userid, owners, owned))
    customer = 7 + n_reps * 3  # one of rep0007's customers (customer i belongs to rep i mod reps)
    queries = [q.format(customer=f"客户{customer:06d}", customer_full=f"客户{customer:06d}科技有限公司")
               for q in SEARCH_QUERIES]
    return queries, scopes


def _hand_search(s: Any, postgres: bool, keyword: str, owners: set[str] | None, owned: set[int] | None,
                 scan: bool) -> list[int]:
    """The search written by hand: the text index (FTS5 MATCH on SQLite for 3+ characters, ILIKE over the
    trigram index on PostgreSQL), the asker's scope, text and voice only, newest first, 10. scan: LIKE /
    ILIKE over the table without the text index (PostgreSQL: index scans switched off)."""
    like = "%" + keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    params: dict[str, Any] = {"like": like, "phrase": '"' + keyword.replace('"', '""') + '"'}
    if not postgres and not scan and len(keyword) >= 3:
        source, match = "inbound_fts f JOIN inbound_messages m ON m.id = f.rowid", "inbound_fts MATCH :phrase"
    else:
        source = "inbound_messages m"
        match = "m.content ILIKE :like ESCAPE '\\'" if postgres else "m.content LIKE :like ESCAPE '\\'"
    where = [match, "m.msg_type IN ('text', 'voice')"]
    expanding = []
    if owners is not None:  # the same inputs as search_messages: the asker's members and their customers
        params["owners"], params["owned"] = sorted(owners), sorted(owned or [])
        expanding = [bindparam("owners", expanding=True)]
        if owned:
            where.append("(m.from_user IN :owners OR m.customer_id IN :owned)")
            expanding.append(bindparam("owned", expanding=True))
        else:
            where.append("m.from_user IN :owners")
    sql = text(f"SELECT m.id FROM {source} WHERE {' AND '.join(where)} "  # noqa: S608  (constants only)
               "ORDER BY m.sent_at DESC, m.id DESC LIMIT 10").bindparams(*expanding)
    if postgres:  # planned for its keyword, as a query typed by hand is
        s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if postgres and scan:
        s.execute(text("SET LOCAL enable_bitmapscan = off"))
        s.execute(text("SET LOCAL enable_indexscan = off"))
    return [r[0] for r in s.execute(sql, params).all()]


def archive_search(rt: Any, how: str) -> dict[str, Any]:
    """Every query as every asker: a warm-up pass, then the measured pass. how: search_messages (the real
    function behind 搜索), hand (the indexed SQL by hand) or scan (LIKE / ILIKE without the index)."""
    import hashlib
    import statistics

    from storage.search import search_messages

    queries, scopes = search_plan(rt)
    times: dict[str, list[float]] = {u: [] for u, _, _ in scopes}
    slowest = (0.0, "")
    digest, hits = hashlib.sha256(), 0
    for measured in (False, True):
        for userid, owners, owned in scopes:
            for q in queries:
                started = time.perf_counter()
                with rt.db.sessions() as s, s.begin():
                    if how == "search_messages":
                        ids = [h.id for h in search_messages(s, q, owners=owners, owned_customers=owned, limit=10)]
                    else:
                        ids = _hand_search(s, rt.db.is_postgres, q, owners, owned, scan=how == "scan")
                took = time.perf_counter() - started
                if measured:
                    times[userid].append(took)
                    slowest = max(slowest, (took, f"{userid} {q}"))
                    digest.update(f"{userid}|{q}|{ids}\n".encode())
                    hits += len(ids)
    total = sum(sum(t) for t in times.values())
    per_user = {u: f"p50 {statistics.median(t) * 1000:.0f} ms / max {max(t) * 1000:.0f} ms"
                for u, t in times.items()}
    per_query = {q: [round(times[u][k] * 1000) for u, _, _ in scopes] for k, q in enumerate(queries)}
    return {"searches": sum(len(t) for t in times.values()), "hits": hits, "digest": digest.hexdigest()[:12],
            "total_s": round(total, 3), "per_user": per_user, "slowest": f"{slowest[1]} {slowest[0] * 1000:.0f} ms",
            "_seconds": total, "_per_query": per_query}


BASELINES = {"customer_events": baseline_customer_events, "funnel_heatmap": baseline_funnel_heatmap,
             "bank_poll": baseline_bank_poll, "credit_check": baseline_credit_check,
             "collection_reminders": baseline_collection_reminders,
             "incentive_close": baseline_incentive_close,
             "archive_search": lambda rt: archive_search(rt, "hand"),
             "archive_search+scan": lambda rt: archive_search(rt, "scan"),
             "funnel_heatmap+norender": baseline_funnel_heatmap}


# ---- one measurement in a child process --------------------------------------------------------------


def child(what: str, job: str, env: dict[str, str]) -> None:
    from bot.app import load_handlers
    from bot.runtime import build_runtime
    from jobs.registry import load_jobs
    from jobs.scheduler import run_job

    load_handlers()
    rt = build_runtime(config_from_env(env))
    job, _, flag = job.partition("+")
    if flag == "norender":
        import jobs.funnel_heatmap

        jobs.funnel_heatmap.render_heatmap_png = lambda *a, **k: b"\x89PNG stub"  # type: ignore[assignment]
        jobs.funnel_heatmap.enqueue_in_order = lambda *a, **k: 0  # type: ignore[assignment]
        jobs.funnel_heatmap.prepare_texts = lambda *a, **k: 0  # type: ignore[assignment]
    started = time.perf_counter()
    if what == "baseline":
        result: Any = BASELINES[f"{job}+{flag}" if flag else job](rt)
    elif job == "archive_search":  # not a job: the function behind 搜索, query by query
        result = archive_search(rt, "search_messages")
    else:
        result = run_job(rt, load_jobs()[job], f"bench-{time.time_ns()}", owner="bench")
    seconds = time.perf_counter() - started
    rss_mb = peak_rss_mb()
    out: dict[str, Any] = {"seconds": seconds, "rss_mb": rss_mb, "result": result}
    if isinstance(result, dict) and "_seconds" in result:  # the searches alone, without finding the scopes
        out["seconds"], out["per_query"] = result.pop("_seconds"), result.pop("_per_query")
    if what == "job" and job == "incentive_close":  # what it stored, read after the measured time
        out["check"] = stored_close(rt)
    print("RESULT " + json.dumps(out, ensure_ascii=False, default=str), flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would include the parent's from before exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(what: str, job: str, env: dict[str, str], timeout: float) -> dict[str, Any]:
    cmd = [PY, "-m", "bench.jobs_bench", "child", what, job]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"seconds": None, "timeout": timeout, "wall": time.perf_counter() - started}
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{what} {job} failed:\n{err[-3000:]}")
    return json.loads(line[len("RESULT "):])


def progress(env: dict[str, str], job: str) -> str:
    """What a job that ran out of time got done (to extrapolate)."""
    from storage.db import Database

    db = Database(env["SALESBOT_DATABASE_URL"])
    job = job.partition("+")[0]
    queries = {"bank_poll": "SELECT COUNT(*) FROM bank_lines WHERE status <> 'new'",
               "customer_events": "SELECT COUNT(*) FROM customer_events WHERE processed_at IS NULL",
               "credit_check": "SELECT COUNT(DISTINCT customer_id) FROM credit_ratings",
               "collection_reminders": "SELECT COUNT(*) FROM outbox WHERE dedup_key LIKE 'collect:%'",
               "funnel_heatmap": "SELECT COUNT(*) FROM outbox WHERE dedup_key LIKE 'funnel:%'"}
    with db.engine.connect() as conn:
        n = conn.execute(text(queries[job])).scalar()
    db.dispose()
    return {"bank_poll": f"{n} lines decided", "customer_events": f"{n} events still pending",
            "credit_check": f"{n} customers rated", "collection_reminders": f"{n} reminders queued",
            "funnel_heatmap": f"{n} managers' heatmaps queued"}[job]


# Jobs measured ``--repeat`` times (each run in a fresh process, after its baseline's run), each figure the
# median of its runs: those under a second or two, whose ratio a tenth of a second moves by a third, and
# what undoes a run so that the next does the same work (None: it writes nothing). The longer jobs run once.
REPEATED = {"funnel_heatmap": "DELETE FROM outbox WHERE dedup_key LIKE 'funnel:%'",
            "funnel_heatmap+norender": None}


def undo(env: dict[str, str], job: str) -> None:
    """Remove what a run of a ``REPEATED`` job wrote, so that the next run does the same work."""
    if REPEATED[job] is None:
        return
    from storage.db import Database

    db = Database(env["SALESBOT_DATABASE_URL"])
    with db.engine.begin() as conn:
        conn.execute(text(REPEATED[job]))
    db.dispose()


def measure_repeated(job: str, env: dict[str, str], args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The baseline and the job, alternately, ``args.repeat`` times for a ``REPEATED`` job (else once); each
    one's median run (by time), its times listed under ``runs``."""
    bases: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    for i in range(args.repeat if job in REPEATED else 1):
        if i:
            undo(env, job)
        bases.append(measure("baseline", job, env, args.timeout))
        jobs.append(measure("job", job, env, args.timeout))
    if len(jobs) == 1:
        return bases[0], jobs[0]

    def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
        timed = sorted(runs, key=lambda r: float("inf") if r["seconds"] is None else r["seconds"])
        return dict(timed[(len(timed) - 1) // 2], runs=[r["seconds"] for r in runs])

    return median(bases), median(jobs)


def prepare(backend: str, scale: float, workdir: Path, archive: bool = True) -> str:
    from bench.jobs_data import generate
    from storage.behaviour import UpgradeRule
    from storage.db import Database

    url = reset_sqlite(workdir / "jobs.db") if backend == "sqlite" else (reset_postgres(PG_URL) or PG_URL)
    db = Database(url)
    started = time.perf_counter()
    sizes = generate(db.engine, scale, archive=archive)
    with db.transaction() as s:
        s.add(UpgradeRule(text=EXTRA_RULE, target="negotiation", created_by="admin"))
    db.dispose()
    print(f"  data: {sizes} — generated in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def search_details(backend: str, res: dict[str, Any], base: dict[str, Any], scan: dict[str, Any]) -> list[str]:
    """Print the searches query by query (search_messages / by hand / scan, ms, per asker); the scan's row."""
    same = "same hits" if scan["result"].get("digest") == res["result"].get("digest") else "DIFFERENT hits"
    print(f"    reference, LIKE/ILIKE scan without the text index: {scan['seconds']:.2f} s ({scan['result']}); "
          f"{same} as search_messages; peak RSS {scan['rss_mb']:.0f} MB", flush=True)
    print(f"    per query, ms as {' / '.join(SEARCH_USERS)}: search_messages | by hand | scan", flush=True)
    for q, ms in res["per_query"].items():
        print(f"      {q:<22} {'/'.join(map(str, ms)):>16} | {'/'.join(map(str, base['per_query'][q])):>16} | "
              f"{'/'.join(map(str, scan['per_query'][q])):>16}", flush=True)
    return [backend, "↳ reference: LIKE/ILIKE scan, no text index", f"{scan['seconds']:.2f} s",
            f"{base['seconds']:.2f} s", f"{scan['seconds'] / base['seconds']:.1f}×", f"{scan['rss_mb']:.0f} MB", "—"]


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> list[list[str]]:
    print(f"{backend}:", flush=True)
    url = prepare(backend, args.scale, workdir, archive="archive_search" in args.jobs)
    flush_redis(REDIS_URL)
    port = free_port()
    batch = {} if args.credit_per_customer else {"SALESBOT_INTEGRATIONS_CREDIT_BATCH_URL": f"http://127.0.0.1:{port}/batch"}
    env = salesbot_env(url, REDIS_URL, SALESBOT_INTEGRATIONS_CREDIT_ENABLED="true",
                       SALESBOT_INTEGRATIONS_CREDIT_BASE_URL=f"http://127.0.0.1:{port}/",
                       SALESBOT_INTEGRATIONS_CREDIT_KEY="bench-key", **batch)
    rows = []
    with process(gunicorn_cmd("bench.fake_credit:app", port, 1, 8), env=env, port=port,
                 log=workdir / "fake_credit.log"):
        runs = [(j, LABELS[j]) for j in JOBS if j in args.jobs]
        if "customer_events" in args.jobs:  # the 5-minute job's steady state: nothing new to move
            at = runs.index(("customer_events", LABELS["customer_events"])) + 1
            runs.insert(at, ("customer_events", "stage rules, next run (evaluation only)"))
        if "funnel_heatmap" in args.jobs:  # what the aggregation costs without matplotlib (queues nothing)
            at = runs.index(("funnel_heatmap", LABELS["funnel_heatmap"]))
            runs.insert(at, ("funnel_heatmap+norender", "funnel heatmap, aggregation only (no PNG, nothing queued)"))
        for job, label in runs:
            base, res = measure_repeated(job, env, args)
            if res["seconds"] is None:
                job_s = f"> {args.timeout:.0f} s ({progress(env, job)})"
                ratio, verdict = "—", "over 30 s"
            else:
                job_s = f"{res['seconds']:.1f} s"
                ratio_v = res["seconds"] / base["seconds"] if base["seconds"] else float("inf")
                ratio = f"{ratio_v:.1f}×"
                verdict = "ok" if ratio_v <= 3 and res["seconds"] < 30 else (
                    "over 3× baseline" if res["seconds"] < 30 else "over 30 s")
            rss = f"{res.get('rss_mb', 0):.0f} / {base['rss_mb']:.0f} MB" if res["seconds"] is not None else \
                f"— / {base['rss_mb']:.0f} MB"
            print(f"  {label}: job {job_s} → {res.get('result')!r}; baseline {base['seconds']:.2f} s "
                  f"({base['result']} rows); {ratio}; peak RSS job/baseline {rss}", flush=True)
            if "runs" in res:
                print(f"    medians of {len(res['runs'])} runs each: job {' / '.join(f'{t:.2f}' for t in res['runs'])} s, "
                      f"baseline {' / '.join(f'{t:.2f}' for t in base['runs'])} s", flush=True)
            if "check" in res:  # what the job stored, beside the baseline's figures
                agree = "agree" if res["check"] == base["result"] else "DIFFER"
                print(f"    stored by the job: {res['check']} — {agree} with the baseline", flush=True)
            rows.append([backend, label, job_s, f"{base['seconds']:.2f} s", ratio, rss, verdict])
            if job == "archive_search" and res["seconds"] is not None:
                rows.append(search_details(backend, res, base, measure("baseline", "archive_search+scan", env,
                                                                       args.timeout)))
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], dict(os.environ))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=600, help="seconds before a job or baseline is stopped")
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--repeat", type=int, default=3,
                    help=f"runs of each of {', '.join(sorted(REPEATED))} and its baseline (the median is shown)")
    ap.add_argument("--credit-per-customer", action="store_true",
                    help="credit check without the provider's batch endpoint (one GET per customer)")
    args = ap.parse_args()
    args.jobs = args.jobs.split(",")
    print_machine()
    workdir = Path(tempfile.mkdtemp(prefix="salesbot-jobs-bench-"))
    rows: list[list[str]] = []
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        rows += run_backend(backend, args, workdir)
    print()
    print(table(rows, ["backend", "job", "job time", "SQL baseline", "ratio", "peak RSS job / baseline", "goal"]))
    print("goal: each job ≤ 3 × its baseline and under 30 s")


if __name__ == "__main__":
    main()
