"""The board chart: KPI progress per track (我的看板) or total score per member (团队看板), as a PNG
drawn off-screen with the CJK font of ``domain.fonts``."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from domain.fonts import cjk_font_path


def render_bars_png(title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = "%",
                    goal: float | None = 100.0, dpi: int = 120) -> bytes:
    """Horizontal bars with their values written at the end; ``goal`` as a dashed line."""
    font = FontProperties(fname=str(cjk_font_path()))
    fig = Figure(figsize=(7, 1.2 + 0.5 * max(1, len(labels))), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(labels)))[::-1]
    colors = ["#2e7d32" if goal is None or v >= goal else "#ef6c00" for v in values]
    ax.barh(ys, values, color=colors)
    ax.set_yticks(ys)
    ax.set_yticklabels(list(labels), fontproperties=font)
    for y, v in zip(ys, values, strict=True):
        ax.text(v, y, f" {v:.1f}{unit}", va="center", fontproperties=font)
    if goal is not None:
        ax.axvline(goal, color="#888888", linestyle="--", linewidth=1)
    ax.set_xlim(0, max([*values, goal or 0, 1]) * 1.25)
    ax.set_title(title, fontproperties=font)
    for label in ax.get_xticklabels():
        label.set_fontproperties(font)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
