import pytest

from domain.credit_code import CreditCodeError, check_character, normalise_credit_code


@pytest.mark.parametrize("code", ["91330100716105852F", "91110000802100433B", "91440300708461136T"])
def test_real_codes_are_valid(code):
    assert normalise_credit_code(code) == code


def test_lower_case_full_width_and_spaces_are_normalised():
    assert normalise_credit_code(" ９１３３０１００７１６１０５８５２ｆ ") == "91330100716105852F"


def test_wrong_check_character_names_the_expected_one():
    with pytest.raises(CreditCodeError, match="最后一位应为「F」"):
        normalise_credit_code("91330100716105852G")


def test_wrong_length_and_bad_characters():
    with pytest.raises(CreditCodeError, match="18 位"):
        normalise_credit_code("9133010071610585")
    with pytest.raises(CreditCodeError, match="第 3 位「I」"):
        normalise_credit_code("91I30100716105852F")


def test_check_character_formula_on_a_known_value():
    assert check_character("91330100716105852") == "F"
