"""Bot-facing OTP endpoints: the guide's two, and the native verifications API."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import otp, serializers
from .auth import bot_of
from .sms import ProviderAccount
from .throttles import BotSendRateThrottle

# --- The guide's endpoints ----------------------------------------------------------


class GuideSendView(APIView):
    guide_style_errors = True
    throttle_classes = [BotSendRateThrottle]

    @extend_schema(
        request=serializers.GuideSendSerializer,
        responses={
            200: serializers.GuideSendResponseSerializer,
            **serializers.error_responses(*serializers.BODY_ERRORS, 429, 502, guide=True),
        },
        summary="Send a one-time code (the bot-platform guide's Send OTP API)",
    )
    def post(self, request: Request) -> Response:
        data = _validated(serializers.GuideSendSerializer, request)
        account = None
        if data["accountSID"]:
            account = ProviderAccount(data["accountSID"], data["authToken"], data["fromNumber"])
        verification = otp.start_verification(
            data["toNumber"], bot=bot_of(request), account=account
        )
        expires_in = int((verification.expires_at - verification.created_at).total_seconds())
        return Response(
            {
                "success": True,
                "systemOtp": str(verification.pk),
                "verificationId": str(verification.pk),
                "status": otp.current_status(verification),
                "expiresIn": expires_in,
            }
        )


class GuideVerifyView(APIView):
    guide_style_errors = True

    @extend_schema(
        request=serializers.GuideVerifySerializer,
        responses={
            200: serializers.GuideVerifyResponseSerializer,
            **serializers.error_responses(*serializers.BODY_ERRORS, 404, 429, guide=True),
        },
        summary="Check a one-time code (the bot-platform guide's Verify OTP API)",
    )
    def post(self, request: Request) -> Response:
        data = _validated(serializers.GuideVerifySerializer, request)
        result = otp.check_code(data["systemOtp"], data["userOtp"], bot=bot_of(request))
        return Response(
            {
                "success": True,
                "verified": result.verified,
                "status": otp.current_status(result.verification),
                "attemptsLeft": result.verification.attempts_left,
            }
        )


# --- The native API -------------------------------------------------------------------


class VerificationListView(APIView):
    throttle_classes = [BotSendRateThrottle]

    @extend_schema(
        request=serializers.StartVerificationSerializer,
        responses={
            201: serializers.VerificationSerializer,
            **serializers.error_responses(*serializers.BODY_ERRORS, 429, 502),
        },
        summary="Start a verification: send a code to a phone",
    )
    def post(self, request: Request) -> Response:
        data = _validated(serializers.StartVerificationSerializer, request)
        verification = otp.start_verification(
            data["to"], bot=bot_of(request), channel=data["channel"], user_ref=data["user_ref"]
        )
        return Response(serializers.verification_data(verification), status=201)


class VerificationDetailView(APIView):
    @extend_schema(
        responses={200: serializers.VerificationSerializer, **serializers.error_responses(404)},
        summary="Get a verification",
    )
    def get(self, request: Request, verification_id: str) -> Response:
        verification = otp.get_verification(verification_id, bot=bot_of(request))
        return Response(serializers.verification_data(verification))


class VerificationCheckView(APIView):
    @extend_schema(
        request=serializers.CheckVerificationSerializer,
        responses={
            200: serializers.CheckResultSerializer,
            **serializers.error_responses(*serializers.BODY_ERRORS, 404, 429),
        },
        summary="Check a code",
    )
    def post(self, request: Request, verification_id: str) -> Response:
        data = _validated(serializers.CheckVerificationSerializer, request)
        result = otp.check_code(verification_id, data["code"], bot=bot_of(request))
        body = serializers.verification_data(result.verification)
        return Response({**body, "verified": result.verified})


class VerificationResendView(APIView):
    throttle_classes = [BotSendRateThrottle]

    @extend_schema(
        request=serializers.EmptySerializer,
        responses={
            200: serializers.VerificationSerializer,
            **serializers.error_responses(*serializers.BODY_ERRORS, 404, 409, 429, 502),
        },
        summary="Send a new code (the old one stops working)",
    )
    def post(self, request: Request, verification_id: str) -> Response:
        _validated(serializers.EmptySerializer, request)
        verification = otp.resend_code(verification_id, bot=bot_of(request))
        return Response(serializers.verification_data(verification))


class VerificationCancelView(APIView):
    @extend_schema(
        request=serializers.EmptySerializer,
        responses={
            200: serializers.VerificationSerializer,
            **serializers.error_responses(*serializers.BODY_ERRORS, 404, 409),
        },
        summary="Cancel a pending verification",
    )
    def post(self, request: Request, verification_id: str) -> Response:
        _validated(serializers.EmptySerializer, request)
        verification = otp.cancel_verification(verification_id, bot=bot_of(request))
        return Response(serializers.verification_data(verification))


def _validated(serializer_class: type, request: Request) -> dict:
    data = request.data if request.data is not None else {}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
