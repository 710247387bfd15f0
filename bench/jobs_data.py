"""Generated data for the jobs benchmark, bulk-inserted (Core executemany in chunks; COPY on PostgreSQL).

At scale 1: 1,000 reps under 100 managers (plus finance, risk, admin), 100,000 customers, 100,000
opportunities (one per customer, every stage) with ~300,000 stage changes over the last 8 weeks,
1,000,000 customer events over 120 days (5,000 of them not yet processed), 50,000 contracts with
100,000 instalments (60 % invoiced, dues spread around today), and 100,000 new bank lines (50 % naming
a contract in the memo, 45 % paying an instalment under the customer's name, 5 % unmatched).
Added for the incentive month close and archive search (on top, nothing above changed): last month's
targets, visits, diagnosis reports, 4,000 won deals on 4,000 further customers, bonus and points ledgers
(``generate_incentive_month``), and 1,000,000 archived messages (``generate_archive``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert
from sqlalchemy.engine import Engine

from domain.names import normalise_company_name

STAGES = ["lead", "lead", "diagnosis", "diagnosis", "demo", "demo", "solution_confirmed", "negotiation", "won", "lost"]
RANK = {"lead": 0, "diagnosis": 1, "demo": 2, "solution_confirmed": 3, "negotiation": 4, "won": 5, "lost": 5}
CATEGORIES = ["pricing", "case", "competitor", "manual", "video", "other"]
CHUNK = 20_000
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the scheduler's default zone: the month the close closes


class Sizes:
    def __init__(self, scale: float) -> None:
        self.reps = max(10, int(1000 * scale))
        self.managers = max(1, self.reps // 10)
        self.customers = int(100_000 * scale)
        self.events = int(1_000_000 * scale)
        self.pending_events = int(5_000 * scale)
        self.contracts = int(50_000 * scale)
        self.bank_lines = int(100_000 * scale)
        self.won_deals = 4 * self.reps  # won deals on customers of their own (3 last month, 1 this month)
        self.messages = int(1_000_000 * scale)  # the conversation archive (搜索)

    def __repr__(self) -> str:
        return (f"{self.reps} reps, {self.managers} managers, {self.customers} customers and opportunities, "
                f"{self.events} customer events ({self.pending_events} pending), {self.contracts} contracts "
                f"with {2 * self.contracts} instalments, {self.bank_lines} bank lines; incentives: targets, "
                f"visits, diagnosis reports, {self.won_deals} won deals, bonus and points ledgers; "
                f"{self.messages} archived messages")


def customer_name(i: int) -> str:
    return f"客户{i:06d}科技有限公司"


def contract_number(i: int) -> str:
    return f"HT{i:07d}"


def _chunks(rows: Iterable[dict[str, Any]], n: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _load(engine: Engine, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Bulk insert: COPY on PostgreSQL, executemany through SQLAlchemy Core on SQLite."""
    n = 0
    if engine.dialect.name == "postgresql":
        cols: list[str] | None = None
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur:  # type: ignore[attr-defined]
                for batch in _chunks(rows):
                    cols = cols or list(batch[0])
                    with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                        for r in batch:
                            copy.write_row([_pg(r[c]) for c in cols])
                    n += len(batch)
            raw.commit()
        finally:
            raw.close()
        return n
    for batch in _chunks(rows):
        with engine.begin() as conn:
            conn.execute(insert(table), batch)
        n += len(batch)
    return n


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI).astimezone(UTC)


def last_month(now: datetime) -> date:
    """The first day of the month incentive_close closes (the month before today in the scheduler's zone)."""
    today = now.astimezone(SHANGHAI).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def generate_incentive_month(engine: Engine, sz: Sizes, now: datetime, seed: int) -> None:
    """What incentive_close reads for last month, added to the data above without changing it.

    Targets (last month and this; every 20th rep has none), ~70 visits per rep from a week before last
    month's first owned week until today (70 % quality, a few still drafts), a diagnosis report for 60 % of
    the opportunities that entered 需求诊断 (their stage changes are above), 4 won deals per rep (new /
    renewal / upsell; 3 closed last month, 1 this month) on customers of their own with a health score
    (a third below 60), and the bonus and points ledgers (~12 credits, a few clawbacks, ~5 points lines).
    The won deals have no stage history, so the funnel and stage-rule benchmarks see the same data.
    """
    from domain.incentives import month_end, scoring_period
    from storage.incentives import BonusLedgerRow, PointsLedgerRow, Target
    from storage.sales import Customer, Evidence, Opportunity, Visit

    rng = random.Random(seed + 1)
    month = last_month(now)
    today = now.astimezone(SHANGHAI).date()
    this_month = today.replace(day=1)
    period = scoring_period(month)

    def owner(i: int) -> str:
        return f"rep{i % sz.reps:04d}"

    def targets() -> Iterator[dict[str, Any]]:
        for r in range(sz.reps):
            if r % 20 == 19:
                continue
            for m in (month, this_month):
                yield {"userid": f"rep{r:04d}", "month": m.strftime("%Y-%m"),
                       "new": Decimal(rng.randint(10, 60) * 10_000), "renewal": Decimal(rng.randint(5, 30) * 10_000),
                       "upsell": Decimal(rng.randint(2, 20) * 10_000), "set_by": "admin", "updated_at": now}

    _load(engine, Target.__table__, targets())

    first_day = period.visits_from - timedelta(days=7)
    span = (today - first_day).days + 1

    def visits() -> Iterator[dict[str, Any]]:
        for r in range(sz.reps):
            for _ in range(rng.randint(40, 100)):
                cid = r + 1 + sz.reps * rng.randrange(max(1, sz.customers // sz.reps))
                at = _local(first_day + timedelta(days=rng.randrange(span)), rng.randint(8, 19), rng.randrange(60))
                done = rng.random() < 0.95
                yield {"customer_id": cid, "opportunity_id": cid, "rep_userid": f"rep{r:04d}",
                       "pain_point": "多仓库存无法统一查看，月底对账靠人工", "budget": "已明确" if done else None,
                       "next_step": "下周演示", "contacts_met": "张总", "is_report": False,
                       "quality": done and rng.random() < 0.7, "status": "done" if done else "draft",
                       "created_at": at, "completed_at": at if done else None}

    _load(engine, Visit.__table__, visits())

    def evidence() -> Iterator[dict[str, Any]]:
        for i in range(sz.customers):
            if RANK[STAGES[i % len(STAGES)]] >= 1 and rng.random() < 0.6:
                yield {"opportunity_id": i + 1, "item": "report", "text": "诊断报告：现状、痛点、预算与决策链",
                       "attachment_id": None, "visit_id": None, "by_userid": owner(i), "at": now - timedelta(days=20)}
            if rng.random() < 0.2:
                yield {"opportunity_id": i + 1, "item": "competitor", "text": "在对比用友和金蝶",
                       "attachment_id": None, "visit_id": None, "by_userid": owner(i), "at": now - timedelta(days=20)}

    _load(engine, Evidence.__table__, evidence())

    # won deals, each on a customer of its own (ids after the customers above)
    kinds = ["new", "new", "renewal", "upsell"]
    customers, opps = [], []
    days_last = (month_end(month) - month).days + 1
    for k in range(sz.won_deals):
        cid = sz.customers + k + 1
        rep = owner(k)
        name = f"签约客户{k:06d}有限公司"
        health = None if k % 7 == 0 else Decimal(rng.randint(3500, 9800)) / 100
        customers.append({"id": cid, "name": name, "name_key": normalise_company_name(name),
                          "credit_code": f"92{k:016d}", "industry": "制造", "region": "华东", "owner_userid": rep,
                          "health_score": health, "health_band": None, "created_by": rep,
                          "created_at": now - timedelta(days=200)})
        closed_day = month + timedelta(days=rng.randrange(days_last)) if k % 4 != 3 else \
            this_month + timedelta(days=rng.randrange(max(1, (today - this_month).days)))
        closed = _local(closed_day, rng.randint(9, 20))
        amount = Decimal(rng.randint(20, 400) * 1000)
        opps.append({"id": sz.customers + k + 1, "customer_id": cid, "owner_userid": rep, "amount": amount,
                     "kind": kinds[rng.randrange(4)], "product_line": None, "stage": "won", "stage_entered_at": closed,
                     "pending_stage": None, "pending_by": None, "frozen": False, "frozen_reason": None,
                     "contract_no": f"WD{k:07d}",
                     "signed_amount": None if k % 10 == 0 else amount - Decimal(rng.randint(0, 10) * 500),
                     "created_at": closed - timedelta(days=60), "closed_at": closed})
    _load(engine, Customer.__table__, customers)
    _load(engine, Opportunity.__table__, opps)
    del customers, opps

    def bonus() -> Iterator[dict[str, Any]]:
        n = 0
        for r in range(sz.reps):
            for _ in range(rng.randint(6, 18)):
                n += 1
                booked = first_day + timedelta(days=rng.randrange(span))
                amount = Decimal(rng.randint(30_000, 900_000)) / 100
                # payments from before the generated bank lines: ids no allocation of a benchmark run takes (as
                # "alloc:<n>" they named the run's first allocations, whose commission was then never booked)
                row = {"payment_id": f"alloc:before-{n}", "userid": f"rep{r:04d}", "booked_on": booked,
                       "at": _local(booked, 12)}
                yield {**row, "amount": amount, "kind": "credit"}
                if rng.random() < 0.05:
                    yield {**row, "amount": -amount, "kind": "clawback"}

    _load(engine, BonusLedgerRow.__table__, bonus())

    def points() -> Iterator[dict[str, Any]]:
        n = 0
        for r in range(sz.reps):
            for _ in range(rng.randint(2, 8)):
                n += 1
                redeem = rng.random() < 0.1
                yield {"userid": f"rep{r:04d}", "delta": -5 if redeem else 2,
                       "reason": "redemption" if redeem else "collaboration", "ref": f"bench:{n}",
                       "note": "咖啡券" if redeem else "协同确认", "at": now - timedelta(days=rng.randrange(60))}

    _load(engine, PointsLedgerRow.__table__, points())


# ---- the conversation archive -----------------------------------------------------------------------

CONTACTS = ["张总", "李经理", "王工", "赵主任", "刘总监", "陈总", "杨经理", "黄工", "周总", "吴主管", "徐总", "孙经理"]
COMPETITORS = ["用友", "金蝶", "销售易", "纷享销客", "Salesforce", "钉钉"]
PRODUCTS = ["CRM标准版", "CRM专业版", "进销存模块", "BI报表", "移动审批", "API对接包"]
TEMPLATES = [
    "{p}说{c}今年的采购预算大概{a}，下周再确认",
    "刚和{c}的{p}通了电话，对方对报价{a}还有顾虑，希望再给个折扣",
    "{c}合同已经发过去了，金额{a}，等法务审核",
    "提醒一下：{c}第{n}期回款{a}预计{d}到账",
    "{c}在对比{k}，需要准备一份同行业案例",
    "明天下午去{c}做产品演示，{p}和IT负责人都会参加",
    "{c}的发票已经申请，开票金额{a}，请财务尽快处理",
    "{c}试用账号开通了，{n}个用户，主要看{prod}",
    "{c}续费意向明确，{p}说等年底预算批下来就签",
    "{c}想增购{prod}，{p}让我们先出个方案和报价",
    "{p}反馈{c}系统登录有点慢，已经提了工单",
    "{c}决策链：{p}拍板，财务总监审预算，采购走流程",
    "拜访 {c} 痛点:多仓库存对账困难 预算:已明确 下一步:报价",
    "跟进 {c} 已发{prod}报价单{a}，等客户反馈",
    "{c}那边说{k}报价比我们低{n}%，需要主管支持一下价格",
    "{c}的{p}下周出差，演示改到{d}",
    "{c}的回款{a}已经到账，麻烦核对一下银行流水",
    "{c}上线培训安排在{d}，{n}个关键用户参加",
]
SHORT = ["收到", "好的，马上处理", "明白", "辛苦了", "已跟进", "稍后回复客户", "我的看板", "帮助", "今天拜访了三家客户",
         "下午开周会，记得更新商机阶段", "月底冲业绩，大家加油", "搜索 预算", "客户说再考虑一下"]
RARE = ["区块链", "元宇宙"]  # about one message in 10,000 / 50,000


def _amount(rng: random.Random) -> str:
    n = rng.randint(10, 999) * 1000
    return f"¥{n:,}" if rng.random() < 0.5 else f"{n / 10_000:g}万"


def generate_archive(engine: Engine, sz: Sizes, now: datetime, seed: int) -> None:
    """sz.messages archived messages over the last 180 days, oldest first (as the callback writes them).

    Reps send 92 % (three in four about one of their own customers, customer_id set and the text naming
    it: 客户012345), managers 6 %, admin and finance the rest; 85 % text, 6 % voice (the transcript is the
    content), 5 % images and 4 % events (no content). The text index is filled the way production fills
    it: on SQLite by the migration's triggers on every insert, on PostgreSQL by the GIN index.
    """
    from storage.models import InboundMessage

    rng = random.Random(seed + 2)
    start = now - timedelta(days=180)
    step = 180 * 86400 / max(1, sz.messages)
    per_rep = max(1, sz.customers // sz.reps)

    def text(customer: int | None) -> str:
        roll = rng.random()
        if customer is None or roll < 0.1:
            return rng.choice(SHORT)
        body = rng.choice(TEMPLATES).format(
            c=f"客户{customer - 1:06d}", p=rng.choice(CONTACTS), a=_amount(rng), n=rng.randint(2, 30),
            d=f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日", k=rng.choice(COMPETITORS), prod=rng.choice(PRODUCTS))
        if roll > 0.9999:
            body += f"，对方还问到{RARE[0]}存证"
        elif roll < 0.10002:
            body += f"，顺便聊了{RARE[1]}展厅"
        return body

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(sz.messages):
            at = start + timedelta(seconds=i * step + rng.random() * step)
            who = rng.random()
            if who < 0.92:
                r = rng.randrange(sz.reps)
                sender = f"rep{r:04d}"
                customer = r + 1 + sz.reps * rng.randrange(per_rep) if rng.random() < 0.75 else None
            elif who < 0.98:
                sender, customer = f"mgr{rng.randrange(sz.managers):03d}", None
            else:
                sender, customer = rng.choice(("admin", "fin0", "fin1")), None
            kind = rng.random()
            msg_type, event, content, media = "text", None, "", None
            if kind < 0.85:
                content = text(customer)
            elif kind < 0.91:
                msg_type, content, media = "voice", text(customer), f"m{i}"
            elif kind < 0.96:
                msg_type, media = "image", f"m{i}"
            else:
                msg_type, event = "event", "enter_agent"
            yield {"id": i + 1, "callback_key": f"bench:{i}", "msg_id": f"{7_000_000_000 + i}", "from_user": sender,
                   "msg_type": msg_type, "event": event, "content": content, "media_id": media, "raw": {},
                   "sent_at": at, "received_at": at + timedelta(seconds=1), "customer_id": customer}

    if engine.dialect.name == "postgresql":
        _load(engine, InboundMessage.__table__, rows())  # COPY; the GIN trigram index is kept up to date
        return
    # SQLite: the insert trigger indexes row by row (~100 µs a message: 2 minutes for 1M). Load the rows
    # with that trigger set aside, index them as migration 0002 indexes the rows that exist before it, and
    # put the trigger back verbatim: the same index, and later inserts indexed by the trigger as in production.
    with engine.begin() as conn:
        trigger = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                       "AND name = 'inbound_fts_ai'").scalar_one()
        conn.exec_driver_sql("DROP TRIGGER inbound_fts_ai")
    try:
        _load_sqlite_raw(engine, InboundMessage.__table__, rows())
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO inbound_fts(rowid, content) SELECT id, content FROM inbound_messages")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(trigger)


def _load_sqlite_raw(engine: Engine, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """executemany on the DBAPI connection, each value converted by its column type's own bind processor
    (what Core would store, at a third of Core's cost for a million rows)."""
    n = 0
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA cache_size = -262144")  # 256 MB for this load: the indexes stay in memory
        cols: list[str] = []
        procs: list[Any] = []
        for batch in _chunks(rows):
            if not cols:
                cols = list(batch[0])
                procs = [table.c[c].type.dialect_impl(engine.dialect).bind_processor(engine.dialect) for c in cols]
            sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"  # noqa: S608
            cur.execute("BEGIN")  # the engine's connections are in autocommit mode (storage/db.py)
            cur.executemany(sql, [tuple(p(r[c]) if p else r[c] for c, p in zip(cols, procs, strict=True))
                                  for r in batch])
            cur.execute("COMMIT")
            n += len(batch)
        cur.execute("PRAGMA cache_size = -2000")  # SQLite's default again, for whoever gets the connection next
    finally:
        raw.close()
    return n


def _pg(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return v


def generate(engine: Engine, scale: float = 1.0, seed: int = 9, archive: bool = True) -> Sizes:
    """Everything the job benchmarks read; the 1M-message archive (minutes to load) only when ``archive``."""
    import storage.all_models  # noqa: F401  (every table registered)
    from storage.behaviour import CustomerEvent, LinkItem
    from storage.models import Member
    from storage.payments import BankLine, Contract, Receivable
    from storage.sales import Customer, Opportunity, StageChange

    sz = Sizes(scale)
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    t = Member.__table__
    members = [{"userid": "admin", "name": "管理员", "roles": ["admin"], "manager_userid": None},
               {"userid": "fin0", "name": "财务甲", "roles": ["finance"], "manager_userid": None},
               {"userid": "fin1", "name": "财务乙", "roles": ["finance"], "manager_userid": None},
               {"userid": "risk0", "name": "风控", "roles": ["risk"], "manager_userid": None}]
    members += [{"userid": f"mgr{m:03d}", "name": f"主管{m}", "roles": ["manager"], "manager_userid": None}
                for m in range(sz.managers)]
    _load(engine, t, ({**m, "region": "华东", "active": True, "created_at": now, "updated_at": now} for m in members))
    _load(engine, t, ({"userid": f"rep{r:04d}", "name": f"销售{r}", "roles": ["rep"],
                       "manager_userid": f"mgr{r * sz.managers // sz.reps:03d}", "region": "华东", "active": True,
                       "created_at": now, "updated_at": now} for r in range(sz.reps)))

    def owner(i: int) -> str:
        return f"rep{i % sz.reps:04d}"

    _load(engine, Customer.__table__, ({
        "id": i + 1, "name": customer_name(i), "name_key": normalise_company_name(customer_name(i)),
        "credit_code": f"91{i:016d}", "industry": "软件", "region": "华东", "owner_userid": owner(i),
        "created_by": owner(i), "created_at": now - timedelta(days=200)} for i in range(sz.customers)))
    _load(engine, LinkItem.__table__, ({"id": k + 1, "name": f"资料{k}", "url": f"https://docs.example.com/{k}.pdf",
                                        "category": c, "active": True, "created_by": "admin", "created_at": now}
                                       for k, c in enumerate(CATEGORIES)))

    # opportunities and their stage history (a chain lead → … → current stage over the last 8 weeks)
    opps, changes = [], []
    for i in range(sz.customers):
        stage = STAGES[i % len(STAGES)]
        path = ["lead", "diagnosis", "demo", "solution_confirmed", "negotiation"][: min(RANK[stage], 4) + 1]
        if stage in ("won", "lost"):
            path.append(stage)
        at = now - timedelta(days=56) + timedelta(hours=rng.randint(0, 24 * 20))
        for k, st in enumerate(path):
            changes.append({"opportunity_id": i + 1, "from_stage": path[k - 1] if k else None, "to_stage": st,
                            "at": at, "actor": owner(i), "rule": None, "reason": ""})
            at = min(now - timedelta(hours=1), at + timedelta(hours=rng.randint(24, 24 * 12)))
        opps.append({"id": i + 1, "customer_id": i + 1, "owner_userid": owner(i),
                     "amount": Decimal(rng.randint(10, 1000) * 1000), "kind": "new", "product_line": None,
                     "stage": stage, "stage_entered_at": changes[-1]["at"], "pending_stage": None, "pending_by": None,
                     "frozen": False, "frozen_reason": None, "contract_no": None, "signed_amount": None,
                     "created_at": now - timedelta(days=56), "closed_at": None})
    _load(engine, Opportunity.__table__, opps)
    _load(engine, StageChange.__table__, changes)
    del opps, changes

    # customer events: 10 per customer on average over 120 days; the newest few thousand unprocessed
    def events() -> Iterator[dict[str, Any]]:
        for e in range(sz.events):
            cid = rng.randrange(sz.customers) + 1
            roll = rng.random()
            at = now - timedelta(seconds=rng.randint(3600, 120 * 86400))
            pending = e >= sz.events - sz.pending_events
            if pending:
                at = now - timedelta(seconds=rng.randint(60, 3600))
            if roll < 0.5:
                cat = rng.choice(CATEGORIES)
                row = {"type": "link_click", "category": cat, "item_id": CATEGORIES.index(cat) + 1, "source": "link",
                       "external_id": None, "data": {}}
            else:
                etype = "login" if roll < 0.8 else "trial_requested" if roll < 0.85 else "feature_used"
                row = {"type": etype, "category": None, "item_id": None, "source": "product",
                       "external_id": f"product:g{e}", "data": {}}
            yield {**row, "customer_id": cid, "occurred_at": at, "received_at": at, "user_agent": None,
                   "ip_hash": None, "processed_at": None if pending else at}

    _load(engine, CustomerEvent.__table__, events())

    # contracts: customers 0 … contracts-1, two instalments each
    contracts, receivables = [], []
    for i in range(sz.contracts):
        amount1, amount2 = Decimal(rng.randint(100, 900) * 100), Decimal(rng.randint(1000, 1900) * 100 + 1)
        contracts.append({"id": i + 1, "number": contract_number(i), "customer_id": i + 1, "owner_userid": owner(i),
                          "amount": amount1 + amount2, "payment_term_days": 30, "kind": "new", "product_line": None,
                          "opportunity_id": None, "signed_on": today - timedelta(days=90), "source": "import",
                          "created_at": now - timedelta(days=90)})
        for seq, amount in ((1, amount1), (2, amount2)):
            invoiced = rng.random() < 0.6
            collectible = today + timedelta(days=rng.randint(-20, 20)) if invoiced else None
            paid = invoiced and rng.random() < 0.1
            receivables.append({"contract_id": i + 1, "seq": seq, "amount": amount,
                                "outstanding": Decimal(0) if paid else amount,
                                "due_on": collectible or today + timedelta(days=rng.randint(-20, 40)),
                                "invoice_requested_at": None,
                                "invoiced_on": (collectible - timedelta(days=30)) if collectible else None,
                                "invoice_no": None, "collectible_on": collectible,
                                "paid_on": today - timedelta(days=1) if paid else None})
    _load(engine, Contract.__table__, contracts)
    _load(engine, Receivable.__table__, receivables)
    amounts = {(r["contract_id"], r["seq"]): r["amount"] for r in receivables}
    del contracts, receivables

    def lines() -> Iterator[dict[str, Any]]:
        n_memo, n_payer = sz.bank_lines // 2, sz.bank_lines * 45 // 100
        for b in range(sz.bank_lines):
            if b < n_memo:
                i = b % sz.contracts
                memo, payer, amount = f"货款 {contract_number(i)} 第1期", "", amounts[(i + 1, 1)]
            elif b < n_memo + n_payer:
                i = (b - n_memo) % sz.contracts
                memo, payer, amount = "货款", customer_name(i), amounts[(i + 1, 2)]
            else:
                memo, payer, amount = "个人转账", f"张{b}", Decimal(rng.randint(1, 999)) + Decimal("0.37")
            yield {"account": "6222-0001", "transaction_id": f"T{b:09d}", "booked_on": today, "amount": amount,
                   "payer_name": payer, "memo": memo, "status": "new", "match_step": None, "source": "import",
                   "imported_at": now}

    _load(engine, BankLine.__table__, lines())
    generate_incentive_month(engine, sz, now, seed)
    if archive:
        generate_archive(engine, sz, now, seed)
    else:
        sz.messages = 0  # not generated (only the archive search reads it)
    if engine.dialect.name == "postgresql":
        # the data at rest, as a weekly job finds it: vacuumed (hint bits and visibility map set, so no measured
        # run pays for the first read of freshly written rows, nor runs beside autovacuum's pass over them),
        # analyzed, and written out (CHECKPOINT)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
            conn.exec_driver_sql("CHECKPOINT")
        with engine.begin() as conn:
            for table, col in (("customers", "id"), ("opportunities", "id"), ("link_items", "id"), ("contracts", "id"),
                               ("inbound_messages", "id")):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "  # noqa: S608
                                     f"(SELECT MAX({col}) FROM {table}))")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return sz


__all__ = ["RANK", "Sizes", "contract_number", "customer_name", "generate", "last_month"]
