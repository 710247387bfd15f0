"""Generated data for the jobs benchmark, bulk-inserted (Core executemany in chunks; COPY on PostgreSQL).

At scale 1: 1,000 reps under 100 managers (plus finance, risk, admin), 100,000 customers, 100,000
opportunities (one per customer, every stage) with ~300,000 stage changes over the last 8 weeks,
1,000,000 customer events over 120 days (5,000 of them not yet processed), 50,000 contracts with
100,000 instalments (60 % invoiced, dues spread around today), and 100,000 new bank lines (50 % naming
a contract in the memo, 45 % paying an instalment under the customer's name, 5 % unmatched).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Engine

from domain.names import normalise_company_name

STAGES = ["lead", "lead", "diagnosis", "diagnosis", "demo", "demo", "solution_confirmed", "negotiation", "won", "lost"]
RANK = {"lead": 0, "diagnosis": 1, "demo": 2, "solution_confirmed": 3, "negotiation": 4, "won": 5, "lost": 5}
CATEGORIES = ["pricing", "case", "competitor", "manual", "video", "other"]
CHUNK = 20_000


class Sizes:
    def __init__(self, scale: float) -> None:
        self.reps = max(10, int(1000 * scale))
        self.managers = max(1, self.reps // 10)
        self.customers = int(100_000 * scale)
        self.events = int(1_000_000 * scale)
        self.pending_events = int(5_000 * scale)
        self.contracts = int(50_000 * scale)
        self.bank_lines = int(100_000 * scale)

    def __repr__(self) -> str:
        return (f"{self.reps} reps, {self.managers} managers, {self.customers} customers and opportunities, "
                f"{self.events} customer events ({self.pending_events} pending), {self.contracts} contracts "
                f"with {2 * self.contracts} instalments, {self.bank_lines} bank lines")


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


def _pg(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return v


def generate(engine: Engine, scale: float = 1.0, seed: int = 9) -> Sizes:
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
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            for table, col in (("customers", "id"), ("opportunities", "id"), ("link_items", "id"), ("contracts", "id")):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "  # noqa: S608
                                     f"(SELECT MAX({col}) FROM {table}))")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return sz


__all__ = ["RANK", "Sizes", "contract_number", "customer_name", "generate"]
