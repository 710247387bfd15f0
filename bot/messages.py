"""Every user-visible sentence of the platform, in one place (Simplified Chinese)."""

from __future__ import annotations

ROLE_NAMES = {
    "rep": "销售代表",
    "manager": "销售主管",
    "finance": "财务",
    "csm": "客户成功",
    "risk": "风控专员",
    "admin": "管理员",
}
ROLE_BY_WORD = {**{v: k for k, v in ROLE_NAMES.items()}, **{k: k for k in ROLE_NAMES},
                "销售": "rep", "主管": "manager", "风控": "risk", "客服": "csm"}

APOLOGY = "抱歉，处理您的消息时出了点问题，已记录并通知管理员。请稍后再试，或换个说法。"
UNKNOWN_COMMAND = "没有听懂「{text}」。发送「帮助」查看您可以使用的命令。"
UNKNOWN_COMMAND_CLOSE = "没有听懂「{text}」。您是想用「{suggestion}」吗？例如：{example}"
NON_TEXT_NO_DIALOG = "已收到您的{kind}。目前没有进行中的记录需要附件；如需附到拜访记录，请先发送「拜访 <客户>」。"
NO_ROLE = ("您好 {name}，您还没有开通角色，已通知管理员为您开通。开通前您可以发送「帮助」查看说明。")
ROLE_REQUIRED = "「{command}」仅限{roles}使用，您当前的角色是：{mine}。如需开通请联系管理员。"
NONE_ROLE = "未开通"
CANCELLED = "已取消「{dialog}」，之前填写的内容未保存。"
NOTHING_TO_CANCEL = "当前没有进行中的对话，无需取消。"
DIALOG_EXPIRED_HINT = "（上一段对话已超时结束）"

HELP_HEADER = "您（{name}，{roles}）可以使用的命令："
HELP_LINE = "• {summary}：{example}"
HELP_FOOTER = "多步对话中随时发送「取消」即可退出。"

CARD_NOT_YOURS = "这张卡片是发给{addressee}的，您无权操作。"
CARD_UNKNOWN = "这张卡片已失效或不存在，请在最新的消息中操作。"
CARD_ALREADY = "这张卡片已处理：{decision}（{who}，{when}）。"

ACCESS_REQUEST_TITLE = "新成员申请使用 salesbot"
ACCESS_REQUEST_DESC = "{userid} 首次给应用发消息，请为其开通角色"
ACCESS_GRANTED = "已为 {name} 开通角色：{roles}。"
ACCESS_GRANTED_TO_MEMBER = "管理员已为您开通角色：{roles}。发送「帮助」查看可用命令。"
ACCESS_IGNORED = "已忽略 {userid} 的开通申请。"
ACCESS_DONE_BY_OTHER = "已由{who}处理"

MEMBER_NOT_FOUND = "找不到成员「{ref}」。请用企业微信账号（userid）或姓名，发送「成员」查看全部成员。"
MEMBER_AMBIGUOUS = "「{ref}」对应多位成员：{names}。请改用企业微信账号（userid）。"
MEMBER_LINE = "{name}（{userid}）｜{roles}｜主管：{manager}｜区域：{region}｜入职：{hire}"
MEMBERS_HEADER = "共 {n} 位成员："
MEMBER_UNSET = "未设置"

USAGE = "格式不对。用法：{example}"
ROLE_UNKNOWN = "不认识的角色「{word}」。可选：销售代表、销售主管、财务、客户成功、风控专员、管理员。"
ROLES_SET = "已将 {name} 的角色设为：{roles}。"
CANNOT_REMOVE_LAST_ADMIN = "不能移除最后一位管理员的管理员角色。"
MANAGER_SET = "已将 {name} 的主管设为 {manager}，已请 {manager} 确认。"
MANAGER_LOOP = "不能这样设置：{manager} 已经是 {name} 的下属（直接或间接），会形成循环。"
MANAGER_SELF = "成员不能做自己的主管。"
REGION_SET = "已将 {name} 的区域设为：{region}。"
HIRE_SET = "已将 {name} 的入职日期设为：{date}。"
NAME_SET = "已将 {userid} 的姓名设为：{name}。"
DATE_INVALID = "没有看懂日期「{text}」。请用 2026-08-15 或 2026年8月15日 的格式。"
DATE_IN_FUTURE = "入职日期 {date} 在今天之后，请确认。"

TEAM_CONFIRM_TITLE = "团队成员确认"
TEAM_CONFIRM_DESC = "管理员将 {name} 设为您的下属，您将能看到其客户和商机"
TEAM_CONFIRMED = "已确认"
TEAM_REJECTED = "已退回"
TEAM_REJECTED_TO_ADMIN = "{manager} 表示 {name} 不是其下属，已撤销该设置。请核实后重新设置主管。"
TEAM_REJECT_DONE = "已撤销 {name} 的主管设置，并通知了管理员。"
TEAM_CONFIRM_DONE = "已确认 {name} 为您的下属。"

AUDIT_HEADER = "最近 {n} 条审计记录："
AUDIT_LINE = "{at}｜{actor}｜{action}｜{target}｜{detail}"
AUDIT_EMPTY = "还没有审计记录。"

NEW_MEMBER_ASK_USERID = "开始登记新成员。请发送其企业微信账号（userid），例如 zhangsan。（随时发送「取消」退出）"
NEW_MEMBER_USERID_TAKEN = "账号 {userid} 已经登记为 {name}。请发送另一个账号，或发送「取消」。"
NEW_MEMBER_USERID_BAD = "账号只能包含字母、数字和 _ - . @，长度不超过 64。请重新发送。"
NEW_MEMBER_ASK_NAME = "好的，账号 {userid}。请发送姓名。"
NEW_MEMBER_ASK_ROLES = "请发送角色（可多个，用空格分隔）：销售代表、销售主管、财务、客户成功、风控专员、管理员。"
NEW_MEMBER_ASK_MANAGER = "请发送其主管的账号或姓名；没有请回复「无」。"
NEW_MEMBER_ASK_REGION = "请发送所属区域（如 华东）；没有请回复「无」。"
NEW_MEMBER_ASK_HIRE = "请发送入职日期（如 2026-08-15）；不填请回复「无」。"
NEW_MEMBER_DONE = "已登记新成员：{line}"

WORD_NONE = ("无", "没有", "跳过", "-")


def who_may(roles: frozenset[str]) -> str:
    """「销售主管或管理员」: the roles a command is open to; admins may use everything."""
    names = [ROLE_NAMES[r] for r in ROLE_NAMES if r in roles and r != "admin"]
    return "、".join(names) + "或管理员" if names else "管理员"
