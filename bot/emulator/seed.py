"""The demo company: who works there, its customers and contacts, opportunities in every stage with
their history, visits, contracts with instalments, payment promises, the link and talk-track
libraries, this month's targets, the redemption catalogue and a few credit ratings.

Each kind has its own ``seed_<kind>(session, now)`` that adds only what is missing — found by a natural
key (credit code, customer + product line, contract's opportunity, URL, title…) — so re-running the
demo keeps everything the user changed and duplicates nothing; ``seed_demo`` calls them in dependency
order. Dates are relative to ``now`` (Asia/Shanghai) when a row is first added, so a fresh demo always
looks current: deals that overstayed their stage SLA this week, an instalment overdue, promises due
in the coming weeks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.credit_code import check_character
from domain.invoicing import due_date
from domain.names import normalise_company_name
from domain.stages import DEFAULT_PIPELINE
from storage.behaviour import LinkItem, TalkTrack
from storage.blobs import store_blob
from storage.incentives import RedemptionItem, Target
from storage.models import Member
from storage.payments import Allocation, BankLine, Contract, CreditRating, Promise, Receivable
from storage.pipeline import record_move
from storage.sales import Attachment, Contact, Customer, Evidence, Opportunity, StageChange, Visit

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADMIN = "chenjing"
MANAGER = "wanglei"
RISK = "wuqiang"


@dataclass(frozen=True)
class DemoMember:
    userid: str
    name: str
    roles: tuple[str, ...]
    manager: str | None
    region: str
    hired: date


DEMO_MEMBERS: tuple[DemoMember, ...] = (
    DemoMember("chenjing", "陈静", ("admin",), None, "总部", date(2019, 4, 1)),
    DemoMember("wanglei", "王磊", ("manager",), None, "华东", date(2020, 7, 13)),
    DemoMember("liuyang", "刘洋", ("rep",), "wanglei", "华东", date(2023, 3, 6)),
    DemoMember("zhangmin", "张敏", ("rep",), "wanglei", "华东", date(2024, 9, 2)),
    DemoMember("lihao", "李浩", ("rep",), "wanglei", "华东", date(2025, 11, 17)),
    DemoMember("sunli", "孙丽", ("finance",), None, "总部", date(2021, 5, 10)),
    DemoMember("zhouting", "周婷", ("csm",), None, "华东", date(2022, 2, 21)),
    DemoMember("wuqiang", "吴强", ("risk",), None, "总部", date(2021, 10, 8)),
)

# bootstrap admins of the demo's config ([roles] admins)
DEMO_ADMINS: tuple[str, ...] = tuple(m.userid for m in DEMO_MEMBERS if "admin" in m.roles)

# one member per role, for the console's quick picks and the tests
DEMO_BY_ROLE: dict[str, str] = {}
for _m in DEMO_MEMBERS:
    for _role in _m.roles:
        DEMO_BY_ROLE.setdefault(_role, _m.userid)


def seed_members(session: Session) -> int:
    """Add the demo company's members that are missing (managers first); returns how many were added."""
    existing = set(session.scalars(select(Member.userid)))
    added = 0
    for pass_managers in (True, False):
        for m in DEMO_MEMBERS:
            if m.userid in existing or (m.manager is None) != pass_managers:
                continue
            session.add(Member(userid=m.userid, name=m.name, roles=list(m.roles), manager_userid=m.manager,
                               region=m.region, hire_date=m.hired))
            existing.add(m.userid)
            added += 1
        session.flush()
    return added


# ---- customers -------------------------------------------------------------------------------------

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def demo_credit_code(division: str, org_body: str, registrar: str = "91") -> str:
    """A unified social credit code that passes every check: registrar (91 = 工商·企业) + 6-digit
    administrative division + the 9-character organisation code (GB 11714 check digit) + C18."""
    values = [int(ch) if ch.isdigit() else ord(ch) - 55 for ch in org_body]
    c9 = 11 - sum(v * w for v, w in zip(values, _ORG_WEIGHTS, strict=True)) % 11
    org = org_body + {10: "X", 11: "0"}.get(c9, str(c9))
    first17 = registrar + division + org
    return first17 + check_character(first17)


@dataclass(frozen=True)
class DemoCustomer:
    key: str  # the handle the other demo rows use
    name: str
    industry: str
    region: str
    division: str  # administrative division code of the registration
    org_body: str  # first 8 characters of the organisation code
    owner: str
    phone: str
    since_days: int  # how long ago the customer was created

    @property
    def credit_code(self) -> str:
        return demo_credit_code(self.division, self.org_body)


DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer("shulan", "杭州数澜软件有限公司", "软件", "华东", "330106", "74372158", "liuyang",
                 "0571-86731200", 58),
    DemoCustomer("ruikang", "上海瑞康医疗器械股份有限公司", "医疗器械", "华东", "310115", "60724935", "liuyang",
                 "021-58306617", 75),
    DemoCustomer("qiming", "北京启明教育科技有限公司", "教育", "华北", "110108", "80196342", "liuyang",
                 "010-62508833", 24),
    DemoCustomer("haihui", "宁波海汇融资租赁有限公司", "金融", "华东", "330206", "57351864", "liuyang",
                 "0574-87126650", 400),
    DemoCustomer("jinggong", "苏州精工智能制造有限公司", "制造业", "华东", "320506", "69850273", "zhangmin",
                 "0512-66053388", 80),
    DemoCustomer("xianfeng", "南京鲜丰零售连锁有限公司", "零售", "华东", "320105", "13520876", "zhangmin",
                 "025-84729015", 160),
    DemoCustomer("shunda", "深圳顺达供应链物流有限公司", "物流", "华南", "440300", "31964528", "zhangmin",
                 "0755-26681970", 36),
    DemoCustomer("baicaotang", "广州百草堂大药房连锁有限公司", "零售", "华南", "440106", "72813059", "zhangmin",
                 "020-38296412", 40),
    DemoCustomer("tianfu", "成都天府云计算有限公司", "软件", "西南", "510107", "58246391", "lihao",
                 "028-85127764", 5),
    DemoCustomer("huazhong", "武汉华中汽车零部件有限公司", "制造业", "华中", "420115", "61487302", "lihao",
                 "027-81956623", 30),
    DemoCustomer("haichuan", "青岛海川冷链物流有限公司", "物流", "华东", "370212", "49630185", "lihao",
                 "0532-88719046", 9),
    DemoCustomer("qinchuan", "西安秦川医疗科技有限公司", "医疗器械", "西北", "610131", "87019624", "lihao",
                 "029-68203157", 33),
)
_BY_KEY = {c.key: c for c in DEMO_CUSTOMERS}


def _ago(now: datetime, days: float, hours: float = 0) -> datetime:
    return now - timedelta(days=days, hours=hours)


def _demo_customers(session: Session) -> dict[str, Customer]:
    """The demo customers that exist, by their handle."""
    codes = {c.credit_code: c.key for c in DEMO_CUSTOMERS}
    return {codes[c.credit_code]: c for c in session.scalars(select(Customer).where(
        Customer.credit_code.in_(list(codes)))) if c.credit_code}


def seed_customers(session: Session, now: datetime) -> int:
    """A dozen customers across industries and regions, owned by the three reps, with valid credit codes."""
    codes = set(session.scalars(select(Customer.credit_code).where(Customer.credit_code.is_not(None))))
    keys = set(session.scalars(select(Customer.name_key)))
    added = 0
    for c in DEMO_CUSTOMERS:
        key = normalise_company_name(c.name)
        if c.credit_code in codes or key in keys:
            continue
        session.add(Customer(name=c.name, name_key=key, credit_code=c.credit_code, industry=c.industry,
                             region=c.region, phone=c.phone, owner_userid=c.owner, created_by=c.owner,
                             created_at=_ago(now, c.since_days)))
        added += 1
    session.flush()
    return added


# ---- contacts --------------------------------------------------------------------------------------

DEMO_CONTACTS: tuple[tuple[str, str, str, str], ...] = (
    # customer, name, title, phone
    ("shulan", "赵敏", "CTO", "13800571001"),
    ("shulan", "孙伟", "销售副总裁", "13800571002"),
    ("ruikang", "周建国", "信息部经理", "13900211003"),
    ("qiming", "冯涛", "信息中心主任", "13701011004"),
    ("haihui", "李文博", "风控总监", "13605741005"),
    ("jinggong", "钱宏", "生产副总", "13805121006"),
    ("jinggong", "吴芳", "采购经理", "13805121007"),
    ("xianfeng", "郑丽", "运营总监", "13915251008"),
    ("shunda", "陈刚", "调度中心总监", "13607551009"),
    ("tianfu", "何静", "CIO", "13808281010"),
    ("huazhong", "马俊", "IT经理", "13907271011"),
    ("haichuan", "罗强", "仓储总监", "13705321012"),
    ("qinchuan", "胡敏", "采购主管", "13609291013"),
)


def seed_contacts(session: Session, now: datetime) -> int:
    customers = _demo_customers(session)
    added = 0
    for key, name, title, phone in DEMO_CONTACTS:
        customer = customers.get(key)
        if customer is None or session.scalar(select(Contact.id).where(
                Contact.customer_id == customer.id, Contact.name == name)) is not None:
            continue
        session.add(Contact(customer_id=customer.id, name=name, title=title, phone=phone,
                            created_at=_ago(now, _BY_KEY[key].since_days - 1)))
        added += 1
    session.flush()
    return added


# ---- opportunities and their stage history ----------------------------------------------------------

@dataclass(frozen=True)
class DemoOpportunity:
    customer: str
    product_line: str  # unique per customer: the demo's key for the opportunity
    kind: str  # new / renewal / upsell
    amount: Decimal
    path: tuple[tuple[str, float], ...]  # (stage, days ago it was entered), from 线索
    pain: str = ""
    contract_seq: int | None = None  # a won deal's contract number HT<year><seq>
    lost_reason: str = ""


def _path(*days: float, won: float | None = None, lost: float | None = None) -> tuple[tuple[str, float], ...]:
    """Stages entered so many days ago, in pipeline order from 线索, then 赢单 or 输单."""
    stages = [s.key for s in DEFAULT_PIPELINE.open_stages()]
    assert 1 <= len(days) <= len(stages)
    steps = list(zip(stages, days, strict=False))
    steps += [(stage, d) for stage, d in (("won", won), ("lost", lost)) if d is not None]
    return tuple(steps)


DEMO_OPPORTUNITIES: tuple[DemoOpportunity, ...] = (
    # liuyang: a deal 23 days in 报价谈判 (SLA 14) and one 15 days in 需求诊断 (SLA 7)
    DemoOpportunity("shulan", "数据中台·平台版", "new", Decimal("480000"),
                    _path(50, 44, 36, 27, 23),
                    "销售过程不透明，主管每周靠 Excel 汇总拜访记录，数据滞后一周以上"),
    DemoOpportunity("ruikang", "CRM·医疗版", "new", Decimal("360000"),
                    _path(60, 52, 45, 38, 30, won=21),
                    "经销商流向数据对不上，飞检时拿不出完整的学术拜访记录", contract_seq=412),
    DemoOpportunity("ruikang", "移动审批模块", "upsell", Decimal("80000"),
                    _path(10, 9, 3),
                    "区域经理出差时合同审批平均要等两天，影响月底发货"),
    DemoOpportunity("qiming", "智慧校园平台", "new", Decimal("250000"),
                    _path(17, 15),
                    "各校区招生数据分散在三个系统，校长看不到统一的转化漏斗"),
    DemoOpportunity("haihui", "风控系统·年度续费", "renewal", Decimal("180000"),
                    _path(45, 40, 35, 30, 25, won=12),
                    "租后检查靠人工翻报表，逾期预警往往晚两周", contract_seq=436),
    DemoOpportunity("haihui", "移动风控预警", "upsell", Decimal("60000"), _path(2)),
    # zhangmin: a deal 16 days in 方案确认 (SLA 7), one lost, a renewal in 需求诊断
    DemoOpportunity("jinggong", "MES 生产管理", "new", Decimal("650000"),
                    _path(70, 62, 50, 38, 28, won=15),
                    "设备数据靠人工抄表，生产日报要第二天中午才能出", contract_seq=421),
    DemoOpportunity("xianfeng", "门店会员系统", "new", Decimal("300000"),
                    _path(150, 140, 130, 120, 110, won=100),
                    "60 家门店会员数据不通，复购率一年没有提升", contract_seq=87),
    DemoOpportunity("xianfeng", "会员系统·年度运维续费", "renewal", Decimal("45000"),
                    _path(8, 6),
                    "新开 12 家门店，需要扩容并续签运维服务"),
    DemoOpportunity("shunda", "TMS 运输管理", "new", Decimal("420000"),
                    _path(30, 26, 21, 16),
                    "调度靠人工排线，空驶率约 18%，旺季经常爆仓"),
    DemoOpportunity("baicaotang", "门店进销存", "new", Decimal("120000"),
                    _path(35, 30, lost=22),
                    "门店库存靠月底盘点，近效期药品损耗大", lost_reason="客户预算冻结，改用 ERP 自带的进销存模块"),
    # lihao (new hire): a fresh lead, deals moving on time, one lost to a cheaper competitor
    DemoOpportunity("tianfu", "数据中台·标准版", "new", Decimal("200000"), _path(3)),
    DemoOpportunity("huazhong", "MES 生产管理", "new", Decimal("550000"),
                    _path(25, 21, 17, 12, 8),
                    "主机厂要求零部件批次可追溯，纸质流转卡经常丢失"),
    DemoOpportunity("haichuan", "WMS 仓储管理", "new", Decimal("160000"),
                    _path(6, 5),
                    "冷库温控数据和出入库单据不同步，客户投诉时无法快速追责"),
    DemoOpportunity("qinchuan", "CRM·医疗版", "new", Decimal("220000"),
                    _path(28, 24, 19, lost=10),
                    "代理商报备混乱，同一家医院被多个代理商重复跟进", lost_reason="客户选择了竞品，报价低 20%"),
)

_MOVE_REASONS = {"diagnosis": "拜访确认痛点", "demo": "约定方案演示", "solution_confirmed": "客户确认方案范围与预算",
                 "negotiation": "提交需求诊断报告，进入报价", "won": "合同签署"}


def demo_contract_number(opp: DemoOpportunity, closed_at: datetime) -> str:
    assert opp.contract_seq is not None
    return f"HT{closed_at.astimezone(SHANGHAI):%Y}{opp.contract_seq:04d}"


def _demo_opportunity(session: Session, customers: dict[str, Customer], key: str,
                      product_line: str) -> Opportunity | None:
    customer = customers.get(key)
    if customer is None:
        return None
    return session.scalar(select(Opportunity).where(Opportunity.customer_id == customer.id,
                                                    Opportunity.product_line == product_line))


def _evidence(session: Session, opp: Opportunity, spec: DemoOpportunity, stage: str, at: datetime) -> None:
    """What the stage gate asked for on entering ``stage`` (PRODUCT.md §1.2), as the rep supplied it."""
    items: list[tuple[str, str]] = []
    if stage == "diagnosis":
        items = [("pain", spec.pain or "客户希望提升销售过程的透明度")]
    elif stage == "solution_confirmed":
        items = [("competitor", "竞品对比表：与两家主流 CRM 对比，客户认可我方企业微信内闭环和本地化部署的优势"),
                 ("budget", "已明确")]
    elif stage == "negotiation":
        items = [("report", f"需求诊断报告：{spec.pain or '核心流程梳理完成'}；建议分两期上线，先覆盖核心流程")]
    elif stage == "won" and opp.contract_no:
        items = [("contract_no", opp.contract_no), ("signed_amount", str(opp.amount))]
    for item, text in items:
        session.add(Evidence(opportunity_id=opp.id, item=item, text=text, by_userid=opp.owner_userid,
                             at=at - timedelta(hours=2)))


def seed_opportunities(session: Session, now: datetime) -> int:
    """Opportunities in every stage (new / renewal / upsell), each with its backdated stage history and
    the gate evidence of the stages it passed, so the funnel heatmap has data — some beyond the SLA."""
    customers = _demo_customers(session)
    added = 0
    for spec in DEMO_OPPORTUNITIES:
        customer = customers.get(spec.customer)
        if customer is None or _demo_opportunity(session, customers, spec.customer, spec.product_line):
            continue
        (first, created_days), *moves = spec.path
        created = _ago(now, created_days, hours=3)
        opp = Opportunity(customer_id=customer.id, owner_userid=customer.owner_userid, amount=spec.amount,
                          kind=spec.kind, product_line=spec.product_line, stage=first,
                          stage_entered_at=created, created_at=created)
        session.add(opp)
        session.flush()
        session.add(StageChange(opportunity_id=opp.id, from_stage=None, to_stage=first, at=created,
                                actor=opp.owner_userid, reason="新建商机"))
        for stage, days in moves:
            at = _ago(now, days, hours=1)
            if stage == "won":
                opp.contract_no = demo_contract_number(spec, at)
                opp.signed_amount = spec.amount
            _evidence(session, opp, spec, stage, at)
            reason = spec.lost_reason if stage == "lost" else _MOVE_REASONS.get(stage, "")
            record_move(session, opp, stage, at, actor=opp.owner_userid, reason=reason)
        added += 1
    session.flush()
    return added


# ---- visits ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoVisit:
    customer: str
    days_ago: float
    pain: str
    budget: str | None  # None: the visit is not a quality visit
    next_step: str
    contacts: str = ""
    product_line: str | None = None  # the opportunity it served
    report: bool = False


DEMO_VISITS: tuple[DemoVisit, ...] = (
    DemoVisit("shulan", 40, "销售过程不透明，主管每周靠 Excel 汇总拜访记录，数据滞后一周以上", "已明确",
              "下周二给 CTO 和销售副总裁做方案演示", "赵敏（CTO）、孙伟（销售副总裁）", "数据中台·平台版"),
    DemoVisit("shulan", 2, "客户担心私有化部署后的运维成本，希望报价里包含首年驻场支持", "已明确",
              "周五前发正式报价和运维方案", "赵敏（CTO）", "数据中台·平台版"),
    DemoVisit("ruikang", 9, "区域经理出差时合同审批平均要等两天，影响月底发货", "待确认",
              "演示移动审批模块，请信息部评估与现有 OA 的集成", "周建国（信息部经理）", "移动审批模块"),
    DemoVisit("qiming", 12, "各校区招生数据分散在三个系统，校长看不到统一的转化漏斗", "待确认",
              "约信息中心做需求诊断访谈，整理各校区的招生流程", "冯涛（信息中心主任）", "智慧校园平台"),
    DemoVisit("qiming", 1, "期末考试期间客户暂停新项目评估，需等考试结束再推进", None,
              "月底再约校长面谈", "冯涛（信息中心主任）", "智慧校园平台"),
    DemoVisit("jinggong", 4, "上线后质量部提出追溯需求，希望把质检数据也接进来", "待确认",
              "整理二期质量追溯需求，下周给生产副总汇报", "钱宏（生产副总）、吴芳（采购经理）"),
    DemoVisit("shunda", 10, "调度靠人工排线，空驶率约 18%，旺季经常爆仓", "已明确",
              "提交 TMS 路径优化测算报告，请财务一起核算 ROI", "陈刚（调度中心总监）", "TMS 运输管理",
              report=True),
    DemoVisit("xianfeng", 6, "新开 12 家门店，会员系统需要扩容，运维响应要求提高到 2 小时", "已明确",
              "发送续费方案和新门店扩容报价", "郑丽（运营总监）", "会员系统·年度运维续费"),
    DemoVisit("huazhong", 9, "主机厂要求零部件批次可追溯，纸质流转卡经常丢失", "已明确",
              "法务审核合同条款，下周三前反馈修改意见", "马俊（IT经理）", "MES 生产管理"),
    DemoVisit("haichuan", 5, "冷库温控数据和出入库单据不同步，客户投诉时无法快速追责", "暂不披露",
              "周四现场调研两个冷库的作业流程", "罗强（仓储总监）", "WMS 仓储管理"),
    DemoVisit("tianfu", 1, "初次拜访，客户正在评估数据中台方案", None, "发送产品手册和同行案例",
              "何静（CIO）", "数据中台·标准版"),
)


def seed_visits(session: Session, now: datetime) -> int:
    """Visit logs: most complete (quality: pain point, budget and next step), two without a budget."""
    customers = _demo_customers(session)
    added = 0
    for spec in DEMO_VISITS:
        customer = customers.get(spec.customer)
        if customer is None or session.scalar(select(Visit.id).where(
                Visit.customer_id == customer.id, Visit.pain_point == spec.pain)) is not None:
            continue
        opp = (_demo_opportunity(session, customers, spec.customer, spec.product_line)
               if spec.product_line else None)
        done = _ago(now, spec.days_ago, hours=5)
        session.add(Visit(customer_id=customer.id, opportunity_id=opp.id if opp else None,
                          rep_userid=customer.owner_userid, pain_point=spec.pain, budget=spec.budget,
                          next_step=spec.next_step, contacts_met=spec.contacts or None, is_report=spec.report,
                          quality=spec.budget is not None, status="done",
                          created_at=done - timedelta(minutes=20), completed_at=done))
        if customer.last_contact_at is None or customer.last_contact_at < done:
            customer.last_contact_at = done
        added += 1
    session.flush()
    return added


# ---- contracts, instalments, payments ----------------------------------------------------------------

@dataclass(frozen=True)
class DemoInstalment:
    amount: Decimal
    due_in: int  # days from today (negative: in the past)
    invoiced_in: int | None = None  # invoiced that many days from today; collectible after the term
    paid: Decimal = Decimal("0")
    paid_in: int | None = None


@dataclass(frozen=True)
class DemoContract:
    customer: str
    product_line: str  # the won opportunity it was signed on
    term_days: int
    instalments: tuple[DemoInstalment, ...]


DEMO_CONTRACTS: tuple[DemoContract, ...] = (
    # paid first instalment; the second invoiced and overdue; the third not yet due
    DemoContract("xianfeng", "门店会员系统", 30, (
        DemoInstalment(Decimal("120000"), -95, -95, Decimal("120000"), -62),
        DemoInstalment(Decimal("90000"), -45, -45),
        DemoInstalment(Decimal("90000"), 20))),
    # invoiced, collectible in 12 days (the countdown runs)
    DemoContract("ruikang", "CRM·医疗版", 30, (
        DemoInstalment(Decimal("180000"), -18, -18),
        DemoInstalment(Decimal("180000"), 72))),
    # partially paid before it is collectible
    DemoContract("haihui", "风控系统·年度续费", 15, (
        DemoInstalment(Decimal("90000"), -10, -10, Decimal("40000"), -2),
        DemoInstalment(Decimal("90000"), 170))),
    DemoContract("jinggong", "MES 生产管理", 45, (
        DemoInstalment(Decimal("195000"), -13, -13),
        DemoInstalment(Decimal("260000"), 60),
        DemoInstalment(Decimal("195000"), 150))),
)
BANK_ACCOUNT = "571909876510888"


def _demo_contract(session: Session, customers: dict[str, Customer], key: str,
                   product_line: str) -> Contract | None:
    """The contract signed on the demo opportunity (customer, product line), if there is one."""
    opp = _demo_opportunity(session, customers, key, product_line)
    if opp is None:
        return None
    return session.scalar(select(Contract).where(Contract.opportunity_id == opp.id))


def seed_contracts(session: Session, now: datetime) -> int:
    """The contracts of the won deals (signed on the day they were won)."""
    customers = _demo_customers(session)
    added = 0
    for spec in DEMO_CONTRACTS:
        opp = _demo_opportunity(session, customers, spec.customer, spec.product_line)
        if (opp is None or opp.stage != "won" or not opp.contract_no
                or _demo_contract(session, customers, spec.customer, spec.product_line) is not None):
            continue
        if session.scalar(select(Contract.id).where(Contract.number == opp.contract_no)) is not None:
            continue
        signed = (opp.closed_at or now).astimezone(SHANGHAI)
        session.add(Contract(number=opp.contract_no, customer_id=opp.customer_id,
                             owner_userid=opp.owner_userid, amount=opp.signed_amount or opp.amount,
                             payment_term_days=spec.term_days, kind=opp.kind,
                             product_line=opp.product_line, opportunity_id=opp.id, signed_on=signed.date(),
                             created_at=signed))
        added += 1
    session.flush()
    return added


def seed_receivables(session: Session, now: datetime) -> int:
    """The instalments: some invoiced (collectible = invoice date + term), one paid, one partly paid
    (with the bank line it came in on), one overdue."""
    customers = _demo_customers(session)
    today = now.astimezone(SHANGHAI).date()
    added = 0
    for spec in DEMO_CONTRACTS:
        contract = _demo_contract(session, customers, spec.customer, spec.product_line)
        if contract is None:
            continue
        customer = session.get(Customer, contract.customer_id)
        for seq, inst in enumerate(spec.instalments, 1):
            if session.scalar(select(Receivable.id).where(Receivable.contract_id == contract.id,
                                                          Receivable.seq == seq)) is not None:
                continue
            r = Receivable(contract_id=contract.id, seq=seq, amount=inst.amount, outstanding=inst.amount,
                           due_on=today + timedelta(days=inst.due_in))
            if inst.invoiced_in is not None:
                invoiced = today + timedelta(days=inst.invoiced_in)
                r.invoice_requested_at = datetime.combine(invoiced - timedelta(days=2), datetime.min.time(),
                                                          SHANGHAI) + timedelta(hours=10)
                r.invoiced_on = invoiced
                r.invoice_no = f"FP{contract.number[2:]}{seq:02d}"
                r.collectible_on = due_date(invoiced, contract.payment_term_days)
            session.add(r)
            session.flush()
            if inst.paid > 0 and inst.paid_in is not None:
                booked = today + timedelta(days=inst.paid_in)
                line = BankLine(account=BANK_ACCOUNT, transaction_id=f"DEMO-{contract.number}-{seq}",
                                booked_on=booked, amount=inst.paid,
                                payer_name=customer.name if customer else "",
                                memo=f"{contract.number} 第{seq}期货款", status="matched", match_step=1,
                                source="demo")
                session.add(line)
                session.flush()
                session.add(Allocation(bank_line_id=line.id, receivable_id=r.id, amount=inst.paid,
                                       at=datetime.combine(booked, datetime.min.time(), SHANGHAI)
                                       + timedelta(hours=15)))
                r.outstanding = inst.amount - inst.paid
                if r.outstanding == 0:
                    r.paid_on = booked
            added += 1
    session.flush()
    return added


# ---- payment promises ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoPromise:
    customer: str
    product_line: str  # the contract
    seq: int | None  # the instalment it points at (None: the contract as a whole)
    amount: Decimal
    promised_in: int  # days from today
    grade: str  # A: a stamped letter; B: on an instalment, approved by the manager; C: verbal


DEMO_PROMISES: tuple[DemoPromise, ...] = (
    DemoPromise("ruikang", "CRM·医疗版", 1, Decimal("180000"), 12, "A"),
    DemoPromise("xianfeng", "门店会员系统", 2, Decimal("90000"), 7, "B"),
    DemoPromise("haihui", "风控系统·年度续费", None, Decimal("50000"), 5, "C"),
    DemoPromise("jinggong", "MES 生产管理", None, Decimal("195000"), 30, "C"),
)
# a 1×1 PNG standing in for the scanned, stamped letter
_LETTER_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
                               "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def seed_promises(session: Session, now: datetime) -> int:
    """Promises due in the coming weeks, one of each grade and two verbal ones, for 回款预测."""
    customers = _demo_customers(session)
    today = now.astimezone(SHANGHAI).date()
    added = 0
    for spec in DEMO_PROMISES:
        contract = _demo_contract(session, customers, spec.customer, spec.product_line)
        if contract is None or session.scalar(select(Promise.id).where(
                Promise.contract_id == contract.id, Promise.amount == spec.amount)) is not None:
            continue
        receivable = None
        if spec.seq is not None:
            receivable = session.scalar(select(Receivable).where(Receivable.contract_id == contract.id,
                                                                 Receivable.seq == spec.seq))
        created = _ago(now, 1, hours=2)
        row = Promise(customer_id=contract.customer_id, contract_id=contract.id,
                      receivable_id=receivable.id if receivable else None, rep_userid=contract.owner_userid,
                      amount=spec.amount, promised_on=today + timedelta(days=spec.promised_in),
                      approval="approved" if receivable is not None and spec.grade in ("A", "B") else "none",
                      created_at=created)
        if spec.grade == "A":
            blob = store_blob(session, _LETTER_PNG)
            letter = Attachment(customer_id=contract.customer_id, kind="image", blob_id=blob.id,
                                filename="付款承诺函（盖章）.png", content_type="image/png", size=blob.size,
                                tag="payment_letter", uploaded_by=contract.owner_userid, created_at=created)
            session.add(letter)
            session.flush()
            row.letter_attachment_id = letter.id
        session.add(row)
        added += 1
    session.flush()
    return added


# ---- the link and talk-track libraries --------------------------------------------------------------

DEMO_LINKS: tuple[tuple[str, str, str], ...] = (
    ("报价单", "https://example.com/docs/price-list.pdf", "pricing"),
    ("竞品对比白皮书", "https://example.com/docs/competitor-whitepaper.pdf", "competitor"),
    ("客户案例", "https://example.com/cases/", "case"),
    ("产品手册", "https://example.com/docs/product-manual.pdf", "manual"),
    ("演示视频", "https://example.com/videos/product-demo.mp4", "video"),
)


def seed_links(session: Session, now: datetime) -> int:
    urls = set(session.scalars(select(LinkItem.url)))
    added = 0
    for name, url, category in DEMO_LINKS:
        if url in urls:
            continue
        session.add(LinkItem(name=name, url=url, category=category, created_by=ADMIN,
                             created_at=_ago(now, 90)))
        added += 1
    session.flush()
    return added


DEMO_TALK_TRACKS: tuple[tuple[str, str | None, str | None, str], ...] = (
    # title, industry (None: any), stage (None: any), text
    ("首次电话：用同行案例打开话题", "软件", "lead",
     "王总您好，我是负责华东区的客户经理。我们上季度刚帮杭州一家 SaaS 公司把线索到签约的周期从 45 天缩短到 28 天，"
     "关键是把拜访记录和阶段推进都放进了企业微信，主管不用再收 Excel。想请教一下，咱们现在销售过程是怎么管的？"
     "每周例会上主管能看到哪些数据？"),
    ("需求诊断：三问痛点、影响和决策链", None, "diagnosis",
     "为了不浪费您的时间，我想先确认三件事：第一，目前最影响业绩的是线索不够、转化慢，还是回款慢？"
     "第二，这个问题如果半年内不解决，对今年的目标影响有多大？第三，除了您，还有哪些同事会参与评估？"
     "预算是今年已经立项的，还是要放到明年？"),
    ("医疗器械：合规留痕与经销商管理", "医疗器械", "demo",
     "医疗器械行业最怕两件事：一是两票制下经销商的流向数据对不上，二是飞检时拿不出完整的学术推广记录。"
     "今天的演示我重点给您看两块：经销商进销存自动对账，以及每次医院拜访自动留痕、一键导出合规报告。"
     "上海一家同行上线后，合规资料的准备时间从一周缩短到了半天。"),
    ("零售：门店会员系统演示开场", "零售", "demo",
     "连锁零售最直接的指标是复购率。演示开始前我先说结论：南京一家 60 家门店的客户，用企业微信社群加积分体系，"
     "三个月复购率提升了 12 个百分点。今天我们按店长、导购、总部运营三个角色各看 10 分钟，您随时打断提问。"),
    ("制造业：MES 方案范围确认", "制造业", "solution_confirmed",
     "我们把方案范围再对齐一下：一期覆盖冲压和总装两个车间，打通 ERP 工单和设备数据，目标是把在制品周转天数从 7 天降到 4 天；"
     "二期再上质量追溯。另一家的报价确实低一些，但设备接口需要二次开发，按对比表这部分额外成本约 15 万、工期多两个月。"
     "这个范围和节奏，生产和 IT 两边是否都能认可？"),
    ("物流：用数据讲投资回报", "物流", "solution_confirmed",
     "按贵司每天约 800 单、空驶率 18% 来算，TMS 上线后通过路径优化能把空驶率降到 12% 左右，"
     "一年燃油和人工大约节省 60 万，一期投入不到 9 个月就能收回。这些测算我们可以和贵司财务一起再核一遍，"
     "确认后我把方案和报价正式发给您。"),
    ("报价谈判：守住价格，用条件交换", None, "negotiation",
     "价格上我们已经给到了这个规模的最低折扣。如果预算确实卡在这个数，我有两个建议：一是把培训和二次开发放到二期，"
     "一期金额可以控制在预算内；二是如果本月能签约并接受 40% 首付，我可以向公司申请免费延长一年维保。"
     "您看哪种更符合贵司的审批流程？"),
    ("续费：提前 90 天做价值回顾", "金融", "lead",
     "李总，合同还有三个月到期，我先把这一年的使用情况给您做个回顾：系统累计处理了 2.3 万笔审批，"
     "平均审批时长从 2 天降到 4 小时。明年建议把移动端风控预警也用起来，续费同时增购这一模块，"
     "可以按老客户政策给到九折。下周我带上数据报告来拜访您，方便吗？"),
)


def seed_talk_tracks(session: Session, now: datetime) -> int:
    titles = set(session.scalars(select(TalkTrack.title)))
    added = 0
    for title, industry, stage, text in DEMO_TALK_TRACKS:
        if title in titles:
            continue
        session.add(TalkTrack(title=title, text=text, industry=industry, stage=stage, created_by=ADMIN,
                              created_at=_ago(now, 60)))
        added += 1
    session.flush()
    return added


# ---- targets, the redemption catalogue, credit ratings -------------------------------------------------

DEMO_TARGETS: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    # new, renewal, upsell per month
    "liuyang": (Decimal("400000"), Decimal("100000"), Decimal("100000")),
    "zhangmin": (Decimal("300000"), Decimal("80000"), Decimal("80000")),
    "lihao": (Decimal("150000"), Decimal("0"), Decimal("50000")),
}


def seed_targets(session: Session, now: datetime) -> int:
    """This month's targets of the three reps (a later month's demo start adds that month's)."""
    month = now.astimezone(SHANGHAI).strftime("%Y-%m")
    added = 0
    for userid, (new, renewal, upsell) in DEMO_TARGETS.items():
        if session.scalar(select(Target.id).where(Target.userid == userid, Target.month == month)):
            continue
        session.add(Target(userid=userid, month=month, new=new, renewal=renewal, upsell=upsell, set_by=ADMIN))
        added += 1
    session.flush()
    return added


DEMO_REDEMPTION_ITEMS: tuple[tuple[str, int], ...] = (("团队下午茶", 100), ("半天调休", 200), ("行业峰会门票", 500))


def seed_redemption_items(session: Session, now: datetime) -> int:
    names = set(session.scalars(select(RedemptionItem.name)))
    added = 0
    for name, points in DEMO_REDEMPTION_ITEMS:
        if name not in names:
            session.add(RedemptionItem(name=name, points=points, created_by=ADMIN, created_at=_ago(now, 30)))
            added += 1
    session.flush()
    return added


DEMO_RATINGS: tuple[tuple[str, str, str, str, int], ...] = (
    # customer, rating, agency, source, days ago
    ("haihui", "A-", "中诚信国际", "provider", 30),
    ("xianfeng", "BBB", "吴强", "manual", 20),
)


def seed_credit_ratings(session: Session, now: datetime) -> int:
    """An initial rating or two, above the freeze threshold (BBB-)."""
    customers = _demo_customers(session)
    today = now.astimezone(SHANGHAI).date()
    added = 0
    for key, rating, agency, source, days in DEMO_RATINGS:
        customer = customers.get(key)
        if customer is None or session.scalar(select(func.count()).select_from(CreditRating).where(
                CreditRating.customer_id == customer.id)):
            continue
        session.add(CreditRating(customer_id=customer.id, rating=rating, agency=agency, scale="S&P",
                                 rated_on=today - timedelta(days=days), source=source,
                                 entered_by=RISK if source == "manual" else None, created_at=_ago(now, days)))
        added += 1
    session.flush()
    return added


# ---- everything -----------------------------------------------------------------------------------

SEEDERS: tuple[tuple[str, Callable[[Session, datetime], int]], ...] = (
    ("customers", seed_customers),
    ("contacts", seed_contacts),
    ("opportunities", seed_opportunities),
    ("visits", seed_visits),
    ("contracts", seed_contracts),
    ("receivables", seed_receivables),
    ("promises", seed_promises),
    ("links", seed_links),
    ("talk tracks", seed_talk_tracks),
    ("targets", seed_targets),
    ("redemption items", seed_redemption_items),
    ("credit ratings", seed_credit_ratings),
)


def seed_demo(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Everything the demo starts with; returns how many rows of each kind were added."""
    now = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI)
    added = {"members": seed_members(session)}
    for kind, seed in SEEDERS:
        added[kind] = seed(session, now)
    return added
