"""The base of the staff logs' admin pages, and the verification log's filters and search.

The logs (verifications, API calls) may hold millions of rows, so their lists
never count the whole table, sort only on indexed columns, and offer filters
whose choices come without a scan.
"""

import re
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse

from .exports import stream_csv
from .models import Verification, VerificationEvent
from .paginators import EstimatedCountPaginator

FULL_PHONE_PERMISSION = "integrations.view_full_phone"


def can_see_full_phone(request: HttpRequest) -> bool:
    return request.user.has_perm(FULL_PHONE_PERMISSION)


def distinct_values(model: type[Model], column: str) -> list[str]:
    """The distinct non-empty values of an indexed column, without reading every row.

    A recursive query hops from one value to the next through the index
    (a "loose index scan"): one short index probe per distinct value, where
    `SELECT DISTINCT` would read the whole table.
    """
    connection = connections[model._default_manager.db]
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE v(val) AS ("  # noqa: S608 - names come from the model, not input
        f" SELECT MIN({col}) FROM {table} WHERE {col} > ''"
        f" UNION ALL"
        f" SELECT (SELECT MIN({col}) FROM {table} WHERE {col} > v.val) FROM v"
        f" WHERE v.val IS NOT NULL"
        f") SELECT val FROM v WHERE val IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


class CountryListFilter(admin.SimpleListFilter):
    title = "country"
    parameter_name = "country"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(code, code) for code in distinct_values(Verification, "country")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(country=value.upper()) if value else queryset


class DeliveryStatusListFilter(admin.SimpleListFilter):
    """Twilio's message statuses, plus rows no callback has reached yet."""

    title = "delivery status"
    parameter_name = "delivery"
    NONE = "none"
    STATUSES = ["queued", "sent", "delivered", "undelivered", "failed", "read"]

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(status, status) for status in self.STATUSES] + [(self.NONE, "no report yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(delivery_status="" if value == self.NONE else value)


PHONE_SEARCH_CHARS = re.compile(r"[0-9+\-(). /]+")
MESSAGE_SID = re.compile(r"[A-Za-z]{2}[0-9A-Za-z]{8,62}")


def search_verifications(queryset: QuerySet, term: str) -> QuerySet | None:
    """Rows matching a phone number (whole or in part), a verification id or a message SID.

    The number is normalised the way numbers are stored (E.164 digits), so
    "+1 (415) 555-2671", "4155552671" and "555 26" all find +14155552671,
    although lists show it masked. Returns None for a term that is none of these.
    """
    term = term.strip()
    try:
        return queryset.filter(pk=uuid.UUID(term))
    except ValueError:
        pass
    if MESSAGE_SID.fullmatch(term):
        # Any message the verification sent, the current one or one a resend replaced.
        senders = VerificationEvent.objects.filter(message_sid=term).values("verification_id")
        return queryset.filter(pk__in=senders)
    if not PHONE_SEARCH_CHARS.fullmatch(term):
        return None
    digits = "".join(ch for ch in term if ch in "0123456789")
    if not digits:
        return None
    if term.startswith("+"):
        return queryset.filter(phone__startswith="+" + digits)
    if term.startswith("00") and len(digits) > 4:
        # 00 is the international call prefix in most of the world.
        return queryset.filter(phone__startswith="+" + digits[2:])
    return queryset.filter(phone__contains=digits)


class LogAdmin(admin.ModelAdmin):
    """A read-only admin list of a log table that may hold millions of rows.

    No one, superusers included, adds, changes or deletes a log row here:
    rows leave only through `manage.py purge_logs`.
    """

    paginator = EstimatedCountPaginator
    # The "N total" link beside a filtered count would COUNT(*) the whole table.
    show_full_result_count = False
    actions = None
    list_per_page = 50
    change_list_template = "admin/integrations/log_change_list.html"
    export_name = "log"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="{}_{}_export".format(*info),
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        info = self.opts.app_label, self.opts.model_name
        context = {
            "export_url": reverse("admin:{}_{}_export".format(*info)),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The list as it is filtered, searched and sorted on screen, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(
                "These filters are not valid.", content_type="text/plain; charset=utf-8"
            )
        return stream_csv(
            self.export_name, self.csv_header(request), self.csv_rows(request, changelist.queryset)
        )

    def csv_header(self, request: HttpRequest) -> list[str]:
        raise NotImplementedError

    def csv_rows(self, request: HttpRequest, queryset: QuerySet) -> Iterable[Iterable[Any]]:
        raise NotImplementedError
