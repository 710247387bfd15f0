"""Bank matching in chunks (jobs/bank.py match_pending): a chunk of lines is decided in memory and written
in bulk, with the same decisions and effects as matching the lines one by one."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

import jobs.bank as bank
from domain import bank_matching as BM
from integrations.bank import Line
from jobs.bank import ingest, match_pending
from storage.incentives import BonusLedgerRow
from storage.models import OutboxMessage
from storage.payments import Allocation, BankLine, Contract, PaymentEvent, Promise, Receivable
from storage.sales import Customer

D = Decimal
DAY = date(2026, 12, 9)


def ledger(rt: Any, customers: list[tuple[str, str, list[tuple[str, str]]]], kind: str = "new") -> None:
    """Customers (name, contract number, [(amount, due day)…]) owned by zhangsan."""
    with rt.db.transaction() as s:
        for name, number, instalments in customers:
            from domain.names import normalise_company_name

            c = Customer(name=name, name_key=normalise_company_name(name), owner_userid="zhangsan")
            s.add(c)
            s.flush()
            k = Contract(number=number, customer_id=c.id, owner_userid="zhangsan",
                         amount=sum(D(a) for a, _ in instalments), kind=kind)
            s.add(k)
            s.flush()
            for seq, (amount, due) in enumerate(instalments, 1):
                s.add(Receivable(contract_id=k.id, seq=seq, amount=D(amount), outstanding=D(amount),
                                 due_on=date.fromisoformat(due)))


def line(txn: str, amount: str, payer: str = "", memo: str = "", day: date = DAY) -> Line:
    return Line("6222-001", txn, day, D(amount), payer, memo)


def state(rt: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Everything matching writes (ids included, card task ids left out: they are random)."""
    with rt.db.sessions() as s:
        def rows(q: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in s.execute(q).all()]
        return {
            "lines": rows(select(BankLine.id, BankLine.status, BankLine.match_step).order_by(BankLine.id)),
            "allocations": rows(select(Allocation.id, Allocation.bank_line_id, Allocation.receivable_id,
                                       Allocation.amount).order_by(Allocation.id)),
            "receivables": rows(select(Receivable.id, Receivable.outstanding, Receivable.paid_on).order_by(Receivable.id)),
            "events": rows(select(PaymentEvent.id, PaymentEvent.kind, PaymentEvent.allocation_id,
                                  PaymentEvent.rep_userid, PaymentEvent.amount, PaymentEvent.received_on,
                                  PaymentEvent.consumed_at.is_(None)).order_by(PaymentEvent.id)),
            "promises": rows(select(Promise.id, Promise.kept, Promise.kept_on).order_by(Promise.id)),
            "bonus": rows(select(BonusLedgerRow.id, BonusLedgerRow.payment_id, BonusLedgerRow.userid,
                                 BonusLedgerRow.amount, BonusLedgerRow.kind).order_by(BonusLedgerRow.id)),
            "outbox": [(i, r, m, {k: v for k, v in b.items() if k != "task_id"} if isinstance(b, dict) else b, k)
                       for i, r, m, b, k in s.execute(select(OutboxMessage.id, OutboxMessage.recipient,
                                                             OutboxMessage.msgtype, OutboxMessage.body,
                                                             OutboxMessage.dedup_key).order_by(OutboxMessage.id))],
        }


def outstanding(rt: Any) -> list[Decimal]:
    with rt.db.sessions() as s:
        return list(s.scalars(select(Receivable.outstanding).order_by(Receivable.id)))


def texts(rt: Any, userid: str) -> list[str]:
    with rt.db.sessions() as s:
        return [b.get("content", "") for b in s.scalars(select(OutboxMessage.body).where(
            OutboxMessage.recipient == userid).order_by(OutboxMessage.id))]


def test_two_lines_of_one_chunk_competing_for_one_receivable_the_second_sees_what_the_first_took(rt, company):
    ledger(rt, [("杭州云栖科技有限公司", "HT2026001", [("5000", "2026-12-10"), ("3000", "2026-12-20")])])
    ingest(rt, [line("T1", "5000", "杭州云栖科技有限公司"), line("T2", "5000", "杭州云栖科技有限公司"),
                line("T3", "3000", "杭州云栖科技有限公司")], "import")
    assert match_pending(rt) == {"matched": 2, "unmatched": 1}
    s = state(rt)
    assert [(st, step) for _, st, step in s["lines"]] == [("matched", 2), ("unmatched", 4), ("matched", 2)]
    assert [(line_id, amount) for _, line_id, _, amount in s["allocations"]] == [(1, D("5000.00")), (3, D("3000.00"))]
    assert outstanding(rt) == [D("0.00"), D("0.00")]
    # the second line's finance card offers nothing already paid
    card = [b for _, r, m, b, _ in s["outbox"] if m == "template_card"]
    assert len(card) == 1 and "horizontal_content_list" in card[0]
    assert all("第1期" not in row["keyname"] for row in card[0]["horizontal_content_list"])


def test_a_memo_line_partly_paying_an_instalment_turns_a_later_payer_line_of_the_same_chunk_into_a_subset(rt, company):
    ledger(rt, [("北京远景数据有限公司", "HT2026002", [("40000", "2026-12-20"), ("100000", "2026-12-01")])])
    ingest(rt, [line("T1", "40000", memo="HT2026002 货款"), line("T2", "100000", "北京远景数据有限公司")], "import")
    assert match_pending(rt) == {"matched": 2, "unmatched": 0}
    s = state(rt)
    # the memo line pays the earlier-due 100,000 in part; the payer line then finds no 100,000 instalment
    # but 40,000 + (100,000 − 40,000)
    assert [step for _, _, step in s["lines"]] == [1, 3]
    assert outstanding(rt) == [D("0.00"), D("0.00")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_chunked_matching_writes_exactly_what_matching_line_by_line_writes(rt, company, chunk):
    """The same lines, matched one by one (chunks of 1: the ledger reloaded for every line) and in chunks."""
    outcomes = [_scenario(rt, size) for size in (1, chunk)]
    assert outcomes[0] == outcomes[1]
    counts, s = outcomes[0]
    assert counts == {"matched": 5, "unmatched": 3}
    assert [step for _, _, step in s["lines"]] == [2, 4, 1, 3, 3, 4, 4, 1]
    assert [p[1:] for p in s["promises"]] == [("late", DAY)]
    assert [b[3] for b in s["bonus"]] == [D("150.00"), D("840.00"), D("1260.00"), D("1260.00"), D("25.21"),
                                          D("16.80"), D("90.00")]  # renewals of a customer under 60: × 0.7


def _scenario(rt: Any, chunk: int) -> tuple[dict[str, int], dict[str, list[tuple[Any, ...]]]]:
    """Two customers, a promise and eight lines that compete for their instalments, matched from an empty
    ledger in chunks of ``chunk``: (counts, state)."""
    _reset(rt)
    ledger(rt, [("杭州云栖科技有限公司", "HT2026001", [("5000", "2026-12-10"), ("3000", "2026-12-20")]),
                ("北京远景数据有限公司", "HT2026002", [("60000", "2026-12-20"), ("100000", "2026-12-01"),
                                                ("1200.50", "2026-12-05"), ("800", "2026-12-06")])],
           kind="renewal")
    with rt.db.transaction() as s:
        cid = s.scalar(select(Customer.id).where(Customer.name == "北京远景数据有限公司"))
        s.get(Customer, cid).health_score = D("55")
        s.add(Promise(customer_id=cid, rep_userid="zhangsan", amount=D("60000"), promised_on=date(2026, 12, 8)))
    lines = [line("T1", "5000", "杭州云栖科技有限公司"), line("T2", "5000", "杭州云栖科技有限公司"),
             line("T3", "40000", memo="HT2026002 货款"), line("T4", "120000", "北京远景数据有限公司"),
             line("T5", "2000.50", "北京远景数据有限公司"), line("T6", "1", "无名氏"),
             line("T7", "0", memo="HT2026001"), line("T8", "3000", "杭州云栖科技", "HT2026001")]
    ingest(rt, lines, "import")
    counts = match_pending(rt, chunk)
    return counts, state(rt)


def _writes_after_the_next_decision(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """PostgreSQL's pipeline made deterministic: a chunk's writes wait until the chunk after it has been
    read and decided, so that one always reads a ledger its predecessor has not committed yet. Returns the
    chunks (ids) decided while the one before was still uncommitted."""
    decided_next: dict[int, threading.Event] = {}
    stale: list[list[int]] = []
    real_decide, real_write = bank._decide, bank._write

    def decide(rt: Any, config: Any, ids: list[int], after: Any) -> Any:
        out = real_decide(rt, config, ids, after)
        if after is not None:
            stale.append(ids)
            decided_next.setdefault(after.lines[0].id, threading.Event()).set()
        return out

    def write(pending: Any) -> None:
        last_line = pending.chunk.s.scalar(select(func.max(BankLine.id)))
        if pending.ids[-1] != last_line:  # the last chunk has none after it
            assert decided_next.setdefault(pending.ids[0], threading.Event()).wait(10)
        real_write(pending)

    monkeypatch.setattr(bank, "_decide", decide)
    monkeypatch.setattr(bank, "_write", write)
    return stale


def test_on_postgresql_a_chunk_decided_before_the_one_before_commits_sees_its_effects(rt, company, monkeypatch):
    if not rt.db.is_postgres:
        pytest.skip("chunks are pipelined on PostgreSQL only")
    reference = _scenario(rt, 1000)
    for chunk in (1, 2, 3):
        with monkeypatch.context() as m:
            stale = _writes_after_the_next_decision(m)
            assert _scenario(rt, chunk) == reference
            assert len(stale) == -(-8 // chunk) - 1  # every chunk but the first read before the last committed


def test_on_postgresql_a_chunk_whose_writes_fail_is_retried_line_by_line_and_the_next_decided_again(
        rt, company, monkeypatch):
    if not rt.db.is_postgres:
        pytest.skip("chunks are pipelined on PostgreSQL only")
    real = bank._Chunk.write
    failures = []

    def write(self: Any) -> None:
        if any(ln.transaction_id == "T3" for ln in self.lines):  # the first chunk, and T3 alone: left new
            failures.append([ln.transaction_id for ln in self.lines])
            raise ValueError("a write the database refuses")
        real(self)

    monkeypatch.setattr(bank._Chunk, "write", write)
    reference = _scenario(rt, 1000)
    assert reference[0] == {"matched": 3, "unmatched": 4, "failed": 1}
    failures.clear()
    stale = _writes_after_the_next_decision(monkeypatch)
    assert _scenario(rt, 3) == reference  # the second chunk decided again without T3's 40,000
    assert failures == [["T1", "T2", "T3"], ["T3"]] and stale


def test_on_postgresql_the_database_failing_under_a_write_stops_the_run_and_the_next_chunk_is_let_go(
        rt, company, monkeypatch):
    if not rt.db.is_postgres:
        pytest.skip("chunks are pipelined on PostgreSQL only")

    def write(self: Any) -> None:
        raise bank.OperationalError("INSERT", {}, Exception("server closed the connection"))

    with monkeypatch.context() as m:
        stale = _writes_after_the_next_decision(m)
        m.setattr(bank._Chunk, "write", write)
        with pytest.raises(bank.OperationalError):
            _scenario(rt, 3)
        assert stale  # the second chunk had been decided, its lines locked
    assert [st for _, st, _ in state(rt)["lines"]] == ["new"] * 8
    assert match_pending(rt, 3) == {"matched": 5, "unmatched": 3}  # nothing left locked


def _reset(rt: Any) -> None:
    """Each run of the comparison starts from the same empty ledger, ids from 1 again."""
    tables = ["bonus_ledger", "payment_events", "allocations", "promises", "bank_lines", "receivables", "contracts",
              "outbox", "cards", "customers"]
    with rt.db.transaction() as s:
        if rt.db.is_postgres:
            s.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                s.execute(text(f"DELETE FROM {table}"))  # noqa: S608


def test_a_line_that_fails_does_not_stop_the_others_of_its_chunk(rt, company, monkeypatch):
    ledger(rt, [("杭州云栖科技有限公司", "HT2026001", [("5000", "2026-12-10"), ("3000", "2026-12-20")])])
    ingest(rt, [line("T1", "5000", "杭州云栖科技有限公司"), line("T2", "1", memo="坏数据"),
                line("T3", "3000", "杭州云栖科技有限公司")], "import")
    real = BM.match_bank_line

    def flaky(bank_line: BM.BankLine, *args: Any, **kwargs: Any) -> BM.MatchResult:
        if bank_line.memo == "坏数据":
            raise ValueError("a line the matcher cannot take")
        return real(bank_line, *args, **kwargs)

    monkeypatch.setattr(bank.BM, "match_bank_line", flaky)
    assert match_pending(rt) == {"matched": 2, "unmatched": 0, "failed": 1}
    assert [st for _, st, _ in state(rt)["lines"]] == ["matched", "new", "matched"]
    assert outstanding(rt) == [D("0.00"), D("0.00")]
    monkeypatch.setattr(bank.BM, "match_bank_line", real)
    assert match_pending(rt) == {"matched": 0, "unmatched": 1}  # the next run takes it up
    assert len(state(rt)["allocations"]) == 2


def test_a_crash_after_the_first_chunk_then_a_rerun_applies_nothing_twice(rt, company, monkeypatch):
    ledger(rt, [(f"客户{i}有限公司", f"HT20260{i:02d}", [("1000", "2026-12-10")]) for i in range(10, 16)])
    ingest(rt, [line(f"T{i}", "1000", f"客户{i}有限公司") for i in range(10, 16)], "import")
    runs = []
    real = bank._Chunk.run

    def crash_on_second(self: Any, ids: list[int]) -> dict[str, int]:
        runs.append(ids)
        if len(runs) == 2:
            raise bank.OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real(self, ids)

    monkeypatch.setattr(bank._Chunk, "run", crash_on_second)
    with pytest.raises(bank.OperationalError):
        match_pending(rt, 4)
    after_crash = state(rt)
    assert [st for _, st, _ in after_crash["lines"]] == ["matched"] * 4 + ["new"] * 2
    monkeypatch.setattr(bank._Chunk, "run", real)
    assert match_pending(rt, 4) == {"matched": 2, "unmatched": 0}
    assert match_pending(rt, 4) == {"matched": 0, "unmatched": 0}
    s = state(rt)
    assert s["allocations"][:4] == after_crash["allocations"] and len(s["allocations"]) == 6
    assert len(s["events"]) == 6 and len({e[2] for e in s["events"]}) == 6
    assert len(s["bonus"]) == 6 and len({b[1] for b in s["bonus"]}) == 6
    assert sum(1 for t in texts(rt, "zhangsan") if t.startswith("恭喜")) == 6
    assert all(o == D("0.00") for o in outstanding(rt))
    ingest(rt, [line(f"T{i}", "1000", f"客户{i}有限公司") for i in range(10, 16)], "import")  # the same lines again
    assert match_pending(rt) == {"matched": 0, "unmatched": 0} and state(rt) == s


def test_promises_kept_on_time_or_late_and_the_bonus_credited_once(rt, company):
    ledger(rt, [("杭州云栖科技有限公司", "HT2026001", [("5000", "2026-12-10"), ("3000", "2026-12-20")])])
    with rt.db.transaction() as s:
        cid = s.scalar(select(Customer.id))
        r1, r2 = s.scalars(select(Receivable.id).order_by(Receivable.seq))
        s.add_all([Promise(customer_id=cid, receivable_id=r1, rep_userid="zhangsan", amount=D("5000"),
                           promised_on=date(2026, 12, 9)),   # paid on the day: on time
                   Promise(customer_id=cid, receivable_id=r2, rep_userid="zhangsan", amount=D("3000"),
                           promised_on=date(2026, 12, 10)),  # paid on the 12th: late
                   Promise(customer_id=cid, rep_userid="zhangsan", amount=D("1"),
                           promised_on=date(2026, 12, 31))])  # customer-level: kept once an instalment is paid
    ingest(rt, [line("T1", "5000", "杭州云栖科技有限公司"),
                line("T2", "3000", "杭州云栖科技有限公司", day=date(2026, 12, 12))], "import")
    assert match_pending(rt) == {"matched": 2, "unmatched": 0}
    assert [p[1:] for p in state(rt)["promises"]] == [("on_time", DAY), ("late", date(2026, 12, 12)),
                                                      ("on_time", DAY)]
    match_pending(rt)
    with rt.db.sessions() as s:
        bonus = [(r.payment_id, r.amount) for r in s.scalars(select(BonusLedgerRow).order_by(BonusLedgerRow.id))]
    assert [amount for _, amount in bonus] == [D("150.00"), D("90.00")]  # 3 % of each payment, once
    told = texts(rt, "zhangsan")
    assert [t.split("：")[0] for t in told] == ["💰 到账通知", "恭喜！您促成的杭州云栖科技有限公司客户完成新签，奖金¥150已发放",
                                               "💰 到账通知", "恭喜！您促成的杭州云栖科技有限公司客户完成新签，奖金¥90已发放"]
    assert "HT2026001 第1期：¥5,000.00，已结清" in told[0]


def _guard_misses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time a chunk's receivables write found a receivable changed under it."""
    misses: list[str] = []
    real = bank._update_receivables

    def update(s: Any, touched: Any) -> None:
        try:
            real(s, touched)
        except bank.ReceivableChanged as exc:
            misses.append(str(exc))
            raise

    monkeypatch.setattr(bank, "_update_receivables", update)
    return misses


def test_with_nobody_paying_by_hand_every_chunk_writes_its_receivables_in_bulk(rt, company, monkeypatch):
    misses = _guard_misses(monkeypatch)
    assert _scenario(rt, 3)[0] == {"matched": 5, "unmatched": 3}
    assert misses == []


def test_on_postgresql_a_receivable_paid_by_hand_while_a_chunk_decides_keeps_that_payment(rt, company, monkeypatch):
    """Finance pays 2,000 of an instalment by hand between the chunk's read and its write: the chunk's bulk
    write would put back the outstanding it read; instead it is retried line by line, which pays what is left."""
    if not rt.db.is_postgres:
        pytest.skip("on SQLite writers are serialised: nothing can pay between a chunk's read and its write")
    ledger(rt, [("杭州云栖科技有限公司", "HT2026001", [("5000", "2026-12-10")])])
    ingest(rt, [line("T1", "3000", memo="HT2026001 货款")], "import")
    misses = _guard_misses(monkeypatch)
    real_insert, paid = bank.insert_rows, []

    def insert_rows(s: Any, table: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
        if table is Allocation.__table__ and not paid:
            paid.append(True)
            with rt.db.engine.begin() as conn:  # another transaction: finance's card, committed meanwhile
                conn.execute(text("UPDATE receivables SET outstanding = outstanding - 2000"))
        return real_insert(s, table, rows, *args, **kwargs)

    monkeypatch.setattr(bank, "insert_rows", insert_rows)
    assert match_pending(rt) == {"matched": 1, "unmatched": 0}
    assert len(misses) == 1 and paid
    assert outstanding(rt) == [D("0.00")]  # 5,000 − 2,000 by hand − 3,000 by the line
    assert [(a[2], a[3]) for a in state(rt)["allocations"]] == [(1, D("3000.00"))]
