from tests.harness import Chat


def test_rep_asks_for_help_and_sees_only_rep_commands(chat: Chat, company):
    reply = chat.say("zhangsan", "帮助")
    assert "拜访 杭州云栖" in reply and "推进 杭州云栖 方案确认" in reply
    assert "角色 zhangsan" not in reply  # admin commands are not listed for a rep
    assert "压力测试" not in reply  # nor managers' and finance's


def test_admin_help_lists_admin_commands_even_when_it_needs_several_messages(chat: Chat, company):
    reply = chat.say("admin", "帮助")
    assert "角色 zhangsan 销售代表" in reply
    assert "审计" in reply
    assert all(len(m.body["content"].encode()) <= 2048 for m in chat.inbox("admin"))
