"""The funnel heatmap as a PNG (PRODUCT.md §1.6): reps × stages, coloured by dwell / SLA, the three
worst overtime cells outlined in red and listed with their suggestions under the grid.

Drawn with Pillow and numpy (issue 9: one image per manager every Monday; matplotlib took ~0.3 s an
image), every text in the CJK font from ``domain.fonts`` so Chinese labels never turn into boxes; a
character the font lacks raises a "Glyph … missing from font" warning, as matplotlib did. Each line of
text becomes a coverage mask once, kept across images (stage names, cell values, advice repeat), put
together from its characters' glyphs, each rendered once by Pillow, as Pillow's renderer puts them
together (a line it would lay out otherwise is left to Pillow whole); the cells, bars and masks are put on
a numpy array with the rounding of Pillow's ImageDraw, so the pixels are those ImageDraw would draw, at a
fraction of the cost (Pillow's glyph rendering was most of it).
The layout is matplotlib's of before (same size, grid, colour scale RdYlGn reversed, cell texts, red
outlines with rank marks, colour bar, notes). Returns bytes; writes nothing.
"""

from __future__ import annotations

import itertools
import struct
import threading
import unicodedata
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from datetime import timedelta
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from domain.fonts import cjk_font_path
from domain.funnel import FunnelHeatmap

try:  # see _deflate
    from isal import isal_zlib as _isal_zlib
except ImportError:
    _isal_zlib = None

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
    used = 0.0  # the display width of ``line``, summed left to right as it grows
    for ch in text:
        w = _display_width(ch)
        if line and used + w > width:
            cut = len(line)
            if ch.isascii() and ch.isalnum():
                while cut > 0 and line[cut - 1].isascii() and line[cut - 1].isalnum():
                    cut -= 1
                cut = cut or len(line)
            lines.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
            used = sum(map(_display_width, line))
        if line or not ch.isspace():
            line += ch
            used += w
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


def _size(heatmap: FunnelHeatmap, note_lines: int, dpi: int) -> tuple[int, int]:
    rows = max(1, len(heatmap.reps))
    height = _TOP + rows * _ROW + _GAP + note_lines * _LINE + _BOTTOM
    return round(_WIDTH * dpi / 100), round(height * dpi / 100)


def image_size(heatmap: FunnelHeatmap, dpi: int = DPI) -> tuple[int, int]:
    """(width, height) in pixels of the PNG that ``render_heatmap_png`` makes for this heatmap.

    width = 8 in; height = (1.10 + 0.55 × reps + 0.40 + 0.26 × note lines + 0.20) in; × dpi, rounded.
    """
    return _size(heatmap, len(_note_lines(heatmap)), dpi)


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


def _deflate(data: np.ndarray) -> bytes:
    """The PNG's zlib stream. With ISA-L's deflate (``isal``, a dependency; zlib if it cannot be imported): level 1
    takes ~1.7 ms for a 10-rep chart where zlib takes ~11 ms (most of the drawing time), the PNG ~10 %
    larger. Else zlib level 1 with a 16 K-entry hash table (memLevel 7), ~10 % faster than the default 8
    here (less table to slide each 32 KB of input) at the same size."""
    if _isal_zlib is not None:
        return _isal_zlib.compress(data, 1)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 7)
    return compressor.compress(data) + compressor.flush()


def _png(data: np.ndarray, dpi: int) -> bytes:
    """PNG bytes of ``data``: the image's rows as PNG filters them (height × (1 + width·3), RGB), every row
    unfiltered (its first byte 0), deflated at level 1, which is 2–3 times faster than Pillow's adaptive
    filtering for these flat-coloured charts. Unfiltered rows deflate smaller than with the Sub filter here
    (a 10-rep chart: ~175 KB instead of ~209 KB with ISA-L, ~167 KB instead of ~185 KB with zlib; runs of one
    colour repeat whole, where Sub leaves every edge as a difference), and need no pass to filter them: the
    canvas draws on the rows in place. The weekly job writes every byte of them, base64, into the outbox."""
    height, width = data.shape[0], (data.shape[1] - 1) // 3

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    per_metre = round(dpi / 0.0254)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1))
            + chunk(b"IDAT", _deflate(data)) + chunk(b"IEND", b""))


class _Mask(NamedTuple):
    """A coverage mask (0–255, as Pillow renders text and shapes) and where its top-left corner goes relative
    to the point it is drawn at."""

    coverage: np.ndarray
    left: int
    top: int


class _MaskCache:
    """Masks (text lines, badges, the colour bar's label) by what they show, kept across images (stage names,
    cell values, advice lines repeat) up to ``max_bytes``, the least recently used dropped first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._masks: OrderedDict[Hashable, _Mask] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], tuple[np.ndarray | Image.Image, int, int]]) -> _Mask:
        with self._lock:
            found = self._masks.get(key)
            if found is not None:
                self._masks.move_to_end(key)
                return found
        pixels, left, top = make()
        mask = _Mask(np.asarray(pixels, dtype=np.uint8), left, top)
        mask.coverage.flags.writeable = False
        with self._lock:
            if key not in self._masks:
                self._masks[key] = mask
                self.bytes += mask.coverage.nbytes
            while self.bytes > self.max_bytes and len(self._masks) > 1:
                _, dropped = self._masks.popitem(last=False)
                self.bytes -= dropped.coverage.nbytes
        return mask

    def __len__(self) -> int:
        return len(self._masks)

    def clear(self) -> None:
        with self._lock:
            self._masks.clear()
            self.bytes = 0


_MASKS = _MaskCache(16 * 2**20)  # at 150 dpi a line of notes takes ≈ 25 KB, a cell value ≈ 1.5 KB


def _pillow_line(path: str, pixels: int, text: str, anchor: str, start: int = 0) -> tuple[Image.Image, int, int]:
    """One line of ``text`` drawn by ImageDraw.text (at the anchor point, or ``start``/64 pixel right of it),
    cut to its ink, and where its ink's top-left corner is relative to the anchor point."""
    # Drawn on room for any line (2 em a character each side, 2 em up and down) and cut to its ink: that
    # saves Pillow laying the text out twice (getbbox, then text). Measured first should it not fit.
    font = _font(path, pixels)
    x, y = pixels * (2 * len(text) + 2), 2 * pixels
    mask = Image.new("L", (2 * x, 2 * y), 0)
    ImageDraw.Draw(mask).text((x + start / 64, y), text, font=font, fill=255, anchor=anchor)
    box = mask.getbbox()
    if box is None:  # nothing to see (spaces)
        return Image.new("L", (0, 0)), 0, 0
    if box[0] > 0 and box[1] > 0 and box[2] < mask.width and box[3] < mask.height:
        return mask.crop(box), box[0] - x, box[1] - y
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    mask = Image.new("L", (right - left + 1, bottom - top), 0)  # + 1: room for the start
    ImageDraw.Draw(mask).text((-left + start / 64, -top), text, font=font, fill=255, anchor=anchor)
    box = mask.getbbox()
    if box is None:
        return Image.new("L", (0, 0)), 0, 0
    return mask.crop(box), left + box[0], top + box[1]


class _Glyph(NamedTuple):
    """A piece of a line (one character, or a run of letters) as Pillow renders it: its ink (coverage, cut),
    the ink's top-left corner relative to the pen on the baseline, and the pen's advance in 1/64 pixel."""

    ink: np.ndarray
    left: int
    top: int
    advance: int


@lru_cache(maxsize=8192)
def _glyph(path: str, pixels: int, piece: str, start: int = 0) -> _Glyph:
    """``piece`` drawn with the pen ``start``/64 pixel right of a whole pixel (a run's glyphs are placed from
    there; a lone character is placed at the pen's whole pixel, so it is drawn at 0)."""
    pixels_image, left, top = _pillow_line(path, pixels, piece, "ls", start)
    ink = np.asarray(pixels_image, dtype=np.uint8)
    ink.flags.writeable = False
    return _Glyph(ink, left, top, round(_font(path, pixels).getlength(piece) * 64))


@lru_cache(maxsize=256)
def _baseline_shift(path: str, pixels: int, vertical: str) -> int:
    """How far down from the anchor point the baseline is, for a vertical anchor that does not depend on the
    text (a: ascender, m: middle, s: baseline, d: descender)."""
    font = _font(path, pixels)
    return font.getbbox("x", anchor="l" + vertical)[1] - font.getbbox("x", anchor="ls")[1]


def _pixel(value: int) -> int:
    """FreeType's 26.6 fixed point to whole pixels, rounded as Pillow rounds a glyph's pen position."""
    return ((value + 32) & -64) >> 6


@cache
def _ideograph(char: str) -> bool:
    code = ord(char)
    return 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF


@cache
def _letter(char: str) -> bool:
    """A letter of an alphabet (or a combining mark): shaped in a run of its script, it may change the
    glyphs beside it (Pillow draws the 7 of "A7" a shade lighter than a lone 7)."""
    return unicodedata.category(char)[0] == "M" or (char.isalpha() and not _ideograph(char))


_BRACKETS = dict(zip(")]}）】〕］｝〉》」』〗〙〛", "([{（【〔［｛〈《「『〖〘〚", strict=True))
_OPENERS = frozenset(_BRACKETS.values())


def _bracket_pairs(text: str) -> dict[int, int]:
    """Each closing bracket's opening one (by index), paired as the layout pairs them for their script."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch in _OPENERS:
            stack.append(i)
        elif ch in _BRACKETS:
            for depth in range(len(stack) - 1, -1, -1):
                if text[stack[depth]] == _BRACKETS[ch]:
                    pairs[i] = stack[depth]
                    del stack[depth:]
                    break
    return pairs


def _brackets_all_paired(text: str, pairs: dict[int, int]) -> bool:
    """Every bracket in ``text`` one of ``_BRACKETS``' pairs and paired, and no quotation marks (the layout
    pairs those too, in ways not followed here)."""
    if any(unicodedata.category(ch) in ("Pi", "Pf") or ch in "\"'" for ch in text):
        return False
    brackets = [ch for ch in text if unicodedata.category(ch) in ("Ps", "Pe")]
    return all(ch in _BRACKETS or ch in _OPENERS for ch in brackets) and len(brackets) == 2 * len(pairs)


def _pieces(text: str) -> list[str] | None:
    """``text`` cut into what Pillow draws the same alone as in the line: ideographs, and digits, punctuation,
    symbols and spaces among them, one by one; a run with letters as one piece: from its first letter (from
    the start of the line when no ideograph is before it) to the next ideograph, and on to past the closing
    bracket of any bracket it opens (the layout gives the closing bracket, and what follows it, the opening
    one's script). None where that cannot be cut so: a bracket opened before such a run closed in it, an
    unpaired bracket or a quotation mark beside letters, a combining mark."""
    if not any(map(_letter, text)):
        return list(text)
    if any(unicodedata.category(ch)[0] == "M" for ch in text):
        return None
    pairs = _bracket_pairs(text)
    if not _brackets_all_paired(text, pairs):
        return None
    closes = {opened: closed for closed, opened in pairs.items()}
    pieces: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if _ideograph(text[i]):
            pieces.append(text[i])
            i += 1
            continue
        j = i
        while j < n and not _ideograph(text[j]):
            j += 1
        first = next((k for k in range(i, j) if _letter(text[k])), None)
        if first is None:
            pieces += text[i:j]
            i = j
            continue
        first = first if i else 0
        pieces += text[i:first]
        end, k = j, first
        while k < end:  # the run reaches past the closing brackets of what it opens
            if k in pairs and pairs[k] < first:
                return None
            if closes.get(k, -1) >= end:
                end = closes[k] + 1
                while end < n and not _ideograph(text[end]):
                    end += 1
            k += 1
        pieces.append(text[first:end])
        i = end
    return pieces


@lru_cache(maxsize=65536)
def _apart(path: str, pixels: int, before: str, after: str) -> bool:
    """Whether the layout puts ``after`` right at the end of ``before``'s advance (no kerning, no ligature
    between them: the length of the two is the sum of theirs)."""
    font = _font(path, pixels)
    return round(font.getlength(before + after) * 64) == round(font.getlength(before) * 64) + \
        round(font.getlength(after) * 64)


def _glyph_line(path: str, pixels: int, text: str, anchor: str) -> tuple[np.ndarray, int, int] | None:
    """The line as ``_pillow_line`` would give it, put together from cached pieces as Pillow's renderer puts
    its glyphs together: each at the pen's whole pixel, blended over those before it (its ``src + target ·
    (255 − src) / 255``), the anchor's offset taken as Pillow takes it. A chart's notes and names are new
    lines every week but the same few hundred characters, and rendering a CJK glyph is most of Pillow's
    ~25 µs a character. None where the line is not laid out piece after piece (kerning or a ligature between
    two neighbours: their shaped length differs from the sum of their advances), or the anchor depends on
    the text: then Pillow draws the line."""
    pieces = _pieces(text)
    if pieces is None or anchor[0] not in "lmr" or anchor[1] not in "amsd":
        return None
    placed, pen = [], 0
    for piece in pieces:
        if len(piece) == 1:
            g = _glyph(path, pixels, piece)
            x = _pixel(pen) + g.left
        else:
            g = _glyph(path, pixels, piece, pen & 63)
            x = (pen >> 6) + g.left
        if g.ink.size:
            placed.append((g, x))
        pen += g.advance
    if not all(_apart(path, pixels, a, b) for a, b in itertools.pairwise(pieces)):
        return None
    if not placed:
        return np.zeros((0, 0), dtype=np.uint8), 0, 0
    x0 = min(x for _, x in placed)
    y0 = min(g.top for g, _ in placed)
    out = np.zeros((max(g.top + g.ink.shape[0] for g, _ in placed) - y0,
                    max(x + g.ink.shape[1] for g, x in placed) - x0), dtype=np.uint8)
    inked = x0  # every piece so far lies left of this column
    for g, x in placed:
        height, width = g.ink.shape
        region = out[g.top - y0:g.top - y0 + height, x - x0:x - x0 + width]
        if x >= inked:  # nothing under it yet
            region[...] = g.ink
        else:
            t = region * (255 - g.ink.astype(np.uint16)) + 128
            t = (((t >> 8) + t) >> 8) + g.ink
            np.minimum(t, 255, out=t)
            region[...] = t
        inked = max(inked, x + width)
    x_anchor = {"l": 0, "m": _pixel(pen // 2), "r": _pixel(pen)}[anchor[0]]
    return out, x0 - x_anchor, y0 + _baseline_shift(path, pixels, anchor[1])


def _text_mask(path: str, pixels: int, text: str, anchor: str) -> _Mask:
    """One line of ``text`` as Pillow draws it, cut to its ink, for drawing anchored at a point."""
    def draw() -> tuple[np.ndarray | Image.Image, int, int]:
        return _glyph_line(path, pixels, text, anchor) or _pillow_line(path, pixels, text, anchor)

    return _MASKS.get(("text", path, pixels, text, anchor), draw)


@lru_cache(maxsize=64)
def _text_box(path: str, pixels: int, text: str, anchor: str) -> tuple[int, int, int, int]:
    """``ImageDraw.textbbox`` of ``text`` drawn at (0, 0) (the glyphs' boxes, wider than their ink)."""
    return _font(path, pixels).getbbox(text, anchor=anchor)


def _rounded_mask(width: int, height: int, radius: int) -> _Mask:
    def draw() -> tuple[Image.Image, int, int]:
        mask = Image.new("L", (width, height), 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, width - 1, height - 1), radius=radius, fill=255)
        return mask, 0, 0

    return _MASKS.get(("rounded", width, height, radius), draw)


def _colorbar_label_mask(path: str, pixels: int, span: int, height: int) -> _Mask:
    """The colour bar's label, turned to read upwards along a bar ``span`` pixels high."""
    def draw() -> tuple[Image.Image, int, int]:
        label = Image.new("L", (span, height), 0)
        ImageDraw.Draw(label).text((span // 2, height // 2), _COLORBAR, font=_font(path, pixels), fill=255,
                                   anchor="mm")
        return label.rotate(90, expand=True), 0, 0

    return _MASKS.get(("colorbar", path, pixels, span, height), draw)


@lru_cache(maxsize=64)
def _colorbar_strip(span: int) -> np.ndarray:
    """The colour bar's colours, top (2.0) to bottom (0.0), one per pixel row of a bar ``span`` + 1 high."""
    strip = np.array([ratio_colour((span - i) / span * _RATIO_MAX) for i in range(span + 1)], dtype=np.uint8)
    strip.flags.writeable = False
    return strip


@lru_cache(maxsize=1024)
def _run(colour: bytes, pixels: int) -> np.ndarray:
    """``pixels`` pixels of ``colour`` (RGB bytes), as a row of bytes (read-only)."""
    return np.frombuffer(colour * pixels, dtype=np.uint8)


@lru_cache(maxsize=1024)
def _blend_lut(background: bytes, colour: tuple[int, int, int]) -> np.ndarray:
    """``colour`` over ``background`` (RGB) at coverage 0…255, rounded as Pillow's blend: 256 × RGB."""
    alpha = np.arange(256, dtype=np.uint32)[:, None]
    below, above = (np.frombuffer(bytes(c), dtype=np.uint8).astype(np.uint32) for c in (background, colour))
    t = below * (255 - alpha) + above * alpha + 128
    lut = (((t >> 8) + t) >> 8).astype(np.uint8)
    lut.flags.writeable = False
    return lut


class _Patches:
    """Text blended over one colour, as pixel rows, by (mask, background, colour), kept across images up to
    ``max_bytes`` (with the masks they hold), the least recently used dropped first: a cell's figures come
    back on the same colour (the colour is the ratio's) in chart after chart."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._patches: OrderedDict[tuple[int, bytes, tuple[int, int, int]], tuple[np.ndarray, np.ndarray]] = \
            OrderedDict()
        self._lock = threading.Lock()

    def get(self, mask: np.ndarray, background: bytes, colour: tuple[int, int, int]) -> np.ndarray:
        key = (id(mask), background, colour)
        with self._lock:
            found = self._patches.get(key)
            if found is not None and found[0] is mask:  # the id is that mask's, not a dropped one's
                self._patches.move_to_end(key)
                return found[1]
        height, width = mask.shape
        patch = _blend_lut(background, colour).take(mask, axis=0).reshape(height, 3 * width)
        patch.flags.writeable = False
        with self._lock:
            if key not in self._patches:  # holding the mask keeps its id from being reused meanwhile
                self._patches[key] = (mask, patch)
                self.bytes += mask.nbytes + patch.nbytes
            while self.bytes > self.max_bytes and len(self._patches) > 1:
                _, (old_mask, old_patch) = self._patches.popitem(last=False)
                self.bytes -= old_mask.nbytes + old_patch.nbytes
        return patch


_PATCHES = _Patches(16 * 2**20)


def _blended(mask: np.ndarray, background: bytes, colour: tuple[int, int, int], keep: bool) -> np.ndarray:
    """``colour`` over ``background`` (RGB bytes) with coverage ``mask``, as pixel rows; kept for next time when
    ``keep`` (a mask of the mask cache, not a part of one cut at the image's edge)."""
    if keep:
        return _PATCHES.get(mask, background, colour)
    height, width = mask.shape
    return _blend_lut(background, colour).take(mask, axis=0).reshape(height, 3 * width)


_BLACK, _WHITE = (0, 0, 0), (0xFF, 0xFF, 0xFF)


class _Canvas:
    """Drawing in the layout's units (hundredths of an inch) on RGB pixel rows at ``dpi`` (an array of
    height × width·3 bytes). Text and shapes are blended as Pillow's ImageDraw blends them, same rounding,
    so the pixels are those it would draw."""

    def __init__(self, width_px: int, height_px: int, dpi: int, font: str) -> None:
        # the PNG's rows: a filter byte (0, None) then the pixels, which ``rows`` is a view of
        self.data = np.full((height_px, 1 + width_px * 3), 0xFF, dtype=np.uint8)
        self.data[:, 0] = 0
        self.rows = self.data[:, 1:]
        self.width, self.height = width_px, height_px
        self.scale = dpi / 100
        self.dpi = dpi
        self.font_path = font

    def px(self, units: float) -> int:
        return round(units * self.scale)

    def font_pixels(self, points: float) -> int:
        return round(points * self.dpi / 72)

    def fill(self, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
        """``box`` (x0, y0, x1, y1 in pixels, inclusive as ImageDraw's) filled with ``colour``."""
        x0, y0 = max(box[0], 0), max(box[1], 0)
        x1, y1 = min(box[2], self.width - 1), min(box[3], self.height - 1)
        if x0 <= x1 and y0 <= y1:
            self.rows[y0:y1 + 1, 3 * x0:3 * x1 + 3] = _run(bytes(colour), x1 - x0 + 1)

    def outline(self, box: tuple[int, int, int, int], colour: tuple[int, int, int], width: int) -> None:
        """``ImageDraw.rectangle(box, outline=colour, width=width)``: a frame ``width`` pixels thick inside box."""
        x0, y0, x1, y1 = box
        self.fill((x0, y0, x1, y0 + width - 1), colour)
        self.fill((x0, y1 - width + 1, x1, y1), colour)
        self.fill((x0, y0, x0 + width - 1, y1), colour)
        self.fill((x1 - width + 1, y0, x1, y1), colour)

    def blend(self, x: int, y: int, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
        """``colour`` over the pixels from (x, y) with coverage ``mask``: out = (bg·(255 − a) + colour·a) / 255
        rounded as Pillow rounds it (its DIV255), clipped to the image."""
        height, width = mask.shape
        if not height or not width:
            return
        whole = not (x < 0 or y < 0 or x + width > self.width or y + height > self.height)
        if not whole:
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + width, self.width), min(y + height, self.height)
            if x0 >= x1 or y0 >= y1:
                return
            mask = mask[y0 - y:y1 - y, x0 - x:x1 - x]
            x, y, (height, width) = x0, y0, mask.shape
        region = self.rows[y:y + height, 3 * x:3 * (x + width)]
        background = region[0, :3].tobytes()
        if region.tobytes() == background * (width * height):  # one colour under it (text on a cell)
            region[...] = _blended(mask, background, colour, whole and not mask.flags.writeable)
            return
        alpha = np.repeat(mask, 3, axis=1).astype(np.uint16)
        t = region * (255 - alpha)
        t += _run(bytes(colour), width) * alpha
        t += 128
        region[...] = ((t >> 8) + t) >> 8

    def draw(self, x: int, y: int, mask: _Mask, colour: tuple[int, int, int]) -> None:
        self.blend(x + mask.left, y + mask.top, mask.coverage, colour)

    def line_mask(self, points: float, text: str, anchor: str) -> _Mask:
        return _text_mask(self.font_path, self.font_pixels(points), text, anchor)

    def text(self, x: float, y: float, text: str, points: float, fill: tuple[int, int, int] = _BLACK,
             anchor: str = "mm", spacing: float = 1.0) -> None:
        """``text`` (lines split on newlines) anchored at (x, y) units: anchor as Pillow's, per block."""
        lines = text.split("\n")
        line_px = round(points * self.dpi / 72 * 1.2 * spacing)
        total = line_px * (len(lines) - 1)
        top = self.px(y) - {"m": total / 2, "d": total, "s": total}.get(anchor[1], 0)
        for i, line in enumerate(lines):
            self.draw(self.px(x), round(top + i * line_px), self.line_mask(points, line, anchor), fill)


def render_heatmap_png(heatmap: FunnelHeatmap, *, title: str | None = None, dpi: int = DPI) -> bytes:
    """The heatmap as PNG bytes, of size ``image_size(heatmap, dpi)``."""
    font = str(cjk_font_path())
    notes = _note_lines(heatmap)
    width_px, height_px = _size(heatmap, len(notes), dpi)
    rows, cols = max(1, len(heatmap.reps)), len(heatmap.stages)
    c = _Canvas(width_px, height_px, dpi, font)
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
            c.fill(cell_box(r, col), ratio_colour(ratio))
            cx, cy = _LEFT + (col + 0.5) * col_w, _TOP + (r + 0.5) * _ROW
            if cell is None or cell.avg_days is None or cell.ratio is None:
                c.text(cx, cy, _EMPTY_CELL, _PT, _GREY_TEXT)
                texts.append(_EMPTY_CELL)
                continue
            colour = _WHITE if cell.ratio >= 1.7 or cell.ratio <= 0.25 else _BLACK
            label = _CELL.format(avg=cell.avg_days, ratio=cell.ratio)
            c.text(cx, cy, label, _PT, colour, spacing=0.95)
            texts.append(label)
    if not cols:  # no stage has an SLA: an empty grid
        c.fill((c.px(_LEFT), c.px(_TOP), c.px(_LEFT + grid_w) - 1, c.px(_TOP + rows * _ROW) - 1), _EMPTY_COLOUR)

    # the flagged cells: a red outline and the rank in a red badge
    stage_keys = [s.key for s in heatmap.stages]
    for flag in heatmap.flagged:
        r, col = heatmap.reps.index(flag.rep), stage_keys.index(flag.stage)
        c.outline(cell_box(r, col, 0.03), _FLAG_COLOUR, max(1, round(3 * dpi / 72)))
        mark = _RANK_MARKS[flag.rank - 1] if flag.rank <= len(_RANK_MARKS) else str(flag.rank)
        bx, by = c.px(_LEFT + (col + 0.1) * col_w), c.px(_TOP + (r + 0.22) * _ROW)
        left, top, right, bottom = _text_box(font, c.font_pixels(_PT_SMALL), mark, "lm")
        pad = max(1, round(0.15 * _PT_SMALL * dpi / 72))
        badge = _rounded_mask(right - left + 2 * pad + 1, bottom - top + 2 * pad + 1, pad)
        c.draw(bx + left - pad, by + top - pad, badge, _FLAG_COLOUR)
        c.draw(bx, by, c.line_mask(_PT_SMALL, mark, "lm"), _WHITE)
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
    bar_x0, bar_x1 = c.px(_WIDTH - _RIGHT + 25), c.px(_WIDTH - _RIGHT + 25 + 18)
    top_px, bottom_px = c.px(_TOP), c.px(_TOP + rows * _ROW) - 1
    span = max(1, bottom_px - top_px)
    strip = _colorbar_strip(span)[span - (bottom_px - top_px):]
    c.rows[top_px:bottom_px + 1, 3 * bar_x0:3 * bar_x1] = np.tile(strip, bar_x1 - bar_x0)
    c.outline((bar_x0, top_px, bar_x1 - 1, bottom_px), _BLACK, 1)
    for tick in _BAR_TICKS:
        y = round(bottom_px - tick / _RATIO_MAX * span)
        c.fill((bar_x1 - 1, y, bar_x1 + c.px(3), y), _BLACK)
        c.draw(bar_x1 + c.px(5), y, c.line_mask(_PT_SMALL, f"{tick:.1f}", "lm"), _BLACK)
    label = _colorbar_label_mask(font, c.font_pixels(_PT_SMALL), span, round(_PT_SMALL * dpi / 72 * 1.5))
    c.draw(bar_x1 + c.px(32), top_px, label, _BLACK)
    texts.append(_COLORBAR)

    # the title and the notes under the grid
    end_day = heatmap.week_end - timedelta(days=1)
    heading = title or _TITLE.format(start=heatmap.week_start, end=end_day)
    c.text(_WIDTH / 2, 30, heading, _PT_TITLE)
    texts.append(heading)
    y = _TOP + rows * _ROW + _GAP
    for line in notes:
        c.text(30, y + _LINE / 2, line, _PT_SMALL, anchor="lm")
        texts.append(line)
        y += _LINE
    _check_glyphs(font, texts)

    return _png(c.data, dpi)


def prepare_texts(charts: Iterable[tuple[Iterable[str], str | None]], *, until: Callable[[], bool] = lambda: False,
                  dpi: int = DPI) -> int:
    """Lay out ahead the texts peculiar to the charts to come: for each chart, given as (rep names, title), its row
    labels and its title, chart by chart, so that ``render_heatmap_png`` finds them in the mask cache (e.g. while
    the charts' figures are being read from the database, on the other core). Stops when ``until()`` says so or
    once the cache is half full (the charts' own texts need the rest). Changes no pixel. Returns how many lines
    were laid out."""
    font = str(cjk_font_path())
    done = 0
    for names, title in charts:
        lines = [(_PT, line, "rm") for name in names for line in name.split("\n")]
        lines += [(_PT_TITLE, line, "mm") for line in (title or "").split("\n") if title]
        for points, line, anchor in lines:
            if until() or _MASKS.bytes > _MASKS.max_bytes // 2:
                return done
            _text_mask(font, round(points * dpi / 72), line, anchor)
            done += 1
    return done
