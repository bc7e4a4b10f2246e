from django.contrib import admin
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from .models import Bot, BotAPIKey, Verification, VerificationEvent

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
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [BotAPIKeyInline]


@admin.register(BotAPIKey)
class BotAPIKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "bot"]
    list_filter = [*APIKeyModelAdmin.list_filter, "bot"]
    search_fields = [*APIKeyModelAdmin.search_fields, "bot__name"]


class VerificationEventInline(admin.TabularInline):
    model = VerificationEvent
    extra = 0
    fields = ["created_at", "kind", "detail"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Verification)
class VerificationAdmin(admin.ModelAdmin):
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
    list_filter = ["status", "channel", "bot", "country"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "masked_phone",
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
        "country",
        "created_at",
    ]
    readonly_fields = fields
    inlines = [VerificationEventInline]

    @admin.display(description="phone")
    def masked_phone(self, obj: Verification) -> str:
        return obj.masked_phone

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
