from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/flows", views.FlowListView.as_view(), name="flow-list"),
    path("api/v1/flows/<str:flow_id>", views.FlowDetailView.as_view(), name="flow-detail"),
    path(
        "api/v1/flows/<str:flow_id>/conversations",
        views.FlowConversationsView.as_view(),
        name="flow-conversations",
    ),
    path(
        "api/v1/conversations/<str:conversation_id>",
        views.ConversationDetailView.as_view(),
        name="conversation-detail",
    ),
    path(
        "api/v1/conversations/<str:conversation_id>/messages",
        views.ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path("flows/<int:flow_id>/preview", views.preview, name="flow-preview"),
]
