"""Bank statement matching (PRODUCT.md §2.2): store lines once (unique on account + transaction id),
match each new one in the four steps, apply it to receivables, mark promises kept, tell the rep, and
emit the "payment received" event; lines that match nothing go to finance as a card."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Card, Out, Text, button_card
from bot.outbox import enqueue, enqueue_in_order
from domain import bank_matching as BM
from domain import bonus as B
from domain.incentives import DealType
from domain.money import format_yuan
from domain.names import normalise_company_name
from domain.promises import promise_keeping
from integrations.bank import BankError, Line, fetch_pages
from jobs.registry import job, quiet_gc
from storage.incentives import BonusLedgerRow, add_bonus_rows
from storage.models import Member
from storage.payments import (
    Allocation,
    BankLine,
    Contract,
    PaymentEvent,
    Promise,
    Receivable,
    insert_rows,
    one_of,
    update_rows,
)
from storage.sales import Customer
from storage.settings import get_setting, set_setting
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def ingest(rt: Runtime, lines: Iterable[Line], source: str) -> tuple[int, int]:
    """Store new lines; (added, already there). Importing the same line twice changes nothing."""
    added = dup = 0
    with rt.db.transaction() as s:
        for line in lines:
            exists = s.scalar(select(BankLine.id).where(BankLine.account == line.account,
                                                        BankLine.transaction_id == line.transaction_id))
            if exists is not None:
                dup += 1
                continue
            try:
                with s.begin_nested():
                    s.add(BankLine(account=line.account, transaction_id=line.transaction_id, booked_on=line.booked_on,
                                   amount=line.amount, payer_name=line.payer_name, memo=line.memo, source=source))
                    s.flush()
                added += 1
            except IntegrityError:
                dup += 1
    return added, dup


# Lines decided and written per transaction. Each chunk dirties much the same index pages (the reps' rows in
# the outbox, events and bonus ledger are spread over every leaf), so fewer, larger chunks write far less:
# 100k lines on SQLite took ~21 s of CPU and 1.4 GB of WAL at 1,000 a chunk, ~15 s and 0.8 GB at 2,500
# (~15 MB more memory; SQLite's write lock is held ~0.4 s a chunk). On SQLite, since a chunk's writes went to
# plain executemany tuples, 5,000 lines a chunk hold the lock about as long as 2,500 did before (~0.5 s) and
# save another ~0.4 s of 100k lines (half the commits, each index page rewritten half as often; ~20 MB more
# memory).
CHUNK_LINES = 2500
SQLITE_CHUNK_LINES = 5000


def match_pending(rt: Runtime, chunk_lines: int | None = None) -> dict[str, int]:
    """Match every stored line not yet decided, in id order, ``chunk_lines`` lines per transaction (by default
    ``CHUNK_LINES``, on SQLite ``SQLITE_CHUNK_LINES``).

    A chunk's ledger is loaded with a few IN-queries, its lines decided one after the other in memory
    (a line sees what the earlier ones consumed) and everything it does written in bulk, so the effects
    are those of matching the lines one by one. A chunk that fails is retried line by line (a
    transaction each); a line that fails alone is logged and left ``new`` for the next run, and the
    others go on. A rerun after a crash finds the committed chunks decided and does not apply them again.

    On PostgreSQL the next chunk is read and decided while a writer thread writes and commits the one
    before (the server's work beside this process's, see ``_pipelined``).
    """
    if chunk_lines is None:
        chunk_lines = CHUNK_LINES if rt.db.is_postgres else SQLITE_CHUNK_LINES
    with quiet_gc(), _no_cycle_collection():
        return _match_pending(rt, chunk_lines)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector off while lines are matched, back on after (if it was on). What a chunk
    allocates is freed by reference counting, and what it keeps lives until the chunk is written, so even
    quiet_gc's young-generation passes only walk the chunk's live objects again and again (100k lines: ~50
    passes, ~0.3 s); the few cycles (a session per chunk) wait the run's seconds to be collected."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _match_pending(rt: Runtime, chunk_lines: int) -> dict[str, int]:
    config = BM.MatchConfig(contract_pattern=str(rt.config.get("payments.contract_pattern")))
    counts = {"matched": 0, "unmatched": 0}
    failed = 0
    with rt.db.sessions() as s:
        last = s.scalar(select(func.max(BankLine.id)).where(BankLine.status == "new"))
    chunks = _chunk_ids(rt, last, chunk_lines)
    if rt.db.is_postgres:
        failed = _pipelined(rt, config, chunks, counts)
    else:
        with _sqlite_connection(rt) as conn:
            for ids in chunks:
                try:
                    with rt.db.sessions(bind=conn) as s, s.begin():
                        done = _Chunk(rt, s, config).run(ids)
                except _NOT_DATA_ERRORS:
                    raise
                except Exception as exc:
                    failed += _after_failure(rt, config, ids, counts, exc)
                    continue
                _add(counts, done)
    if failed:
        counts["failed"] = failed
    return counts


# SQLite's page cache while the chunks run (KiB): the default 2 MB is far smaller than the pages one chunk
# dirties, which it then spills to the WAL before the commit and reads back (100k lines: 0.8 → 0.4 GB read,
# a quarter less CPU in the bulk writes).
SQLITE_CHUNK_CACHE_KIB = 32768
# WAL pages after which a chunk's commit checkpoints (SQLite's default: 1,000 pages, 4 MB). A chunk of 2,500
# lines appends ~20 MB to the WAL, so by default every commit copied it all back into the database file, the
# same hot index pages (outbox, events, bonus ledger) again and again; at 64 MB a checkpoint comes every few
# chunks and copies each page's latest version once (100k lines: ~0.5 s less). Committed chunks are as durable
# as before (synchronous stays FULL: a commit is on disk once it is in the WAL); the job checkpoints at the end.
SQLITE_CHUNK_AUTOCHECKPOINT = 16384


@contextmanager
def _sqlite_connection(rt: Runtime) -> Iterator[Any]:
    """SQLite: one connection for every chunk's transaction, its page cache raised to ``SQLITE_CHUNK_CACHE_KIB``
    (kept from chunk to chunk) and its WAL checkpointed every ``SQLITE_CHUNK_AUTOCHECKPOINT`` pages; both put
    back once the chunks are done (the pooled connection keeps its own settings), then the WAL checkpointed
    (PASSIVE: readers are not waited for), so what the job wrote is not left for another connection's commit
    to copy."""
    with rt.db.engine.connect() as conn:
        raw = conn.connection.driver_connection  # pragmas outside any transaction (not through autobegin)
        size = raw.execute("PRAGMA cache_size").fetchone()[0]
        pages = raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        raw.execute(f"PRAGMA cache_size = -{SQLITE_CHUNK_CACHE_KIB}")
        raw.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHUNK_AUTOCHECKPOINT}")
        try:
            yield conn
        finally:
            try:
                if conn.in_transaction():
                    conn.rollback()
                raw.execute(f"PRAGMA cache_size = {int(size)}")
                raw.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # the run's outcome stands; the pool must not hand out these settings
                log.warning("bank matching: the connection's settings could not be put back; it is discarded",
                            exc_info=True)
                conn.invalidate()


def _chunk_ids(rt: Runtime, last: int | None, chunk_lines: int) -> Iterator[list[int]]:
    """The ids of the lines still new up to ``last``, ``chunk_lines`` at a time, in id order."""
    after = 0
    while last is not None and after < last:
        with rt.db.sessions() as s:
            ids = list(s.scalars(select(BankLine.id).where(BankLine.status == "new", BankLine.id > after,
                                                           BankLine.id <= last)
                                 .order_by(BankLine.id).limit(chunk_lines)).all())
        if not ids:
            return
        after = ids[-1]
        yield ids


def _add(counts: dict[str, int], done: dict[str, int]) -> None:
    counts["matched"] += done["matched"]
    counts["unmatched"] += done["unmatched"]


def _after_failure(rt: Runtime, config: BM.MatchConfig, ids: list[int], counts: dict[str, int],
                   exc: BaseException) -> int:
    """A chunk failed (``exc``; nothing of it was written): its lines again one by one, a transaction each;
    a line that fails alone is logged and left new. Returns how many failed. A chunk that found a receivable
    paid by hand under it (``ReceivableChanged``) is retried even when it is one line: it reads afresh."""
    if len(ids) == 1 and not isinstance(exc, ReceivableChanged):
        log.error("bank line not matched; left for the next run", extra={"bank_line_id": ids[0]}, exc_info=exc)
        return 1
    log.warning("bank matching: a chunk failed, retrying its lines one by one",
                extra={"first": ids[0], "last": ids[-1]}, exc_info=exc)
    failed = 0
    for line_id in ids:
        try:
            with rt.db.transaction() as s:
                one = _Chunk(rt, s, config).run([line_id])
        except _NOT_DATA_ERRORS:
            raise
        except Exception:
            log.exception("bank line not matched; left for the next run", extra={"bank_line_id": line_id})
            failed += 1
            continue
        _add(counts, one)
    return failed


@dataclass
class _Pending:
    """A decided chunk in its open transaction, handed to the writer thread (``future``)."""

    ids: list[int]
    chunk: _Chunk
    transaction: ExitStack
    done: dict[str, int]
    future: Future[None] | None = None


def _pipelined(rt: Runtime, config: BM.MatchConfig, chunks: Iterator[list[int]], counts: dict[str, int]) -> int:
    """``_match_pending``'s loop with the writes of chunk N (a writer thread, N's own transaction) beside the
    reading and deciding of chunk N+1 (this thread, another transaction): on PostgreSQL the server spends
    about as long on a chunk's writes (indexes, foreign keys) as this process on deciding one.

    N+1 reads the ledger while N may not have committed, so it lays N's effects over what it reads (N's
    receivables, kept promises and consumed events: ``_Chunk.after``) and gets what it would read once N
    committed; its own writes start only once N has committed. Should N fail, N+1's decisions are rolled
    back, N is retried line by line, and N+1 decided again on what is then committed. Returns how many
    lines failed."""
    failed = 0
    pending: _Pending | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bank-writer") as writer:
        try:
            for ids in chunks:
                decided, error = _decide(rt, config, ids, pending.chunk if pending else None)
                if pending is not None:
                    committed, pending = pending, None
                    try:
                        settled = _settled(committed, counts)
                    except BaseException:
                        if decided is not None:
                            _roll_back(decided)
                        raise
                    if not settled:
                        if decided is not None:
                            _roll_back(decided)  # decided on effects that did not happen
                        failed += _after_failure(rt, config, committed.ids, counts, _error_of(committed))
                        decided, error = _decide(rt, config, ids, None)
                if decided is None:
                    if isinstance(error, _NOT_DATA_ERRORS):
                        raise error
                    assert error is not None
                    failed += _after_failure(rt, config, ids, counts, error)
                    continue
                decided.future = writer.submit(_write, decided)
                pending = decided
            if pending is not None:
                committed, pending = pending, None
                if not _settled(committed, counts):
                    failed += _after_failure(rt, config, committed.ids, counts, _error_of(committed))
        finally:
            if pending is not None and pending.future is not None:
                wait([pending.future])
    return failed


def _decide(rt: Runtime, config: BM.MatchConfig, ids: list[int],
            after: _Chunk | None) -> tuple[_Pending | None, BaseException | None]:
    """Chunk ``ids`` read and decided in a transaction left open for its writes; (None, the error) when that
    fails (the transaction rolled back)."""
    stack = ExitStack()
    try:
        s = stack.enter_context(rt.db.transaction())
        chunk = _Chunk(rt, s, config, write=False, after=after)
        done = chunk.run(ids)
    except Exception as exc:
        try:
            stack.__exit__(type(exc), exc, exc.__traceback__)  # rolled back
        except Exception:  # noqa: S110  (the rollback of a transaction that failed: the first error is the one told)
            pass
        return None, exc
    return _Pending(ids, chunk, stack, done), None


def _roll_back(pending: _Pending) -> None:
    """Drop a decided chunk (nothing of it written yet): its transaction rolled back, its locks released."""
    dropped = RuntimeError("decisions dropped")
    pending.transaction.__exit__(type(dropped), dropped, None)


def _write(pending: _Pending) -> None:
    """The writer thread: the chunk's writes, then its commit (a rollback on any error, raised to the loop)."""
    with pending.transaction:
        if pending.chunk.lines:
            pending.chunk.write()


def _settled(pending: _Pending, counts: dict[str, int]) -> bool:
    """Wait for ``pending``'s write: True once committed (its counts added), False when it failed (raises
    when the database itself is unavailable)."""
    assert pending.future is not None
    error = pending.future.exception()
    if error is None:
        _add(counts, pending.done)
        return True
    if isinstance(error, _NOT_DATA_ERRORS):
        raise error
    return False


def _error_of(pending: _Pending) -> BaseException:
    assert pending.future is not None
    error = pending.future.exception()
    assert error is not None
    return error


# The database itself is unavailable (not something about one line): stop, the next run catches up.
_NOT_DATA_ERRORS = (OperationalError, InterfaceError)


_CENT = Decimal("0.01")


def _due_key(r: _Receivable) -> tuple[date, int]:
    return (r.due_on, r.id)


# The chunk's rows as named tuples, read once: a SQLAlchemy Row answers ``row.name`` in ~0.8 µs (a tuple's
# field in ~0.05 µs), and a line's fields are read dozens of times between deciding and writing.
class _Line(NamedTuple):
    id: int
    account: str
    transaction_id: str
    booked_on: date
    amount: Decimal
    payer_name: str
    memo: str


class _Contract(NamedTuple):
    id: int
    number: str
    customer_id: int
    owner_userid: str
    kind: str
    product_line: str | None


class _Customer(NamedTuple):
    id: int
    name: str
    health_score: Decimal | None


_CONTRACT_COLS = (Contract.id, Contract.number, Contract.customer_id, Contract.owner_userid, Contract.kind,
                  Contract.product_line)
_CUSTOMER_COLS = (Customer.id, Customer.name, Customer.health_score)


@dataclass(slots=True)
class _Receivable:
    id: int
    contract_id: int
    seq: int
    due_on: date  # the matching date: collectible_on, else due_on
    outstanding: Decimal
    paid_on: date | None
    touched: bool = False
    read: Decimal | None = None  # outstanding as read (or as the chunk before left it): the write's guard


@dataclass(slots=True)
class _Promise:
    id: int
    receivable_id: int | None
    promised_on: date
    kept: str | None = None
    kept_on: date | None = None


@dataclass(slots=True)
class _Event:
    """A payment event to consume: one this chunk adds (``alloc`` = its index in the chunk's allocations,
    the id known once inserted) or one already stored and not yet consumed (``id``)."""

    kind: str
    rep: str
    customer_id: int
    contract_id: int
    amount: Decimal
    received_on: date
    alloc: int | None = None
    allocation_id: int | None = None
    id: int | None = None


@dataclass(slots=True)
class _Decided:
    """What one line did: its notices (per rep, in order) and the events it consumed, or its finance card."""

    line_id: int
    notices: list[tuple[str, str]] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)
    card: Card | None = None


class _Chunk:
    """Matching of a run of lines in one transaction (see ``match_pending``): ``run`` reads and decides, then
    writes (``write``; left to the caller when ``write`` is False). ``after``: the chunk decided just before,
    whose effects on the ledger may not be committed yet when this one reads (see ``_pipelined``)."""

    def __init__(self, rt: Runtime, s: Session, config: BM.MatchConfig, *, write: bool = True,
                 after: _Chunk | None = None) -> None:
        self.rt, self.s, self.config = rt, s, config
        self.write_now, self.after = write, after
        self.lines: list[_Line] = []
        self.receivables: dict[int, _Receivable] = {}
        self.promises: dict[int, list[_Promise]] = {}
        self.stored_events: list[_Event] | None = None  # loaded at the first match, consumed with it

    def _in(self, column: Any, values: Iterable[Any], *cols: Any, where: Any = None) -> list[Any]:
        """Rows of ``cols`` whose ``column`` is one of ``values`` (one query, the values one parameter)."""
        values = list(dict.fromkeys(values))
        if not values:
            return []
        conn = self.s.connection()
        q = select(*cols).where(one_of(column, values, conn.dialect))
        if where is not None:
            q = q.where(where)
        return conn.execute(q).all()

    def run(self, ids: list[int]) -> dict[str, int]:
        s, pattern = self.s, self.config.contract_pattern
        q = (select(BankLine.id, BankLine.account, BankLine.transaction_id, BankLine.booked_on, BankLine.amount,
                    BankLine.payer_name, BankLine.memo)
             .where(one_of(BankLine.id, ids, s.connection().dialect), BankLine.status == "new").order_by(BankLine.id))
        lines = self.lines = list(map(_Line._make, s.connection().execute(
            q.with_for_update() if self.rt.db.is_postgres else q).all()))
        if not lines:
            return {"matched": 0, "unmatched": 0}
        in_memo: dict[str, list[str]] = {}  # the numbers of each distinct memo (many lines say just 货款)
        numbers: dict[int, list[str]] = {}
        for ln in lines:
            found = in_memo.get(ln.memo)
            if found is None:
                found = in_memo[ln.memo] = BM.contract_numbers_in_memo(ln.memo, pattern)
            numbers[ln.id] = found
        keys = {ln.id: normalise_company_name(ln.payer_name) if ln.payer_name else "" for ln in lines}

        # the ledger of the whole chunk: for each line, what it could match (the contracts named in its memo,
        # the customers its payer name names, all their contracts and those contracts' open receivables)
        named = list(map(_Contract._make, self._in(Contract.number, (n for ns in numbers.values() for n in ns),
                                                    *_CONTRACT_COLS)))
        by_number = {c.number: c for c in named}
        by_key: dict[str, list[int]] = {}
        for cid, key in self._in(Customer.name_key, (k for k in keys.values() if k), Customer.id, Customer.name_key):
            by_key.setdefault(key, []).append(cid)
        customer_ids = {c.customer_id for c in named} | {cid for cids in by_key.values() for cid in cids}
        self.customers = {c.id: c for c in map(_Customer._make, self._in(Customer.id, customer_ids, *_CUSTOMER_COLS))}
        self.contracts = {c.id: c for c in named}
        contracts_of: dict[int, list[int]] = {}
        for c in map(_Contract._make, self._in(Contract.customer_id, customer_ids, *_CONTRACT_COLS)):
            self.contracts[c.id] = c
            contracts_of.setdefault(c.customer_id, []).append(c.id)
        self.receivables = {}
        open_of: dict[int, list[_Receivable]] = {}
        before = self.after.receivables if self.after is not None else {}
        for rid, contract_id, seq, due_on, collectible_on, left, paid_on in self._in(
                Receivable.contract_id, self.contracts, Receivable.id, Receivable.contract_id, Receivable.seq,
                Receivable.due_on, Receivable.collectible_on, Receivable.outstanding, Receivable.paid_on,
                where=Receivable.outstanding > 0):
            prior = before.get(rid)
            if prior is not None and prior.touched:  # as the chunk before left it, committed or not
                left, paid_on = prior.outstanding, prior.paid_on
                if left <= 0:
                    continue
            rec = _Receivable(rid, contract_id, seq, collectible_on or due_on, left, paid_on, read=left)
            self.receivables[rid] = rec
            open_of.setdefault(contract_id, []).append(rec)
        self.promises = {}
        kept = set() if self.after is None else {p.id for ps in self.after.promises.values() for p in ps
                                                  if p.kept is not None}
        for pid, customer_id, receivable_id, promised_on in sorted(
                self._in(Promise.customer_id, customer_ids, Promise.id, Promise.customer_id, Promise.receivable_id,
                         Promise.promised_on, where=Promise.kept.is_(None)), key=itemgetter(3, 0)):
            if pid not in kept:
                self.promises.setdefault(customer_id, []).append(_Promise(pid, receivable_id, promised_on))
        for rs in open_of.values():
            rs.sort(key=_due_key)
        self.open_of, self.contracts_of = open_of, contracts_of
        self.number_keys: dict[int, str] = {}  # contract id → its number as the memo's are normalised
        self.name_keys: dict[int, str] = {}  # customer id → its name normalised (as matching compares it)

        self.allocations: list[tuple[int, int, Decimal]] = []  # (line id, receivable id, amount)
        self.status: list[tuple[str, int, int]] = []  # (status, match_step, line id)
        self.decided: list[_Decided] = []
        self.stored_events = None
        counts = {"matched": 0, "unmatched": 0}
        decide, apply, status, decided = self._decide, self._apply, self.status, self.decided
        for ln in lines:
            memo_numbers, payer = numbers[ln.id], keys[ln.id]
            own = [by_number[n] for n in dict.fromkeys(memo_numbers) if n in by_number] if memo_numbers else []
            payer_ids = by_key.get(payer, ())
            ids_of_customers = {c.customer_id for c in own} | set(payer_ids)
            contract_ids = list(dict.fromkeys([*(c.id for c in own),
                                               *(k for cid in ids_of_customers for k in contracts_of.get(cid, ()))]))
            decision = decide(ln, memo_numbers, payer, ids_of_customers, contract_ids)
            if decision is not None:
                status.append(("matched", decision[0], ln.id))
                decided.append(apply(ln, decision[1]))
                counts["matched"] += 1
                continue
            result = self._match(ln, ids_of_customers, contract_ids)
            if result.matched:  # not reached: _decide finds every match (kept should they ever differ)
                self.status.append(("matched", int(result.step), ln.id))
                self.decided.append(self._apply(ln, [(a.receivable_id, a.amount) for a in result.allocations]))
                counts["matched"] += 1
            else:
                self.status.append(("unmatched", int(result.step), ln.id))
                self.decided.append(_Decided(ln.id, card=self._card(ln, list(result.candidates))))
                counts["unmatched"] += 1
        self.after = None  # decided: the chunk before is not needed any more (nor kept alive, with its own)
        if self.write_now:
            self.write()
        return counts

    def _decide(self, ln: Any, numbers: list[str], payer: str, customer_ids: set[int],
                contract_ids: list[int]) -> tuple[int, list[tuple[int, Decimal]]] | None:
        """Steps 1–3 of ``BM.match_bank_line`` on the chunk's ledger, with the memo's numbers and the payer's
        normalised name computed once per line and the contracts' / customers' once per chunk: (step,
        allocations) when the line matches, None when it does not (``_match`` then gives the candidates)."""
        amount, cfg = ln.amount, self.config
        if amount <= 0 or amount != amount.quantize(_CENT):
            return None
        open_of = self.open_of
        if numbers:
            number_key = self._number_key
            named = [k for k in contract_ids if number_key(k) in numbers]
            if len(named) == 1:
                open_ones = [r for r in open_of.get(named[0], ()) if r.outstanding > 0]
                if amount <= sum((r.outstanding for r in open_ones), Decimal(0)):
                    return 1, BM.earliest_due_first(open_ones, amount)
        if not payer:
            return None
        customers, name_key = self.customers, self._name_key
        named_customers = [cid for cid in customer_ids if cid in customers and name_key(cid) == payer]
        if len(named_customers) != 1:
            return None
        # the open receivables of the customer's contracts (all among ``contract_ids``), earliest due first
        mine = [r for k in self.contracts_of.get(named_customers[0], ()) for r in open_of.get(k, ())
                if r.outstanding > 0]
        mine.sort(key=_due_key)
        window, booked_on = cfg.date_window_days, ln.booked_on
        exact = [r for r in mine if r.outstanding == amount and abs((r.due_on - booked_on).days) <= window]
        if len(exact) == 1:
            return 2, [(exact[0].id, amount)]
        subset = BM._first_exact_subset(mine[: cfg.subset_search_limit], amount,  # type: ignore[arg-type]  # noqa: SLF001
                                        min_size=2, max_size=cfg.max_subset_size)
        if subset is not None:
            return 3, [(r.id, r.outstanding) for r in subset]
        return None

    def _number_key(self, contract_id: int) -> str:
        key = self.number_keys.get(contract_id)
        if key is None:
            key = self.number_keys[contract_id] = BM._normalise_number(self.contracts[contract_id].number)  # noqa: SLF001
        return key

    def _name_key(self, customer_id: int) -> str:
        key = self.name_keys.get(customer_id)
        if key is None:
            key = self.name_keys[customer_id] = normalise_company_name(self.customers[customer_id].name)
        return key

    def _match(self, ln: Any, customer_ids: set[int], contract_ids: list[int]) -> BM.MatchResult:
        """``BM.match_bank_line`` on the line's part of the chunk's ledger (for the finance card's candidates)."""
        customers, contracts = self.customers, self.contracts
        ledger = BM.Ledger(
            customers=[BM.CustomerRef(cid, customers[cid].name) for cid in customer_ids if cid in customers],
            contracts=[BM.ContractRef(k, contracts[k].number, contracts[k].customer_id) for k in contract_ids],
            receivables=[BM.OpenReceivable(r.id, r.contract_id, r.due_on, r.outstanding)
                         for k in contract_ids for r in self.open_of.get(k, []) if r.outstanding > 0])
        return BM.match_bank_line(BM.BankLine(ln.account, ln.transaction_id, ln.booked_on, ln.amount,
                                              ln.payer_name, ln.memo), ledger, self.config)

    def _apply(self, ln: Any, allocations: list[tuple[int, Decimal]]) -> _Decided:
        """``apply`` in memory: allocations, receivables, promises kept, the rep's notice, the events."""
        decided = _Decided(ln.id)
        if self.stored_events is None:  # consume_payment_events takes every unconsumed event, oldest first
            consumed = {ev.id for ev in self.after.stored_events or ()} if self.after is not None else set()
            self.stored_events = [
                _Event(kind, rep, customer_id, contract_id, amount, received_on, allocation_id=allocation_id, id=eid)
                for eid, kind, allocation_id, rep, customer_id, contract_id, amount, received_on
                in self.s.connection().execute(select(PaymentEvent.id, PaymentEvent.kind, PaymentEvent.allocation_id,
                                                      PaymentEvent.rep_userid, PaymentEvent.customer_id,
                                                      PaymentEvent.contract_id, PaymentEvent.amount,
                                                      PaymentEvent.received_on)
                                               .where(PaymentEvent.consumed_at.is_(None)).order_by(PaymentEvent.id))
                if eid not in consumed]
            decided.events += self.stored_events
        told: dict[str, list[str]] = {}
        booked_on, paid = ln.booked_on, format_yuan(ln.amount)
        receivables, contracts, promises, mine = self.receivables, self.contracts, self.promises, self.allocations
        for receivable_id, amount in allocations:
            r = receivables.get(receivable_id)
            if r is None:
                continue
            contract = contracts[r.contract_id]
            amount = min(amount, r.outstanding)
            if amount <= 0:
                continue
            mine.append((ln.id, r.id, amount))
            r.outstanding = left = r.outstanding - amount
            if left == 0:
                r.paid_on = booked_on
            r.touched = True
            decided.events.append(_Event("received", contract.owner_userid, contract.customer_id, contract.id,
                                         amount, booked_on, len(mine) - 1))
            for p in promises.get(contract.customer_id, ()):
                if p.kept is not None or p.receivable_id not in (None, r.id):
                    continue
                if p.receivable_id is None and left > 0:
                    continue  # a customer-level promise is kept once the instalment is paid
                p.kept, p.kept_on = promise_keeping(p.promised_on, booked_on).value, booked_on
            told.setdefault(contract.owner_userid, []).append(M.PAYMENT_LINE.format(
                subject=f"{contract.number} 第{r.seq}期", amount=paid if amount == ln.amount else format_yuan(amount),
                state=M.PAYMENT_PAID if left == 0 else M.PAYMENT_PARTIAL.format(left=format_yuan(left))))
        for rep, parts in told.items():
            decided.notices.append((rep, M.PAYMENT_RECEIVED.format(
                day=booked_on.isoformat(), payer=ln.payer_name or "-", amount=paid) + "\n" + "\n".join(parts)))
        return decided

    def _card(self, ln: Any, candidates: list[int]) -> Card:
        """The finance card of an unmatched line, with up to 3 candidates (confirm one / ignore)."""
        rows = []
        buttons = []
        for rid in candidates[:3]:
            r = self.receivables.get(rid)
            contract = self.contracts.get(r.contract_id) if r else None
            if r is None or contract is None:
                continue
            customer = self.customers.get(contract.customer_id)
            label = f"{contract.number} 第{r.seq}期"
            rows.append((label, f"{customer.name if customer else ''} 未收 {format_yuan(r.outstanding)}"))
            buttons.append((f"确认 {label}"[:12], f"confirm:{rid}", 1))
        buttons.append(("忽略", "ignore", 2))
        card = button_card(M.BANK_CARD_TITLE, M.BANK_CARD_DESC.format(day=ln.booked_on.isoformat(),
                                                                      amount=format_yuan(ln.amount),
                                                                      payer=ln.payer_name or "-"),
                           buttons, rows=[("摘要", ln.memo[:40] or "-"), *rows],
                           quote=None if rows else M.BANK_NO_CANDIDATES)
        return Card("bank_unmatched", card, {"bank_line_id": ln.id})

    def write(self) -> None:
        """Everything the chunk decided, in bulk, in the order matching line by line would have written it."""
        from jobs.incentives import DEAL_TYPES, commission_rules

        s = self.s
        now = utcnow()
        dialect = s.get_bind().dialect
        sqlite = dialect.name == "sqlite"  # plain tuples in a driver executemany
        if sqlite:
            stamp = _binder(Allocation.__table__, "at", dialect)(now)
            day = _binder(PaymentEvent.__table__, "received_on", dialect)
            money = _binder(Allocation.__table__, "amount", dialect, memo=False)  # Money's text on SQLite
            _many(s, _STATUS_SQLITE, self.status)
            _many(s, _ALLOCATIONS_SQLITE, [
                (line_id, rid, money(amount), stamp) for line_id, rid, amount in self.allocations])
        else:
            update_rows(s, BankLine.__table__, [{"id": line_id, "status": status, "match_step": step}
                                                for status, step, line_id in self.status])
            insert_rows(s, Allocation.__table__, [{"bank_line_id": line_id, "receivable_id": rid, "amount": amount,
                                                   "at": now} for line_id, rid, amount in self.allocations])
        line_ids = [line_id for _, _, line_id in self.status]
        # in insertion order (these lines had none before)
        allocation_ids = sorted(row[0] for row in self._in(Allocation.bank_line_id, line_ids, Allocation.id))
        if len(allocation_ids) != len(self.allocations):
            raise RuntimeError("allocations of the chunk's lines changed under it")
        _update_receivables(s, [r for r in self.receivables.values() if r.touched])
        update_rows(s, Promise.__table__, [{"id": p.id, "kept": p.kept, "kept_on": p.kept_on}
                                           for ps in self.promises.values() for p in ps if p.kept is not None])

        events = [ev for d in self.decided for ev in d.events]
        new_events = []
        for ev in events:
            if ev.alloc is not None:
                ev.allocation_id = allocation_ids[ev.alloc]
                new_events.append(ev)
        if sqlite:
            _many(s, _EVENTS_SQLITE, [
                (ev.kind, ev.allocation_id, ev.rep, ev.customer_id, ev.contract_id, money(ev.amount),
                 day(ev.received_on), stamp, stamp) for ev in new_events])
        else:
            insert_rows(s, PaymentEvent.__table__, [
                {"kind": ev.kind, "allocation_id": ev.allocation_id, "rep_userid": ev.rep,
                 "customer_id": ev.customer_id, "contract_id": ev.contract_id, "amount": ev.amount,
                 "received_on": ev.received_on, "created_at": now, "consumed_at": now} for ev in new_events])
        update_rows(s, PaymentEvent.__table__, [{"id": ev.id, "consumed_at": now} for ev in events if ev.id is not None])

        # the bonus of each consumed event (consume_payment_events), then every notification in order
        rules = commission_rules(self.rt)
        missing = {ev.customer_id for ev in events} - set(self.customers)
        self.customers.update({c.id: c for c in map(_Customer._make, self._in(Customer.id, missing,
                                                                              *_CUSTOMER_COLS))})
        missing = {ev.contract_id for ev in events} - set(self.contracts)
        self.contracts.update({c.id: c for c in map(_Contract._make, self._in(Contract.id, missing,
                                                                              *_CONTRACT_COLS))})
        entries: dict[str, list[B.BonusEntry]] = {}
        for payment_id, userid, amount, kind, booked_on in self._in(
                BonusLedgerRow.payment_id, (f"alloc:{ev.allocation_id}" for ev in events), BonusLedgerRow.payment_id,
                BonusLedgerRow.userid, BonusLedgerRow.amount, BonusLedgerRow.kind, BonusLedgerRow.booked_on):
            entries.setdefault(payment_id, []).append(B.BonusEntry(payment_id, userid, amount, B.EntryKind(kind),
                                                                   booked_on))
        bonus_rows: list[B.BonusEntry] = []
        announced: dict[int, str] = {}  # id(event) → text, once its row is booked
        texts: list[tuple[_Event, str]] = []
        contracts, customers, settle, payment = self.contracts, self.customers, B.settle_payment_event, B.ReceivedPayment
        for ev in events:
            contract, customer = contracts.get(ev.contract_id), customers.get(ev.customer_id)
            if contract is None or customer is None:
                continue
            payment_id = f"alloc:{ev.allocation_id}"
            deal = DEAL_TYPES.get(contract.kind, DealType.NEW)
            entry, text = settle(ev.kind, payment(payment_id, ev.rep, customer.name, ev.amount, deal, ev.received_on,
                                                  contract.product_line, customer.health_score),
                                 entries.get(payment_id, ()), rules)
            if entry is None:
                continue
            entries.setdefault(payment_id, []).append(entry)  # what a later event of the payment sees
            bonus_rows.append(entry)
            texts.append((ev, text or ""))
        for (ev, text), booked in zip(texts, _book_bonus(s, bonus_rows, now), strict=True):
            if booked:
                announced[id(ev)] = text

        finance: list[str] | None = None
        out: list[tuple[str, Out | str, str | None]] = []  # a text as its str (enqueue_in_order takes either)
        for d in self.decided:
            if d.card is not None:
                if finance is None:
                    finance = [userid for userid, roles in s.connection().execute(
                        select(Member.userid, Member.roles).where(Member.active.is_(True)))
                        if "finance" in (roles or [])]
                out += [(userid, d.card, f"bank-card:{d.line_id}:{userid}") for userid in finance]
                continue
            out += [(rep, notice, None) for rep, notice in d.notices]
            out += [(ev.rep, announced[id(ev)], None) for ev in d.events if id(ev) in announced]
        enqueue_in_order(s, out)


_STATUS_SQLITE = "UPDATE bank_lines SET status = ?, match_step = ? WHERE id = ?"
_ALLOCATIONS_SQLITE = "INSERT INTO allocations (bank_line_id, receivable_id, amount, at) VALUES (?, ?, ?, ?)"
_EVENTS_SQLITE = ("INSERT INTO payment_events (kind, allocation_id, rep_userid, customer_id, contract_id, amount, "
                  "received_on, created_at, consumed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_BONUS_SQLITE = "INSERT INTO bonus_ledger (payment_id, userid, amount, kind, booked_on, at) VALUES (?, ?, ?, ?, ?, ?)"


def _many(s: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """``sql`` for each of ``rows`` (none: nothing), one driver executemany."""
    if rows:
        s.connection().exec_driver_sql(sql, rows)


def _book_bonus(s: Session, entries: list[B.BonusEntry], now: Any) -> list[bool]:
    """``add_bonus_rows`` for the chunk's entries (booked at ``now``): per entry, whether it was booked. On SQLite
    first as plain tuples in one executemany under a savepoint; should one be in the ledger already (a concurrent
    run), ``add_bonus_rows`` books them one by one as before."""
    def as_dicts() -> list[dict[str, Any]]:
        return [{"payment_id": e.payment_id, "userid": e.rep, "amount": e.amount, "kind": e.kind.value,
                 "booked_on": e.booked_on, "at": now} for e in entries]

    dialect = s.get_bind().dialect
    if dialect.name != "sqlite" or not entries:
        return add_bonus_rows(s, as_dicts())
    stamp = _binder(BonusLedgerRow.__table__, "at", dialect)(now)
    day = _binder(BonusLedgerRow.__table__, "booked_on", dialect)
    money = _binder(BonusLedgerRow.__table__, "amount", dialect, memo=False)
    try:
        with s.begin_nested():
            s.connection().exec_driver_sql(_BONUS_SQLITE, [
                (e.payment_id, e.rep, money(e.amount), e.kind.value, day(e.booked_on), stamp)
                for e in entries])
        return [True] * len(entries)
    except IntegrityError:
        return add_bonus_rows(s, as_dicts())


def _binder(table: Any, column: str, dialect: Any, memo: bool = True) -> Callable[[Any], Any]:
    """A value of ``table.column`` as the column's type binds it on ``dialect``; ``memo``: each distinct value
    converted once (dates: a chunk's rows share a handful)."""
    proc = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    if proc is None:
        return lambda v: v
    if not memo:
        return proc
    seen: dict[Any, Any] = {}

    def bind(v: Any) -> Any:
        if v is None:
            return None
        try:
            return seen[v]
        except KeyError:
            seen[v] = got = proc(v)
            return got
    return bind


class ReceivableChanged(RuntimeError):
    """A receivable the chunk paid changed under it (paid by hand meanwhile): the chunk is retried line by line."""


_GUARDED_PG = ("UPDATE receivables AS r SET outstanding = v.left_, paid_on = v.paid "
               "FROM unnest(%s::bigint[], %s::numeric[], %s::date[], %s::numeric[]) AS v (id, left_, paid, was) "
               "WHERE r.id = v.id AND r.outstanding = v.was")
_GUARDED = (update(Receivable.__table__)
            .where(Receivable.__table__.c.id == bindparam("rid"), Receivable.__table__.c.outstanding == bindparam("was"))
            .values(outstanding=bindparam("left_"), paid_on=bindparam("paid")))
_GUARDED_SQLITE = "UPDATE receivables SET outstanding = ?, paid_on = ? WHERE receivables.id = ? AND receivables.outstanding = ?"


def _update_receivables(s: Session, touched: list[_Receivable]) -> None:
    """Each receivable's new outstanding, written only where it still holds what the chunk read: a chunk reads
    without locks (PostgreSQL), so a receivable paid by hand meanwhile (``apply``, from a finance card) would
    otherwise lose that payment to the chunk's absolute value. Any miss raises ``ReceivableChanged``."""
    if not touched:
        return
    dialect = s.get_bind().dialect
    if dialect.name == "postgresql":
        updated = s.connection().exec_driver_sql(_GUARDED_PG, (
            [r.id for r in touched], [r.outstanding for r in touched], [r.paid_on for r in touched],
            [r.read for r in touched])).rowcount
    elif dialect.name == "sqlite":  # the statement below, its values bound as Money and Date bind them, without Core
        day = _binder(Receivable.__table__, "paid_on", dialect)
        money = _binder(Receivable.__table__, "outstanding", dialect, memo=False)
        updated = s.connection().exec_driver_sql(_GUARDED_SQLITE, [
            (money(r.outstanding), day(r.paid_on), r.id, money(r.read)) for r in touched]).rowcount
    else:
        updated = s.connection().execute(_GUARDED, [{"rid": r.id, "left_": r.outstanding, "paid": r.paid_on,
                                                     "was": r.read} for r in touched]).rowcount
    if updated != len(touched):
        raise ReceivableChanged(f"{len(touched) - updated} of the chunk's receivables changed under it")


def apply(s: Session, line: BankLine, allocations: list[tuple[int, Decimal]]) -> None:
    """Apply parts of ``line`` to receivables; promises kept; the rep told; payment events emitted."""
    line.status = "matched"
    told: dict[str, list[str]] = {}
    for receivable_id, amount in allocations:
        r = s.get(Receivable, receivable_id, with_for_update=True, populate_existing=True)  # locked till commit
        if r is None:
            continue
        contract = s.get(Contract, r.contract_id)
        assert contract is not None
        amount = min(amount, r.outstanding)
        if amount <= 0:
            continue
        alloc = Allocation(bank_line_id=line.id, receivable_id=r.id, amount=amount)
        s.add(alloc)
        s.flush()
        r.outstanding = r.outstanding - amount
        if r.outstanding == 0:
            r.paid_on = line.booked_on
        s.add(PaymentEvent(kind="received", allocation_id=alloc.id, rep_userid=contract.owner_userid,
                           customer_id=contract.customer_id, contract_id=contract.id, amount=amount,
                           received_on=line.booked_on))
        _keep_promises(s, r, contract, line.booked_on)
        told.setdefault(contract.owner_userid, []).append(M.PAYMENT_LINE.format(
            subject=f"{contract.number} 第{r.seq}期", amount=format_yuan(amount),
            state=M.PAYMENT_PAID if r.outstanding == 0 else M.PAYMENT_PARTIAL.format(left=format_yuan(r.outstanding))))
    for rep, lines in told.items():
        enqueue(s, rep, Text(M.PAYMENT_RECEIVED.format(day=line.booked_on.isoformat(), payer=line.payer_name or "-",
                                                       amount=format_yuan(line.amount)) + "\n" + "\n".join(lines)))


def _keep_promises(s: Session, r: Receivable, contract: Contract, received_on: date) -> None:
    """Open promises on this instalment (or on its customer without one) are kept, on time or late."""
    q = select(Promise).where(Promise.kept.is_(None), Promise.customer_id == contract.customer_id)
    for p in s.scalars(q.order_by(Promise.promised_on)):
        if p.receivable_id not in (None, r.id):
            continue
        if p.receivable_id is None and r.outstanding > 0:
            continue  # a customer-level promise is kept once the instalment is paid
        p.kept = promise_keeping(p.promised_on, received_on).value
        p.kept_on = received_on


@job("bank_poll", "fetch new bank lines from the connector and match them")
def bank_poll(rt: Runtime) -> str:
    settings = rt.config.section("integrations.bank")
    fetched = 0
    if settings.get("enabled") and settings.get("base_url"):
        with rt.db.sessions() as s:
            cursor = get_setting(s, "bank_cursor", None)
        try:
            for lines, next_cursor in fetch_pages(settings, cursor):
                fetched += ingest(rt, lines, "api")[0]
                with rt.db.transaction() as s:
                    set_setting(s, "bank_cursor", next_cursor, "bank_poll")
        except BankError as exc:
            log.warning("bank connector failed; will catch up next run", extra={"error": str(exc)})
            raise RuntimeError(f"bank connector failed: {exc}") from None
    counts = match_pending(rt)
    failed = f", {counts['failed']} failed (left for the next run)" if counts.get("failed") else ""
    return f"{fetched} new lines, {counts['matched']} matched, {counts['unmatched']} to finance{failed}"
