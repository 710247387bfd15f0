"""The talk-track coach: BM25 over jieba tokens with industry and stage boosts, distinct, with sources."""

from __future__ import annotations

from domain.coach import (
    TalkTrack,
    WonCommunication,
    bm25_scores,
    near_duplicate,
    suggest_talk_tracks,
    tokenize,
)

LIBRARY = [
    TalkTrack(
        "制造业产线演示",
        "演示时先展示产线停机数据看板，再对比客户现在的手工排产方式，突出节省的工时。",
        industry="制造业",
        stages=("demo",),
    ),
    TalkTrack(
        "通用开场",
        "先感谢客户抽出时间，再用一句话说明我们能解决的问题，然后请客户讲讲现在的难点。",
        stages=("lead", "diagnosis"),
    ),
    TalkTrack(
        "医疗器械演示要点",
        "面向医疗器械客户演示时，先讲注册证和质量体系追溯，再演示不良事件上报流程，最后给出同类医院的案例。",
        industry="医疗器械",
        stages=("demo",),
    ),
    TalkTrack(
        "医疗器械演示要点（旧版）",
        "面向医疗器械客户演示时，先讲注册证和质量体系追溯，再演示不良事件上报流程，最后给出同类医院案例。",
        industry="医疗器械",
        stages=("demo",),
    ),
    TalkTrack(
        "演示收尾",
        "演示结束前确认参会人的角色，约定试用范围和下次沟通时间，当天发送演示录像和方案摘要。",
        stages=("demo",),
    ),
    TalkTrack("报价谈判让步", "报价谈判时每次让步都要换取对方的承诺，例如签约时间或付款条件。", stages=("negotiation",)),
]

WON = [
    WonCommunication(
        "华康医疗",
        "我们在演示里重点讲了 UDI 追溯和不良事件闭环，院方设备科当场提出试用，两周后签约。",
        industry="医疗器械",
        stage="demo",
    ),
    WonCommunication("北方重工", "先请车间主任讲清楚排产痛点，再约定现场调研。", industry="制造业",
                     stage="diagnosis"),
]


def test_a_medical_device_customer_in_demo_gets_three_distinct_tracks_industry_first() -> None:
    tracks = suggest_talk_tracks(LIBRARY, WON, industry="医疗器械", stage="demo",
                                 last_message="客户问演示能不能讲讲追溯")

    assert len(tracks) == 3
    assert tracks[0].source == "话术库《医疗器械演示要点》"
    assert tracks[1].source == "赢单客户 华康医疗 的沟通记录"
    for i, a in enumerate(tracks):
        for b in tracks[i + 1:]:
            assert not near_duplicate(a.text, b.text)
    # the older near-copy of the first track is left out, not shown as a second suggestion
    assert "话术库《医疗器械演示要点（旧版）》" not in [t.source for t in tracks]
    assert tracks[0].score >= tracks[1].score >= tracks[2].score


def test_every_suggestion_names_its_source() -> None:
    tracks = suggest_talk_tracks(LIBRARY, WON, industry="制造业", stage="diagnosis")
    assert tracks[0].source == "赢单客户 北方重工 的沟通记录"
    assert all(t.source.startswith(("话术库《", "赢单客户 ")) for t in tracks)


def test_the_last_message_moves_a_relevant_track_up() -> None:
    without = suggest_talk_tracks(LIBRARY, [], industry=None, stage="negotiation", limit=6)
    with_msg = suggest_talk_tracks(LIBRARY, [], industry=None, stage="negotiation",
                                   last_message="客户要求演示录像和下次沟通时间", limit=6)
    def position(tracks: list) -> int:
        return [t.source for t in tracks].index("话术库《演示收尾》")
    assert position(with_msg) < position(without)


def test_fewer_candidates_than_three_gives_fewer_suggestions() -> None:
    assert len(suggest_talk_tracks(LIBRARY[:1], [], industry="医疗器械", stage="demo")) == 1
    assert suggest_talk_tracks([], [], industry="医疗器械", stage="demo") == []


def test_tokens_are_jieba_words_without_punctuation_or_stopwords() -> None:
    assert tokenize("我们给医疗器械客户的演示，重点讲追溯！") == ["医疗器械", "客户", "演示", "重点", "追溯"]


def test_bm25_prefers_the_document_with_the_rarer_matching_term() -> None:
    docs = [["演示", "客户"], ["追溯", "客户"], ["报价", "客户"]]
    scores = bm25_scores(["追溯", "客户"], docs)
    assert scores[1] > scores[0] == scores[2] > 0


def test_near_duplicates() -> None:
    assert near_duplicate(LIBRARY[2].text, LIBRARY[3].text)
    assert not near_duplicate(LIBRARY[2].text, LIBRARY[4].text)
