"""The Developer Section in the admin: custom attributes, API definitions, the API-call log.

Secret row values are write-only: the form shows `••••` and the last four
characters, typing a value replaces the secret, leaving it empty keeps it.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from .crypto import is_unreadable, mask_secret
from .curl import CurlError, import_curl
from .executor import call_api
from .models import (
    ApiBodyParam,
    ApiCallLog,
    ApiDefinition,
    ApiHeader,
    ApiQueryParam,
    ApiResponseMapping,
    ApiRow,
    CustomAttribute,
)
from .redaction import is_code_key, redact_data

# Values an admin's Test run saved, offered as samples in the next Test form
# (e.g. Send OTP saves otp_id, which Verify OTP then needs). Typed inputs are
# never kept: one of them may be a code.
SAMPLE_SESSION_KEY = "integrations_sample_attributes"


@admin.register(CustomAttribute)
class CustomAttributeAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "description"]
    list_filter = ["type"]
    search_fields = ["name", "description"]


UNREADABLE_HINT = (
    "No key in FIELD_ENCRYPTION_KEYS decrypts it: re-enter it, or add the old key "
    "back to FIELD_ENCRYPTION_KEYS. Left empty, the stored secret is kept unchanged."
)


def unreadable_secret_rows(definition: ApiDefinition) -> list[ApiRow]:
    """The definition's secret rows that no configured key decrypts."""
    rows = [
        *definition.query_params.all(),
        *definition.headers.all(),
        *definition.body_params.all(),
    ]
    return [row for row in rows if row.is_secret and is_unreadable(row.secret_value)]


class ApiRowForm(forms.ModelForm):
    """A key/value row; for a secret, the value field sets a new secret and never shows one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        value_field = self.fields["value"]
        value_field.widget = forms.TextInput(attrs={"size": 40})
        value_field.help_text = ""
        instance: ApiRow = self.instance
        if instance.pk and instance.is_secret and is_unreadable(instance.secret_value):
            # Left empty, the stored token is kept as it is (see EncryptedTextField).
            value_field.widget.attrs["placeholder"] = "unreadable secret: type it again"
            value_field.help_text = UNREADABLE_HINT
        elif instance.pk and instance.is_secret and instance.secret_value:
            value_field.widget.attrs["placeholder"] = mask_secret(instance.secret_value)
            value_field.help_text = "Secret set; type a new value to replace it."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        typed = cleaned.get("value", "")
        if cleaned.get("is_secret"):
            if typed:
                self.instance.secret_value = typed
            cleaned["value"] = ""
        else:
            self.instance.secret_value = ""
        return cleaned


class ApiRowInline(admin.TabularInline):
    form = ApiRowForm
    fields = ["key", "value", "is_secret", "position"]
    extra = 0


class ApiQueryParamInline(ApiRowInline):
    model = ApiQueryParam
    verbose_name_plural = "query parameters"


class ApiHeaderInline(ApiRowInline):
    model = ApiHeader
    verbose_name_plural = "headers"


class ApiBodyParamInline(ApiRowInline):
    model = ApiBodyParam
    verbose_name_plural = "body parameters"


class ApiResponseMappingInline(admin.TabularInline):
    model = ApiResponseMapping
    fields = ["source", "path", "attribute", "position"]
    autocomplete_fields = ["attribute"]
    extra = 0


class CurlImportForm(forms.Form):
    command = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 100}),
        help_text="e.g. curl -X POST https://api.example.com/otp -H 'Authorization: …' -d '{…}'",
    )
    name = forms.CharField(
        max_length=100, required=False, help_text="Left empty: method, host and path."
    )


def _coerce(attribute_type: str, text: str) -> Any:
    """A typed sample value as a conversation would hold it."""
    if attribute_type == CustomAttribute.Type.BOOLEAN:
        return text.strip().lower() in ("1", "true", "yes", "on")
    if attribute_type == CustomAttribute.Type.NUMBER:
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() else number
    return text


def _sample_form(names: list[str], initial: dict[str, Any]) -> type[forms.Form]:
    fields = {
        name: forms.CharField(required=False, label=name, initial=initial.get(name, ""))
        for name in names
    }
    return type("SampleAttributesForm", (forms.Form,), fields)


@admin.register(ApiDefinition)
class ApiDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "method", "url", "test_link"]
    list_filter = ["method", "body_format"]
    search_fields = ["name", "url", "description"]
    fields = ["name", "description", "method", "url", "body_format", "timeout", "retries"]
    inlines = [ApiQueryParamInline, ApiHeaderInline, ApiBodyParamInline, ApiResponseMappingInline]
    save_on_top = True

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: ApiDefinition | None = None,
    ) -> HttpResponse:
        # Said on the page itself: an inline row's help text is not shown per row.
        if obj is not None and obj.pk:
            for row in unreadable_secret_rows(obj):
                kind = row._meta.verbose_name
                messages.warning(
                    request, f"The secret of {kind} “{row.key}” is unreadable. {UNREADABLE_HINT}"
                )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="")
    def test_link(self, obj: ApiDefinition) -> str:
        url = reverse("admin:integrations_apidefinition_test", args=[obj.pk])
        return format_html('<a href="{}">Test</a>', url)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name="integrations_apidefinition_test",
            ),
            path(
                "import-curl/",
                self.admin_site.admin_view(self.import_curl_view),
                name="integrations_apidefinition_import_curl",
            ),
        ]
        return own + super().get_urls()

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Run the definition with sample attribute values and show what happened."""
        definition = self.get_object(request, unquote(object_id))
        if definition is None:
            raise Http404("No such API definition.")
        # Running a definition sends a real request: it takes change permission.
        if not self.has_change_permission(request, definition):
            raise PermissionDenied
        names = definition.used_attributes()
        types = dict(CustomAttribute.objects.filter(name__in=names).values_list("name", "type"))
        samples = request.session.get(SAMPLE_SESSION_KEY, {})
        form = _sample_form(names, samples)(request.POST if request.method == "POST" else None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": definition,
            "title": f"Test {definition.name}",
            "form": form,
        }
        if request.method == "POST" and form.is_valid():
            values = {
                name: _coerce(types.get(name, "text"), text)
                for name, text in form.cleaned_data.items()
                if text != ""
            }
            outcome = call_api(definition, values, origin=ApiCallLog.Origin.ADMIN_TEST)
            assert outcome.log_id is not None  # call_api always logs
            log = ApiCallLog.objects.get(pk=outcome.log_id)
            saved = redact_data(outcome.saved)
            request.session[SAMPLE_SESSION_KEY] = {
                **samples,
                **{k: v for k, v in saved.items() if isinstance(v, str | int | float | bool)},
            }
            # The form comes back with what was typed, except a code.
            kept = {k: v for k, v in form.cleaned_data.items() if not is_code_key(k)}
            context.update(
                form=_sample_form(names, {**samples, **kept})(),
                outcome=outcome,
                log=log,
                saved_json=json.dumps(saved, indent=2, ensure_ascii=False),
            )
        return TemplateResponse(request, "admin/integrations/apidefinition/test.html", context)

    def import_curl_view(self, request: HttpRequest) -> HttpResponse:
        """Paste a cURL command; get a new definition to review."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CurlImportForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                definition = import_curl(
                    form.cleaned_data["command"], name=form.cleaned_data["name"]
                )
            except CurlError as exc:
                form.add_error("command", str(exc))
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                messages.success(
                    request,
                    f'Imported "{definition.name}". Check its rows, secrets and response mappings.',
                )
                url = reverse("admin:integrations_apidefinition_change", args=[definition.pk])
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import an API definition from cURL",
            "form": form,
        }
        return TemplateResponse(
            request, "admin/integrations/apidefinition/import_curl.html", context
        )


LOG_FIELDS = (
    "created_at",
    "definition",
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
    "request_excerpt",
    "response_excerpt",
)


@admin.register(ApiCallLog)
class ApiCallLogAdmin(admin.ModelAdmin):
    """Read-only for everyone: a log is evidence, not data to edit."""

    list_display = [
        "created_at",
        "definition_name",
        "origin",
        "method",
        "status",
        "outcome",
        "error_code",
        "duration_ms",
    ]
    list_filter = ["outcome", "origin"]
    search_fields = ["definition_name", "conversation_id", "url"]
    date_hierarchy = "created_at"
    fields = LOG_FIELDS
    readonly_fields = LOG_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
