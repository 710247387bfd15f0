"""What several sales handlers share: who sees what, finding a customer by a loose name, stage settings."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from bot import dialogs, router
from bot import messages as M
from bot.context import Ctx
from domain.access import visible_owners
from domain.gates import DEFAULT_GATES, GateConfig
from domain.names import normalise_company_name
from domain.stages import DEFAULT_PIPELINE
from storage.models import Member
from storage.sales import Customer, Opportunity
from storage.settings import get_setting

MAX_CHOICES = 5
_SMALL_INT = re.compile(r"^[0-9]{1,9}$")


def small_int(text: str) -> int | None:
    """An ASCII whole number a member typed (an id, a count), or None: no '²', nothing out of range."""
    text = text.strip()
    return int(text) if _SMALL_INT.match(text) else None


def manager_map(session: Session, root: str | None = None) -> dict[str, str | None]:
    """Who reports to whom: everyone, or only the members under ``root`` (transitively, one recursive query)."""
    if root is None:
        return dict(session.execute(select(Member.userid, Member.manager_userid)).all())
    team = (select(Member.userid, Member.manager_userid).where(Member.manager_userid == root)
            .cte("team", recursive=True))
    team = team.union(select(Member.userid, Member.manager_userid)
                      .join(team, Member.manager_userid == team.c.userid))
    return dict(session.execute(select(team.c.userid, team.c.manager_userid)).all())


def scope(ctx: Ctx) -> set[str] | None:
    """Owners whose customers the asker may see (None: all). Only a manager's answer needs the team."""
    roles = ctx.member.roles or []
    needs_team = "manager" in roles and "admin" not in roles
    return visible_owners(ctx.userid, roles, manager_map(ctx.session, ctx.userid) if needs_team else {})


def member_name(session: Session, userid: str | None) -> str:
    if not userid:
        return M.MEMBER_UNSET
    m = session.scalar(select(Member).where(Member.userid == userid))
    return m.name if m else userid


def _in_scope(owners: set[str] | None, customer: Customer) -> bool:
    return owners is None or customer.owner_userid in owners


CUSTOMER_REF = "客户#"


def find_customers(session: Session, query: str) -> list[Customer]:
    """Candidates for what a member typed: #id (or 客户#id, what a numbered choice re-runs with: in 推进 a bare
    #id is the opportunity's), credit code, exact name, prefix, then keyword."""
    q = query.strip()
    if not q:
        return []
    if q.startswith(("#", CUSTOMER_REF)):
        ref = small_int(q.removeprefix(CUSTOMER_REF).removeprefix("#"))
        c = session.get(Customer, ref) if ref is not None else None
        return [c] if c else []
    key = normalise_company_name(q)
    exact = list(session.scalars(_EXACT, {"key": key, "code": q.upper()}))
    if exact:
        return exact
    like = q.replace("%", "").replace("_", "")
    prefix = list(session.scalars(_PREFIX, {"like": like, "key": key}))
    if prefix:
        return prefix
    return list(session.scalars(_CONTAINS, {"like": like}))


# built once (every message naming a customer runs them): name_key is always normalise(name), so the exact
# name needs no arm (customers.name has no index)
_EXACT = select(Customer).where(or_(Customer.name_key == bindparam("key"), Customer.credit_code == bindparam("code")))
_PREFIX = (select(Customer).where(or_(Customer.name.startswith(bindparam("like")),
                                      Customer.name_key.startswith(bindparam("key"))))
           .order_by(Customer.name).limit(50))
_CONTAINS = select(Customer).where(Customer.name.contains(bindparam("like"))).order_by(Customer.name).limit(50)


def _name_to_create(query: str) -> str:
    """What 新客户 should be sent with: a Chinese company name has no spaces, so what follows one is not
    part of it (杭州云栖控股 今天见了王总 → 杭州云栖控股); a name in Latin letters may have several words."""
    words = query.split()
    return words[0] if len(words) > 1 and re.search(r"[\u4e00-\u9fff]", words[0]) else query.strip()


def resolve_customer(ctx: Ctx, query: str, redo: str) -> Customer | None:
    """The one customer ``query`` names within the asker's scope; otherwise replies and returns None.

    Several matches → a numbered choice; the member answers with the number and the command
    ``redo`` (with ``{customer}`` standing for the choice) runs again without retyping.
    """
    if not query.strip():
        ctx.reply(M.CUSTOMER_MISSING.format(example=" ".join(redo.format(customer="杭州云栖").split())))
        return None
    found = find_customers(ctx.session, query)
    owners = scope(ctx)
    visible = [c for c in found if _in_scope(owners, c)]
    if not visible:
        ctx.reply(M.CUSTOMER_NOT_YOURS.format(query=query) if found else
                  M.CUSTOMER_NOT_FOUND.format(query=query, name=_name_to_create(query)) if ctx.has_role("rep", "manager")
                  else M.CUSTOMER_NOT_FOUND_PLAIN.format(query=query))  # 新客户 is the sales team's
        return None
    if len(visible) == 1:
        ctx.about_customer(visible[0].id)
        return visible[0]
    shown = visible[:MAX_CHOICES]
    lines = [M.CUSTOMER_CHOOSE.format(query=query, n=len(visible))]
    lines += [f"{i}. {c.name}（{member_name(ctx.session, c.owner_userid)}）" for i, c in enumerate(shown, 1)]
    if len(visible) > MAX_CHOICES:
        lines.append(M.CUSTOMER_CHOOSE_MORE.format(n=len(visible) - MAX_CHOICES))
    lines.append(M.CUSTOMER_CHOOSE_HINT)
    dialogs.start(ctx, "pick_customer", {"ids": [c.id for c in shown], "redo": redo})
    ctx.reply("\n".join(lines))
    return None


def _pick(ctx: Ctx, data: dict[str, Any]) -> str:
    text = ctx.msg.text
    ids: list[int] = data["ids"]
    choice = small_int(text)
    if choice is None or not 1 <= choice <= len(ids):
        ctx.reply(M.CUSTOMER_CHOOSE_AGAIN.format(n=len(ids)))
        return "pick"
    dialogs.DialogStore(ctx.rt.redis).clear(ctx.userid)
    found = router.match(data["redo"].format(customer=f"{CUSTOMER_REF}{ids[choice - 1]}"))
    if found is not None:
        cmd, args = found
        cmd.handler(ctx, args)
    return dialogs.KEEP  # the re-run command may have started a dialog of its own


dialogs.dialog(dialogs.Dialog(name="pick_customer", title="选择客户", first="pick", states={"pick": _pick},
                              on_leave=lambda ctx, data: ""))


def open_opportunities(session: Session, customer_id: int) -> list[Opportunity]:
    from domain.stages import is_closed

    opps = session.scalars(select(Opportunity).where(Opportunity.customer_id == customer_id)
                           .order_by(Opportunity.id))
    return [o for o in opps if not is_closed(o.stage)]


def gate_config(session: Session) -> GateConfig:
    gates = get_setting(session, "stage_gates", None)
    modes = get_setting(session, "gate_modes", {}) or {}
    return GateConfig(gates={k: tuple(v) for k, v in gates.items()} if gates is not None else dict(DEFAULT_GATES),
                      modes={k: tuple(v) for k, v in modes.items()})


def sla_days(session: Session) -> dict[str, int]:
    custom = get_setting(session, "stage_sla", {}) or {}
    defaults = {s.key: s.sla_days for s in DEFAULT_PIPELINE.sla_stages() if s.sla_days is not None}
    return {**defaults, **{k: int(v) for k, v in custom.items()}}
