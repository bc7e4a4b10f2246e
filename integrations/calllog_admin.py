"""The API-call log as staff review it: the same paging, filters and CSV export as the
verification log, on top of the Developer Section's read-only call-log admin."""

from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .developer_admin import ApiCallLogAdmin
from .exports import iterate_rows
from .log_admin import LogAdmin
from .models import ApiCallLog


class StatusClassListFilter(admin.SimpleListFilter):
    """2xx, 3xx, 4xx, 5xx, or no HTTP answer at all (timeout, refused address, …)."""

    title = "status class"
    parameter_name = "status_class"
    CLASSES = ["2xx", "3xx", "4xx", "5xx"]
    NONE = "none"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in self.CLASSES] + [(self.NONE, "no response")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.NONE:
            return queryset.filter(status__isnull=True)
        if value in self.CLASSES:
            low = int(value[0]) * 100
            return queryset.filter(status__gte=low, status__lt=low + 100)
        return queryset


admin.site.unregister(ApiCallLog)


@admin.register(ApiCallLog)
class ApiCallLogReviewAdmin(LogAdmin, ApiCallLogAdmin):
    list_filter = ["definition", "outcome", StatusClassListFilter, "origin", "created_at"]
    list_select_related = ["definition"]
    sortable_by = ["created_at"]
    export_name = "api-calls"
    csv_fields = [
        "id",
        "created_at",
        "definition_name",
        "origin",
        "conversation_id",
        "method",
        "url",
        "status",
        "duration_ms",
        "outcome",
        "error_code",
        "error_message",
    ]

    def csv_header(self, request: HttpRequest) -> list[str]:
        return list(self.csv_fields)

    def csv_rows(self, request: HttpRequest, queryset: QuerySet) -> Iterator[Any]:
        # URLs and messages were stored with secrets masked and codes redacted.
        return iterate_rows(queryset.values_list(*self.csv_fields))
