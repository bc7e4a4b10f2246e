"""The Twilio status callback: delivery reports for the messages that carried codes."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import delivery


class StatusCallbackSerializer(serializers.Serializer):
    MessageSid = serializers.RegexField(r"^[A-Za-z0-9]{2,64}$")
    MessageStatus = serializers.ChoiceField(choices=sorted(delivery.STATUS_RANK))
    ErrorCode = serializers.RegexField(r"^[0-9]{1,10}$", required=False, allow_blank=True)


class TwilioStatusCallbackView(APIView):
    """Twilio posts a form here each time a message changes state.

    Not a session or API-key endpoint: the request is authenticated by its
    X-Twilio-Signature alone (so no CSRF token either), and answers 403 without it.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        form = request.POST
        delivery.check_twilio_signature(
            url=settings.PUBLIC_BASE_URL + request.get_full_path(),
            params=form,
            signature=request.headers.get("X-Twilio-Signature", ""),
            token=delivery.signing_token(
                message_sid=form.get("MessageSid", ""), account_sid=form.get("AccountSid", "")
            ),
        )
        serializer = StatusCallbackSerializer(data=form)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = delivery.record_delivery_report(
            delivery.DeliveryReport(
                message_sid=data["MessageSid"],
                status=data["MessageStatus"],
                error_code=data.get("ErrorCode", ""),
            )
        )
        return Response({"status": outcome})
