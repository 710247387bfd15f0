"""资料 (link library), 链接 (tracked links), 规则 (automatic upgrade rules), the upgrade card, and the
customer's behaviour trail on the profile."""

from __future__ import annotations

import secrets
from urllib.parse import urlparse

from sqlalchemy import select

from bot import messages as M
from bot.cards import Click, card_action, decide
from bot.context import Ctx
from bot.router import command
from domain import rules as R
from domain.stages import stage_name
from handlers.common import resolve_customer, small_int
from handlers.customers import profile_section
from jobs.customer_events import active_rules, ensure_default_rule
from storage.behaviour import CustomerEvent, LinkItem, TrackedLink, UpgradeRule
from storage.pipeline import record_move
from storage.sales import Customer, Opportunity

ADMIN = ("admin",)
SALES = ("rep", "manager")
CATEGORY_BY_WORD = {**{w: k for k, w in R.LINK_CATEGORIES.items()}, **{k: k for k in R.LINK_CATEGORIES},
                    "竞品": R.COMPETITOR, "价格": R.PRICING, "报价单": R.PRICING}


def _items(ctx: Ctx) -> list[LinkItem]:
    return list(ctx.session.scalars(select(LinkItem).where(LinkItem.active.is_(True)).order_by(LinkItem.id)))


@command("资料 新增", "资料 列表", "资料 删除", "资料", roles=None,
         example="资料 新增 竞品对比白皮书 https://example.com/compare.pdf 竞品对比", summary="管理资料库（新增/删除仅管理员）",
         for_others=("查看资料库（发给客户用「链接」）", "资料 列表"))
def library(ctx: Ctx, args: str) -> None:
    text = ctx.msg.text
    if text.startswith("资料 新增") or text.startswith("资料 删除"):
        if not ctx.has_role("admin"):
            ctx.reply(M.ROLE_REQUIRED.format(command=text[:5], roles="管理员", mine=ctx.roles_text))
            return
        (_add_item if text.startswith("资料 新增") else _remove_item)(ctx, args)
        return
    if not (ctx.member.roles or []):
        ctx.reply(M.NO_ROLE.format(name=ctx.member.name))
        return
    items = _items(ctx)
    if not items:
        ctx.reply(M.LIBRARY_EMPTY)
        return
    lines = [M.LIBRARY_HEADER.format(n=len(items))]
    lines += [M.LIBRARY_LINE.format(name=i.name, category=R.LINK_CATEGORIES.get(i.category, i.category), url=i.url)
              for i in items]
    ctx.reply("\n".join(lines))


def _add_item(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 3:
        ctx.reply(M.LIBRARY_USAGE)
        return
    category_word, url, name = words[-1], words[-2], " ".join(words[:-2])
    category = CATEGORY_BY_WORD.get(category_word.lower()) or CATEGORY_BY_WORD.get(category_word)
    if category is None:
        ctx.reply(M.LIBRARY_BAD_CATEGORY.format(text=category_word))
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        ctx.reply(M.LIBRARY_BAD_URL.format(url=url))
        return
    if any(i.name == name for i in _items(ctx)):
        ctx.reply(M.LIBRARY_EXISTS.format(name=name))
        return
    item = LinkItem(name=name, url=url, category=category, created_by=ctx.userid)
    ctx.session.add(item)
    ctx.session.flush()
    ctx.audit("add_link_item", f"link_item:{item.id}", name=name, url=url, category=category)
    ctx.reply(M.LIBRARY_ADDED.format(name=name, category=R.LINK_CATEGORIES[category], url=url))


def _find_item(ctx: Ctx, query: str) -> LinkItem | None:
    items = _items(ctx)
    exact = [i for i in items if i.name == query]
    found = exact or [i for i in items if query and query in i.name]
    if len(found) == 1:
        return found[0]
    if found:
        ctx.reply(M.LINK_ITEM_AMBIGUOUS.format(query=query, names="、".join(f"《{i.name}》" for i in found)))
    else:
        ctx.reply(M.LINK_ITEM_NOT_FOUND.format(query=query))
    return None


def _remove_item(ctx: Ctx, args: str) -> None:
    item = _find_item(ctx, args.strip())
    if item is None:
        return
    item.active = False
    ctx.audit("remove_link_item", f"link_item:{item.id}", name=item.name)
    ctx.reply(M.LIBRARY_REMOVED.format(name=item.name))


@command("链接", roles=SALES, example="链接 杭州云栖 竞品对比白皮书", summary="生成发给客户的专属跟踪链接")
def tracked_link(ctx: Ctx, args: str) -> None:
    words = args.split()
    if len(words) < 2:
        ctx.reply(M.LINK_USAGE)
        return
    item = _find_item(ctx, words[-1])
    if item is None:
        return
    customer = resolve_customer(ctx, " ".join(words[:-1]), redo=f"链接 {{customer}} {item.name}")
    if customer is None:
        return
    token = secrets.token_urlsafe(16)
    ctx.session.add(TrackedLink(token=token, customer_id=customer.id, item_id=item.id, created_by=ctx.userid))
    base = str(ctx.rt.config.get("server.public_base_url")).rstrip("/")
    ctx.reply(M.LINK_CREATED.format(customer=customer.name, item=item.name, url=f"{base}/t/{token}"))


# ---- upgrade rules ----------------------------------------------------------------------------

@command("规则 新增", "规则 列表", "规则 删除", "规则", roles=ADMIN,
         example="规则 新增 竞品对比 点击>=2 且 登录>=1 则 报价谈判", summary="管理自动跃迁规则")
def rules_command(ctx: Ctx, args: str) -> None:
    text = ctx.msg.text
    if text.startswith("规则 新增"):
        try:
            rule = R.parse_rule(args)
        except R.RuleError as exc:
            ctx.reply(exc.message)
            return
        canonical = R.rule_text(rule)
        ensure_default_rule(ctx.session)
        row = UpgradeRule(text=canonical, target=rule.target, created_by=ctx.userid)
        ctx.session.add(row)
        ctx.session.flush()
        ctx.audit("add_rule", f"rule:{row.id}", text=canonical)
        ctx.reply(M.RULE_ADDED.format(id=row.id, text=canonical))
    elif text.startswith("规则 删除"):
        ref = args.strip().lstrip("#")
        number = small_int(ref)
        row = ctx.session.get(UpgradeRule, number) if number is not None else None
        if row is None or not row.active:
            ctx.reply(M.RULE_NOT_FOUND.format(id=ref or "?"))
            return
        row.active = False
        ctx.audit("remove_rule", f"rule:{row.id}", text=row.text)
        ctx.reply(M.RULE_REMOVED.format(id=row.id, text=row.text))
    elif text in ("规则 列表", "规则"):
        rules = active_rules(ctx.session)
        if not rules:
            ctx.reply(M.RULE_EMPTY)
            return
        ctx.reply("\n".join([M.RULE_HEADER] + [M.RULE_LINE.format(id=row.id, text=row.text) for row, _ in rules]))
    else:
        ctx.reply(M.RULE_USAGE)


@card_action("stage_upgrade")
def upgrade_card_clicked(ctx: Ctx, click: Click) -> None:
    subject = click.card.subject
    opp = ctx.session.get(Opportunity, subject["opportunity_id"])
    if click.key != "revert" or opp is None:
        decide(ctx, click.card, "ack", M.UPGRADE_ACKED)
        return
    if opp.stage != subject["to_stage"]:
        ctx.reply(M.UPGRADE_REVERT_STALE.format(id=opp.id, stage=stage_name(subject["to_stage"]),
                                                current=stage_name(opp.stage)))
        decide(ctx, click.card, "stale", M.UPGRADE_ACKED)
        return
    record_move(ctx.session, opp, subject["from_stage"], ctx.now, actor=ctx.userid, reason="主管退回自动跃迁")
    customer = ctx.session.get(Customer, opp.customer_id)
    ctx.audit("revert_upgrade", f"opportunity:{opp.id}", to_stage=subject["from_stage"])
    ctx.notify(opp.owner_userid, M.UPGRADE_REVERTED_OWNER.format(
        manager=ctx.member.name, id=opp.id, customer=customer.name if customer else "",
        stage=stage_name(subject["from_stage"])))
    decide(ctx, click.card, "reverted", M.UPGRADE_REVERTED)


# ---- the behaviour trail on the customer profile ---------------------------------------------------

EVENT_WORDS = {"login": "登录产品", "trial_requested": "申请试用", "link_click": "打开了"}


@profile_section("客户行为")
def behaviour_trail(ctx: Ctx, customer: Customer) -> list[str]:
    rows = list(ctx.session.scalars(select(CustomerEvent).where(CustomerEvent.customer_id == customer.id,
                                                                CustomerEvent.type != "link_preview")
                                    .order_by(CustomerEvent.occurred_at.desc()).limit(8)))
    tz = ctx.rt.config.tz
    lines = []
    for ev in rows:
        what = EVENT_WORDS.get(ev.type, ev.type)
        if ev.type == "link_click" and ev.item_id:
            item = ctx.session.get(LinkItem, ev.item_id)
            what += f"《{item.name}》" if item else "链接"
        lines.append(M.PROFILE_TRAIL_LINE.format(at=ev.occurred_at.astimezone(tz).strftime("%m-%d %H:%M"),
                                                 what=what))
    return lines
