"""Admin for bots and their keys, and the read-only staff logs.

The logs (verifications here, API calls in `developer_admin`) may hold
millions of rows, so their lists never count the whole table, sort only on
indexed columns, and offer filters whose choices come without a scan.
"""

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from . import dashboard
from .exports import CHUNK_SIZE, stream_csv
from .models import Bot, BotAPIKey, Verification
from .paginators import EstimatedCountPaginator
from .phones import mask_phone

# The library's own key model is unused: bot keys are BotAPIKey.
admin.site.unregister(APIKey)

FULL_PHONE_PERMISSION = "integrations.view_full_phone"


class BotAPIKeyInline(admin.TabularInline):
    model = BotAPIKey
    extra = 0
    fields = ["name", "prefix", "created", "expiry_date", "revoked"]
    readonly_fields = ["prefix", "created"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Keys are created on their own page, which shows the new key once.
        return False


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [BotAPIKeyInline]


@admin.register(BotAPIKey)
class BotAPIKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "bot"]
    list_filter = [*APIKeyModelAdmin.list_filter, "bot"]
    search_fields = [*APIKeyModelAdmin.search_fields, "bot__name"]


# --- Staff logs -----------------------------------------------------------------------


def can_see_full_phone(request: HttpRequest) -> bool:
    return request.user.has_perm(FULL_PHONE_PERMISSION)


def distinct_values(model: type[Model], column: str) -> list[str]:
    """The distinct non-empty values of an indexed column, without reading every row.

    A recursive query hops from one value to the next through the index
    (a "loose index scan"): one short index probe per distinct value, where
    `SELECT DISTINCT` would read the whole table.
    """
    connection = connections[model.objects.db]
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
        return queryset.filter(message_sid=term)
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

    def export_view(self, request: HttpRequest) -> HttpResponse:
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


def local_time(moment: Any) -> str:
    return format_date(timezone.localtime(moment), "Y-m-d H:i:s")


def describe_event(detail: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(detail.items()) if value != "")


@admin.register(Verification)
class VerificationAdmin(LogAdmin):
    list_display = [
        "masked_phone",
        "bot",
        "channel",
        "status",
        "attempts",
        "send_count",
        "delivery_status",
        "country",
        "created_at",
    ]
    list_filter = [
        "bot",
        "status",
        "channel",
        CountryListFilter,
        DeliveryStatusListFilter,
        "created_at",
    ]
    list_select_related = ["bot"]
    date_hierarchy = "created_at"
    # Sorting a million rows on an unindexed column takes seconds; the list
    # is sorted newest first, and the filters narrow it down instead.
    sortable_by = ["created_at"]
    search_fields = ["phone"]
    search_help_text = (
        "A phone number, whole or in part (spaces, dashes and brackets are ignored), "
        "a verification id or a message SID."
    )
    export_name = "verifications"
    detail_fields = [
        "id",
        "masked_phone",
        "country",
        "bot",
        "channel",
        "user_ref",
        "status",
        "attempts",
        "send_count",
        "expires_at",
        "last_sent_at",
        "error_code",
        "delivery_status",
        "message_sid",
        "created_at",
        "updated_at",
        "timeline",
    ]

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="integrations_dashboard",
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            "dashboard_url": reverse("admin:integrations_dashboard"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Verification dashboard",
            "opts": self.opts,
            "changelist_url": reverse("admin:integrations_verification_changelist"),
            "figures": dashboard.collect_figures(),
        }
        return TemplateResponse(request, "admin/integrations/dashboard.html", context)

    def _phone_field(self, request: HttpRequest) -> str:
        return "phone" if can_see_full_phone(request) else "masked_phone"

    def get_list_display(self, request: HttpRequest) -> list[str]:
        field = self._phone_field(request)
        return [field if name == "masked_phone" else name for name in self.list_display]

    def get_list_display_links(self, request: HttpRequest, list_display: list[str]) -> list[str]:
        return [list_display[0]]

    def get_fields(self, request: HttpRequest, obj: Verification | None = None) -> list[str]:
        field = self._phone_field(request)
        return [field if name == "masked_phone" else name for name in self.detail_fields]

    def get_readonly_fields(
        self, request: HttpRequest, obj: Verification | None = None
    ) -> list[str]:
        return self.get_fields(request, obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        found = search_verifications(queryset, search_term)
        if found is None:
            messages.warning(
                request,
                "Search by phone number (digits, spaces, +, - and brackets), "
                "verification id or message SID.",
            )
            return queryset.none(), False
        return found, False

    @admin.display(description="phone")
    def masked_phone(self, obj: Verification) -> str:
        return obj.masked_phone

    @admin.display(description="timeline")
    def timeline(self, obj: Verification) -> SafeString | str:
        events = list(obj.events.all())
        if not events:
            return "No events."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    local_time(event.created_at),
                    event.get_kind_display(),
                    describe_event(event.detail),
                )
                for event in events
            ),
        )
        return format_html(
            '<table class="verification-timeline">'
            "<thead><tr><th>time</th><th>event</th><th>detail</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    def csv_header(self, request: HttpRequest) -> list[str]:
        return [
            "id",
            "created_at",
            "phone",
            "country",
            "bot",
            "channel",
            "status",
            "attempts",
            "send_count",
            "delivery_status",
            "error_code",
            "message_sid",
        ]

    def csv_rows(self, request: HttpRequest, queryset: QuerySet) -> Iterator[list[Any]]:
        full = can_see_full_phone(request)
        rows = queryset.values_list(
            "id",
            "created_at",
            "phone",
            "country",
            "bot__name",
            "channel",
            "status",
            "attempts",
            "send_count",
            "delivery_status",
            "error_code",
            "message_sid",
        ).iterator(chunk_size=CHUNK_SIZE)
        for row in rows:
            values = list(row)
            if not full:
                values[2] = mask_phone(values[2])
            yield values


# The Developer Section (attributes, API definitions, API-call log) lives in its own module.
from . import developer_admin  # noqa: E402, F401
