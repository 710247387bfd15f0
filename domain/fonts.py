"""Where to find a font with Chinese glyphs for rendered images (charts, cards as pictures).

Looked for in this order; the first file that exists wins:

1. Noto Sans SC from the PyPI package ``pylopdf-fonts-zh-cn`` (a project dependency, so a fresh
   ``pip install -e .`` brings it; SIL Open Font License; data only, no code run);
2. Debian's ``fonts-noto-cjk`` (Noto Sans CJK) and ``fonts-wqy-microhei`` / ``fonts-wqy-zenhei``
   (WenQuanYi) files, for machines where the package is missing.

Only looks at the filesystem; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

_PACKAGE = "pylopdf_fonts_zh_cn"
_PACKAGE_FILE = "NotoSansSC-Regular.otf"
_SYSTEM_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
INSTALL_HINT = "pip install pylopdf-fonts-zh-cn (a salesbot dependency), or apt-get install fonts-noto-cjk"


class CJKFontNotFound(RuntimeError):
    """No font with Chinese glyphs is installed."""


def _package_font() -> Path | None:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _PACKAGE_FILE
        if path.is_file():
            return path
    return None


@cache
def find_cjk_font() -> Path | None:
    """The path of the first installed CJK font (see module docstring), or None."""
    found = _package_font()
    if found is not None:
        return found
    for name in _SYSTEM_FILES:
        path = Path(name)
        if path.is_file():
            return path
    return None


def cjk_font_path() -> Path:
    """Like ``find_cjk_font`` but raises ``CJKFontNotFound`` (naming how to install one) when none is."""
    path = find_cjk_font()
    if path is None:
        raise CJKFontNotFound(f"no font with Chinese glyphs found; {INSTALL_HINT}")
    return path
