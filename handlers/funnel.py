"""漏斗: the funnel heatmap of a manager's team on demand (the weekly push is jobs/funnel_heatmap.py)."""

from __future__ import annotations

from datetime import timedelta

from bot import messages as M
from bot.context import Ctx
from bot.out import Image
from bot.router import command
from domain.funnel import previous_week
from handlers.common import sla_days
from jobs.funnel_heatmap import funnel_text, team_heatmap


@command("漏斗", roles=("manager",), example="漏斗", summary="团队漏斗热力图（上周；「漏斗 本周」看本周至今）")
def funnel(ctx: Ctx, args: str) -> None:
    now = ctx.now
    if args.strip() == "本周":
        start = now - timedelta(days=7)  # the seven days ending now, open stays aged to now
    else:
        start, _ = previous_week(now, ctx.rt.config.tz)
    result = team_heatmap(ctx.session, ctx.userid, start, sla_days(ctx.session))
    if result is None:
        ctx.reply(M.FUNNEL_NO_TEAM)
        return
    heatmap, png = result
    ctx.reply(Image(png, "funnel.png"))
    ctx.reply(funnel_text(heatmap))
