"""Chinese relative dates in meeting notes: 下周三, 月底, 12月5日 … resolved against the meeting day."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.dates import find_dates, parse_date, resolve_relative_date

SATURDAY = date(2026, 11, 28)  # the issue's meeting day


def test_the_issue_s_two_dates_on_saturday_28_november_2026():
    assert SATURDAY.weekday() == 5
    assert resolve_relative_date("下周三", SATURDAY) == date(2026, 12, 2)
    assert resolve_relative_date("月底", SATURDAY) == date(2026, 11, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", date(2026, 11, 28)),
        ("明天", date(2026, 11, 29)),
        ("后天", date(2026, 11, 30)),
        ("大后天", date(2026, 12, 1)),
        ("下周三", date(2026, 12, 2)),
        ("下星期三", date(2026, 12, 2)),
        ("下个礼拜一", date(2026, 11, 30)),
        ("下周日", date(2026, 12, 6)),
        ("下下周一", date(2026, 12, 7)),
        ("本周五", date(2026, 11, 27)),  # this week's Friday, already past on Saturday
        ("这周五", date(2026, 11, 27)),
        ("周五", date(2026, 12, 4)),  # the next Friday
        ("星期天", date(2026, 11, 29)),
        ("上周五", date(2026, 11, 20)),
        ("周末", date(2026, 11, 29)),
        ("下周末", date(2026, 12, 6)),
        ("月底", date(2026, 11, 30)),
        ("本月底", date(2026, 11, 30)),
        ("下月初", date(2026, 12, 1)),
        ("下个月初", date(2026, 12, 1)),
        ("下个月底", date(2026, 12, 31)),
        ("下月15号", date(2026, 12, 15)),
        ("12月5日", date(2026, 12, 5)),
        ("12月5号", date(2026, 12, 5)),
        ("十二月五号", date(2026, 12, 5)),
        ("2026年12月5日", date(2026, 12, 5)),
        ("2027-01-05", date(2027, 1, 5)),
        ("3天后", date(2026, 12, 1)),
        ("三天后", date(2026, 12, 1)),
        ("十天内", date(2026, 12, 8)),
        ("一周内", date(2026, 12, 5)),
        ("两周后", date(2026, 12, 12)),
        ("一个月后", date(2026, 12, 28)),
        ("半个月内", date(2026, 12, 13)),
        ("3个工作日内", date(2026, 12, 2)),  # Mon, Tue, Wed
        ("年底", date(2026, 12, 31)),
        ("明年底", date(2027, 12, 31)),
        ("12月底", date(2026, 12, 31)),
        ("季度末", date(2026, 12, 31)),
    ],
)
def test_each_form_resolves_against_the_meeting_day(text, expected):
    assert resolve_relative_date(text, SATURDAY) == expected


def test_next_week_means_the_next_calendar_week_whatever_today_is():
    # Monday 23 Nov … Sunday 29 Nov are one week; the Wednesday after is 2 Dec for every one of them.
    for offset in range(7):
        today = date(2026, 11, 23) + timedelta(days=offset)
        assert resolve_relative_date("下周三", today) == date(2026, 12, 2), today
    assert resolve_relative_date("下周三", date(2026, 11, 30)) == date(2026, 12, 9)


def test_a_bare_weekday_is_never_today():
    friday = date(2026, 11, 27)
    assert resolve_relative_date("周五", friday) == date(2026, 12, 4)
    assert resolve_relative_date("周六", friday) == date(2026, 11, 28)
    assert resolve_relative_date("今天", friday) == friday


def test_month_ends_follow_the_calendar():
    assert resolve_relative_date("月底", date(2028, 2, 3)) == date(2028, 2, 29)
    assert resolve_relative_date("下个月底", date(2027, 1, 31)) == date(2027, 2, 28)
    assert resolve_relative_date("一个月后", date(2027, 1, 31)) == date(2027, 2, 28)
    assert resolve_relative_date("下月初", date(2026, 12, 20)) == date(2027, 1, 1)
    assert resolve_relative_date("季度末", date(2026, 4, 1)) == date(2026, 6, 30)


def test_a_month_and_day_already_past_is_next_year_s():
    assert resolve_relative_date("12月5日", date(2026, 12, 6)) == date(2027, 12, 5)
    assert resolve_relative_date("12月5日", date(2026, 12, 5)) == date(2026, 12, 5)


def test_a_deadline_may_end_in_qian():
    assert resolve_relative_date("下周三前", SATURDAY) == date(2026, 12, 2)
    assert resolve_relative_date("月底之前", SATURDAY) == date(2026, 11, 30)


def test_a_whole_field_also_takes_what_parse_date_takes():
    assert resolve_relative_date("12-5", SATURDAY) == date(2026, 12, 5)
    assert resolve_relative_date("2026.12.5", SATURDAY) == date(2026, 12, 5)


@pytest.mark.parametrize("text", ["", "尽快", "下周", "3号楼", "周报", "2月30日", "下周三和周五", "13月1日"])
def test_what_is_not_exactly_one_date_is_none(text):
    assert resolve_relative_date(text, SATURDAY) is None


def test_find_dates_locates_each_date_in_the_issue_s_notes():
    notes = "王总下周三前提供采购预算；我们负责月底前出方案；客户担心实施周期太长"
    found = find_dates(notes, SATURDAY)
    assert [(notes[s:e], day) for (s, e), day in found] == [
        ("下周三", date(2026, 12, 2)),
        ("月底", date(2026, 11, 30)),
    ]


def test_find_dates_prefers_the_longest_phrase_and_never_overlaps():
    text = "2026年12月5日前交付，下下周一复盘，上个月底的账已结，3天后再约"
    found = find_dates(text, SATURDAY)
    assert [text[s:e] for (s, e), _ in found] == ["2026年12月5日", "下下周一", "上个月底", "3天后"]
    assert [day for _, day in found] == [date(2026, 12, 5), date(2026, 12, 7), date(2026, 10, 31), date(2026, 12, 1)]


def test_find_dates_ignores_numbers_that_are_not_dates():
    assert find_dates("3号楼会议室，预算12-15万，2月30日", SATURDAY) == []
    # 13天后 is thirteen days, not "3天后" after a stray 1
    assert find_dates("13天后", SATURDAY)[0].day == date(2026, 12, 11)


def test_parse_date_keeps_its_whole_field_contract():
    assert parse_date("2026/8/15", SATURDAY) == date(2026, 8, 15)
    assert parse_date("8-15", SATURDAY) == date(2027, 8, 15)
    assert parse_date("下周三", SATURDAY) is None


def test_dates_beyond_the_calendar_are_not_found_rather_than_raising():
    last = date(9999, 12, 31)
    assert resolve_relative_date("明天", last) is None
    assert resolve_relative_date("下周三", last) is None
    assert resolve_relative_date("9999天后", SATURDAY) is None
    assert find_dates("上个月底", date(1, 1, 5)) == []


_DATEY = st.text(alphabet=st.sampled_from(list("今明后天下上本这个周星期礼拜一二三四五六七八九十两日末月底初中旬年号季度内前后之以工作半0123456789-/. ")))


@given(text=st.one_of(st.text(max_size=40), _DATEY), today=st.dates())
def test_no_text_and_no_day_makes_them_raise(text, today):
    found = find_dates(text, today)
    resolve_relative_date(text, today)
    end = 0
    for (start, stop), day in found:
        assert end <= start < stop <= len(text)
        end = stop
        # each phrase found means the same date when it stands alone
        assert resolve_relative_date(text[start:stop], today) == day
