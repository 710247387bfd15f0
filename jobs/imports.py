"""File imports: bank statements and contracts (CSV/XLSX). Re-running the same file changes nothing;
each run reports imported / updated / rejected rows (with row number and reason)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from domain.credit_code import CreditCodeError, normalise_credit_code
from domain.money import MAX_AMOUNT, AmountError, parse_amount
from domain.names import normalise_company_name
from integrations.bank import Line, to_line
from integrations.tabular import TabularError, read_rows
from jobs.bank import ingest, match_pending
from storage.models import Member
from storage.payments import Contract, ImportRun, Receivable
from storage.sales import Customer

if TYPE_CHECKING:
    from bot.runtime import Runtime

BANK_COLUMNS = {
    "account": ("账号", "账户", "本方账号"),
    "transaction_id": ("流水号", "交易流水号", "交易号", "txn_id"),
    "booked_on": ("日期", "交易日期", "记账日期", "date"),
    "amount": ("金额", "贷方金额", "收入金额"),
    "payer_name": ("付款方", "对方户名", "付款人", "payer"),
    "memo": ("摘要", "附言", "用途", "备注"),
}
CONTRACT_COLUMNS = {
    "number": ("合同号", "合同编号"),
    "customer": ("客户", "客户名称", "信用代码"),
    "amount": ("合同金额", "总金额"),
    "seq": ("期数", "分期", "第几期"),
    "instalment": ("分期金额", "本期金额"),
    "due_on": ("到期日", "到期日期", "应收日期"),
    "owner": ("负责人", "销售", "销售账号"),
}


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    conflicts: list[tuple[int, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}, "
               f"rejected {len(self.rejected)}, conflicts {len(self.conflicts)}"]
        out += [f"  row {n}: rejected — {why}" for n, why in self.rejected]
        out += [f"  row {n}: conflict — {why}" for n, why in self.conflicts]
        out += [f"  {k}: {v}" for k, v in self.extra.items()]
        return out


def _rows(path: str | Path, columns: dict[str, tuple[str, ...]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``read_rows``, with a CSV the csv module cannot split (a bare CR in a field) reported as unreadable."""
    try:
        yield from read_rows(path, columns)
    except csv.Error as exc:
        raise TabularError(f"CSV 文件格式有误：{exc}") from None


def import_bank_file(rt: Runtime, path: str | Path) -> ImportReport:
    report = ImportReport()
    lines: list[Line] = []
    for number, row in _rows(path, BANK_COLUMNS):
        try:
            line = to_line(row, {})
        except ValueError as exc:
            report.rejected.append((number, f"{exc} 无法识别"))
            continue
        except ArithmeticError:  # an amount like 1E30 that no column can hold
            report.rejected.append((number, "amount 无法识别"))
            continue
        problem = _bank_line_problem(line)
        if problem:
            report.rejected.append((number, problem))
            continue
        lines.append(line)
    added, dup = ingest(rt, lines, "import")
    report.imported, report.unchanged = added, dup
    report.extra.update(match_pending(rt))
    _record(rt, "bank", str(path), report)
    return report


def _bank_line_problem(line: Line) -> str | None:
    """What would not fit the bank_lines columns (a PostgreSQL error otherwise), or None."""
    if abs(line.amount) > MAX_AMOUNT:
        return "amount 超出范围"
    for name, value, limit in (("account", line.account, 64), ("transaction_id", line.transaction_id, 128),
                               ("payer_name", line.payer_name, 200)):
        if len(value) > limit:
            return f"{name} 超过 {limit} 个字符"
    if "\x00" in line.account + line.transaction_id + line.payer_name + line.memo:
        return "含有无法保存的控制字符"
    return None


def _record(rt: Runtime, kind: str, source: str, report: ImportReport) -> None:
    with rt.db.transaction() as s:
        s.add(ImportRun(kind=kind, source=source, summary={
            "imported": report.imported, "updated": report.updated, "unchanged": report.unchanged,
            "rejected": report.rejected, "conflicts": report.conflicts}))


def _customer(s: Any, ref: str) -> Customer | None:
    try:
        code = normalise_credit_code(ref)
    except CreditCodeError:
        code = None
    if code:
        return s.scalar(select(Customer).where(Customer.credit_code == code))
    return s.scalar(select(Customer).where(Customer.name_key == normalise_company_name(ref)))


def _day(value: Any) -> date:
    if isinstance(value, date):
        return value if not hasattr(value, "date") else value.date() if callable(value.date) else value
    return date.fromisoformat(str(value).strip()[:10].replace("/", "-"))


def _amount(value: Any) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    return parse_amount(str(value))


def import_contracts_file(rt: Runtime, path: str | Path, source: str = "import") -> ImportReport:
    """Contracts from a CSV/XLSX file (an ERP export when ``source`` is "erp")."""
    return import_contract_rows(rt, _rows(path, CONTRACT_COLUMNS), source, str(path))


def import_contract_rows(rt: Runtime, rows: Iterable[tuple[int, dict[str, Any]]], source: str,
                         where: str) -> ImportReport:
    """One row per instalment, binding contract number ↔ rep; a contract is created once, instalments
    added or updated by seq; rerunning the same rows changes nothing."""
    report = ImportReport()
    with rt.db.transaction() as s:
        members = {m.userid for m in s.scalars(select(Member))}
        for number, row in rows:
            try:
                missing = [f for f in CONTRACT_COLUMNS if row.get(f) in (None, "")]
                if missing:
                    raise ValueError("缺少字段：" + "、".join(CONTRACT_COLUMNS[f][0] for f in missing))
                contract_no = str(row["number"] or "").strip().upper()
                if not contract_no:
                    raise ValueError("合同号为空")
                customer = _customer(s, str(row["customer"] or "").strip())
                if customer is None:
                    raise ValueError(f"找不到客户「{row['customer']}」")
                total, part = _amount(row["amount"]), _amount(row["instalment"])
                seq, due = int(str(row["seq"]).strip().strip("第期")), _day(row["due_on"])
                if not 0 < seq <= 1000:
                    raise ValueError(f"期数「{row['seq']}」应为 1 到 1000")
                if len(contract_no) > 64:
                    raise ValueError("合同号超过 64 个字符")
                owner = str(row["owner"] or "").strip() or customer.owner_userid
                if owner not in members:
                    raise ValueError(f"负责人「{owner}」不是已登记的成员")
            except (ValueError, AmountError, TypeError) as exc:
                report.rejected.append((number, str(exc)))
                continue
            contract = s.scalar(select(Contract).where(Contract.number == contract_no))
            if contract is None:
                contract = Contract(number=contract_no, customer_id=customer.id, owner_userid=owner, amount=total,
                                    source=source)
                s.add(contract)
                s.flush()
            elif contract.customer_id != customer.id:
                report.conflicts.append((number, f"合同 {contract_no} 已属于其他客户，未修改"))
                continue
            changed = contract.owner_userid != owner or contract.amount != total
            contract.owner_userid, contract.amount = owner, total
            r = s.scalar(select(Receivable).where(Receivable.contract_id == contract.id, Receivable.seq == seq))
            if r is None:
                s.add(Receivable(contract_id=contract.id, seq=seq, amount=part, outstanding=part, due_on=due))
                report.imported += 1
                continue
            if r.amount != part or r.due_on != due:
                paid = r.amount - r.outstanding
                if part < paid:
                    report.conflicts.append((number, f"第{seq}期金额 {part} 小于已收 {paid}，未修改"))
                    continue
                r.amount, r.outstanding, r.due_on = part, part - paid, due
                changed = True
            if changed:
                report.updated += 1
            else:
                report.unchanged += 1
    _record(rt, source if source != "import" else "contracts", where, report)
    return report
