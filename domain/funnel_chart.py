"""The funnel heatmap as a PNG (PRODUCT.md §1.6): reps × stages, coloured by dwell / SLA, the three
worst overtime cells outlined in red and listed with their suggestions under the grid.

Rendered off-screen with matplotlib's Agg renderer (no pyplot, no global style changes), every text
set explicitly in the CJK font from ``domain.fonts`` so Chinese labels never turn into boxes.
Returns bytes; writes nothing.
"""

from __future__ import annotations

import io
import unicodedata
from datetime import timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle

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


def _cell_colormap() -> Colormap:
    from matplotlib import colormaps

    return colormaps["RdYlGn_r"].with_extremes(bad="#e6e6e6")


def render_heatmap_png(heatmap: FunnelHeatmap, *, title: str | None = None, dpi: int = DPI) -> bytes:
    """The heatmap as PNG bytes, of size ``image_size(heatmap, dpi)``."""
    import numpy as np

    font = str(cjk_font_path())
    fp = FontProperties(fname=font, size=10)
    fp_small = FontProperties(fname=font, size=9)
    fp_title = FontProperties(fname=font, size=14)

    width_px, height_px = image_size(heatmap, dpi)
    width_in, height_in = width_px / dpi, height_px / dpi
    height = _layout_height(heatmap)
    rows, cols = max(1, len(heatmap.reps)), len(heatmap.stages)

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    grid_bottom = height - _TOP - rows * _ROW
    ax = fig.add_axes((
        _LEFT / _WIDTH, grid_bottom / height, (_WIDTH - _LEFT - _RIGHT) / _WIDTH, rows * _ROW / height,
    ))

    ratios = np.full((rows, max(cols, 1)), np.nan)
    for r, row in enumerate(heatmap.cells):
        for c, cell in enumerate(row):
            if cell.ratio is not None:
                ratios[r, c] = cell.ratio
    image = ax.imshow(np.ma.masked_invalid(ratios), cmap=_cell_colormap(), vmin=0, vmax=_RATIO_MAX,
                      aspect="auto", interpolation="nearest")

    for r, row in enumerate(heatmap.cells):
        for c, cell in enumerate(row):
            if cell.avg_days is None or cell.ratio is None:
                ax.text(c, r, _EMPTY_CELL, ha="center", va="center", fontproperties=fp, color="#777777")
                continue
            colour = "white" if cell.ratio >= 1.7 or cell.ratio <= 0.25 else "black"
            ax.text(c, r, _CELL.format(avg=cell.avg_days, ratio=cell.ratio), ha="center", va="center",
                    fontproperties=fp, color=colour)
    for cell in heatmap.flagged:
        r, c = heatmap.reps.index(cell.rep), [s.key for s in heatmap.stages].index(cell.stage)
        ax.add_patch(Rectangle((c - 0.47, r - 0.47), 0.94, 0.94, fill=False, edgecolor="#d00000",
                               linewidth=3))
        mark = _RANK_MARKS[cell.rank - 1] if cell.rank <= len(_RANK_MARKS) else str(cell.rank)
        ax.text(c - 0.40, r - 0.28, mark, ha="left", va="center", fontproperties=fp_small, color="white",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "#d00000", "edgecolor": "none"})

    ax.xaxis.tick_top()
    ax.set_xticks(
        range(cols),
        [_COLUMN.format(name=s.name, sla=sla) for s, sla in zip(heatmap.stages, heatmap.stage_slas, strict=True)],
        fontproperties=fp,
    )
    ax.set_yticks(range(rows))
    ax.set_yticklabels(list(heatmap.rep_names) or [_NO_REPS], fontproperties=fp)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)

    cax = fig.add_axes((
        (_WIDTH - _RIGHT + 25) / _WIDTH, grid_bottom / height, 18 / _WIDTH, rows * _ROW / height,
    ))
    bar = fig.colorbar(image, cax=cax)
    bar.set_label(_COLORBAR, fontproperties=fp_small)
    for label in bar.ax.get_yticklabels():
        label.set_fontproperties(fp_small)

    end_day = heatmap.week_end - timedelta(days=1)
    fig.text(0.5, 1 - 30 / height, title or _TITLE.format(start=heatmap.week_start, end=end_day),
             ha="center", va="center", fontproperties=fp_title)

    y = grid_bottom - _GAP
    for line in _note_lines(heatmap):
        fig.text(30 / _WIDTH, (y - _LINE / 2) / height, line, ha="left", va="center", fontproperties=fp_small)
        y -= _LINE

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()
