from django.urls import path

from . import callbacks, views

urlpatterns = [
    path(
        "integrations/twilio/status-callback",
        callbacks.TwilioStatusCallbackView.as_view(),
        name="twilio-status-callback",
    ),
    path(
        "integrations/custom-feature/send-otp-sms",
        views.GuideSendView.as_view(),
        name="guide-send-otp",
    ),
    path(
        "integrations/custom-feature/verify-user-otp",
        views.GuideVerifyView.as_view(),
        name="guide-verify-otp",
    ),
    path("api/v1/verifications", views.VerificationListView.as_view(), name="verification-list"),
    path(
        "api/v1/verifications/<str:verification_id>",
        views.VerificationDetailView.as_view(),
        name="verification-detail",
    ),
    path(
        "api/v1/verifications/<str:verification_id>/check",
        views.VerificationCheckView.as_view(),
        name="verification-check",
    ),
    path(
        "api/v1/verifications/<str:verification_id>/resend",
        views.VerificationResendView.as_view(),
        name="verification-resend",
    ),
    path(
        "api/v1/verifications/<str:verification_id>/cancel",
        views.VerificationCancelView.as_view(),
        name="verification-cancel",
    ),
]
