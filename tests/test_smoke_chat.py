from tests.harness import Chat


def test_rep_asks_for_help_and_sees_only_rep_commands(chat: Chat, company):
    reply = chat.say("zhangsan", "帮助")
    assert "拜访 杭州云栖" in reply and "推进 杭州云栖 方案确认" in reply
    assert "角色 zhangsan" not in reply  # admin commands are not listed for a rep
    assert "压力测试" not in reply  # nor managers' and finance's
    # commands everyone may read but only admins may change show the reading example
    assert "• 查看资料库（发给客户用「链接」）：资料 列表" in reply and "资料 新增" not in reply
    assert "• 查看兑换目录：兑换项 列表" in reply and "兑换项 新增" not in reply


def test_admin_help_lists_admin_commands_even_when_it_needs_several_messages(chat: Chat, company):
    reply = chat.say("admin", "帮助")
    assert "角色 zhangsan 销售代表" in reply
    assert "审计" in reply
    assert "资料 新增 竞品对比白皮书" in reply and "兑换项 新增 咖啡券 10" in reply
    assert all(len(m.body["content"].encode()) <= 2048 for m in chat.inbox("admin"))
