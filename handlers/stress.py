"""压力测试 (managers, finance): expected collections over the next 90 days in three scenarios."""

from __future__ import annotations

from sqlalchemy import select

from bot import messages as M
from bot.context import Ctx
from bot.out import Image
from bot.router import command
from domain.credit import is_below
from domain.stress_chart import render_stress_png
from domain.stress_test import ExpectedPayment, run_stress_test
from handlers.common import scope
from handlers.payments import domain_promise
from jobs.credit_check import latest_rating
from storage.models import Member
from storage.payments import Promise
from storage.sales import Customer
from storage.settings import tunable


@command("压力测试", roles=("manager", "finance"), example="压力测试", summary="未来 90 天回款的三种情景与月底集中度")
def stress_test(ctx: Ctx, args: str) -> None:
    owners = None if ctx.has_role("finance") else scope(ctx)
    q = select(Promise, Customer).join(Customer, Customer.id == Promise.customer_id).where(Promise.kept.is_(None))
    if owners is not None:
        q = q.where(Customer.owner_userid.in_(owners))
    names = {m.userid: m.name for m in ctx.session.scalars(select(Member))}
    threshold = str(tunable(ctx.session, ctx.rt.config, "payments.credit_threshold"))
    ratings: dict[int, bool] = {}
    payments = []
    for p, customer in ctx.session.execute(q).all():
        if customer.id not in ratings:
            rating = latest_rating(ctx.session, customer.id)
            ratings[customer.id] = bool(rating and is_below(rating, threshold))
        payments.append(ExpectedPayment.from_promise(domain_promise(p), rep_name=names.get(p.rep_userid, p.rep_userid),
                                                     customer_below_threshold=ratings[customer.id]))
    if not payments:
        ctx.reply(M.STRESS_EMPTY)
        return
    report = run_stress_test(payments, ctx.now.date())
    ctx.reply(Image(render_stress_png(report), "stress.png"))
    ctx.reply("\n".join([M.STRESS_HEADER, *report.summary_lines()]))
