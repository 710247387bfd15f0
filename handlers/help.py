"""帮助: exactly the commands the asker's role may use, one example each."""

from __future__ import annotations

from bot import messages as M
from bot.context import Ctx
from bot.router import allowed, command


@command("帮助", "help", "?", "？", roles=None, example="帮助", summary="查看可用命令")
def show_help(ctx: Ctx, args: str) -> None:
    lines = [M.HELP_HEADER.format(name=ctx.member.name, roles=ctx.roles_text)]
    admin = ctx.has_role("admin")
    for cmd in allowed(ctx.member.roles):
        summary, example = cmd.for_others if cmd.for_others and not admin else (cmd.summary, cmd.example)
        lines.append(M.HELP_LINE.format(summary=summary, example=example))
    lines.append(M.HELP_FOOTER)
    if not ctx.member.roles:
        lines.append(M.NO_ROLE.format(name=ctx.member.name))
    ctx.reply("\n".join(lines))
