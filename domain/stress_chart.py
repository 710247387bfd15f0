"""The stress-test chart (PRODUCT.md §2.4): cumulative expected collections over the next 90 days in the
three scenarios, drawn off-screen with the CJK font of ``domain.fonts``. Returns PNG bytes."""

from __future__ import annotations

import io
from itertools import accumulate

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from domain.fonts import cjk_font_path
from domain.stress_test import StressTestReport

_TITLE = "回款压力测试：未来 {days} 天累计预计回款（万元）"
_COLORS = ("#2e7d32", "#1565c0", "#c62828")


def render_stress_png(report: StressTestReport, dpi: int = 120) -> bytes:
    font = FontProperties(fname=str(cjk_font_path()))
    fig = Figure(figsize=(8, 4.5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    days = 0
    for outcome, color in zip(report.outcomes, _COLORS, strict=False):
        xs = [d.on for d in outcome.daily]
        ys = list(accumulate(float(d.amount) / 10000 for d in outcome.daily))
        days = len(xs)
        ax.plot(xs, ys, color=color, label=f"{outcome.scenario.label} {float(outcome.total) / 10000:,.1f} 万")
    ax.set_title(_TITLE.format(days=days), fontproperties=font)
    for label in ax.get_xticklabels() + ax.get_yticklabels():
        label.set_fontproperties(font)
    ax.legend(prop=font, loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
