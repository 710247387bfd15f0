"""Admin basics by chat: members, roles, managers, regions, hire dates, the audit log; the
access-request and team-confirmation cards."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot import dialogs
from bot import messages as M
from bot.cards import Click, card_action, decide
from bot.context import Ctx, role_names
from bot.out import Card, button_card
from bot.router import command
from domain.dates import resolve_relative_date
from domain.org import would_loop
from storage.models import AuditEntry, Member

USERID_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
ADMIN = ("admin",)


def find_member(ctx: Ctx, ref: str) -> Member | None:
    """By userid, else by a unique name; replies with the reason when not found."""
    ref = ref.strip()
    m = ctx.session.scalar(select(Member).where(Member.userid == ref))
    if m is not None:
        return m
    by_name = list(ctx.session.scalars(select(Member).where(Member.name == ref)))
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        ctx.reply(M.MEMBER_AMBIGUOUS.format(ref=ref, names="、".join(f"{x.name}（{x.userid}）" for x in by_name)))
    else:
        ctx.reply(M.MEMBER_NOT_FOUND.format(ref=ref))
    return None


def member_line(m: Member, names: dict[str, str]) -> str:
    return M.MEMBER_LINE.format(name=m.name, userid=m.userid, roles=role_names(m.roles),
                                manager=names.get(m.manager_userid or "", m.manager_userid or M.MEMBER_UNSET),
                                region=m.region or M.MEMBER_UNSET,
                                hire=m.hire_date.isoformat() if m.hire_date else M.MEMBER_UNSET)


def parse_roles(words: list[str]) -> tuple[list[str], str | None]:
    roles: list[str] = []
    for w in words:
        role = M.ROLE_BY_WORD.get(w.strip().lower()) or M.ROLE_BY_WORD.get(w.strip())
        if role is None:
            return [], w
        if role not in roles:
            roles.append(role)
    return roles, None


def _split(args: str) -> list[str]:
    return args.replace("\u3000", " ").split()


@command("成员", roles=ADMIN, example="成员 zhangsan", summary="查看成员（不带参数列出全部）")
def members(ctx: Ctx, args: str) -> None:
    everyone = list(ctx.session.scalars(select(Member).order_by(Member.userid)))
    names = {m.userid: m.name for m in everyone}
    if args:
        m = find_member(ctx, args)
        if m is not None:
            ctx.reply(member_line(m, names))
        return
    lines = [M.MEMBERS_HEADER.format(n=len(everyone))] + [member_line(m, names) for m in everyone]
    ctx.reply("\n".join(lines))


@command("角色", roles=ADMIN, example="角色 zhangsan 销售代表", summary="设置成员角色（可多个）")
def set_roles(ctx: Ctx, args: str) -> None:
    parts = _split(args)
    if len(parts) < 2:
        ctx.reply(M.USAGE.format(example="角色 zhangsan 销售代表 销售主管"))
        return
    m = find_member(ctx, parts[0])
    if m is None:
        return
    roles, bad = parse_roles(parts[1:])
    if bad is not None:
        ctx.reply(M.ROLE_UNKNOWN.format(word=bad))
        return
    if "admin" in (m.roles or []) and "admin" not in roles and _admin_count(ctx) <= 1:
        ctx.reply(M.CANNOT_REMOVE_LAST_ADMIN)
        return
    before = list(m.roles or [])
    m.roles = roles
    ctx.audit("set_roles", m.userid, before=before, after=roles)
    ctx.reply(M.ROLES_SET.format(name=m.name, roles=role_names(roles)))


def _admin_count(ctx: Ctx) -> int:
    return sum(1 for m in ctx.session.scalars(select(Member)) if "admin" in (m.roles or []) and m.active)


@command("主管", roles=ADMIN, example="主管 zhangsan wangwu", summary="设置成员的主管")
def set_manager(ctx: Ctx, args: str) -> None:
    parts = _split(args)
    if len(parts) != 2:
        ctx.reply(M.USAGE.format(example="主管 zhangsan wangwu"))
        return
    m = find_member(ctx, parts[0])
    boss = find_member(ctx, parts[1]) if m is not None else None
    if m is None or boss is None:
        return
    if m.userid == boss.userid:
        ctx.reply(M.MANAGER_SELF)
        return
    edges = {x.userid: x.manager_userid for x in ctx.session.scalars(select(Member))}
    if would_loop(edges, m.userid, boss.userid):
        ctx.reply(M.MANAGER_LOOP.format(manager=boss.name, name=m.name))
        return
    before = m.manager_userid
    m.manager_userid = boss.userid
    ctx.audit("set_manager", m.userid, before=before, after=boss.userid)
    card = button_card(M.TEAM_CONFIRM_TITLE, M.TEAM_CONFIRM_DESC.format(name=m.name),
                       [("确认", "confirm", 1), ("不是我的下属", "reject", 2)],
                       rows=[("成员", f"{m.name}（{m.userid}）"), ("设置人", ctx.member.name)])
    ctx.notify(boss.userid, Card("team_confirm", card, {"member": m.userid, "manager": boss.userid,
                                                        "previous": before, "admin": ctx.userid}))
    ctx.reply(M.MANAGER_SET.format(name=m.name, manager=boss.name))


@card_action("team_confirm")
def team_confirm_clicked(ctx: Ctx, click: Click) -> None:
    subject: dict[str, Any] = click.card.subject
    m = ctx.session.scalar(select(Member).where(Member.userid == subject["member"]))
    if m is None:
        decide(ctx, click.card, "stale", M.TEAM_REJECTED)
        return
    if click.key == "reject":
        if m.manager_userid == subject["manager"]:
            m.manager_userid = subject.get("previous")
        ctx.audit("reject_team_member", m.userid, manager=subject["manager"], restored=subject.get("previous"))
        ctx.notify(subject["admin"], M.TEAM_REJECTED_TO_ADMIN.format(manager=ctx.member.name, name=m.name))
        decide(ctx, click.card, "rejected", M.TEAM_REJECTED)
        ctx.reply(M.TEAM_REJECT_DONE.format(name=m.name))
    else:
        ctx.audit("confirm_team_member", m.userid, manager=ctx.userid)
        decide(ctx, click.card, "confirmed", M.TEAM_CONFIRMED)


@card_action("access_request")
def access_request_clicked(ctx: Ctx, click: Click) -> None:
    userid = click.card.subject["userid"]
    m = ctx.session.scalar(select(Member).where(Member.userid == userid))
    if m is None:
        decide(ctx, click.card, "stale", "已失效")
        return
    if click.key.startswith("grant:"):
        role = click.key.split(":", 1)[1]
        if role not in M.ROLE_NAMES:
            return
        roles = list(dict.fromkeys([*(m.roles or []), role]))
        ctx.audit("set_roles", m.userid, before=list(m.roles or []), after=roles, via="access_request")
        m.roles = roles
        ctx.notify(m.userid, M.ACCESS_GRANTED_TO_MEMBER.format(roles=role_names(roles)))
        decide(ctx, click.card, f"grant:{role}", f"已设为{M.ROLE_NAMES[role]}")
    else:
        ctx.audit("ignore_access_request", m.userid)
        decide(ctx, click.card, "ignored", "已忽略")


@command("区域", roles=ADMIN, example="区域 zhangsan 华东", summary="设置成员区域")
def set_region(ctx: Ctx, args: str) -> None:
    parts = _split(args)
    if len(parts) != 2:
        ctx.reply(M.USAGE.format(example="区域 zhangsan 华东"))
        return
    m = find_member(ctx, parts[0])
    if m is None:
        return
    ctx.audit("set_region", m.userid, before=m.region, after=parts[1])
    m.region = parts[1]
    ctx.reply(M.REGION_SET.format(name=m.name, region=parts[1]))


@command("入职", roles=ADMIN, example="入职 zhangsan 2026-08-15", summary="设置入职日期")
def set_hire_date(ctx: Ctx, args: str) -> None:
    parts = _split(args)
    if len(parts) != 2:
        ctx.reply(M.USAGE.format(example="入职 zhangsan 2026-08-15"))
        return
    m = find_member(ctx, parts[0])
    if m is None:
        return
    day = resolve_relative_date(parts[1], ctx.now.date(), nearest=True)
    if day is None:
        ctx.reply(M.DATE_INVALID.format(text=parts[1]))
        return
    ctx.audit("set_hire_date", m.userid, before=m.hire_date.isoformat() if m.hire_date else None,
              after=day.isoformat())
    m.hire_date = day
    reply = M.HIRE_SET.format(name=m.name, date=day.isoformat())
    if day > ctx.now.date():
        reply += "\n" + M.DATE_IN_FUTURE.format(date=day.isoformat())
    ctx.reply(reply)


@command("姓名", roles=ADMIN, example="姓名 zhangsan 张三", summary="设置成员姓名")
def set_name(ctx: Ctx, args: str) -> None:
    parts = _split(args)
    if len(parts) != 2:
        ctx.reply(M.USAGE.format(example="姓名 zhangsan 张三"))
        return
    m = find_member(ctx, parts[0])
    if m is None:
        return
    ctx.audit("set_name", m.userid, before=m.name, after=parts[1])
    m.name = parts[1]
    ctx.reply(M.NAME_SET.format(userid=m.userid, name=parts[1]))


@command("审计", roles=ADMIN, example="审计 20", summary="查看最近的审计记录")
def audit_log(ctx: Ctx, args: str) -> None:
    from handlers.common import small_int

    n = small_int(args) or 10
    n = max(1, min(n, 50))
    rows = list(ctx.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(n)))
    if not rows:
        ctx.reply(M.AUDIT_EMPTY)
        return
    tz = ctx.rt.config.tz
    lines = [M.AUDIT_HEADER.format(n=len(rows))]
    for r in rows:
        detail = "，".join(f"{k}={v}" for k, v in (r.detail or {}).items())
        lines.append(M.AUDIT_LINE.format(at=r.at.astimezone(tz).strftime("%m-%d %H:%M"), actor=r.actor,
                                         action=r.action, target=r.target, detail=detail))
    ctx.reply("\n".join(lines))


# ---- 新成员: a guided dialog -------------------------------------------------------------------

@command("新成员", roles=ADMIN, example="新成员", summary="分步登记一位新成员")
def new_member(ctx: Ctx, args: str) -> None:
    dialogs.start(ctx, "new_member")
    ctx.reply(M.NEW_MEMBER_ASK_USERID)


# the admin's own commands for a member's fields: inside this dialog 区域 华南 answers the region question
_NM_LABELS = ("姓名", "角色", "主管", "区域", "入职")
_NM_LABEL_RE = re.compile(rf"^(?:{'|'.join(_NM_LABELS)})[\s\u3000:：]+")


def _answer(ctx: Ctx) -> str:
    """The admin's answer without a field label in front of it (区域 华南 → 华南)."""
    return _NM_LABEL_RE.sub("", ctx.msg.text.strip()) or ctx.msg.text.strip()


def _nm_userid(ctx: Ctx, data: dict[str, Any]) -> str:
    userid = ctx.msg.text
    if not USERID_RE.match(userid):
        ctx.reply(M.NEW_MEMBER_USERID_BAD)
        return "userid"
    existing = ctx.session.scalar(select(Member).where(Member.userid == userid))
    if existing is not None and existing.name != existing.userid:
        ctx.reply(M.NEW_MEMBER_USERID_TAKEN.format(userid=userid, name=existing.name))
        return "userid"
    data["userid"] = userid
    ctx.reply(M.NEW_MEMBER_ASK_NAME.format(userid=userid))
    return "name"


def _nm_name(ctx: Ctx, data: dict[str, Any]) -> str:
    data["name"] = _answer(ctx)[:64]
    ctx.reply(M.NEW_MEMBER_ASK_ROLES)
    return "roles"


def _nm_roles(ctx: Ctx, data: dict[str, Any]) -> str:
    roles, bad = parse_roles(_split(_answer(ctx)))
    if bad is not None or not roles:
        ctx.reply(M.ROLE_UNKNOWN.format(word=bad or ctx.msg.text))
        return "roles"
    data["roles"] = roles
    ctx.reply(M.NEW_MEMBER_ASK_MANAGER)
    return "manager"


def _nm_manager(ctx: Ctx, data: dict[str, Any]) -> str:
    if _answer(ctx) not in M.WORD_NONE:
        boss = find_member(ctx, _answer(ctx))
        if boss is None:
            return "manager"
        data["manager"] = boss.userid
    ctx.reply(M.NEW_MEMBER_ASK_REGION)
    return "region"


def _nm_region(ctx: Ctx, data: dict[str, Any]) -> str:
    if _answer(ctx) not in M.WORD_NONE:
        data["region"] = _answer(ctx)[:64]
    ctx.reply(M.NEW_MEMBER_ASK_HIRE)
    return "hire"


def _nm_hire(ctx: Ctx, data: dict[str, Any]) -> str:
    hire = None
    if _answer(ctx) not in M.WORD_NONE:
        hire = resolve_relative_date(_answer(ctx), ctx.now.date(), nearest=True)
        if hire is None:
            ctx.reply(M.DATE_INVALID.format(text=ctx.msg.text))
            return "hire"
    m = ctx.session.scalar(select(Member).where(Member.userid == data["userid"]))
    if m is None:
        m = Member(userid=data["userid"])
        ctx.session.add(m)
    m.name = data["name"]
    m.roles = data["roles"]
    m.manager_userid = data.get("manager")
    m.region = data.get("region")
    m.hire_date = hire
    ctx.session.flush()
    ctx.audit("create_member", m.userid, name=m.name, roles=m.roles, manager=m.manager_userid,
              region=m.region, hire_date=hire.isoformat() if hire else None)
    names = {x.userid: x.name for x in ctx.session.scalars(select(Member))}
    ctx.reply(M.NEW_MEMBER_DONE.format(line=member_line(m, names)))
    return dialogs.END


dialogs.dialog(dialogs.Dialog(
    name="new_member", title="登记新成员", first="userid",
    states={"userid": _nm_userid, "name": _nm_name, "roles": _nm_roles, "manager": _nm_manager,
            "region": _nm_region, "hire": _nm_hire},
    answers=_NM_LABELS,
))
