from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    # Nothing here is public but the APIs: a person opening the site lands in the admin.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("integrations.urls")),
    path("", include("chatflows.urls")),
]

# Unknown URLs and crashes under /api/ and /integrations/ answer JSON with a code.
handler404 = "integrations.errors.page_not_found"
handler500 = "integrations.errors.server_error"
