"""Company names as people and banks write them, reduced to one comparable form (PRODUCT.md §4.1)."""

from __future__ import annotations

import re
from functools import lru_cache

# Full-width ASCII (U+FF01..U+FF5E) sits exactly 0xFEE0 above its half-width twin.
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_HALFWIDTH[0x3000] = 0x20  # ideographic space
_HALFWIDTH[0xFFE5] = 0xA5  # ￥ -> ¥

# Bracket pairs that mean the same thing in a registered name; only the characters go, not the words.
_BRACKETS = re.compile(r"[()\[\]{}【】〔〕〖〗「」『』<>《》]")
_CHINA_MARKER = re.compile(r"\(中国\)")
_WHITESPACE = re.compile(r"\s+")
# Longest first, so 股份有限公司 is not cut to 股份.
_LEGAL_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "co.,ltd.",
    "co.,ltd",
    "co.ltd.",
    "co.ltd",
    "limited",
    "ltd.",
    "ltd",
    "inc.",
    "inc",
)


def to_halfwidth(text: str) -> str:
    """Full-width ASCII letters, digits, punctuation and the ideographic space → their half-width forms.

    ``"ＨＴ２０２６（中国）"`` → ``"HT2026(中国)"``; ``￥`` → ``¥``; everything else is left as it is.
    """
    return text.translate(_HALFWIDTH)


@lru_cache(maxsize=65536)  # a pure function, called for the same names over and over by matching
def normalise_company_name(name: str) -> str:
    """The comparable form of a company name: two names are candidate duplicates when these are equal.

    Steps: half-width → drop every whitespace → drop （中国） → lower-case Latin letters → drop bracket
    characters (keeping the words inside) → strip trailing legal suffixes (有限公司, 股份有限公司,
    有限责任公司, Co., Ltd., Limited, Inc.), repeatedly. ``"杭州云栖科技 有限公司"`` and
    ``"杭州云栖科技（有限公司）"`` both give ``"杭州云栖科技"``.
    """
    text = _WHITESPACE.sub("", to_halfwidth(name))
    text = _CHINA_MARKER.sub("", text).lower()
    text = _BRACKETS.sub("", text)
    stripped = True
    while stripped:
        stripped = False
        for suffix in _LEGAL_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)].rstrip(",.")
                stripped = True
                break
    return text
