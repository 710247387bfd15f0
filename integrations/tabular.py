"""Rows from CSV or XLSX files, with headers mapped to our field names (Chinese or English)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


class TabularError(ValueError):
    """The file cannot be read as a table; the message says why (Chinese)."""


def read_rows(path: str | Path, aliases: Mapping[str, tuple[str, ...]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number as the user sees it, {field: value}) for each data row; header names via ``aliases``."""
    p = Path(path)
    if not p.is_file():
        raise TabularError(f"文件不存在：{p}")
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(p)
    elif suffix in (".csv", ".txt"):
        rows = _csv_rows(p)
    else:
        raise TabularError(f"只支持 CSV 或 XLSX 文件（收到 {p.suffix or '无扩展名'}）")
    try:
        header = next(rows)
    except StopIteration:
        raise TabularError("文件是空的") from None
    lookup = {alias.strip().lower(): field for field, names in aliases.items() for alias in (field, *names)}
    columns = [lookup.get(str(h or "").strip().lower()) for h in header]
    missing = [f for f in aliases if f not in columns]
    if missing:
        raise TabularError("缺少列：" + "、".join(f"{f}（可写作 {'/'.join(aliases[f][:2]) or f}）" for f in missing))
    for number, values in enumerate(rows, start=2):
        if values is None or all(v in (None, "") for v in values):
            continue
        yield number, {col: values[i] if i < len(values) else None for i, col in enumerate(columns) if col}


def _csv_rows(p: Path) -> Iterator[list[Any]]:
    raw = p.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise TabularError("无法识别文件编码（请另存为 UTF-8 CSV）")
    yield from csv.reader(io.StringIO(text))


def _xlsx_rows(p: Path) -> Iterator[list[Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:
        raise TabularError(f"无法读取 XLSX：{type(exc).__name__}") from None
    try:
        for row in wb.worksheets[0].iter_rows(values_only=True):
            yield list(row)
    finally:
        wb.close()
