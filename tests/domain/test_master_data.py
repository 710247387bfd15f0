"""Customer master data: candidate duplicates by code and normalised name, and merge plans with 冲突点."""

import random
from datetime import date, datetime

import pytest

from domain.credit_code import check_character
from domain.master_data import (
    CustomerIdentity,
    CustomerRecord,
    DuplicateReason,
    FieldConflict,
    MergeRefused,
    comparable_code,
    duplicate_candidates,
    kept_customer,
    plan_merge,
    record_count_mismatches,
    render_duplicates,
    render_merge_plan,
    values_agree,
)
from domain.names import normalise_company_name

ALIBABA_FULL = "阿里巴巴（中国）网络技术有限公司"
ALIBABA_TYPED = "阿里巴巴(中国)网络技术 有限公司"


def valid_code(body17: str) -> str:
    return body17 + check_character(body17)


CODE_A = valid_code("91330100MA27Y1234")
CODE_B = valid_code("91330100MA27Y5678")


def test_the_issue_s_two_alibaba_spellings_are_flagged_as_the_same_name():
    pairs = duplicate_candidates([
        CustomerIdentity(1, ALIBABA_FULL),
        CustomerIdentity(2, ALIBABA_TYPED),
        CustomerIdentity(3, "杭州云栖科技有限公司"),
    ])
    assert [(p.first.id, p.second.id, p.reason) for p in pairs] == [(1, 2, DuplicateReason.SAME_NAME)]
    assert pairs[0].detail == "名称规范化后相同（阿里巴巴网络技术）"
    assert render_duplicates(pairs) == (
        f"1. #1 {ALIBABA_FULL} ↔ #2 {ALIBABA_TYPED}：名称规范化后相同（阿里巴巴网络技术）"
    )


def test_the_same_credit_code_is_the_same_customer_whatever_the_names():
    lower_full_width = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in CODE_A.lower())
    pairs = duplicate_candidates([
        CustomerIdentity(7, "云栖科技", CODE_A),
        CustomerIdentity(4, "杭州某某贸易", f" {lower_full_width[:6]} {lower_full_width[6:]}"),
    ])
    assert [(p.first.id, p.second.id, p.reason) for p in pairs] == [(4, 7, DuplicateReason.SAME_CODE)]
    assert comparable_code(lower_full_width) == CODE_A


def test_one_name_inside_another_needs_at_least_four_characters():
    pairs = duplicate_candidates([
        CustomerIdentity(1, "杭州云栖科技有限公司"),
        CustomerIdentity(2, "杭州云栖"),
        CustomerIdentity(3, "云栖"),
    ])
    assert [(p.first.id, p.second.id, p.reason) for p in pairs] == [(1, 2, DuplicateReason.NAME_CONTAINS)]
    assert pairs[0].detail == "名称包含：「杭州云栖」⊂「杭州云栖科技」"
    looser = duplicate_candidates(
        [CustomerIdentity(1, "杭州云栖科技"), CustomerIdentity(3, "云栖")], min_contained_chars=2
    )
    assert [(p.first.id, p.second.id) for p in looser] == [(1, 3)]


def test_different_codes_are_two_legal_entities_even_with_the_same_name():
    pairs = duplicate_candidates([
        CustomerIdentity(1, ALIBABA_FULL, CODE_A),
        CustomerIdentity(2, ALIBABA_TYPED, CODE_B),
        CustomerIdentity(3, ALIBABA_TYPED),
    ])
    assert [(p.first.id, p.second.id) for p in pairs] == [(1, 3), (2, 3)]


def test_a_pair_is_listed_once_with_its_strongest_reason():
    pairs = duplicate_candidates([CustomerIdentity(2, ALIBABA_TYPED, CODE_A), CustomerIdentity(1, ALIBABA_FULL, CODE_A)])
    assert len(pairs) == 1 and pairs[0].reason is DuplicateReason.SAME_CODE
    assert (pairs[0].first.id, pairs[0].second.id) == (1, 2)


def test_no_candidates_is_said_plainly():
    assert duplicate_candidates([]) == []
    assert render_duplicates([]) == "没有发现疑似重复的客户。"


def test_the_indexed_search_finds_exactly_what_comparing_every_pair_finds():
    rng = random.Random(8)
    stems = ["杭州云栖", "云栖科技", "阿里巴巴", "网络技术", "华东贸易", "宁波港", "星河", "科技"]
    suffixes = ["", "有限公司", "（中国）有限公司", " 股份有限公司"]
    customers = [
        CustomerIdentity(i, "".join(rng.sample(stems, rng.randint(1, 3))) + rng.choice(suffixes)) for i in range(150)
    ]
    names = {c.id: normalise_company_name(c.name) for c in customers}
    expected = set()
    for a in customers:
        for b in customers:
            if a.id < b.id and names[a.id] != names[b.id]:
                short, long = sorted((names[a.id], names[b.id]), key=len)
                if len(short) >= 4 and short in long:
                    expected.add((a.id, b.id))
    found = {
        (p.first.id, p.second.id) for p in duplicate_candidates(customers) if p.reason is DuplicateReason.NAME_CONTAINS
    }
    assert expected and found == expected


# --- merging -------------------------------------------------------------------------------------------


def alibaba_records():
    older = CustomerRecord(
        1,
        {
            "name": (ALIBABA_FULL, "ERP 导入 2025-12-01"),
            "phone": ("0571-1", "rep 张三 2026-05-01"),
            "owner": ("zhangsan", "admin 2025-12-01"),
            "industry": (None, "ERP 导入 2025-12-01"),
        },
        created=date(2025, 12, 1),
    )
    newer = CustomerRecord(
        2,
        {
            "name": (ALIBABA_TYPED, "rep 李四 2026-06-01"),
            "phone": ("0571-2", "rep 李四 2026-06-01"),
            "owner": ("lisi", "rep 李四 2026-06-01"),
            "industry": ("互联网", "rep 李四 2026-06-01"),
        },
        created=datetime(2026, 6, 1, 9, 30),
    )
    return older, newer


def test_merging_the_alibabas_keeps_the_older_and_lists_phone_and_owner_as_conflicts():
    older, newer = alibaba_records()
    plan = plan_merge(newer, older)  # argument order does not matter
    assert (plan.kept_id, plan.removed_id) == (1, 2)
    assert plan.why_kept == "保留 #1（建档更早）"
    assert plan.conflicts == (
        FieldConflict("phone", "0571-1", "rep 张三 2026-05-01", "0571-2", "rep 李四 2026-06-01"),
        FieldConflict("owner", "zhangsan", "admin 2025-12-01", "lisi", "rep 李四 2026-06-01"),
    )
    assert plan.merged == {
        "name": (ALIBABA_FULL, "ERP 导入 2025-12-01"),
        "phone": ("0571-1", "rep 张三 2026-05-01"),
        "owner": ("zhangsan", "admin 2025-12-01"),
        "industry": ("互联网", "rep 李四 2026-06-01"),
    }
    assert plan.filled == ("industry",)


def test_the_merge_preview_names_both_values_and_sources():
    older, newer = alibaba_records()
    assert render_merge_plan(plan_merge(older, newer)).splitlines() == [
        "合并 #2 → #1：保留 #1（建档更早）",
        "冲突点（2 项，已采用保留客户的值）：",
        "· 电话：0571-1（rep 张三 2026-05-01）vs 0571-2（rep 李四 2026-06-01）",
        "· 负责人：zhangsan（admin 2025-12-01）vs lisi（rep 李四 2026-06-01）",
        "· 行业：补充为 互联网（rep 李四 2026-06-01）",
    ]


def test_the_customer_with_a_credit_code_is_kept_even_when_newer():
    older, newer = alibaba_records()
    newer = CustomerRecord(2, {**newer.fields, "credit_code": (CODE_A, "rep 李四")}, newer.created)
    kept, removed, why = kept_customer(older, newer)
    assert (kept.id, removed.id, why) == (2, 1, "保留 #2（有统一社会信用代码）")
    plan = plan_merge(older, newer)
    assert plan.merged["credit_code"] == (CODE_A, "rep 李四") and "credit_code" not in plan.filled


def test_without_codes_or_dates_the_lower_id_is_kept():
    a = CustomerRecord(5, {"name": ("甲", "x")})
    b = CustomerRecord(3, {"name": ("甲", "y")})
    assert kept_customer(a, b)[0].id == 3
    assert kept_customer(CustomerRecord(9, {}, date(2026, 1, 1)), CustomerRecord(2, {}))[0].id == 9


def test_two_different_codes_or_one_customer_are_refused():
    a = CustomerRecord(1, {"credit_code": (CODE_A, "ERP")})
    b = CustomerRecord(2, {"credit_code": (CODE_B, "ERP")})
    with pytest.raises(MergeRefused, match="统一社会信用代码不同"):
        plan_merge(a, b)
    with pytest.raises(MergeRefused, match="自己"):
        plan_merge(a, a)


def test_width_and_spaces_are_not_conflicts_but_other_differences_are():
    assert values_agree(ALIBABA_FULL, ALIBABA_TYPED)
    assert not values_agree("0571-1", "05711")
    plan = plan_merge(
        CustomerRecord(1, {"name": (ALIBABA_FULL, "a"), "phone": ("0571 1", "a")}),
        CustomerRecord(2, {"name": (ALIBABA_TYPED, "b"), "phone": ("05711", "b")}),
    )
    assert plan.conflicts == () and render_merge_plan(plan).splitlines()[1] == "没有冲突字段。"


def test_record_counts_before_and_after_a_merge_are_compared_per_table():
    before_kept = {"contacts": 2, "visits": 5, "promises": 1}
    before_removed = {"contacts": 1, "visits": 3, "links": 2}
    assert record_count_mismatches(before_kept, before_removed, {"contacts": 3, "visits": 8, "promises": 1, "links": 2}) == {}
    assert record_count_mismatches(before_kept, before_removed, {"contacts": 3, "visits": 5, "promises": 1}) == {
        "links": (2, 0),
        "visits": (8, 5),
    }
