"""Bank connector: a generic JSON HTTP API with cursor paging and a configurable field mapping.

Contract: ``GET <base_url>?cursor=<cursor>`` with ``Authorization: Bearer <key>`` answers
``{"<items_field>": [ {...}, ... ], "<cursor_field>": "<next cursor or null>"}``. Each item's fields are
mapped to account, transaction_id, booked_on (YYYY-MM-DD), amount (a decimal string or number),
payer_name and memo by ``field_map`` ("ours=theirs,…"). Any failure raises ``BankError``: the caller
keeps its cursor and catches up on the next run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

FIELDS = ("account", "transaction_id", "booked_on", "amount", "payer_name", "memo")


class BankError(Exception):
    pass


@dataclass(frozen=True)
class Line:
    account: str
    transaction_id: str
    booked_on: date
    amount: Decimal
    payer_name: str
    memo: str


def parse_field_map(text: str) -> dict[str, str]:
    mapping = {f: f for f in FIELDS}
    for pair in (text or "").split(","):
        if "=" in pair:
            ours, theirs = (x.strip() for x in pair.split("=", 1))
            if ours in mapping and theirs:
                mapping[ours] = theirs
    return mapping


def to_line(item: dict[str, Any], mapping: dict[str, str]) -> Line:
    """One API item (or one file row already keyed by our names) → Line; ValueError names the field."""
    def get(field: str) -> Any:
        return item.get(mapping.get(field, field))

    account, txn = str(get("account") or "").strip(), str(get("transaction_id") or "").strip()
    if not account:
        raise ValueError("account")
    if not txn:
        raise ValueError("transaction_id")
    raw_day = get("booked_on")
    try:
        day = raw_day if isinstance(raw_day, date) else date.fromisoformat(str(raw_day).strip()[:10].replace("/", "-"))
    except ValueError:
        raise ValueError("booked_on") from None
    raw_amount = get("amount")
    if isinstance(raw_amount, float):
        raw_amount = repr(raw_amount)  # a spreadsheet number: its shortest exact decimal text
    try:
        amount = Decimal(str(raw_amount).replace(",", "").replace("¥", "").replace("￥", "").strip())
    except (InvalidOperation, TypeError):
        raise ValueError("amount") from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("amount")
    return Line(account, txn, day if isinstance(day, date) else day, amount.quantize(Decimal("0.01")),
                str(get("payer_name") or "").strip(), str(get("memo") or "").strip())


def fetch_pages(settings: dict[str, Any], cursor: str | None, timeout: float = 15.0,
                max_pages: int = 100) -> Iterator[tuple[list[Line], str | None]]:
    """Pages of lines after ``cursor``; each with the cursor to store once the page is saved."""
    mapping = parse_field_map(str(settings.get("field_map", "")))
    items_field = str(settings.get("items_field") or "items")
    cursor_field = str(settings.get("cursor_field") or "next_cursor")
    for _ in range(max_pages):
        params = {"cursor": cursor} if cursor else {}
        try:
            res = requests.get(str(settings["base_url"]), params=params, timeout=timeout,
                               headers={"Authorization": f"Bearer {settings.get('key', '')}"})
            res.raise_for_status()
            body = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise BankError(f"bank API: {type(exc).__name__}") from None
        items = body.get(items_field) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise BankError(f"bank API: no list in {items_field!r}")
        try:
            lines = [to_line(item, mapping) for item in items]
        except (ValueError, AttributeError) as exc:
            raise BankError(f"bank API: bad item field {exc}") from None
        nxt = body.get(cursor_field)
        yield lines, (str(nxt) if nxt else cursor)
        if not nxt or not items:
            return
        cursor = str(nxt)
