"""The health check as a radar chart PNG (PRODUCT.md §5 ``体检``): 12 spokes labelled in Chinese.

Rendered off-screen with matplotlib's Agg renderer (no pyplot, no global style changes), every text
set explicitly in the CJK font from ``domain.fonts`` (as ``domain.funnel_chart`` does), so labels
never turn into boxes. An item without data is drawn at 0 with a grey marker and labelled 无数据; the
weakest items' labels are red. Returns bytes; writes nothing.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from domain.fonts import cjk_font_path
from domain.healthcheck import NO_DATA, HealthCheck

DPI = 150
SIZE_INCHES = (7.5, 7.5)
_RINGS = (20, 40, 60, 80, 100)

# User-visible wording (domain may not import the bot's message catalog).
TITLE = "销售过程健康度（综合 {overall}）"
TITLE_NO_DATA = "销售过程健康度（无数据）"
SPOKE_LABEL = "{label}\n{score}"
_LINE_COLOUR = "#1f77b4"
_WEAK_COLOUR = "#d00000"
_NO_DATA_COLOUR = "#999999"


def render_radar_png(check: HealthCheck, *, title: str | None = None, dpi: int = DPI) -> bytes:
    """The 12 scores on a 0–100 radar as PNG bytes (``SIZE_INCHES`` × ``dpi`` pixels)."""
    font = str(cjk_font_path())
    fp = FontProperties(fname=font, size=10)
    fp_small = FontProperties(fname=font, size=8)
    fp_title = FontProperties(fname=font, size=14)

    fig = Figure(figsize=SIZE_INCHES, dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.17, 0.12, 0.66, 0.70), projection="polar")

    n = len(check.items)
    ax.set_theta_offset(math.pi / 2)  # the first item at the top, the others clockwise
    ax.set_theta_direction(-1)
    angles = [2 * math.pi * k / n for k in range(n)]
    values = [float(i.score) if i.score is not None else 0.0 for i in check.items]
    ax.plot([*angles, angles[0]], [*values, values[0]], color=_LINE_COLOUR, linewidth=2)
    ax.fill([*angles, angles[0]], [*values, values[0]], color=_LINE_COLOUR, alpha=0.2)
    for angle, item in zip(angles, check.items, strict=True):
        colour = _NO_DATA_COLOUR if item.score is None else _LINE_COLOUR
        ax.plot([angle], [item.score or 0], marker="o", color=colour, markersize=5)

    weak = {i.item for i in check.weakest}
    ax.set_xticks(angles)
    labels = [
        SPOKE_LABEL.format(label=i.label, score=NO_DATA if i.score is None else i.score) for i in check.items
    ]
    ax.set_xticklabels(labels, fontproperties=fp)
    for tick, item in zip(ax.get_xticklabels(), check.items, strict=True):
        if item.item in weak:
            tick.set_color(_WEAK_COLOUR)
        elif item.score is None:
            tick.set_color(_NO_DATA_COLOUR)
    ax.tick_params(axis="x", pad=14)
    ax.set_ylim(0, 100)
    ax.set_yticks(_RINGS)
    ax.set_yticklabels([str(r) for r in _RINGS], fontproperties=fp_small, color="#666666")
    ax.set_rlabel_position(360 / n / 2)

    heading = title or (TITLE_NO_DATA if check.overall is None else TITLE.format(overall=check.overall))
    fig.text(0.5, 0.95, heading, ha="center", va="center", fontproperties=fp_title)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()
