from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from integrations.views import healthz

admin.site.site_header = "chatbot-auth administration"
admin.site.site_title = "chatbot-auth"
admin.site.index_title = "Bots, APIs, flows and logs"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("integrations.urls")),
    path("", include("chatflows.urls")),
]

# Unknown URLs and crashes under /api/ and /integrations/ answer JSON with a code.
handler404 = "integrations.errors.page_not_found"
handler500 = "integrations.errors.server_error"
