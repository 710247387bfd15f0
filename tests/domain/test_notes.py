"""Meeting notes → action items, risks, next steps: offline, and from a model's JSON answer."""

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.notes import (
    MAX_MODEL_ITEMS,
    MODEL_SYSTEM_PROMPT,
    ActionItem,
    ModelAnswerError,
    NotesExtraction,
    Risk,
    Side,
    extract_notes,
    parse_model_answer,
    render_notes,
)

MEETING_DAY = date(2026, 11, 28)
ISSUE_NOTES = "王总下周三前提供采购预算；我们负责月底前出方案；客户担心实施周期太长"


def test_the_issue_s_notes_give_two_action_items_and_one_risk():
    notes = extract_notes(ISSUE_NOTES, MEETING_DAY)
    assert notes.action_items == (
        ActionItem("王总", Side.CUSTOMER, "提供采购预算", date(2026, 12, 2)),
        ActionItem("我们", Side.OURS, "出方案", date(2026, 11, 30)),
    )
    assert len(notes.risks) == 1
    assert "实施周期" in notes.risks[0].text and notes.risks[0].cue == "担心"
    assert notes.next_steps == ()


def test_the_issue_s_notes_render_with_owner_what_and_date():
    text = render_notes(extract_notes(ISSUE_NOTES, MEETING_DAY))
    assert text.splitlines() == [
        "行动项：",
        "1. 王总（客户）：提供采购预算（截止 2026-12-02 周三）",
        "2. 我们：出方案（截止 2026-11-30 周一）",
        "风险：",
        "1. 客户担心实施周期太长",
        "下一步：",
        "（无）",
    ]


def test_an_owner_holds_for_the_rest_of_the_sentence_and_a_lone_date_waits_for_its_action():
    notes = extract_notes("王总，下周三前，提供采购预算，并安排技术交流。李经理确认预算。", MEETING_DAY)
    assert [(a.owner, a.what, a.due) for a in notes.action_items] == [
        ("王总", "提供采购预算", date(2026, 12, 2)),
        ("王总", "安排技术交流", None),
        ("李经理", "确认预算", None),
    ]


def test_what_is_already_done_or_refused_is_not_an_action():
    notes = extract_notes("客户已经确认了需求；王总不提供预算；我们发了报价", MEETING_DAY)
    assert notes.action_items == ()


def test_an_action_without_owner_or_date_is_not_kept_but_one_with_a_date_is():
    notes = extract_notes("提供报价；12月5日前提交测试报告", MEETING_DAY)
    assert notes.action_items == (ActionItem(None, Side.UNKNOWN, "提交测试报告", date(2026, 12, 5)),)
    assert "待定：提交测试报告" in render_notes(notes)


def test_sides_come_from_prefixes_and_from_the_people_the_caller_knows():
    notes = extract_notes(
        "我方张工12月5日前提交测试报告；客户李总安排试点；张三明天联系采购；由我们负责数据迁移",
        MEETING_DAY,
        people={"张三": Side.OURS},
    )
    assert [(a.owner, a.side, a.what) for a in notes.action_items] == [
        ("张工", Side.OURS, "提交测试报告"),
        ("李总", Side.CUSTOMER, "安排试点"),
        ("张三", Side.OURS, "联系采购"),
        ("我们", Side.OURS, "负责数据迁移"),
    ]


def test_by_someone_names_the_owner_before_or_after_the_task():
    notes = extract_notes("技术对接由我们负责；由王总牵头组织评审", MEETING_DAY)
    assert [(a.owner, a.what) for a in notes.action_items] == [("我们", "负责技术对接"), ("王总", "牵头组织评审")]


def test_a_known_name_beats_a_title_guess():
    notes = extract_notes("王总明天发送合同", MEETING_DAY, people={"王总": Side.OURS})
    assert notes.action_items[0].side is Side.OURS


def test_risk_cues_and_their_negations():
    notes = extract_notes("客户不担心价格，但顾虑数据安全；对方说竞品也在接触；哪怕晚一点也行", MEETING_DAY)
    assert [r.text for r in notes.risks] == ["但顾虑数据安全", "对方说竞品也在接触"]


def test_next_steps_are_read_from_markers_and_from_a_heading():
    inline = extract_notes("下一步：我们下周一前安排演示", MEETING_DAY)
    assert inline.next_steps == ("我们下周一前安排演示",)
    assert inline.action_items == (ActionItem("我们", Side.OURS, "安排演示", date(2026, 11, 30)),)

    listed = extract_notes(
        "参会：王总、李经理\n\n下一步：\n1. 约王总做一次演示\n2. 确认上线范围\n\n风险：\n- 预算审批要走集团流程",
        MEETING_DAY,
    )
    assert listed.next_steps == ("约王总做一次演示", "确认上线范围")
    assert listed.risks == (Risk("预算审批要走集团流程", None),)


def test_commas_inside_numbers_do_not_split_a_clause():
    notes = extract_notes("王总月底前确认1,200,000元的预算", MEETING_DAY)
    assert notes.action_items[0].what == "确认1,200,000元的预算"


def test_empty_notes_say_nothing_was_found():
    assert extract_notes("  \n ", MEETING_DAY) == NotesExtraction((), (), ())
    assert render_notes(extract_notes("今天天气不错", MEETING_DAY)) == "没有从纪要中识别出行动项、风险或下一步。"


# --- a model's answer ----------------------------------------------------------------------------------

GOOD_ANSWER = {
    "action_items": [
        {"owner": "王总", "side": "customer", "what": "提供采购预算", "due": "2026-12-02"},
        {"owner": None, "side": "unknown", "what": "安排演示", "due": None},
    ],
    "risks": ["客户担心实施周期太长"],
    "next_steps": ["下周三复盘"],
}


def test_a_valid_model_answer_becomes_the_same_dataclass():
    parsed = parse_model_answer(json.dumps(GOOD_ANSWER, ensure_ascii=False), MEETING_DAY)
    assert parsed == NotesExtraction(
        (
            ActionItem("王总", Side.CUSTOMER, "提供采购预算", date(2026, 12, 2)),
            ActionItem(None, Side.UNKNOWN, "安排演示", None),
        ),
        (Risk("客户担心实施周期太长"),),
        ("下周三复盘",),
    )


def test_one_json_fence_around_the_answer_is_accepted():
    fenced = "```json\n" + json.dumps(GOOD_ANSWER, ensure_ascii=False) + "\n```"
    assert parse_model_answer(fenced, MEETING_DAY).risks == (Risk("客户担心实施周期太长"),)


def _with(**changes):
    answer = json.loads(json.dumps(GOOD_ANSWER))
    answer.update(changes)
    return json.dumps(answer, ensure_ascii=False)


def _item(**changes):
    item = dict(GOOD_ANSWER["action_items"][0])
    item.update(changes)
    return item


@pytest.mark.parametrize(
    "answer",
    [
        "好的，以下是纪要要点：王总提供预算",
        "[]",
        json.dumps({"action_items": [], "risks": []}),
        _with(summary="多余字段"),
        _with(action_items={"owner": "王总"}),
        _with(action_items=[_item(side="them")]),
        _with(action_items=[_item(due="12月2日")]),
        _with(action_items=[_item(due="2026-02-30")]),
        _with(action_items=[_item(due="2031-12-02")]),
        _with(action_items=[_item(what="  ")]),
        _with(action_items=[_item(what="很" * 201)]),
        _with(action_items=[{k: v for k, v in _item().items() if k != "due"}]),
        _with(risks=[1]),
        _with(next_steps="下周三复盘"),
        _with(risks=["风险"] * (MAX_MODEL_ITEMS + 1)),
        "```json\n{}\n``` 另外说明",
    ],
)
def test_anything_off_in_the_model_answer_raises_a_value_error_for_the_fallback(answer):
    with pytest.raises(ModelAnswerError) as caught:
        parse_model_answer(answer, MEETING_DAY)
    assert isinstance(caught.value, ValueError)


def test_the_model_prompt_names_the_meeting_day_and_every_key_the_parser_wants():
    prompt = MODEL_SYSTEM_PROMPT.format(today=MEETING_DAY)
    assert "2026-11-28" in prompt
    for key in ("action_items", "risks", "next_steps", "owner", "side", "what", "due"):
        assert f'"{key}"' in prompt


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_extraction_never_raises_and_renders_any_text(text):
    notes = extract_notes(text, MEETING_DAY)
    assert render_notes(notes)
    assert all(a.what for a in notes.action_items)


def test_a_word_that_only_looks_like_a_surname_and_title_is_not_an_owner():
    notes = extract_notes("施工下周一完成部署；施总明天确认图纸", MEETING_DAY)
    assert [(a.owner, a.what) for a in notes.action_items] == [
        (None, "施工完成部署"),
        ("施总", "确认图纸"),
    ]
