"""Admin for bots and their keys, and the read-only verification log with its dashboard.

The shared base of the log pages is in `log_admin`; the API-call log's page
in `calllog_admin`, on top of the Developer Section's admin.
"""

from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Now
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from . import calllog_admin, dashboard  # noqa: F401 - calllog_admin registers its admin
from .exports import iterate_rows
from .log_admin import (
    CountryListFilter,
    DeliveryStatusListFilter,
    LogAdmin,
    can_see_full_phone,
    search_verifications,
)
from .models import Bot, BotAPIKey, Verification, VerificationEvent
from .phones import mask_phone

# The library's own key model is unused: bot keys are BotAPIKey.
admin.site.unregister(APIKey)


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
    list_display = ["name", "usable_keys", "flows", "created_at"]
    search_fields = ["name"]
    inlines = [BotAPIKeyInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Bot]:
        usable = Q(api_keys__revoked=False) & (
            Q(api_keys__expiry_date__isnull=True) | Q(api_keys__expiry_date__gt=Now())
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                usable_key_count=Count("api_keys", filter=usable, distinct=True),
                flow_count=Count("flows", distinct=True),
            )
        )

    @admin.display(description="usable API keys", ordering="usable_key_count")
    def usable_keys(self, bot: Any) -> int:
        """Keys neither revoked nor expired: 0 means the bot cannot call the API."""
        return bot.usable_key_count

    @admin.display(description="flows", ordering="flow_count")
    def flows(self, bot: Any) -> int:
        return bot.flow_count


@admin.register(BotAPIKey)
class BotAPIKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "bot"]
    list_filter = [*APIKeyModelAdmin.list_filter, "bot"]
    search_fields = [*APIKeyModelAdmin.search_fields, "bot__name"]


# --- Staff logs ---------------------------------------------------------------------------


def local_time(moment: Any) -> str:
    return format_date(timezone.localtime(moment), "Y-m-d H:i:s")


def describe_event(event: VerificationEvent) -> str:
    detail = dict(event.detail)
    if event.message_sid:
        detail["message_sid"] = event.message_sid
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
            match = request.resolver_match
            # Said on the list only: an export would leave it for the next page.
            if match is not None and match.url_name == "integrations_verification_changelist":
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

    @admin.display(description="message SID")
    def message_sid(self, obj: Verification) -> str:
        return obj.current_message_sid()

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
                    describe_event(event),
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
        rows = iterate_rows(
            queryset.with_message_sid().values_list(
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
            )
        )
        for row in rows:
            values = list(row)
            if not full:
                values[2] = mask_phone(values[2])
            yield values


# The Developer Section (attributes, API definitions, API-call log) lives in its own module.
from . import developer_admin  # noqa: E402, F401
