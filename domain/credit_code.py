"""The unified social credit code 统一社会信用代码 (GB 32100-2015): 18 characters, the last a check character."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class CreditCodeError(ValueError):
    """Why a code is invalid, in Chinese, for the reply."""


def check_character(first17: str) -> str:
    """C18 = ALPHABET[(31 − Σ value(Ci) × Wi mod 31) mod 31] over the first 17 characters."""
    total = sum(ALPHABET.index(ch) * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalise_credit_code(text: str) -> str:
    """Upper-case, strip spaces and full-width forms; raises CreditCodeError with the reason."""
    code = "".join(_half_width(ch) for ch in text.strip()).replace(" ", "").replace("-", "").upper()
    if len(code) != 18:
        raise CreditCodeError(f"统一社会信用代码应为 18 位，您输入的是 {len(code)} 位")
    for i, ch in enumerate(code, start=1):
        if ch not in ALPHABET:
            raise CreditCodeError(f"第 {i} 位「{ch}」不是有效字符（代码不使用 I、O、Z、S、V）")
    expected = check_character(code[:17])
    if code[17] != expected:
        raise CreditCodeError(f"校验位不符：最后一位应为「{expected}」，您输入的是「{code[17]}」，请核对是否抄错")
    return code


def _half_width(ch: str) -> str:
    o = ord(ch)
    if 0xFF01 <= o <= 0xFF5E:
        return chr(o - 0xFEE0)
    return " " if o == 0x3000 else ch
