"""Small SVG charts drawn on the server: bars per month, grouped bars, a yearly line against its target.

Pure functions (numbers in, markup out); no script, no external asset. Each chart is inline SVG with a
``<title>`` and an ``aria-label``, scales to its box (viewBox, width 100 %) so it fits a 360 px phone,
uses the Okabe-Ito colour-blind-safe palette, and writes numbers the page language's way. Pages put a
table with the same figures beside every chart: the chart is a picture of the table, not a substitute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from api import i18n

# Okabe & Ito (2008), "Color Universal Design": told apart with every common colour-vision deficiency.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 34
_ids = iter(range(1, 1 << 62))


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | None]


def _scale_top(highest: float) -> float:
    """A round number at or above ``highest`` (1, 2, 2.5 or 5 times a power of ten)."""
    if highest <= 0:
        return 1
    power = 10 ** math.floor(math.log10(highest))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= highest:
            return step * power
    return 10 * power


def _open(title: str, height: int = HEIGHT) -> tuple[str, list[str]]:
    ident = f"chart-{next(_ids)}"
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{ident}" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" font-size="12">'
        f'<title id="{ident}">{escape(title)}</title>'
    )
    return head, []


def _axis(parts: list[str], top: float, lang: str, plot_h: float) -> None:
    # Counts: a middle line only where it falls on a whole number.
    for fraction in (0, 0.5, 1) if float(top / 2).is_integer() else (0, 1):
        y = TOP + plot_h - fraction * plot_h
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc" stroke-width="1"/>'
        )
        label = i18n.number(int(top * fraction) if float(top * fraction).is_integer() else top * fraction, lang)
        parts.append(f'<text x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#333">{escape(label)}</text>')


def _x_labels(parts: list[str], labels: Sequence[str], band: float) -> None:
    every = max(1, math.ceil(len(labels) * 34 / (WIDTH - LEFT - RIGHT)))  # about 34 px per label
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = LEFT + band * (i + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 15}" text-anchor="middle" fill="#333">{escape(label)}</text>'
        )


def _legend(parts: list[str], names: Sequence[str], dashed: int | None = None) -> None:
    x = LEFT
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        if dashed == i:
            parts.append(
                f'<line x1="{x}" x2="{x + 12}" y1="{HEIGHT - 6}" y2="{HEIGHT - 6}" stroke="{colour}" '
                f'stroke-width="2" stroke-dasharray="4 2"/>'
            )
        else:
            parts.append(f'<rect x="{x}" y="{HEIGHT - 11}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 2}" fill="#333">{escape(name)}</text>')
        x += 24 + 7 * len(name)


def grouped(title: str, labels: Sequence[str], series: Sequence[Series], lang: str) -> Markup:
    """Bars per label (month), one bar per series side by side; a legend when there are several."""
    head, parts = _open(title)
    plot_h = HEIGHT - TOP - BOTTOM
    values = [v or 0 for s in series for v in s.values]
    top = _scale_top(max(values, default=0))
    _axis(parts, top, lang, plot_h)
    band = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    bar = band * 0.8 / max(1, len(series))
    for si, s in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        for i, value in enumerate(s.values):
            height = (value or 0) / top * plot_h
            x = LEFT + band * i + band * 0.1 + bar * si
            words = f"{s.name}, {labels[i]}: {i18n.number(value or 0, lang)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{escape(words)}</title></rect>'
            )
    _x_labels(parts, labels, band)
    if len(series) > 1:
        _legend(parts, [s.name for s in series])
    return Markup(head + "".join(parts) + "</svg>")


def bars(title: str, labels: Sequence[str], values: Sequence[int], lang: str, name: str = "") -> Markup:
    """One bar per label (month)."""
    return grouped(title, labels, [Series(name or title, values)], lang)


def against_target(title: str, labels: Sequence[str], actual: Series, target: Series, lang: str) -> Markup:
    """The actual values as a line with points, and the target as a dashed line where one was set: no
    target, no line (a target is never invented between years that have none)."""
    head, parts = _open(title)
    plot_h = HEIGHT - TOP - BOTTOM
    known = [v for v in (*actual.values, *target.values) if v is not None]
    top = _scale_top(max(known, default=0))
    _axis(parts, top, lang, plot_h)
    band = (WIDTH - LEFT - RIGHT) / max(1, len(labels))

    def point(i: int, value: int) -> tuple[float, float]:
        return LEFT + band * (i + 0.5), TOP + plot_h - value / top * plot_h

    for si, (s, dashed) in enumerate(((actual, False), (target, True))):
        colour = PALETTE[si]
        run: list[tuple[float, float]] = []
        runs: list[list[tuple[float, float]]] = []
        for i, value in enumerate(s.values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(point(i, value))
            x, y = point(i, value)
            words = f"{s.name}, {labels[i]}: {i18n.number(value, lang)}"
            mark = (
                f'<rect x="{x - 4:.1f}" y="{y - 1.5:.1f}" width="8" height="3" fill="{colour}">'
                if dashed
                else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
            )
            parts.append(mark + f"<title>{escape(words)}</title>" + ("</rect>" if dashed else "</circle>"))
        if run:
            runs.append(run)
        for line in runs:
            if len(line) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
                dash = ' stroke-dasharray="5 3"' if dashed else ""
                parts.append(
                    f'<polyline class="{"target" if dashed else "actual"}" points="{points}" fill="none" '
                    f'stroke="{colour}" stroke-width="2"{dash}/>'
                )
    _x_labels(parts, labels, band)
    names = [actual.name] + ([target.name] if any(v is not None for v in target.values) else [])
    _legend(parts, names, dashed=1)
    return Markup(head + "".join(parts) + "</svg>")
