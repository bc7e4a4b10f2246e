"""Bot-facing chat-flow endpoints, and the staff preview page."""

import uuid

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.auth import bot_of
from integrations.serializers import BODY_ERRORS, error_responses

from . import runner, serializers
from .models import Conversation, Flow


def get_flow(request: Request, flow_id: str) -> Flow:
    """The caller's flow, or 404 (another bot's flow is not found either)."""
    queryset = Flow.objects.for_bot(bot_of(request)).select_related("bot")
    if not (flow_id.isascii() and flow_id.isdigit()):
        return get_object_or_404(queryset.none())
    return get_object_or_404(queryset, pk=int(flow_id))


def get_conversation(request: Request, conversation_id: str) -> Conversation:
    """The caller's conversation, or 404."""
    bot = bot_of(request)
    queryset = Conversation.objects.select_related("current_step", "flow")
    if bot is not None:
        queryset = queryset.filter(bot=bot)
    try:
        pk = uuid.UUID(conversation_id)
    except ValueError:
        return get_object_or_404(queryset.none())
    return get_object_or_404(queryset, pk=pk)


class FlowListView(APIView):
    @extend_schema(
        responses={200: serializers.FlowSerializer(many=True), **error_responses()},
        summary="List flows",
    )
    def get(self, request: Request) -> Response:
        flows = Flow.objects.for_bot(bot_of(request)).select_related("bot")
        return Response(serializers.FlowSerializer(flows, many=True).data)


class FlowDetailView(APIView):
    @extend_schema(
        responses={200: serializers.FlowDefinitionSerializer, **error_responses(404)},
        summary="Get a flow's whole definition",
    )
    def get(self, request: Request, flow_id: str) -> Response:
        flow = get_flow(request, flow_id)
        return Response(serializers.FlowDefinitionSerializer(flow).data)


class FlowConversationsView(APIView):
    @extend_schema(
        request=serializers.StartConversationSerializer,
        responses={
            201: serializers.ConversationSerializer,
            **error_responses(*BODY_ERRORS, 404, 409),
        },
        summary="Start a conversation: runs the flow until it needs input",
    )
    def post(self, request: Request, flow_id: str) -> Response:
        flow = get_flow(request, flow_id)
        data = _validated(serializers.StartConversationSerializer, request)
        conversation = runner.start_conversation(
            flow,
            user_ref=data["user_ref"],
            attributes=data["attributes"],
            by_staff=bot_of(request) is None,
        )
        return Response(serializers.ConversationSerializer(conversation).data, status=201)


class ConversationMessagesView(APIView):
    @extend_schema(
        request=serializers.MessageSerializer,
        responses={
            200: serializers.ConversationSerializer,
            **error_responses(*BODY_ERRORS, 404, 409),
        },
        summary="Send the user's message; the flow runs until it needs input again",
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = get_conversation(request, conversation_id)
        data = _validated(serializers.MessageSerializer, request)
        conversation = runner.post_message(conversation, data["text"])
        return Response(serializers.ConversationSerializer(conversation).data)


class ConversationDetailView(APIView):
    @extend_schema(
        responses={200: serializers.ConversationDetailSerializer, **error_responses(404)},
        summary="Get a conversation with its transcript",
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = get_conversation(request, conversation_id)
        return Response(serializers.ConversationDetailSerializer(conversation).data)


def _validated(serializer_class: type, request: Request) -> dict:
    serializer = serializer_class(data=request.data if request.data is not None else {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@staff_member_required
@ensure_csrf_cookie
def preview(request: HttpRequest, flow_id: int) -> HttpResponse:
    """A chat window that runs the flow through the REST API, as a bot would."""
    flow = get_object_or_404(Flow.objects.select_related("bot"), pk=flow_id)
    return render(request, "chatflows/preview.html", {"flow": flow})
