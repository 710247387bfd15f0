"""The heatmap image: a real PNG of the promised size, Chinese rendered from a font that has the glyphs."""

from __future__ import annotations

import struct
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import FT2Font

from domain.fonts import cjk_font_path, find_cjk_font
from domain.funnel import funnel_heatmap
from domain.funnel_chart import image_size, render_heatmap_png, wrap_text
from tests.domain.test_funnel import NAMES, REPS, SEEDED_WEEK, START

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def glyph_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_the_seeded_week_renders_without_missing_glyphs_at_the_expected_size() -> None:
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_heatmap_png(heatmap)

    assert glyph_warnings(caught) == []
    # 8 in wide; 1.10 + 3 rows × 0.55 + 0.40 + 7 note lines × 0.26 + 0.20 = 5.17 in high; at 150 dpi
    assert image_size(heatmap) == (1200, 776)
    assert png_size(png) == (1200, 776)


def test_more_reps_make_a_taller_image() -> None:
    heatmap = funnel_heatmap(SEEDED_WEEK, [*REPS, "zhaoliu"], START, rep_names=NAMES)
    png = render_heatmap_png(heatmap, dpi=100)
    assert png_size(png) == image_size(heatmap, dpi=100) == (800, 572)


def test_an_empty_team_still_renders() -> None:
    heatmap = funnel_heatmap([], [], START)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_heatmap_png(heatmap, dpi=100)
    assert glyph_warnings(caught) == []
    assert png_size(png) == image_size(heatmap, dpi=100)


def test_the_font_found_has_every_character_the_chart_writes() -> None:
    path = find_cjk_font()
    assert path is not None and path == cjk_font_path() and path.is_file()
    font = FT2Font(str(path))
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    text = "销售漏斗热力图至超时最严重的格红框本周没有出阶段平均停留—①②③×·：，（）。" + "".join(
        f.suggestion for f in heatmap.flagged
    ) + "".join(s.name for s in heatmap.stages)
    missing = [ch for ch in set(text) if not ch.isspace() and font.get_char_index(ord(ch)) == 0]
    assert missing == []


def test_the_glyph_check_would_catch_a_latin_only_font() -> None:
    # Guards the test above: the same Chinese text in DejaVu Sans does raise the warning we look for.
    fig = Figure(figsize=(2, 1))
    FigureCanvasAgg(fig)
    fig.text(0.1, 0.5, "方案演示", fontproperties=FontProperties(family="DejaVu Sans"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    assert glyph_warnings(caught)


def test_long_suggestions_wrap_without_splitting_numbers() -> None:
    lines = wrap_text("张三·方案演示：平均停留 27.0 天，是 SLA（10 天）的 2.7 倍。", 10)
    assert "".join(lines).replace(" ", "") == "张三·方案演示：平均停留27.0天，是SLA（10天）的2.7倍。"
    assert all("27.0" in line or "27" not in line for line in lines)
    assert all("SLA" in line or "SL" not in line for line in lines)


def test_the_png_decodes_and_shows_each_cell_in_its_colour() -> None:
    """A known funnel: every cell filled with its ratio's colour on matplotlib's RdYlGn_r scale (grey when
    empty), the flagged cells outlined in red."""
    import io

    from matplotlib import colormaps
    from PIL import Image

    from domain import funnel_chart as FC

    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    image = Image.open(io.BytesIO(render_heatmap_png(heatmap)))
    image.load()
    assert image.size == image_size(heatmap) and image.format == "PNG"
    rgb = image.convert("RGB")
    scale = FC.DPI / 100
    col_w = (FC._WIDTH - FC._LEFT - FC._RIGHT) / len(heatmap.stages)
    scale_colours = colormaps["RdYlGn_r"]
    for r, row in enumerate(heatmap.cells):
        for c, cell in enumerate(row):
            x = round((FC._LEFT + (c + 0.9) * col_w) * scale)
            y = round((FC._TOP + (r + 0.85) * FC._ROW) * scale)
            got = rgb.getpixel((x, y))
            if cell.ratio is None:
                assert got == (0xE6, 0xE6, 0xE6)
                continue
            want = tuple(round(v * 255) for v in scale_colours(min(cell.ratio / 2, 1.0))[:3])
            assert all(abs(a - b) <= 3 for a, b in zip(got, want, strict=True)), (cell, got, want)
            edge = rgb.getpixel((round((FC._LEFT + (c + 0.035) * col_w) * scale), y))
            assert (edge == (0xD0, 0, 0)) == cell.flagged, (cell, edge)
    assert sum(cell.flagged for row in heatmap.cells for cell in row) == 3


def test_a_missing_glyph_is_reported_like_matplotlib_did(monkeypatch) -> None:
    from domain import funnel_chart as FC

    monkeypatch.setattr(FC, "_has_glyph", lambda path, code: code < 128)  # a Latin-only font
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_heatmap_png(heatmap)
    assert glyph_warnings(caught)


def _decoded(png: bytes):
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def test_text_is_drawn_as_pillow_draws_it() -> None:
    """The chart blends cached text masks itself; the title must come out pixel for pixel as ImageDraw.text."""
    from PIL import Image, ImageDraw, ImageFont

    from domain import funnel_chart as FC

    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    image = _decoded(render_heatmap_png(heatmap, title="张三 团队漏斗热力图 SLA 1.7×"))
    expected = Image.new("RGB", image.size, "white")
    font = ImageFont.truetype(str(cjk_font_path()), round(FC._PT_TITLE * FC.DPI / 72))
    ImageDraw.Draw(expected).text((round(FC._WIDTH / 2 * FC.DPI / 100), round(30 * FC.DPI / 100)),
                                  "张三 团队漏斗热力图 SLA 1.7×", font=font, fill="black", anchor="mm")
    band = (0, 0, image.width, round(60 * FC.DPI / 100))  # the title, above the column labels
    assert image.crop(band).tobytes() == expected.crop(band).tobytes()


def test_the_mask_cache_changes_nothing_in_the_image(monkeypatch) -> None:
    from domain import funnel_chart as FC

    monkeypatch.setattr(FC, "_MASKS", FC._MaskCache(16 * 2**20))
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    other = funnel_heatmap(SEEDED_WEEK[:4], ["zhangsan", "lisi"], START, rep_names=NAMES)
    cold = render_heatmap_png(heatmap)
    assert len(FC._MASKS) > 0
    render_heatmap_png(other)  # shares stage names, rep names, ticks… with the first
    assert render_heatmap_png(heatmap) == cold
    FC._MASKS.clear()
    assert render_heatmap_png(heatmap) == cold


def test_the_mask_cache_stays_within_its_bound(monkeypatch) -> None:
    from domain import funnel_chart as FC

    unbounded = render_heatmap_png(funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES))
    small = FC._MaskCache(20_000)  # a few lines of notes at most
    monkeypatch.setattr(FC, "_MASKS", small)
    for n in range(5):
        names = {rep: f"{name}{n}" for rep, name in NAMES.items()}
        render_heatmap_png(funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=names))
        assert small.bytes <= small.max_bytes or len(small) == 1
    assert render_heatmap_png(funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)) == unbounded


def test_the_png_shows_the_same_picture_with_either_deflate(monkeypatch) -> None:
    """ISA-L's deflate is used (faster); zlib where isal cannot be imported: the same pixels either way."""
    from isal import isal_zlib

    from domain import funnel_chart as FC

    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    monkeypatch.setattr(FC, "_isal_zlib", isal_zlib)
    with_isal = render_heatmap_png(heatmap)
    monkeypatch.setattr(FC, "_isal_zlib", None)
    with_zlib = render_heatmap_png(heatmap)
    assert with_isal != with_zlib
    assert _decoded(with_isal).tobytes() == _decoded(with_zlib).tobytes()


def test_texts_laid_out_ahead_are_those_the_chart_draws(monkeypatch) -> None:
    """prepare_texts lays out the row labels and the title before the chart (the weekly job does it while the
    database sums): the chart then finds them, and comes out the same."""
    from domain import funnel_chart as FC

    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    cold = render_heatmap_png(heatmap, title="王五 团队漏斗热力图")
    monkeypatch.setattr(FC, "_MASKS", FC._MaskCache(16 * 2**20))
    assert FC.prepare_texts([(NAMES.values(), "王五 团队漏斗热力图")]) == 4
    ready = {key for key in FC._MASKS._masks}
    assert FC.prepare_texts([(NAMES.values(), "王五 团队漏斗热力图")], until=lambda: True) == 0
    assert render_heatmap_png(heatmap, title="王五 团队漏斗热力图") == cold
    drawn = set(FC._MASKS._masks)
    assert {key[3] for key in ready} == {*NAMES.values(), "王五 团队漏斗热力图"}
    assert ready < drawn and {key for key in drawn if key[3] in {key[3] for key in ready}} == ready  # used


def _pillow_and_glyphs(text: str, pixels: int, anchor: str):
    """(what ImageDraw.text draws, cut to its ink and placed, what the glyph cache puts together or None)."""
    import numpy as np

    from domain import funnel_chart as FC

    font = str(cjk_font_path())
    image, left, top = FC._pillow_line(font, pixels, text, anchor)
    return (np.asarray(image, dtype=np.uint8), left, top), FC._glyph_line(font, pixels, text, anchor)


def _same(drawn, composed) -> bool:
    (pixels, left, top), (mine, my_left, my_top) = drawn, composed
    return pixels.shape == mine.shape and (pixels == mine).all() and (not pixels.size or (left, top) == (my_left, my_top))


# lines a chart writes (names, figures, advice with SLA in brackets, titles) and lines that trip a glyph-by-glyph
# layout: letters beside digits ("A7": Pillow shades the 7 differently), brackets opened in a run of letters
# and closed after an ideograph, glyphs that overlap, spaces only, nothing
CHART_LINES = ["张三", "销售10", "32.5天", "1.60×", "—", "需求诊断", "SLA 7 天", "平均停留 / SLA", "①", "0.5", "2.0",
               "① 销售2·需求诊断：平均停留 34.5 天，是 SLA（7 天）的 4.9 倍。", "张三 团队漏斗热力图 SLA 1.7×",
               "Tom Li（A7）", "A7", "Ty fi AV", "S(案)4", "“引号”，（括号）：…", "¥1,200.50 12万", "  ", ""]


def test_lines_put_together_from_cached_glyphs_are_the_pixels_pillow_draws() -> None:
    """The chart draws a line from its characters' glyphs, rendered once each, instead of having Pillow render
    every line anew: the same pixels at the same place, at every size and anchor the chart uses."""
    for text in CHART_LINES:
        for pixels in (19, 21, 29, 40):
            for anchor in ("mm", "lm", "rm", "md", "ls"):
                drawn, composed = _pillow_and_glyphs(text, pixels, anchor)
                assert composed is not None, (text, pixels, anchor)  # every chart line takes the glyph path
                assert _same(drawn, composed), (text, pixels, anchor)


def test_lines_the_glyphs_cannot_reproduce_are_left_to_pillow() -> None:
    from domain import funnel_chart as FC

    font = str(cjk_font_path())
    assert FC._glyph_line(font, 21, "e\u0301", "mm") is None  # a combining mark
    assert FC._glyph_line(font, 21, "Tom（张三", "mm") is None  # a bracket never closed beside letters
    assert FC._glyph_line(font, 21, "“Tom”", "mm") is None  # quotation marks beside letters
    assert FC._glyph_line(font, 21, "张三", "lt") is None  # an anchor that depends on the text
    assert FC._pieces("是 SLA（7 天）的 4.9 倍") == ["是", " ", "SLA（7 天）", "的", " ", "4", ".", "9", " ", "倍"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet="张三销售天的团队漏斗热力图需求诊断0123456789 .,:%×·—…，。：（）()【】[]“”ATSLaify",
                    max_size=24),
       pixels=st.sampled_from([19, 21, 29]), anchor=st.sampled_from(["mm", "lm", "rm", "md"]))
def test_any_line_comes_out_as_pillow_draws_it(text: str, pixels: int, anchor: str) -> None:
    drawn, composed = _pillow_and_glyphs(text, pixels, anchor)
    assert composed is None or _same(drawn, composed)


def test_a_chart_with_latin_names_and_brackets_is_the_same_with_or_without_the_glyph_cache(monkeypatch) -> None:
    from domain import funnel_chart as FC

    names = {"zhangsan": "Tom Li（A7）", "lisi": "李四 Lee", "wangwu": "王五"}
    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=names)
    monkeypatch.setattr(FC, "_MASKS", FC._MaskCache(16 * 2**20))
    composed = render_heatmap_png(heatmap, title="Team A7 团队（SLA 7 天）")
    assert any(FC._glyph_line(str(cjk_font_path()), 21, name, "rm") is not None for name in names.values())
    monkeypatch.setattr(FC, "_MASKS", FC._MaskCache(16 * 2**20))
    monkeypatch.setattr(FC, "_glyph_line", lambda *args: None)
    assert render_heatmap_png(heatmap, title="Team A7 团队（SLA 7 天）") == composed


def test_blended_text_kept_across_charts_changes_nothing_and_stays_within_its_bound(monkeypatch) -> None:
    from domain import funnel_chart as FC

    heatmap = funnel_heatmap(SEEDED_WEEK, REPS, START, rep_names=NAMES)
    monkeypatch.setattr(FC, "_PATCHES", FC._Patches(0))  # nothing kept (but the last)
    uncached = render_heatmap_png(heatmap)
    patches = FC._Patches(400_000)  # some of the cells and lines
    monkeypatch.setattr(FC, "_PATCHES", patches)
    assert render_heatmap_png(heatmap) == uncached
    assert len(patches._patches) > 1 and patches.bytes <= patches.max_bytes
    assert render_heatmap_png(heatmap) == uncached  # now from what was kept
