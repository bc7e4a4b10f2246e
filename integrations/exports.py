"""CSV exports of the staff logs, streamed row by row.

A log can hold millions of rows: the export reads them from the database in
chunks (`QuerySet.iterator`) and writes each CSV line to the client as it is
made, so memory stays flat whatever the size of the list.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

CHUNK_SIZE = 2000

# A cell starting with one of these is run as a formula by spreadsheet
# programs (CSV injection); such cells get a leading apostrophe. Plain numbers
# and phone numbers such as +1415****2671 are left alone.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?[0-9*.]+")


class _Echo:
    """A file-like object whose write() returns the line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def iterate_rows(queryset: QuerySet) -> Iterator[Any]:
    """The rows of `queryset`, fetched CHUNK_SIZE at a time through one server-side cursor.

    Read inside a transaction: outside one, PostgreSQL materialises the whole
    cursor (WITH HOLD) before returning its first row, which for a million
    rows takes seconds and room on the server.
    """
    with transaction.atomic(using=queryset.db):
        yield from queryset.iterator(chunk_size=CHUNK_SIZE)


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = str(value)
    if text.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_lines(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([safe_cell(value) for value in row])


def stream_csv(
    name: str, header: list[str], rows: Iterable[Iterable[Any]]
) -> StreamingHttpResponse:
    """A response that streams `rows` as a CSV download named after `name` and today's date."""
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    # A CSV of phone numbers must not be kept by shared caches.
    response["Cache-Control"] = "private, no-store"
    return response
