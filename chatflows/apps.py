from django.apps import AppConfig


class ChatflowsConfig(AppConfig):
    name = "chatflows"
    verbose_name = "Chat flows"

    def ready(self) -> None:
        # Flows travel with the attributes and APIs they use in export_config /
        # import_config; registering here keeps integrations unaware of chat flows.
        from integrations.configuration import register_section

        from .definitions import export_flows, import_flows

        register_section("flows", export=export_flows, import_=import_flows)
