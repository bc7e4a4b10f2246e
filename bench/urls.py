from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/bare", views.BareView.as_view(), name="bench-bare"),
    path("bench/write-floor/<str:key>", views.WriteFloorView.as_view(), name="bench-write-floor"),
    path("bench/send-floor", views.SendFloorView.as_view(), name="bench-send-floor"),
    path("", include("config.urls")),
]
