"""The demo company: who works there (and, as features land, its customers, opportunities, contracts…).

Each kind has its own ``seed_<kind>(session)`` that adds only what is missing, so re-running the demo
keeps everything the user changed, and ``seed_demo`` calls them in dependency order. Later features
add their kinds here (customers with valid unified social credit codes, opportunities in every stage,
contracts with instalments and receivables, the link and talk-track libraries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Member


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


def seed_demo(session: Session) -> dict[str, int]:
    """Everything the demo starts with; returns how many rows of each kind were added."""
    return {"members": seed_members(session)}
