from django.contrib.admin.apps import AdminConfig


class ChatbotAuthAdminConfig(AdminConfig):
    """Django's admin, with the site of config.admin (sections, capped login)."""

    default_site = "config.admin.ChatbotAuthAdminSite"
