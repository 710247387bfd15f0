"""Company names reduce to one comparable form, whoever typed them and whichever bank printed them."""

from __future__ import annotations

import pytest

from domain.names import normalise_company_name, to_halfwidth


@pytest.mark.parametrize(
    "spelling",
    [
        "杭州云栖科技有限公司",
        "杭州云栖科技 有限公司",
        "杭州云栖科技股份有限公司",
        "杭州云栖科技有限责任公司",
        "杭州云栖科技（有限公司）",
        "杭州云栖科技(有限公司)",
        "杭州云栖科技",
        "　杭州云栖科技有限公司　",
    ],
)
def test_spellings_of_the_same_company_normalise_equal(spelling: str) -> None:
    assert normalise_company_name(spelling) == "杭州云栖科技"


def test_china_marker_is_dropped_in_any_bracket_width() -> None:
    assert normalise_company_name("阿里巴巴（中国）有限公司") == "阿里巴巴"
    assert normalise_company_name("阿里巴巴(中国)有限公司") == "阿里巴巴"
    assert normalise_company_name("阿里巴巴（ 中国 ）网络技术有限公司") == "阿里巴巴网络技术"


def test_latin_names_lose_case_width_and_legal_suffix() -> None:
    assert normalise_company_name("ＡＢＣ Trading Co., Ltd.") == "abctrading"
    assert normalise_company_name("abc trading limited") == "abctrading"


def test_different_companies_stay_different() -> None:
    assert normalise_company_name("杭州云栖科技有限公司") != normalise_company_name("杭州云栖网络有限公司")
    # a place in brackets is part of the name, only the brackets go
    assert normalise_company_name("云栖（杭州）科技有限公司") == "云栖杭州科技"


def test_a_bare_legal_suffix_is_not_stripped_to_nothing() -> None:
    assert normalise_company_name("有限公司") == "有限公司"


def test_to_halfwidth() -> None:
    assert to_halfwidth("ＨＴ２０２６００１（中国）￥　") == "HT2026001(中国)¥ "
    assert to_halfwidth("杭州") == "杭州"
