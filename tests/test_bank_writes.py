"""Bulk writes: the outbox rows a job queues in one go (``enqueue_in_order``, bank matching's notices and cards)
are those ``enqueue`` writes one by one; bank matching's SQLite writes bind values as the columns do."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import false, select, text

import bot.outbox as outbox
import jobs.bank as bank
from bot.out import Card, Image, Text, button_card
from bot.outbox import enqueue, enqueue_in_order
from storage.models import Card as CardRow
from storage.models import OutboxMessage


@pytest.fixture
def sqlite_only(rt: Any) -> None:
    if rt.db.is_postgres:
        pytest.skip("bank matching on SQLite: its tuple writes and its one shared connection (PostgreSQL "
                    "writes through insert_rows' unnest, a connection per chunk)")


def _items(keyed_twice: str) -> list[tuple[str, Any, str | None]]:
    card = button_card("银行流水待确认", "2026-12-09 收到 - ¥1.00，未能自动匹配", [("忽略", "ignore", 2)],
                       rows=[("摘要", "坏数据")])
    return [
        ("zhangsan", Text("💰 到账通知：2026-12-09 收到 杭州云栖 ¥5,000.00\n  · HT2026001 第1期：¥5,000.00，已结清"), None),
        ("fin0", Card("bank_unmatched", card, {"bank_line_id": 7}), "bank-card:7:fin0"),
        ("lisi", Text("长" * 700), None),  # more than one message: split as wire_bodies splits it
        ("fin1", Card("bank_unmatched", card, {"bank_line_id": 7}), keyed_twice),
        ("fin1", Card("bank_unmatched", card, {"bank_line_id": 8}), keyed_twice),  # repeated key: skipped
        ("zhangsan", Text('引号 " 与 \\ 和 \n 换行 \u2028'), None),
        ("lisi", Image(b"\x89PNG\r\n\x1a\n\x00\xff" * 3, "funnel.png"), "funnel:lisi"),  # its bytes beside its body
        ("fin0", Card("bank_unmatched", card, {"bank_line_id": 9}), "bank-card:9:fin0"),  # queued before: skipped
    ]


def _outbox(rt: Any) -> list[tuple[Any, ...]]:
    """The outbox and then the cards as stored (text), in id order without the ids (PostgreSQL's sequences go on
    after a DELETE), card task ids numbered in order of appearance."""
    tasks: dict[str, str] = {}

    def same(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return re.sub(r"bank_unmatched-[0-9a-f]{24}", lambda m: tasks.setdefault(m.group(0), f"task{len(tasks)}"),
                      value)

    with rt.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT recipient, msgtype, CAST(body AS TEXT), media, dedup_key, card_task_id, "
                                 "status, attempts, lease_owner, sent_at FROM outbox ORDER BY id")).all()
        cards = conn.execute(text("SELECT task_id, kind, addressee, card_type, CAST(subject AS TEXT), status, "
                                  "decided_by, created_at IS NOT NULL FROM cards ORDER BY id")).all()
    return [tuple(map(same, r)) for r in rows] + [tuple(map(same, c)) for c in cards]


def _write(rt: Any, how: Any) -> list[tuple[Any, ...]]:
    with rt.db.transaction() as s:
        s.execute(text("DELETE FROM outbox"))
        s.execute(text("DELETE FROM cards"))
        enqueue_in_order(s, [("fin0", Text("一条旧消息"), "bank-card:9:fin0")])
    with rt.db.transaction() as s:
        how(s, _items("bank-card:7:fin1"))
    return _outbox(rt)


def _one_by_one(s: Any, items: list[tuple[str, Any, str | None]]) -> None:
    for recipient, out, key in items:
        enqueue(s, recipient, out, dedup_key=key)


def test_the_bulk_outbox_write_stores_what_enqueue_one_by_one_stores(rt, company):
    reference = _write(rt, _one_by_one)
    assert [r[1] for r in reference[:8]] == ["text", "text", "template_card", "text", "text", "template_card",
                                             "text", "image"]
    assert reference[7][2:4] == ('{"filename": "funnel.png"}', b"\x89PNG\r\n\x1a\n\x00\xff" * 3)
    assert _write(rt, enqueue_in_order) == reference
    as_strings = [(r, o.content if isinstance(o, Text) else o, k) for r, o, k in _items("bank-card:7:fin1")]
    assert _write(rt, lambda s, _: enqueue_in_order(s, as_strings)) == reference  # texts given as their str
    with rt.db.sessions() as s:
        stamps = s.execute(select(OutboxMessage.next_attempt_at, OutboxMessage.created_at)).all()
    assert stamps and all(due == made for due, made in stamps)  # pending from when they were queued


def test_a_key_taken_under_the_bulk_outbox_write_falls_back_to_enqueue_one_by_one(rt, company, monkeypatch):
    reference = _write(rt, _one_by_one)
    monkeypatch.setattr(outbox, "one_of", lambda *a: false())  # the queued key goes unseen: the insert collides
    calls = []
    real = outbox.enqueue

    def one(s: Any, recipient: str, out: Any, **kw: Any) -> Any:
        calls.append(recipient)
        return real(s, recipient, out, **kw)

    monkeypatch.setattr(outbox, "enqueue", one)
    as_strings = [(r, o.content if isinstance(o, Text) else o, k) for r, o, k in _items("bank-card:7:fin1")]
    assert _write(rt, lambda s, _: enqueue_in_order(s, as_strings)) == reference
    assert len(calls) == 8  # every notification, once
    with rt.db.sessions() as s:
        assert len(s.scalars(select(OutboxMessage.id).where(OutboxMessage.dedup_key == "bank-card:9:fin0")).all()) == 1
        assert len(s.scalars(select(CardRow.id)).all()) == 2  # the failed insert left no card behind


def test_the_sqlite_receivables_write_binds_money_and_days_as_the_columns_do(rt, company, sqlite_only):
    from tests.test_bank_chunks import ledger, outstanding

    ledger(rt, [("杭州云栖科技有限公司", "HT2026001", [("5000", "2026-12-10"), ("3000.5", "2026-12-20")])])
    with rt.db.transaction() as s:
        touched = [bank._Receivable(1, 1, 1, date(2026, 12, 10), Decimal("0"), date(2026, 12, 9), True,
                                    Decimal("5000.00")),
                   bank._Receivable(2, 1, 2, date(2026, 12, 20), Decimal("1000.5"), None, True, Decimal("3000.50"))]
        bank._update_receivables(s, touched)
    assert outstanding(rt) == [Decimal("0.00"), Decimal("1000.50")]
    with rt.db.engine.connect() as conn:
        assert conn.execute(text("SELECT outstanding, paid_on FROM receivables ORDER BY id")).all() == [
            ("0.00", "2026-12-09"), ("1000.50", None)]
    with rt.db.transaction() as s, pytest.raises(bank.ReceivableChanged):  # the guard compares the stored text
        bank._update_receivables(s, [bank._Receivable(2, 1, 2, date(2026, 12, 20), Decimal("0"), None, True,
                                                      Decimal("3000.50"))])


def test_on_sqlite_the_chunks_share_a_connection_whose_cache_and_checkpoints_are_put_back_after(rt, company,
                                                                                               sqlite_only, monkeypatch):
    from tests.test_bank_chunks import ingest, ledger, line

    ledger(rt, [(f"客户{i}有限公司", f"HT20260{i:02d}", [("1000", "2026-12-10")]) for i in range(10, 16)])
    ingest(rt, [line(f"T{i}", "1000", f"客户{i}有限公司") for i in range(10, 16)], "import")
    with rt.db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        before = [raw.execute(f"PRAGMA {p}").fetchone()[0] for p in ("cache_size", "wal_autocheckpoint")]
    seen, real = [], bank._Chunk.run

    def run(self: Any, ids: list[int]) -> dict[str, int]:
        raw = self.s.connection().connection.driver_connection
        seen.append((id(raw), *(raw.execute(f"PRAGMA {p}").fetchone()[0] for p in ("cache_size", "wal_autocheckpoint"))))
        return real(self, ids)

    monkeypatch.setattr(bank._Chunk, "run", run)
    assert bank.match_pending(rt, 2) == {"matched": 6, "unmatched": 0}
    assert len(seen) == 3 and len({conn for conn, _, _ in seen}) == 1
    assert {(size, pages) for _, size, pages in seen} == {(-bank.SQLITE_CHUNK_CACHE_KIB,
                                                           bank.SQLITE_CHUNK_AUTOCHECKPOINT)}
    with rt.db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert [raw.execute(f"PRAGMA {p}").fetchone()[0] for p in ("cache_size", "wal_autocheckpoint")] == before


def test_a_bonus_already_booked_is_left_and_the_others_booked_one_by_one(rt, company):
    from domain import bonus as B
    from storage.incentives import BonusLedgerRow, add_bonus_rows
    from storage.types import utcnow

    now = utcnow()
    entries = [B.BonusEntry(f"alloc:{i}", "zhangsan", Decimal("150"), B.EntryKind.CREDIT, date(2026, 12, 9))
               for i in (1, 2, 3)]
    with rt.db.transaction() as s:
        add_bonus_rows(s, [{"payment_id": "alloc:2", "userid": "lisi", "amount": Decimal("1"), "kind": "credit",
                            "booked_on": date(2026, 12, 1), "at": now}])
    with rt.db.transaction() as s:
        assert bank._book_bonus(s, entries, now) == [True, False, True]
        assert bank._book_bonus(s, [], now) == []
    with rt.db.sessions() as s:
        rows = [(r.payment_id, r.userid, r.amount, r.kind, r.booked_on)
                for r in s.scalars(select(BonusLedgerRow).order_by(BonusLedgerRow.id))]
    assert rows == [("alloc:2", "lisi", Decimal("1.00"), "credit", date(2026, 12, 1)),
                    ("alloc:1", "zhangsan", Decimal("150.00"), "credit", date(2026, 12, 9)),
                    ("alloc:3", "zhangsan", Decimal("150.00"), "credit", date(2026, 12, 9))]


def test_chunks_are_larger_on_sqlite(rt, company, monkeypatch):
    sizes, real = [], bank._chunk_ids

    def chunk_ids(rt: Any, last: Any, chunk_lines: int) -> Any:
        sizes.append(chunk_lines)
        return real(rt, last, chunk_lines)

    monkeypatch.setattr(bank, "_chunk_ids", chunk_ids)
    bank.match_pending(rt)
    bank.match_pending(rt, 3)
    assert sizes == [bank.CHUNK_LINES if rt.db.is_postgres else bank.SQLITE_CHUNK_LINES, 3]
    assert bank.SQLITE_CHUNK_LINES == 5000 and bank.CHUNK_LINES == 2500


def test_a_connection_that_breaks_under_the_sqlite_run_is_discarded_and_its_lines_matched(rt, company, sqlite_only,
                                                                                          monkeypatch):
    from tests.test_bank_chunks import ingest, ledger, line

    ledger(rt, [(f"客户{i}有限公司", f"HT20260{i:02d}", [("1000", "2026-12-10")]) for i in range(10, 14)])
    ingest(rt, [line(f"T{i}", "1000", f"客户{i}有限公司") for i in range(10, 14)], "import")
    broken, real = [], bank._Chunk.run

    def run(self: Any, ids: list[int]) -> dict[str, int]:
        if not broken:  # the job's connection goes away under its first chunk
            raw = self.s.connection().connection.driver_connection
            broken.append(raw)
            raw.close()
        return real(self, ids)

    monkeypatch.setattr(bank._Chunk, "run", run)
    assert bank.match_pending(rt, 2) == {"matched": 4, "unmatched": 0}  # retried line by line, then chunk 2
    with rt.db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not broken[0]
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_the_cycle_collector_is_off_while_lines_are_matched_and_back_on_after(rt, company, monkeypatch):
    import gc

    from tests.test_bank_chunks import ingest, ledger, line

    ledger(rt, [("杭州云栖科技有限公司", "HT2026001", [("5000", "2026-12-10")])])
    ingest(rt, [line("T1", "5000", "杭州云栖科技有限公司")], "import")
    seen, real = [], bank._Chunk.run

    def run(self: Any, ids: list[int]) -> dict[str, int]:
        seen.append(gc.isenabled())
        return real(self, ids)

    monkeypatch.setattr(bank._Chunk, "run", run)
    assert gc.isenabled()
    assert bank.match_pending(rt) == {"matched": 1, "unmatched": 0}
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        bank.match_pending(rt)
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
