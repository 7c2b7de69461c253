"""Every report table as CSV and Excel: one `Table` (title, columns, rows, the filters it was
made with) built from the selectors' answers, then written by `to_csv` or `to_xlsx`. The REST
exports, the /reports/ download links and the weekly e-mail's attachment all go through here,
so a table downloads the same wherever it is asked for (docs/REPORTS_API.md)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from carriers.sla.metrics import METRICS, Unit
from carriers.sla.types import Breakdown, DrillDown, ReportFilters, Scorecard, Series

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")

# Excel number formats per unit. Percentages stay numbers 0–100 (as the API gives them), so
# the format shows the sign without multiplying.
_NUMBER_FORMATS = {
    Unit.PCT: '0.0"%"',
    Unit.MIN: '0.0" min"',
    Unit.STARS: '0.00" ★"',
    Unit.PER_100: "0.00",
    Unit.PER_HOUR: "0.0",
    Unit.KM: '0.00" km"',
    Unit.COUNT: "0",
    "int": "0",
    "float": "0.00",
    "seconds": '0" s"',
}
_BREACH_FILL = "FFC7CE"  # Excel's own "bad" red
_PASS_FILL = "C6EFCE"
_GROUP_LABELS = {
    "carrier": "Carrier",
    "hub": "Hub",
    "region": "Region",
    "driver": "Driver",
    "day": "Day",
    "service_type": "Service type",
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    unit: str | None = None  # a metrics.Unit, "int", "float", "seconds" or None (text)
    width: int | None = None


@dataclass
class Table:
    """A title, typed columns and rows of plain values (dicts by column key). `status` names,
    per row, the columns whose value breaches its target (the fill in Excel; a status column
    says the same in words). `filters` are (label, value) pairs for the "Filters" sheet."""

    name: str  # the file name's stem, e.g. "scorecard"
    title: str
    columns: list[Column]
    rows: list[dict]
    filters: list[tuple[str, str]] = field(default_factory=list)
    breaches: list[set[str]] = field(default_factory=list)

    def filename(self, extension: str, filters: ReportFilters | None = None) -> str:
        period = (
            f"_{filters.date_from.isoformat()}_{filters.date_to.isoformat()}" if filters else ""
        )
        return f"{self.name}{period}.{extension}"


# --- tables from the selectors' answers ----------------------------------------------------


def filter_lines(filters: ReportFilters, *, group: str | None = None, **extra) -> list[tuple]:
    """The period and narrowing as (label, value) lines: the "Filters" sheet, the e-mail."""
    lines = [
        ("From", filters.date_from.isoformat()),
        ("To", filters.date_to.isoformat()),
        ("Days", str(filters.days)),
    ]
    for label, values in (
        ("Carrier ids", filters.carrier_ids),
        ("Hub ids", filters.hub_ids),
        ("Regions", filters.regions),
        ("Service types", filters.service_types),
        ("Driver ids", filters.driver_ids),
    ):
        lines.append((label, ", ".join(map(str, values)) if values else "all"))
    if group:
        lines.append(("Grouped by", _GROUP_LABELS.get(group, group)))
    lines.extend((label, str(value)) for label, value in extra.items() if value is not None)
    return lines


def scorecard_table(card: Scorecard, *, metrics: Iterable[str] | None = None) -> Table:
    """Rows × metrics (METRICS order unless `metrics` names some): per metric its value and
    previous value and, for metrics with a target, the target and a status in words."""
    keys = list(metrics or METRICS)
    group_label = _GROUP_LABELS.get(card.group, card.group)
    columns = [Column("group", group_label, None, 24)]
    for key in keys:
        metric = METRICS[key]
        columns.append(Column(key, metric.label, metric.unit))
        if metric.target_field:
            columns.append(Column(f"{key}__target", f"{metric.label} target", metric.unit))
            columns.append(Column(f"{key}__status", f"{metric.label} status", None, 10))
        if card.previous_filters is not None:
            columns.append(Column(f"{key}__previous", f"{metric.label} previous", metric.unit))
    rows, breaches = [], []
    for row in [*card.rows, card.total]:
        values: dict = {"group": row.label}
        breached = set()
        for key in keys:
            value = row.metrics.get(key)
            metric = METRICS[key]
            values[key] = value.value if value else None
            if metric.target_field:
                values[f"{key}__target"] = value.target if value else None
                values[f"{key}__status"] = (value.status or "") if value else ""
                if value and value.status == "breach":
                    breached.update({key, f"{key}__status"})
            if card.previous_filters is not None:
                values[f"{key}__previous"] = value.previous if value else None
        rows.append(values)
        breaches.append(breached)
    previous = card.previous_filters
    return Table(
        name="scorecard",
        title=f"Scorecard by {group_label.lower()}",
        columns=columns,
        rows=rows,
        breaches=breaches,
        filters=filter_lines(
            card.filters,
            group=card.group,
            **{
                "Previous period": (
                    f"{previous.date_from.isoformat()} to {previous.date_to.isoformat()}"
                    if previous
                    else None
                )
            },
        ),
    )


def breakdown_table(
    breakdown: Breakdown, *, name: str, title: str, filters: ReportFilters, group: str
) -> Table:
    """One row per group value, one count column per category, and the row's total."""
    group_label = _GROUP_LABELS.get(group, group)
    columns = [Column("group", group_label, None, 24)]
    columns += [Column(code, label, "int") for code, label in breakdown.categories]
    columns.append(Column("total", "Total", "int"))
    rows = []
    for _key, label, counts in breakdown.rows:
        row = {"group": label}
        row.update({code: counts.get(code, 0) for code, _ in breakdown.categories})
        row["total"] = sum(counts.get(code, 0) for code, _ in breakdown.categories)
        rows.append(row)
    return Table(
        name=name,
        title=title,
        columns=columns,
        rows=rows,
        filters=filter_lines(filters, group=group),
    )


def series_table(series: list[Series], *, metric: str, filters: ReportFilters, group: str) -> Table:
    """One row per day, one column per line (carrier, hub…): the trend chart as a table."""
    definition = METRICS[metric]
    columns = [Column("day", "Day", None, 12)]
    columns += [Column(f"s{i}", line.label, definition.unit) for i, line in enumerate(series)]
    by_day: dict[date, dict] = {}
    for i, line in enumerate(series):
        for day, value in line.points:
            by_day.setdefault(day, {"day": day})[f"s{i}"] = value
    rows = [by_day[day] for day in sorted(by_day)]
    return Table(
        name=f"trend_{metric}",
        title=f"{definition.label} per day",
        columns=columns,
        rows=rows,
        filters=filter_lines(filters, group=group, Metric=definition.label),
    )


def drilldown_table(drill: DrillDown, *, filters: ReportFilters) -> Table:
    """The rows behind a number, with the console link of each."""
    columns = [Column(key, label, None) for key, label in drill.columns]
    columns.append(Column("console_url", "Console", None, 40))
    rows = []
    for source in drill.rows:
        row = {key: source.get(key) for key, _ in drill.columns}
        row["console_url"] = (source.get("links") or {}).get("console")
        rows.append(row)
    metric = METRICS.get(drill.metric)
    return Table(
        name=f"drilldown_{drill.metric}",
        title=f"Behind {metric.label if metric else drill.metric}: {drill.outcome or 'all'}",
        columns=columns,
        rows=rows,
        filters=filter_lines(
            filters, Metric=metric.label if metric else drill.metric, Outcome=drill.outcome
        ),
    )


PLANNING_COLUMNS = {
    "count": ("Visits", "int"),
    "dwell_mean_s": ("Dwell mean", "seconds"),
    "dwell_p50_s": ("Dwell P50", "seconds"),
    "dwell_p90_s": ("Dwell P90", "seconds"),
    "transit_mean_s": ("Transit mean", "seconds"),
    "transit_p50_s": ("Transit P50", "seconds"),
    "transit_p90_s": ("Transit P90", "seconds"),
}


def planning_history_table(rows: list[dict], *, by: str, filters: ReportFilters) -> Table:
    """Actual dwell and transit per area, address or hour (the selector's dicts as they come:
    known columns typed, any others kept as text after them)."""
    keys: list[str] = []
    for row in rows:
        keys.extend(key for key in row if key not in keys)
    columns = []
    for key in keys:
        label, unit = PLANNING_COLUMNS.get(key, (key.replace("_", " ").capitalize(), None))
        if unit is None and rows and all(_is_number(row.get(key)) for row in rows):
            unit = "float"
        columns.append(Column(key, label, unit))
    return Table(
        name=f"planning_history_by_{by}",
        title=f"Actual dwell and transit by {by}",
        columns=columns,
        rows=[dict(row) for row in rows],
        filters=filter_lines(filters, By=by),
    )


# --- writers --------------------------------------------------------------------------------


def to_csv(table: Table) -> bytes:
    """UTF-8 with a BOM (Excel then reads accents right), one header row, ISO dates, numbers
    unformatted (a dot decimal separator, no units: the header carries them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_header(column) for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(row.get(column.key)) for column in table.columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table) -> bytes:
    """A workbook: the table (bold frozen header, widths, number formats per unit, breach
    cells filled and a status column in words) and a "Filters" sheet with the period."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _sheet_title(table.title)
    bold = Font(bold=True)
    breach_fill = PatternFill("solid", start_color=_BREACH_FILL, end_color=_BREACH_FILL)
    pass_fill = PatternFill("solid", start_color=_PASS_FILL, end_color=_PASS_FILL)
    sheet.append([_header(column) for column in table.columns])
    for cell in sheet[1]:
        cell.font = bold
    sheet.freeze_panes = "B2"
    for index, row in enumerate(table.rows):
        breached = table.breaches[index] if index < len(table.breaches) else set()
        sheet.append([_xlsx_value(row.get(column.key)) for column in table.columns])
        for column_index, column in enumerate(table.columns, start=1):
            cell = sheet.cell(row=index + 2, column=column_index)
            fmt = _NUMBER_FORMATS.get(column.unit or "")
            if fmt and isinstance(cell.value, int | float):
                cell.number_format = fmt
            elif isinstance(cell.value, date | datetime):
                cell.number_format = (
                    "yyyy-mm-dd" if type(cell.value) is date else "yyyy-mm-dd hh:mm"
                )
            if column.key in breached:
                cell.fill = breach_fill
            elif column.key.endswith("__status") and cell.value == "pass":
                cell.fill = pass_fill
    for column_index, column in enumerate(table.columns, start=1):
        width = column.width or min(max(len(_header(column)), 10) + 2, 40)
        sheet.column_dimensions[get_column_letter(column_index)].width = width

    filters_sheet = workbook.create_sheet("Filters")
    filters_sheet.append(["Report", table.title])
    for label, value in table.filters:
        filters_sheet.append([label, value])
    for cell in filters_sheet["A"]:
        cell.font = bold
    filters_sheet.column_dimensions["A"].width = 18
    filters_sheet.column_dimensions["B"].width = 40

    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def render(table: Table, fmt: str) -> tuple[bytes, str]:
    """(content, content type) of `table` in `fmt` ("csv" or "xlsx")."""
    if fmt == "csv":
        return to_csv(table), CSV_CONTENT_TYPE
    if fmt == "xlsx":
        return to_xlsx(table), XLSX_CONTENT_TYPE
    raise ValueError(f"Unknown export format {fmt!r}; choose from {', '.join(FORMATS)}.")


# ---------------------------------------------------------------------------------------------

_UNIT_SUFFIX = {
    Unit.PCT: " (%)",
    Unit.MIN: " (min)",
    Unit.STARS: " (stars)",
    Unit.PER_100: " (per 100 stops)",
    Unit.PER_HOUR: " (per hour)",
    Unit.KM: " (km)",
    "seconds": " (s)",
}


def _header(column: Column) -> str:
    return column.label + _UNIT_SUFFIX.get(column.unit or "", "")


def _is_number(value) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _xlsx_value(value):
    if isinstance(value, datetime) and value.tzinfo is not None:
        # Excel has no time zones: the UTC wall time, as the CSV's ISO text says.
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, list | tuple | dict):
        return str(value)
    return value


def _sheet_title(title: str) -> str:
    # Excel refuses these characters and titles past 31 characters.
    cleaned = "".join(" " if char in "[]:*?/\\" else char for char in title)
    return cleaned[:31] or "Report"
