from tests.harness import Chat


def test_rep_asks_for_help_and_sees_only_rep_commands(chat: Chat, company):
    reply = chat.send("zhangsan", "帮助")
    assert reply.status == 200
    assert "帮助" in reply.text
    assert "角色 zhangsan" not in reply.text  # admin commands are not listed for a rep


def test_admin_help_lists_admin_commands(chat: Chat, company):
    reply = chat.send("admin", "帮助")
    assert "角色 zhangsan 销售代表" in reply.text
    assert "审计" in reply.text
