"""The board: 李四's 我的看板 for November 2026 and the manager's 团队看板."""

from datetime import date
from decimal import Decimal as D

from domain.board import (
    Standing,
    TrackProgress,
    render_rep_board,
    render_team_board,
    rep_board,
    team_board,
    team_ranks,
    track_progress,
)
from domain.incentives import (
    Attainment,
    DealType,
    SignedDeal,
    Targets,
    attainment,
    dual_track_score,
    process_score,
    result_score,
)

NOVEMBER = date(2026, 11, 1)
AS_OF = date(2026, 11, 30)
TARGETS = Targets(new=D(100_000), renewal=D(50_000), upsell=D(50_000))


def standing(
    member: str,
    name: str,
    deals: list[SignedDeal],
    *,
    visits: int = 32,
    reports: int = 3,
    targets: Targets = TARGETS,
    points: int = 0,
    bonus: str = "0",
) -> Standing:
    attained = attainment(deals)
    score = dual_track_score(process_score(visits, D(4), reports, 4), result_score(attained, targets))
    return Standing(member, name, score, attained, targets, points, D(bonus))


LI_SI = standing(
    "lisi",
    "李四",
    [
        SignedDeal(DealType.NEW, D(80_000)),
        SignedDeal(DealType.RENEWAL, D(40_000), D(55)),
        SignedDeal(DealType.RENEWAL, D(10_000), D(80)),
        SignedDeal(DealType.UPSELL, D(20_000)),
    ],
    points=12,
    bonus="3840.00",
)
WANG_WU = standing("wangwu", "王五", [SignedDeal(DealType.NEW, D(150_000))], points=4, bonus="4500.00")
ZHAO_LIU = standing("zhaoliu", "赵六", [SignedDeal(DealType.NEW, D(150_000))], bonus="4500.00")
SUN_QI = standing("sunqi", "孙七", [], visits=16, reports=0, targets=Targets())
TEAM = [LI_SI, WANG_WU, ZHAO_LIU, SUN_QI]


def test_ties_share_a_rank_and_the_next_rank_is_skipped():
    # 王五 and 赵六: process 87.5, result 100 → 92.50 each
    assert team_ranks(TEAM) == {"wangwu": 1, "zhaoliu": 1, "lisi": 3, "sunqi": None}


def test_ranks_compare_the_rounded_totals_people_see():
    a = standing("a", "甲", [SignedDeal(DealType.NEW, D("100000.001"))])
    b = standing("b", "乙", [SignedDeal(DealType.NEW, D(100_000))])
    assert a.score.total != b.score.total
    assert team_ranks([a, b]) == {"a": 1, "b": 1}


def test_kpi_progress_per_track_with_renewals_credited():
    assert track_progress(LI_SI.attained, TARGETS) == (
        TrackProgress(DealType.NEW, D(80_000), D(100_000), D(80)),
        TrackProgress(DealType.RENEWAL, D(38_000), D(50_000), D(76)),
        TrackProgress(DealType.UPSELL, D(20_000), D(50_000), D(40)),
    )


def test_a_track_without_target_has_no_percent():
    progress = track_progress(Attainment(new=D(5)), Targets(renewal=D(10)))
    assert progress[0].percent is None and progress[1].percent == 0


def test_li_si_board_has_points_rank_kpis_and_bonus():
    board = rep_board(TEAM, "lisi", NOVEMBER, AS_OF)
    assert (board.rank, board.ranked, board.points, board.bonus_mtd) == (3, 3, 12, D("3840.00"))
    assert (board.score.process, board.score.result, board.score.total) == (
        D("87.50"),
        D("73.87"),
        D("82.05"),
    )
    assert render_rep_board(board) == "\n".join(
        [
            "李四 · 2026年11月看板（截至11月30日）",
            "综合得分 82.05｜过程 87.50｜结果 73.87",
            "团队排名 第3名（共3人）",
            "新签 ¥80,000 / ¥100,000（80%）",
            "续费 ¥38,000 / ¥50,000（76%）",
            "增购 ¥20,000 / ¥50,000（40%）",
            "本月奖金 ¥3,840",
            "协作积分 12 分",
        ]
    )


def test_a_rep_without_target_is_told_so_instead_of_a_rank():
    text = render_rep_board(rep_board(TEAM, "sunqi", NOVEMBER, AS_OF))
    assert "综合得分 —（本月未设目标）｜过程 25.00" in text
    assert "团队排名 —（未设目标，不参与排名）" in text
    assert "新签 ¥0（未设目标）" in text


def test_the_team_board_lists_members_by_rank_with_the_untargeted_last():
    board = team_board(TEAM, NOVEMBER, AS_OF)
    assert [(r.name, r.rank) for r in board.rows] == [("王五", 1), ("赵六", 1), ("李四", 3), ("孙七", None)]
    assert render_team_board(board) == "\n".join(
        [
            "团队看板 · 2026年11月（截至11月30日）",
            "1. 王五 92.50（过程87.50/结果100.00）奖金¥4,500 积分4",
            "1. 赵六 92.50（过程87.50/结果100.00）奖金¥4,500 积分0",
            "3. 李四 82.05（过程87.50/结果73.87）奖金¥3,840 积分12",
            "—. 孙七 未设目标（过程25.00）奖金¥0 积分0",
        ]
    )


def test_an_empty_team_says_so():
    assert render_team_board(team_board([], NOVEMBER, AS_OF)).endswith("团队里还没有成员。")
