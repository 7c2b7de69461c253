"""Server-rendered SVG charts for the /reports/ pages (docs/REPORTS.md, "Charts").

Why SVG from the server and not a JavaScript chart library: the pages are plain HTML forms and
links, the charts are small (a line per carrier over at most a few months of days, a bar per
carrier), and an SVG string built here is testable with xml.etree, works without scripts, prints,
and is accessible by construction (`role="img"`, `<title>`, `<desc>`, and a data table under
each chart). Nothing to vendor, nothing to load from a CDN.

Colours: the Okabe–Ito palette (safe for the common colour-vision deficiencies), assigned to
keys in a stable order (`palette_for`), so a carrier keeps its colour when a filter narrows the
chart. Colour is never the only cue: the legend names every series and the table repeats every
number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape, quoteattr

from django.utils.safestring import SafeString, mark_safe

from carriers.sla.types import Breakdown, Series

# Okabe & Ito (2008), without the yellow that vanishes on white; black last.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#8C6D1F",  # dark yellow (the palette's yellow, darkened to show on white)
    "#000000",
)
# A dash pattern per palette cycle, so a ninth line differs from the first by more than hue.
DASHES = ("", "6 3", "2 3")

WIDTH, HEIGHT = 720, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 16, 48
LEGEND_ROW = 18


@dataclass
class Chart:
    """An SVG and the same numbers as a table (headers, rows of cells as text)."""

    id: str
    title: str
    description: str
    svg: SafeString
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    empty: bool = False


def _sort_key(key: str):
    return (0, int(key), "") if str(key).isdigit() else (1, 0, str(key))


def palette_for(keys) -> dict[str, str]:
    """A colour per key, keys in a stable order (numeric ids by number, the rest by text)."""
    ordered = sorted({str(key) for key in keys}, key=_sort_key)
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(ordered)}


def _dash_for(keys) -> dict[str, str]:
    ordered = sorted({str(key) for key in keys}, key=_sort_key)
    return {key: DASHES[(i // len(PALETTE)) % len(DASHES)] for i, key in enumerate(ordered)}


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text}{unit}"


def _axis(value: float) -> tuple[float, float]:
    """A round axis (maximum, tick step) at or above `value`: the step is 1, 2 or 5 times a
    power of ten, at most five steps, so ticks read 0, 2, 4, 6 rather than 0, 1.2, 2.5."""
    if value <= 0:
        return 1.0, 0.25
    power = 10 ** math.floor(math.log10(value / 5)) if value >= 5 else 1
    for step in (1, 2, 5, 10, 20, 50):
        tick = step * power
        if value / tick <= 5:
            return math.ceil(value / tick - 1e-9) * tick, tick
    return value, value / 4  # pragma: no cover - the loop always returns


def _open_svg(chart_id: str, title: str, description: str, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _y_axis(parts: list[str], y_max: float, step: float, label: str, unit: str) -> None:
    """Gridlines and tick labels every `step` from 0 to the top, and the axis title."""
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    for i in range(round(y_max / step) + 1):
        value = step * i
        y = MARGIN_TOP + plot_h - plot_h * value / y_max
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11">{escape(_fmt(value, unit))}</text>'
        )
    parts.append(
        f'<text class="axis-label" transform="translate(14 {MARGIN_TOP + plot_h / 2:.0f}) '
        f'rotate(-90)" text-anchor="middle" font-size="12">{escape(label)}</text>'
    )


def _x_label(parts: list[str], label: str) -> None:
    parts.append(
        f'<text class="axis-label" x="{MARGIN_LEFT + (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / 2:.0f}"'
        f' y="{HEIGHT - 8}" text-anchor="middle" font-size="12">{escape(label)}</text>'
    )


def _legend(parts: list[str], items: list[tuple[str, str, str]], *, line: bool) -> int:
    """Legend entries (label, colour, dash) under the plot, in rows; returns its height."""
    x, y = MARGIN_LEFT, HEIGHT + 6
    rows = 1
    parts.append('<g class="legend">')
    for label, colour, dash in items:
        width = 28 + 7 * len(label)
        if x + width > WIDTH - MARGIN_RIGHT and x > MARGIN_LEFT:
            x, y, rows = MARGIN_LEFT, y + LEGEND_ROW, rows + 1
        if line:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{x}" x2="{x + 18}" y1="{y + 6}" y2="{y + 6}" stroke="{colour}" '
                f'stroke-width="3"{dash_attr}/>'
            )
        else:
            parts.append(f'<rect x="{x + 4}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 22}" y="{y + 11}" font-size="12">{escape(label)}</text>')
        x += width
    parts.append("</g>")
    return rows * LEGEND_ROW + 8


def _empty_svg(chart_id: str, title: str, description: str) -> SafeString:
    parts = _open_svg(chart_id, title, description, 80)
    parts.append(
        f'<text x="{WIDTH / 2:.0f}" y="44" text-anchor="middle" font-size="14" fill="#5b6573">'
        "No data for this period</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    series: list[Series],
    unit: str = "",
    y_label: str,
    target: float | None = None,
    colours: dict[str, str] | None = None,
) -> Chart:
    """One `<path class="series">` per series over the days (gaps where a day has no data),
    a dashed target line when `target` is given, a legend, and the day-by-series table."""
    days = sorted({day for one in series for day, _ in one.points})
    values = [v for one in series for _, v in one.points if v is not None]
    headers = ["Day", *[one.label for one in series]]
    by_series = [dict(one.points) for one in series]
    rows = [
        [day.isoformat(), *[_fmt(points.get(day), unit) for points in by_series]] for day in days
    ]
    if not values:
        return Chart(chart_id, title, description, _empty_svg(chart_id, title, description),
                     headers, rows, empty=True)  # fmt: skip
    colours = colours or palette_for(one.key for one in series)
    dashes = _dash_for(one.key for one in series)
    y_max, step = (100.0, 25.0) if unit == "%" else _axis(max([*values, target or 0]))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x_of(day: date) -> float:
        if len(days) == 1:
            return MARGIN_LEFT + plot_w / 2
        return MARGIN_LEFT + plot_w * days.index(day) / (len(days) - 1)

    def y_of(value: float) -> float:
        return MARGIN_TOP + plot_h - plot_h * min(value, y_max) / y_max

    body: list[str] = []
    _y_axis(body, y_max, step, y_label, unit)
    step = max(1, math.ceil(len(days) / 10))
    for i, day in enumerate(days):
        if i % step == 0 or i == len(days) - 1:
            body.append(
                f'<text class="tick" x="{x_of(day):.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                f'text-anchor="middle" font-size="11">{day.strftime("%d %b")}</text>'
            )
    _x_label(body, "Service day")
    if target is not None:
        y = y_of(target)
        body.append(
            f'<line class="target" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#1d2430" stroke-width="1.5" stroke-dasharray="8 4"/>'
            # Under the line near the top (rates near 100 % would cover it), above otherwise.
            f'<text class="target-label" x="{WIDTH - MARGIN_RIGHT}" '
            f'y="{y + 14 if target > 0.8 * y_max else y - 4:.1f}" '
            f'text-anchor="end" font-size="11">{escape("Target " + _fmt(target, unit))}</text>'
        )
    for one in series:
        commands: list[str] = []
        pen_down = False
        for day, value in sorted(one.points):
            if value is None:
                pen_down = False
                continue
            commands.append(f"{'L' if pen_down else 'M'}{x_of(day):.1f} {y_of(value):.1f}")
            pen_down = True
        colour = colours.get(str(one.key), PALETTE[0])
        dash = dashes.get(str(one.key), "")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(
            f'<path class="series" data-key={quoteattr(str(one.key))} '
            f'd="{" ".join(commands) or "M0 0"}" fill="none" stroke="{colour}" '
            f'stroke-width="2.5"{dash_attr}><title>{escape(one.label)}</title></path>'
        )
        # A point between two gaps draws no line: mark the points (on a month or less; past
        # that the marks would only clutter and weigh the page).
        for day, value in one.points if len(days) <= 31 else ():
            if value is not None:
                body.append(
                    f'<circle cx="{x_of(day):.1f}" cy="{y_of(value):.1f}" r="3" fill="{colour}"/>'
                )
    legend_items = [
        (one.label, colours.get(str(one.key), PALETTE[0]), dashes.get(str(one.key), ""))
        for one in series
    ]
    if target is not None:
        legend_items.append(("Target", "#1d2430", "8 4"))
    legend: list[str] = []
    legend_h = _legend(legend, legend_items, line=True)
    parts = _open_svg(chart_id, title, description, HEIGHT + legend_h)
    svg = "".join([*parts, *body, *legend, "</svg>"])
    if target is not None:
        headers.append("Target")
        rows = [[*row, _fmt(target, unit)] for row in rows]
    return Chart(chart_id, title, description, mark_safe(svg), headers, rows)  # noqa: S308


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    breakdown: Breakdown,
    y_label: str,
    x_label: str,
    colours: dict[str, str] | None = None,
) -> Chart:
    """A bar per group row (a carrier), stacked by category (a failure reason, an alert kind);
    the table has a row per group and a column per category, with totals."""
    codes = [code for code, _ in breakdown.categories]
    headers = ["", *[label for _, label in breakdown.categories], "Total"]
    rows = [
        [label, *[_fmt(counts.get(code, 0)) for code in codes], _fmt(sum(counts.values()))]
        for _, label, counts in breakdown.rows
    ]
    totals = [sum(counts.get(code, 0) for code in codes) for _, _, counts in breakdown.rows]
    if not breakdown.rows or not any(totals):
        return Chart(chart_id, title, description, _empty_svg(chart_id, title, description),
                     headers, rows, empty=True)  # fmt: skip
    colours = colours or {code: PALETTE[i % len(PALETTE)] for i, code in enumerate(codes)}
    y_max, step = _axis(max(totals))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / len(breakdown.rows)
    bar_w = min(64.0, slot * 0.6)
    body: list[str] = []
    _y_axis(body, y_max, step, y_label, "")
    for i, (key, label, counts) in enumerate(breakdown.rows):
        x = MARGIN_LEFT + slot * i + (slot - bar_w) / 2
        base = MARGIN_TOP + plot_h
        body.append(f'<g class="bar" data-key={quoteattr(str(key))}>')
        for code, code_label in breakdown.categories:
            count = counts.get(code, 0)
            if not count:
                continue
            h = plot_h * count / y_max
            base -= h
            body.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colours.get(code, PALETTE[0])}" stroke="#fff" stroke-width="1">'
                f"<title>{escape(f'{label}: {code_label} {count}')}</title></rect>"
            )
        body.append("</g>")
        short = label if len(label) <= 16 else label[:15] + "…"
        body.append(
            f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
            f'text-anchor="middle" font-size="11">{escape(short)}</text>'
        )
    _x_label(body, x_label)
    used = [
        (code_label, colours.get(code, PALETTE[0]), "")
        for code, code_label in breakdown.categories
        if any(counts.get(code) for _, _, counts in breakdown.rows)
    ]
    legend: list[str] = []
    legend_h = _legend(legend, used, line=False)
    parts = _open_svg(chart_id, title, description, HEIGHT + legend_h)
    svg = "".join([*parts, *body, *legend, "</svg>"])
    return Chart(chart_id, title, description, mark_safe(svg), headers, rows)  # noqa: S308


def histogram(
    *,
    chart_id: str,
    title: str,
    description: str,
    breakdown: Breakdown,
    y_label: str,
    x_label: str,
) -> Chart:
    """A bar per category (a lateness bucket), summed over the group rows; the table keeps a
    column per group row."""
    codes = [code for code, _ in breakdown.categories]
    sums = {code: sum(counts.get(code, 0) for _, _, counts in breakdown.rows) for code in codes}
    headers = ["Bucket", *[label for _, label, _ in breakdown.rows], "Total"]
    rows = [
        [label, *[_fmt(counts.get(code, 0)) for _, _, counts in breakdown.rows], _fmt(sums[code])]
        for code, label in breakdown.categories
    ]
    if not any(sums.values()):
        return Chart(chart_id, title, description, _empty_svg(chart_id, title, description),
                     headers, rows, empty=True)  # fmt: skip
    y_max, step = _axis(max(sums.values()))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / len(codes)
    body: list[str] = []
    _y_axis(body, y_max, step, y_label, "")
    for i, (code, label) in enumerate(breakdown.categories):
        h = plot_h * sums[code] / y_max
        x = MARGIN_LEFT + slot * i + 2
        body.append(
            f'<rect class="bar" data-key={quoteattr(code)} x="{x:.1f}" '
            f'y="{MARGIN_TOP + plot_h - h:.1f}" width="{slot - 4:.1f}" height="{h:.1f}" '
            f'fill="{PALETTE[0]}"><title>{escape(f"{label}: {sums[code]}")}</title></rect>'
            f'<text class="tick" x="{x + (slot - 4) / 2:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
            f'text-anchor="middle" font-size="11">{escape(label)}</text>'
        )
    _x_label(body, x_label)
    legend: list[str] = []
    legend_h = _legend(legend, [(y_label, PALETTE[0], "")], line=False)
    parts = _open_svg(chart_id, title, description, HEIGHT + legend_h)
    svg = "".join([*parts, *body, *legend, "</svg>"])
    return Chart(chart_id, title, description, mark_safe(svg), headers, rows)  # noqa: S308
