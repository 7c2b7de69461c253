"""Reading manifest and status files (CSV, Excel .xlsx): bytes -> header and rows with their
line numbers, with the feed's column mapping applied. Pure: no database."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from django.conf import settings

from carriers.feeds.errors import FileRejected, UnsupportedFileType

XLSX_MAGIC = b"PK\x03\x04"
CSV_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Platform field -> default header (a file may use another: `config["columns"]`).
MANIFEST_COLUMNS = (
    "reference",
    "barcode",
    "recipient_name",
    "recipient_phone",
    "recipient_email",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "country_code",
    "lat",
    "lon",
    "delivery_instructions",
    "parcel_count",
    "weight_kg",
    "service_type",
    "promised_window_start",
    "promised_window_end",
    "hub",
)
MANIFEST_REQUIRED = ("reference", "barcode", "recipient_name", "address_line1", "city")
STATUS_COLUMNS = (
    "event_id",
    "barcode",
    "reference",
    "status",
    "reason",
    "occurred_at",
    "lat",
    "lon",
    "note",
)
STATUS_REQUIRED = ("status", "occurred_at")


def max_bytes() -> int:
    return getattr(settings, "CARRIER_FEED_MAX_FILE_BYTES", 5 * 1024 * 1024)


def max_rows() -> int:
    return getattr(settings, "CARRIER_FEED_MAX_ROWS", 5000)


@dataclass(frozen=True)
class Row:
    line: int  # as a spreadsheet shows it: the header is line 1
    values: dict  # platform field -> cell value (None or "" when empty)


@dataclass(frozen=True)
class Table:
    columns: dict[str, str]  # platform field -> the file's header as written
    rows: list[Row]


def file_kind(name: str, content: bytes, content_type: str = "") -> str:
    """ "csv" or "xlsx", from the file name's extension (the content type only when the name
    has none); anything else is refused with 415."""
    suffix = name.lower().rpartition(".")[2] if "." in name else ""
    if not suffix:
        suffix = "xlsx" if content_type == XLSX_TYPE else "csv" if content_type in CSV_TYPES else ""
    if suffix == "xlsx":
        if not content.startswith(XLSX_MAGIC):
            raise FileRejected(f"{name} is not a valid .xlsx workbook.", fields={"file": [name]})
        return "xlsx"
    if suffix in ("csv", "txt"):
        if content.startswith(XLSX_MAGIC) or b"\x00" in content[:1024]:
            raise UnsupportedFileType(
                f"{name} looks binary, not CSV text.", fields={"file": ["Upload a CSV or .xlsx."]}
            )
        return "csv"
    raise UnsupportedFileType(
        f"Unsupported file type for {name!r}: upload a .csv or an Excel .xlsx file.",
        fields={"file": ["Upload a .csv or .xlsx file (old .xls is not read)."]},
    )


def read_table(
    *,
    name: str,
    content: bytes,
    fields: tuple[str, ...],
    required: tuple[str, ...],
    columns: dict[str, str] | None = None,
    content_type: str = "",
) -> Table:
    """The file's rows as platform fields. Limits: CARRIER_FEED_MAX_FILE_BYTES and
    CARRIER_FEED_MAX_ROWS; a missing required column is refused before any row is read."""
    if len(content) > max_bytes():
        raise FileRejected(
            f"The file is {len(content)} bytes; the limit is {max_bytes()}. Split it.",
            fields={"file": ["Too large."]},
        )
    if not content:
        raise FileRejected("The file is empty.", fields={"file": ["Empty file."]})
    kind = file_kind(name, content, content_type)
    raw_rows = _xlsx_rows(content) if kind == "xlsx" else _csv_rows(content)
    header_line, header = next(((n, r) for n, r in raw_rows if any(_cell(c) for c in r)), (0, None))
    if header is None:
        raise FileRejected("The file has no header row.", fields={"file": ["No header."]})
    positions = {str(_cell(h)).strip().lower(): i for i, h in enumerate(header) if _cell(h)}
    mapping = {field: (columns or {}).get(field, field) for field in fields}
    found: dict[str, int] = {}
    used: dict[str, str] = {}
    for field, heading in mapping.items():
        index = positions.get(heading.strip().lower())
        if index is not None:
            found[field] = index
            used[field] = heading
    missing = [mapping[f] for f in required if f not in found]
    if missing:
        raise FileRejected(
            f"Missing column(s): {', '.join(missing)} (header on line {header_line}).",
            fields={"columns": [f"Missing: {m}" for m in missing]},
        )
    rows: list[Row] = []
    for line, cells in raw_rows:
        if line <= header_line or not any(_cell(c) not in (None, "") for c in cells):
            continue
        if len(rows) >= max_rows():
            raise FileRejected(
                f"More than {max_rows()} rows; split the file.", fields={"file": ["Too many rows."]}
            )
        values = {f: _cell(cells[i]) if i < len(cells) else None for f, i in found.items()}
        rows.append(Row(line=line, values=values))
    if not rows:
        raise FileRejected("The file has a header but no rows.", fields={"file": ["No rows."]})
    return Table(columns=used, rows=rows)


def _cell(value):
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        # Excel stores every number as a float: a barcode 7801234 must not become "7801234.0".
        return int(value)
    return value


def _csv_rows(content: bytes) -> list[tuple[int, list]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"The CSV is not UTF-8 (byte {exc.start}); export it as CSV UTF-8.",
            fields={"file": ["Not UTF-8."]},
        ) from exc
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        # reader.line_num counts physical lines, so quoted multi-line cells keep true numbers.
        return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise FileRejected(f"Unreadable CSV: {exc}", fields={"file": [str(exc)]}) from exc


def _xlsx_rows(content: bytes) -> list[tuple[int, list]]:
    try:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException
    except ImportError as exc:  # a server installed without the project's dependencies
        raise UnsupportedFileType(
            "This server cannot read Excel files (openpyxl is not installed); upload CSV.",
            fields={"file": ["Upload CSV."]},
        ) from exc

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise FileRejected(f"Unreadable .xlsx: {exc}", fields={"file": [str(exc)]}) from exc
    try:
        sheet = workbook.worksheets[0]
        return [
            (line, list(row)) for line, row in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        workbook.close()


def as_aware(value, zone: dt.tzinfo):
    """Excel cells hold naive datetimes: read them in the feed's zone."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value
