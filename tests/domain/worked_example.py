"""The worked example of issue 6, as plain domain values shared by the domain tests.

杭州云栖科技有限公司 signs HT2026001 for ¥150,000.00 in two instalments (¥100,000.00 due 2026-12-10,
¥50,000.00 due 2027-01-10). For December, rep 张三 holds an A promise (stamped letter) on instalment 1
and an approved B promise on instalment 2; rep 李四 holds a verbal C promise of ¥30,000.00 from
宁波海曙贸易有限公司.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.bank_matching import BankLine, ContractRef, CustomerRef, Ledger, OpenReceivable
from domain.promises import Promise

YUNQI = CustomerRef(1, "杭州云栖科技有限公司")
HAISHU = CustomerRef(2, "宁波海曙贸易有限公司")
HT2026001 = ContractRef(10, "HT2026001", customer_id=YUNQI.id)
INSTALMENT_1 = OpenReceivable(101, HT2026001.id, date(2026, 12, 10), Decimal("100000.00"))
INSTALMENT_2 = OpenReceivable(102, HT2026001.id, date(2027, 1, 10), Decimal("50000.00"))

LEDGER = Ledger(customers=(YUNQI, HAISHU), contracts=(HT2026001,), receivables=(INSTALMENT_1, INSTALMENT_2))

PROMISE_A = Promise(
    id=1, customer_id=YUNQI.id, rep_id="zhangsan", amount=Decimal("100000.00"),
    promised_on=date(2026, 12, 10), has_stamped_letter=True, receivable_id=INSTALMENT_1.id,
)  # fmt: skip
PROMISE_B = Promise(
    id=2, customer_id=YUNQI.id, rep_id="zhangsan", amount=Decimal("50000.00"),
    promised_on=date(2026, 12, 10), receivable_id=INSTALMENT_2.id, manager_approved=True,
)  # fmt: skip
PROMISE_C = Promise(
    id=3, customer_id=HAISHU.id, rep_id="lisi", amount=Decimal("30000.00"), promised_on=date(2026, 12, 15),
)  # fmt: skip
DECEMBER_PROMISES = (PROMISE_A, PROMISE_B, PROMISE_C)

BANK_LINE = BankLine(
    account="33050161000000000001", transaction_id="TX20261209-0001", booked_on=date(2026, 12, 9),
    amount=Decimal("120000.00"), payer_name="杭州云栖科技有限公司", memo="HT2026001 货款",
)  # fmt: skip
