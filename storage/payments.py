"""Payment-collection tables: contracts, instalment receivables, promises, bank lines and their
allocations, payment-received events, credit ratings and forecast snapshots."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    ColumnElement,
    Date,
    Dialect,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.models import Base, BigId
from storage.types import CENT, Money, utcnow


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    owner_userid: Mapped[str] = mapped_column(String(64), ForeignKey("members.userid"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    payment_term_days: Mapped[int] = mapped_column(Integer, default=30)
    kind: Mapped[str] = mapped_column(String(16), default="new")  # new / renewal / upsell
    product_line: Mapped[str | None] = mapped_column(String(64), nullable=True)
    opportunity_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("opportunities.id"), nullable=True)
    signed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="chat")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Receivable(Base):
    """One instalment of a contract (第N期) and what is still to be collected on it."""

    __tablename__ = "receivables"
    __table_args__ = (UniqueConstraint("contract_id", "seq", name="uq_receivables_contract_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contract_id: Mapped[int] = mapped_column(BigId, ForeignKey("contracts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money())
    outstanding: Mapped[Decimal] = mapped_column(Money())
    due_on: Mapped[date] = mapped_column(Date, index=True)
    invoice_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)
    invoiced_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    invoice_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    collectible_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # invoice date + payment term
    paid_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class Promise(Base):
    """A payment promise 回款承诺 and what supports it (letter → A; approved instalment → B; else C)."""

    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    contract_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contracts.id"), nullable=True)
    receivable_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("receivables.id"), nullable=True)
    rep_userid: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    promised_on: Mapped[date] = mapped_column(Date, index=True)
    letter_attachment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("attachments.id"), nullable=True)
    approval: Mapped[str] = mapped_column(String(16), default="none")  # none / pending / approved / rejected
    kept: Mapped[str | None] = mapped_column(String(16), nullable=True)  # on_time / late
    kept_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BankLine(Base):
    """A credit on the company's bank account; unique on account + bank transaction id."""

    __tablename__ = "bank_lines"
    __table_args__ = (UniqueConstraint("account", "transaction_id", name="uq_bank_lines_account_txn"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(128))
    booked_on: Mapped[date] = mapped_column(Date, index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    payer_name: Mapped[str] = mapped_column(String(200), default="")
    memo: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")  # new / matched / unmatched / ignored
    match_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="import")
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class Allocation(Base):
    """Part of a bank line applied to a receivable."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_line_id: Mapped[int] = mapped_column(BigId, ForeignKey("bank_lines.id"), index=True)
    receivable_id: Mapped[int] = mapped_column(BigId, ForeignKey("receivables.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class PaymentEvent(Base):
    """The "payment received" (or "payment reversed") domain event the incentive engine consumes."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("allocation_id", "kind", name="uq_payment_events_allocation_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # received / reversed
    allocation_id: Mapped[int] = mapped_column(BigId, ForeignKey("allocations.id"))
    rep_userid: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    contract_id: Mapped[int] = mapped_column(BigId, ForeignKey("contracts.id"))
    amount: Mapped[Decimal] = mapped_column(Money())
    received_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    consumed_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)


class CreditRating(Base):
    """A rating of a customer (S&P-style ladder), with the agency and scale it was given on."""

    __tablename__ = "credit_ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    rating: Mapped[str] = mapped_column(String(8))
    agency: Mapped[str] = mapped_column(String(64), default="")
    scale: Mapped[str] = mapped_column(String(32), default="S&P")
    rated_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))  # provider / manual
    entered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ForecastSnapshotRow(Base):
    """The finance forecast F of a month, as it stood on the month's first day."""

    __tablename__ = "forecast_snapshots"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # 2026-12
    amount: Mapped[Decimal] = mapped_column(Money())
    receivable_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    customer_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
    accuracy_reported: Mapped[bool] = mapped_column(Boolean, default=False)


class ImportRun(Base):
    """One import of a file or an API page, with what it did (for reports and idempotency checks)."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


# ---- bulk reads and writes ------------------------------------------------------------------------


def one_of(column: ColumnElement[Any], values: Iterable[Any], dialect: Dialect) -> ColumnElement[bool]:
    """``column IN values`` with the values as one parameter, however many there are: ``= ANY(array)`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(…))`` on SQLite. The statement stays the same for every
    list (compiled once, planned cheaply), where an IN list of a thousand parameters is compiled and
    planned anew each time. Values are ints or strings."""
    values = list(values)
    if dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    listed = select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(values),
                                                                                    type_=String())))
    return column.in_(listed)


def _columns(session: Session, table: Table, cols: list[str], rows: Sequence[dict[str, Any]],
             bound: Collection[str] = ()) -> list[list[Any]]:
    """The values of each of ``cols`` in ``rows``, converted as the column's type would bind them (money as text
    on SQLite, dates, aware datetimes, JSON); dates and datetimes once per distinct value (a chunk's rows share
    a handful: its ``now``, its booking days), Decimal money without the type's layers. Columns in ``bound``
    hold values already as the driver takes them (JSON already serialised) and pass unchanged."""
    dialect = session.get_bind().dialect
    as_text = dialect.name == "sqlite"
    columns = []
    for c in cols:
        type_ = table.c[c].type
        proc = None if c in bound else type_.dialect_impl(dialect).bind_processor(dialect)
        values = list(map(itemgetter(c), rows))
        if proc is not None:
            memo: dict[Any, Any] = {}
            converted = []
            money = isinstance(type_, Money)
            last: Any = None
            last_bound: Any = None
            for v in values:
                if v is None:
                    converted.append(None)
                elif money and type(v) is Decimal:  # Money.process_bind_param, inline
                    converted.append(str(v.quantize(CENT)) if as_text else v.quantize(CENT))
                elif v is last:  # the same object as the row before (a chunk's ``now``)
                    converted.append(last_bound)
                elif isinstance(v, date):
                    if v not in memo:
                        memo[v] = proc(v)
                    last, last_bound = v, memo[v]
                    converted.append(last_bound)
                else:
                    converted.append(proc(v))
            values = converted
        columns.append(values)
    return columns


def _bound(session: Session, table: Table, cols: list[str], rows: Sequence[dict[str, Any]],
           bound: Collection[str] = ()) -> list[tuple[Any, ...]]:
    """``rows`` as tuples of ``cols`` (see ``_columns``), for an executemany."""
    return list(zip(*_columns(session, table, cols, rows, bound), strict=True))


def _marks(session: Session, n: int) -> list[str]:
    style = session.get_bind().dialect.paramstyle
    return ["?"] * n if style == "qmark" else ["%s"] * n


def _arrays(session: Session, table: Table, cols: list[str]) -> list[str] | None:
    """On PostgreSQL, a ``%b::TYPE[]`` parameter for each of ``cols`` (the rows' values as one array per
    column, sent in binary: psycopg escapes text-format arrays element by element in Python); None
    elsewhere, or when a column is itself an array (unnest would flatten it)."""
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        return None
    types = []
    for c in cols:
        type_ = table.c[c].type
        if isinstance(type_.dialect_impl(dialect), ARRAY):
            return None
        types.append(f"%b::{type_.compile(dialect=dialect)}[]")
    return types


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]], bound: Collection[str] = ()) -> None:
    """INSERT ``rows`` (dicts with the same keys; no column defaults applied) in one statement, their values
    converted as the columns' types would (except the ``bound`` columns, see ``_columns``): on PostgreSQL
    ``INSERT … SELECT`` from ``unnest`` of one array per column (rows, and so ids, in ``rows`` order), elsewhere
    one driver executemany. SQLAlchemy's per-row machinery (parameter construction, every value through its
    type) costs several times the write itself for thousands of rows, and an executemany on PostgreSQL is
    a statement per row for the server."""
    if not rows:
        return
    q = session.get_bind().dialect.identifier_preparer.quote
    cols = list(rows[0])
    names = ", ".join(q(c) for c in cols)
    arrays = _arrays(session, table, cols)
    if arrays is not None:
        session.connection().exec_driver_sql(
            f"INSERT INTO {q(table.name)} ({names}) SELECT {names} "  # noqa: S608
            f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS v ({names}, v_ordinal) ORDER BY v_ordinal",
            tuple(_columns(session, table, cols, rows, bound)))
        return
    session.connection().exec_driver_sql(
        f"INSERT INTO {q(table.name)} ({names}) "  # noqa: S608
        f"VALUES ({', '.join(_marks(session, len(cols)))})", _bound(session, table, cols, rows, bound))


def update_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str = "id") -> None:
    """UPDATE each row (by ``key``) to the other values of its dict, in one statement (see insert_rows): on
    PostgreSQL ``UPDATE … FROM unnest(…)`` (a key given twice takes its last row's values, as row-by-row
    updates would leave it), elsewhere one driver executemany."""
    if not rows:
        return
    q = session.get_bind().dialect.identifier_preparer.quote
    cols = [c for c in rows[0] if c != key]
    arrays = _arrays(session, table, [*cols, key])
    if arrays is not None:
        rows = list({row[key]: row for row in rows}.values())
        session.connection().exec_driver_sql(
            f"UPDATE {q(table.name)} SET {', '.join(f'{q(c)} = v.{q(c)}' for c in cols)} "  # noqa: S608
            f"FROM unnest({', '.join(arrays)}) AS v ({', '.join(q(c) for c in [*cols, key])}) "
            f"WHERE {q(table.name)}.{q(key)} = v.{q(key)}",
            tuple(_columns(session, table, [*cols, key], rows)))
        return
    marks = _marks(session, len(cols) + 1)
    session.connection().exec_driver_sql(
        f"UPDATE {q(table.name)} SET {', '.join(f'{q(c)} = {m}' for c, m in zip(cols, marks, strict=False))} "  # noqa: S608
        f"WHERE {q(key)} = {marks[-1]}", _bound(session, table, [*cols, key], rows))
