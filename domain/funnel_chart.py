"""The funnel heatmap as a PNG (PRODUCT.md §1.6): reps × stages, coloured by dwell / SLA, the three
worst overtime cells outlined in red and listed with their suggestions under the grid.

Drawn with Pillow (issue 9: one image per manager every Monday; matplotlib took ~0.3 s an image, this
takes a few milliseconds), every text in the CJK font from ``domain.fonts`` so Chinese labels never turn
into boxes; a character the font lacks raises a "Glyph … missing from font" warning, as matplotlib did.
The layout is matplotlib's of before (same size, grid, colour scale RdYlGn reversed, cell texts, red
outlines with rank marks, colour bar, notes). Returns bytes; writes nothing.
"""

from __future__ import annotations

import struct
import unicodedata
import warnings
import zlib
from collections.abc import Callable
from datetime import timedelta
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from domain.fonts import cjk_font_path
from domain.funnel import FunnelHeatmap

DPI = 150
# Layout in hundredths of an inch, so the image size is an exact function of the data.
_WIDTH = 800
_LEFT = 130
_RIGHT = 110
_TOP = 110  # title and column labels
_ROW = 55
_GAP = 40  # between the grid and the notes
_LINE = 26
_BOTTOM = 20
_WRAP_WIDTH = 52.0  # in CJK characters at the notes' font size
_INDENT = "    "
_RATIO_MAX = 2.0  # colour scale: 0 (green) … 1 (yellow) … 2+ (red)

# User-visible wording (domain may not import the bot's message catalog).
_TITLE = "销售漏斗热力图（{start:%Y-%m-%d} 至 {end:%Y-%m-%d}）"
_COLUMN = "{name}\nSLA {sla:g} 天"
_CELL = "{avg:.1f} 天\n{ratio:.1f}×"
_EMPTY_CELL = "—"
_NO_REPS = "（团队暂无成员）"
_COLORBAR = "平均停留 / SLA"
_NOTES_HEADING = "超时最严重的 {n} 格（红框）："
_NOTES_NONE = "本周没有超出 SLA 的阶段。"
_RANK_MARKS = "①②③④⑤⑥⑦⑧⑨"
_ADVICE = "建议：{advice}"


def _display_width(ch: str) -> float:
    return 1.0 if unicodedata.east_asian_width(ch) in ("W", "F") else 0.55


def wrap_text(text: str, width: float) -> list[str]:
    """Lines of at most ``width`` (a CJK character = 1, others ≈ 0.55), never splitting a number or word."""
    lines: list[str] = []
    line = ""
    for ch in text:
        if line and sum(map(_display_width, line + ch)) > width:
            cut = len(line)
            if ch.isascii() and ch.isalnum():
                while cut > 0 and line[cut - 1].isascii() and line[cut - 1].isalnum():
                    cut -= 1
                cut = cut or len(line)
            lines.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        if line or not ch.isspace():
            line += ch
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _note_lines(heatmap: FunnelHeatmap) -> list[str]:
    if not heatmap.flagged:
        return [_NOTES_NONE]
    lines = [_NOTES_HEADING.format(n=len(heatmap.flagged))]
    for cell in heatmap.flagged:
        mark = _RANK_MARKS[cell.rank - 1] if cell.rank <= len(_RANK_MARKS) else f"{cell.rank}."
        lines.extend(wrap_text(f"{mark} {cell.summary}", _WRAP_WIDTH))
        lines.extend(_INDENT + line for line in wrap_text(_ADVICE.format(advice=cell.advice), _WRAP_WIDTH))
    return lines


def _layout_height(heatmap: FunnelHeatmap) -> int:
    rows = max(1, len(heatmap.reps))
    return _TOP + rows * _ROW + _GAP + len(_note_lines(heatmap)) * _LINE + _BOTTOM


def image_size(heatmap: FunnelHeatmap, dpi: int = DPI) -> tuple[int, int]:
    """(width, height) in pixels of the PNG that ``render_heatmap_png`` makes for this heatmap.

    width = 8 in; height = (1.10 + 0.55 × reps + 0.40 + 0.26 × note lines + 0.20) in; × dpi, rounded.
    """
    return round(_WIDTH * dpi / 100), round(_layout_height(heatmap) * dpi / 100)


# ColorBrewer RdYlGn (matplotlib's "RdYlGn"), reversed: green (0) … yellow (1) … red (2+).
_RDYLGN_R = ("#006837", "#1a9850", "#66bd63", "#a6d96a", "#d9ef8b", "#ffffbf", "#fee08b", "#fdae61", "#f46d43",
             "#d73027", "#a50026")
_EMPTY_COLOUR = (0xE6, 0xE6, 0xE6)
_FLAG_COLOUR = (0xD0, 0x00, 0x00)
_GREY_TEXT = (0x77, 0x77, 0x77)
_BAR_TICKS = (0.0, 0.5, 1.0, 1.5, 2.0)
# font sizes in points (as before: 10 pt cells and labels, 9 pt notes and colour bar, 14 pt title)
_PT, _PT_SMALL, _PT_TITLE = 10, 9, 14


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@cache
def _lut() -> tuple[tuple[int, int, int], ...]:
    """256 colours along the scale, interpolated like matplotlib's LinearSegmentedColormap (N = 256)."""
    stops = [_hex(c) for c in _RDYLGN_R]
    out = []
    for i in range(256):
        x = i / 255 * (len(stops) - 1)
        k = min(int(x), len(stops) - 2)
        f = x - k
        out.append(tuple(round(a + (b - a) * f) for a, b in zip(stops[k], stops[k + 1], strict=True)))
    return tuple(out)  # type: ignore[return-value]


def ratio_colour(ratio: float | None) -> tuple[int, int, int]:
    """The cell colour of a dwell / SLA ratio (grey without one); the scale saturates at 0 and 2."""
    if ratio is None:
        return _EMPTY_COLOUR
    v = min(max(ratio / _RATIO_MAX, 0.0), 1.0)
    return _lut()[min(int(v * 256), 255)]


@cache
def _font(path: str, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, pixels)


@cache
def _glyph_index(path: str) -> Callable[[int], int] | None:
    """The font's code point → glyph index (0: missing), or None when it cannot be read (nothing is checked)."""
    try:
        from matplotlib.ft2font import FT2Font
    except ImportError:
        return None
    return FT2Font(path).get_char_index


@cache
def _has_glyph(path: str, code: int) -> bool:
    index = _glyph_index(path)
    return index is None or index(code) != 0


def _check_glyphs(path: str, texts: list[str]) -> None:
    for ch in sorted({ch for t in texts for ch in t if not ch.isspace()}):
        if not _has_glyph(path, ord(ch)):
            warnings.warn(f"Glyph {ord(ch)} ({ch!r}) missing from font(s) {path}.", RuntimeWarning, stacklevel=3)


def _png(image: Image.Image, dpi: int) -> bytes:
    """``image`` (RGB) as PNG bytes: every row with the Sub filter and zlib level 1, which is 2–3 times
    faster than Pillow's adaptive filtering for these flat-coloured charts, at a similar size."""
    import numpy as np

    rows = np.asarray(image, dtype=np.uint8)
    height, width, _ = rows.shape
    rows = rows.reshape(height, width * 3)
    data = np.empty((height, width * 3 + 1), dtype=np.uint8)
    data[:, 0] = 1  # filter type Sub: each byte minus the same byte of the pixel to its left
    data[:, 1:4] = rows[:, :3]
    np.subtract(rows[:, 3:], rows[:, :-3], out=data[:, 4:])

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    per_metre = round(dpi / 0.0254)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1))
            + chunk(b"IDAT", zlib.compress(data.tobytes(), 1)) + chunk(b"IEND", b""))


class _Canvas:
    """Drawing in the layout's units (hundredths of an inch) on a Pillow image at ``dpi``."""

    def __init__(self, width_px: int, height_px: int, dpi: int, font: str) -> None:
        self.image = Image.new("RGB", (width_px, height_px), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.scale = dpi / 100
        self.dpi = dpi
        self.font_path = font

    def px(self, units: float) -> int:
        return round(units * self.scale)

    def font(self, points: float) -> ImageFont.FreeTypeFont:
        return _font(self.font_path, round(points * self.dpi / 72))

    def text(self, x: float, y: float, text: str, points: float, fill: object = "black", anchor: str = "mm",
             spacing: float = 1.0) -> None:
        """``text`` (lines split on newlines) anchored at (x, y) units: anchor as Pillow's, per block."""
        font = self.font(points)
        lines = text.split("\n")
        line_px = round(points * self.dpi / 72 * 1.2 * spacing)
        total = line_px * (len(lines) - 1)
        top = self.px(y) - {"m": total / 2, "d": total, "s": total}.get(anchor[1], 0)
        for i, line in enumerate(lines):
            self.draw.text((self.px(x), round(top + i * line_px)), line, font=font, fill=fill, anchor=anchor)


def render_heatmap_png(heatmap: FunnelHeatmap, *, title: str | None = None, dpi: int = DPI) -> bytes:
    """The heatmap as PNG bytes, of size ``image_size(heatmap, dpi)``."""
    font = str(cjk_font_path())
    width_px, height_px = image_size(heatmap, dpi)
    rows, cols = max(1, len(heatmap.reps)), len(heatmap.stages)
    c = _Canvas(width_px, height_px, dpi, font)
    draw = c.draw
    grid_w = _WIDTH - _LEFT - _RIGHT
    col_w = grid_w / max(cols, 1)
    texts: list[str] = []

    def cell_box(r: int, col: int, inset: float = 0.0) -> tuple[int, int, int, int]:
        x0, y0 = _LEFT + col * col_w, _TOP + r * _ROW
        return (c.px(x0 + inset * col_w), c.px(y0 + inset * _ROW),
                c.px(x0 + col_w - inset * col_w) - 1, c.px(y0 + _ROW - inset * _ROW) - 1)

    # the grid: one filled rectangle per cell, its text centred
    for r in range(rows):
        row = heatmap.cells[r] if r < len(heatmap.cells) else ()
        for col in range(cols):
            cell = row[col] if col < len(row) else None
            ratio = None if cell is None else cell.ratio
            draw.rectangle(cell_box(r, col), fill=ratio_colour(ratio))
            cx, cy = _LEFT + (col + 0.5) * col_w, _TOP + (r + 0.5) * _ROW
            if cell is None or cell.avg_days is None or cell.ratio is None:
                c.text(cx, cy, _EMPTY_CELL, _PT, _GREY_TEXT)
                texts.append(_EMPTY_CELL)
                continue
            colour = "white" if cell.ratio >= 1.7 or cell.ratio <= 0.25 else "black"
            label = _CELL.format(avg=cell.avg_days, ratio=cell.ratio)
            c.text(cx, cy, label, _PT, colour, spacing=0.95)
            texts.append(label)
    if not cols:  # no stage has an SLA: an empty grid
        draw.rectangle((c.px(_LEFT), c.px(_TOP), c.px(_LEFT + grid_w) - 1, c.px(_TOP + rows * _ROW) - 1),
                       fill=_EMPTY_COLOUR)

    # the flagged cells: a red outline and the rank in a red badge
    stage_keys = [s.key for s in heatmap.stages]
    for flag in heatmap.flagged:
        r, col = heatmap.reps.index(flag.rep), stage_keys.index(flag.stage)
        draw.rectangle(cell_box(r, col, 0.03), outline=_FLAG_COLOUR, width=max(1, round(3 * dpi / 72)))
        mark = _RANK_MARKS[flag.rank - 1] if flag.rank <= len(_RANK_MARKS) else str(flag.rank)
        bx, by = _LEFT + (col + 0.1) * col_w, _TOP + (r + 0.22) * _ROW
        badge = c.font(_PT_SMALL)
        left, top, right, bottom = draw.textbbox((c.px(bx), c.px(by)), mark, font=badge, anchor="lm")
        pad = max(1, round(0.15 * _PT_SMALL * dpi / 72))
        draw.rounded_rectangle((left - pad, top - pad, right + pad, bottom + pad), radius=pad, fill=_FLAG_COLOUR)
        draw.text((c.px(bx), c.px(by)), mark, font=badge, fill="white", anchor="lm")
        texts.append(mark)

    # column labels above the grid, row labels left of it
    for col, (stage, sla) in enumerate(zip(heatmap.stages, heatmap.stage_slas, strict=True)):
        label = _COLUMN.format(name=stage.name, sla=sla)
        c.text(_LEFT + (col + 0.5) * col_w, _TOP - 8, label, _PT, anchor="md", spacing=0.95)
        texts.append(label)
    for r, name in enumerate(list(heatmap.rep_names) or [_NO_REPS]):
        c.text(_LEFT - 8, _TOP + (r + 0.5) * _ROW, name, _PT, anchor="rm")
        texts.append(name)

    # the colour bar: the scale top (2.0, red) to bottom (0.0, green), ticks and its label
    bar_x0, bar_x1 = _WIDTH - _RIGHT + 25, _WIDTH - _RIGHT + 25 + 18
    top_px, bottom_px = c.px(_TOP), c.px(_TOP + rows * _ROW) - 1
    span = max(1, bottom_px - top_px)
    for y in range(top_px, bottom_px + 1):
        draw.line((c.px(bar_x0), y, c.px(bar_x1) - 1, y), fill=ratio_colour((bottom_px - y) / span * _RATIO_MAX))
    draw.rectangle((c.px(bar_x0), top_px, c.px(bar_x1) - 1, bottom_px), outline="black", width=1)
    small = c.font(_PT_SMALL)
    for tick in _BAR_TICKS:
        y = round(bottom_px - tick / _RATIO_MAX * span)
        draw.line((c.px(bar_x1) - 1, y, c.px(bar_x1) + c.px(3), y), fill="black", width=1)
        draw.text((c.px(bar_x1) + c.px(5), y), f"{tick:.1f}", font=small, fill="black", anchor="lm")
    label = Image.new("L", (span, round(_PT_SMALL * dpi / 72 * 1.5)), 0)
    ImageDraw.Draw(label).text((span // 2, label.height // 2), _COLORBAR, font=small, fill=255, anchor="mm")
    label = label.rotate(90, expand=True)
    c.image.paste("black", (c.px(bar_x1) + c.px(32), top_px), label)
    texts.append(_COLORBAR)

    # the title and the notes under the grid
    end_day = heatmap.week_end - timedelta(days=1)
    heading = title or _TITLE.format(start=heatmap.week_start, end=end_day)
    c.text(_WIDTH / 2, 30, heading, _PT_TITLE)
    texts.append(heading)
    y = _TOP + rows * _ROW + _GAP
    for line in _note_lines(heatmap):
        c.text(30, y + _LINE / 2, line, _PT_SMALL, anchor="lm")
        texts.append(line)
        y += _LINE
    _check_glyphs(font, texts)

    return _png(c.image, dpi)
