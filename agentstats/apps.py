from django.apps import AppConfig


class AgentstatsConfig(AppConfig):
    name = "agentstats"
    verbose_name = "agentstats"

    def ready(self) -> None:
        # Registers the deploy checks and the node lists' override receiver.
        from agentstats import broker_settings, checks  # noqa: F401
