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

# ---- customers and opportunities -------------------------------------------------------------
CUSTOMER_MISSING = "请说明是哪位客户，例如：客户 杭州云栖"
CUSTOMER_NOT_FOUND = "没有找到客户「{query}」。可以发送「新客户 {query}」建档。"
CUSTOMER_NOT_YOURS = "「{query}」不是您负责（或您团队负责）的客户，您无权查看或修改。如需协作请联系其负责人或主管。"
CUSTOMER_CHOOSE = "「{query}」对应 {n} 个客户，请回复序号："
CUSTOMER_CHOOSE_MORE = "……还有 {n} 个，请输入更完整的名称缩小范围"
CUSTOMER_CHOOSE_HINT = "（回复序号即可，发送「取消」放弃）"
CUSTOMER_CHOOSE_AGAIN = "请回复 1 到 {n} 之间的序号，或发送「取消」。"
NEW_CUSTOMER_USAGE = "用法：新客户 <名称> [信用代码 <代码>] [行业 <行业>] [区域 <区域>]，例如：新客户 杭州云栖科技有限公司 信用代码 91330100716105852F 行业 软件"
CREDIT_CODE_INVALID = "信用代码不正确：{reason}。客户未建档，请核对后重发。"
CREDIT_CODE_TAKEN = "信用代码 {code} 已属于客户「{name}」（负责人：{owner}），同一代码只能建一个客户。如需查看请发送「客户 {name}」。"
CUSTOMER_NAME_TAKEN = "已有同名客户「{name}」（负责人：{owner}）。如确为不同公司，请加上信用代码区分。"
CUSTOMER_CREATED = "已建档：{name}{extra}，负责人 {owner}。下一步可以发送「新商机 {short} 金额」。"
OPP_USAGE = "用法：新商机 <客户> <金额> [阶段] [新签/续费/增购]，例如：新商机 杭州云栖 15万 需求诊断"
OPP_CREATED = "已为「{customer}」新建商机 #{id}：{amount}，阶段 {stage}，类型 {kind}。"
OPP_STAGE_NEEDS_GATE = "新商机不能直接建在「{stage}」：该阶段需要证据。已建在「线索」，请用「推进 {customer} {stage}」补齐证据。"
AMOUNT_INVALID = "{reason}"
STAGE_UNKNOWN = "不认识的阶段「{text}」。可选：{stages}"
CONTACT_USAGE = "用法：联系人 <客户> <姓名> [职务] [电话]，例如：联系人 杭州云栖 王总 CTO 13800000000"
CONTACT_ADDED = "已为「{customer}」添加联系人：{name}{extra}。"
PROFILE_HEADER = "【{name}】{code}"
PROFILE_LINE = "{label}：{value}"
PROFILE_NONE = "暂无"

# ---- stages, gates, moves ------------------------------------------------------------------------
STAGES_HEADER = "销售阶段（时限 / 进入所需证据）："
STAGE_LINE = "{i}. {name}｜时限 {sla}｜必填：{items}"
GATE_SET = "已设置「{stage}」的必填项：{items}。"
GATE_CLEARED = "已清除「{stage}」的必填项，进入该阶段不再需要证据。"
GATE_USAGE = "用法：必填 <阶段> <项目…>，例如：必填 方案确认 竞品对比表 预算；项目后可加 :文字/语音/图片/文件 限定提交方式；「必填 方案确认 无」清除。"
SLA_USAGE = "用法：时限 <阶段> <天数>，例如：时限 方案演示 10"
SLA_SET = "已将「{stage}」的时限设为 {days} 天。"
TEMPLATE_OK = "模板检查通过：全部 {n} 个必填项都可以在任何客户端用文字完成。"
TEMPLATE_PROBLEMS = "模板检查发现 {n} 个问题（在部分手机上会导致提交被拒）："
TEMPLATE_PROBLEM_LINE = "• {where}的「{item}」{reason}。建议：必填 {stage} {item}:文字/{modes}"
MOVE_USAGE = "用法：推进 <客户> <阶段>，例如：推进 杭州云栖 方案确认"
NO_OPEN_OPP = "「{customer}」没有进行中的商机。可以发送「新商机 {customer} 金额」新建。"
SEVERAL_OPPS = "「{customer}」有 {n} 个进行中的商机，请注明编号，例如：推进 {customer} #{example} {stage}"
OPP_FROZEN = "商机 #{id} 已冻结，不能推进：{reason}。只有风控专员可以解冻。"
OPP_CLOSED = "商机 #{id} 已{stage}，不能再推进。"
MOVE_SAME = "商机 #{id} 已经在「{stage}」了。"
MOVE_BACKWARD = "不能从「{current}」退回到「{target}」。如需回退请联系主管或管理员处理。"
MOVE_MISSING = "推进到「{stage}」{missing}\n已收到的内容会保留，补齐后自动完成推进，无需重新输入。"
MOVE_DONE = "✅ 商机 #{id}（{customer}）已推进：{from_stage} → {to_stage}。"
EVIDENCE_GOT = "已收到{item}。"
EVIDENCE_NOT_UNDERSTOOD = "这条消息没能对应到缺少的项目。{missing}"
UPLOAD_LINK = "文件请通过此链接上传（在企业微信内打开）：{url}"

# ---- visits ----------------------------------------------------------------------------------
VISIT_USAGE = "用法：拜访 <客户> 痛点:… 预算:已明确/待确认/暂不披露 下一步:…，也可以只发「拜访 <客户>」按提示填写。"
VISIT_SAVED_QUALITY = "✅ 已记录拜访「{customer}」，高质量拜访（痛点、预算、下一步齐全）。{attachments}"
VISIT_SAVED_PARTIAL = "已保存拜访「{customer}」（未完成：缺少 {missing}），不计为高质量拜访。"
VISIT_ASK = ("已记录拜访「{customer}」。{missing}\n图片、语音、视频直接发来即附到本次拜访；文件发送「上传」获取链接。"
             "\n（随时发送「完成」结束，发送「取消」放弃）")
VISIT_ATTACHED = "已把{kind}附到这次拜访。"
VISIT_VOICE_PAIN = "已收到语音，作为痛点记录。"
VISIT_CANCELLED = "已放弃这次拜访记录。"
ATTACHMENT_KINDS = {"image": "图片", "voice": "语音", "video": "视频", "link": "链接", "file": "文件"}
REPORT_SAVED = "已保存「{customer}」的需求诊断报告。"

# ---- template safety alert -------------------------------------------------------------------
REJECTION_ALERT = ("⚠️ 提交拒绝率过高：{team}团队今天 {total} 次提交中 {rejected} 次因缺少必填项被拒（{share}）。"
                   "最常缺少：{top}。请发送「模板 检查」确认必填项在所有手机上都能填写。")

# ---- customer behaviour ----------------------------------------------------------------------
UPGRADE_OWNER = "📈 客户「{customer}」的行为满足自动跃迁规则，商机 #{id} 已从「{from_stage}」推进到「{to_stage}」。规则：{rule}"
UPGRADE_CARD_TITLE = "商机自动跃迁"
UPGRADE_CARD_DESC = "{owner} 的客户「{customer}」因客户行为自动推进"
UPGRADE_ACKED = "已知悉"
UPGRADE_REVERTED = "已退回"
UPGRADE_REVERTED_OWNER = "主管 {manager} 将商机 #{id}（{customer}）退回到「{stage}」，请与主管沟通。"
UPGRADE_REVERT_STALE = "商机 #{id} 已不在「{stage}」（当前：{current}），无法退回。"
LINK_USAGE = "用法：链接 <客户> <资料名称>，例如：链接 杭州云栖 竞品对比白皮书"
LINK_ITEM_NOT_FOUND = "资料库里没有「{query}」。发送「资料 列表」查看可用资料。"
LINK_ITEM_AMBIGUOUS = "「{query}」对应多份资料：{names}。请写完整名称。"
LINK_CREATED = "发给「{customer}」的《{item}》专属链接：\n{url}\n客户打开后会记录在其档案中。"
LIBRARY_USAGE = "用法：资料 新增 <名称> <URL> <类别>（类别：报价/案例/竞品对比/手册/视频/其他）；资料 列表；资料 删除 <名称>"
LIBRARY_ADDED = "已加入资料库：《{name}》（{category}）{url}"
LIBRARY_BAD_URL = "链接「{url}」不是有效的 http(s) 地址。"
LIBRARY_BAD_CATEGORY = "不认识的类别「{text}」。可选：报价、案例、竞品对比、手册、视频、其他。"
LIBRARY_EXISTS = "资料库里已有《{name}》。如需更换链接，请先「资料 删除 {name}」。"
LIBRARY_EMPTY = "资料库还是空的。管理员可以发送「资料 新增 <名称> <URL> <类别>」添加。"
LIBRARY_HEADER = "资料库（{n} 份）："
LIBRARY_LINE = "• 《{name}》｜{category}｜{url}"
LIBRARY_REMOVED = "已从资料库删除《{name}》，已发出的链接同时失效。"
RULE_USAGE = "用法：规则 新增 <条件> 则 <阶段>，例如：规则 新增 竞品对比 点击>=2 且 登录>=1 则 报价谈判；规则 列表；规则 删除 <序号>"
RULE_ADDED = "已添加规则 #{id}：{text}"
RULE_HEADER = "自动跃迁规则（客户行为满足条件时自动推进，只前进、不动冻结或已结束的商机）："
RULE_LINE = "#{id}  {text}"
RULE_EMPTY = "目前没有自动跃迁规则。"
RULE_REMOVED = "已删除规则 #{id}：{text}"
RULE_NOT_FOUND = "没有编号为 {id} 的规则。发送「规则 列表」查看。"
PROFILE_TRAIL_LINE = "  · {at} {what}"
FUNNEL_HEADER = "漏斗热力图（{week}）：格子颜色 = 平均停留天数 ÷ 阶段时限，红框为超时最严重的 3 格。"
FUNNEL_ALL_OK = "本周没有超过时限的阶段，继续保持。"
FUNNEL_NO_TEAM = "您的团队里还没有销售代表。请管理员用「主管 <成员> <您>」设置。"
COACH_HEADER = "💡 「{customer}」（{industry}｜{stage}）的话术建议："
COACH_EMPTY = "话术库还是空的，也没有赢单客户的沟通记录可参考。请管理员用「话术库 新增」添加。"
COACH_LIBRARY_USAGE = "用法：话术库 新增 <标题> | <话术内容> [行业 <行业>] [阶段 <阶段>]"
COACH_ADDED = "已加入话术库 #{id}《{title}》。"
COACH_REMOVED = "已删除话术 #{id}《{title}》。"
COACH_NOT_FOUND = "没有编号为 {id} 的话术。发送「话术库 列表」查看。"
COACH_LIBRARY_EMPTY = "话术库还是空的。"
COACH_LIBRARY_HEADER = "话术库（{n} 条）："
