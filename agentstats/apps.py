from django.apps import AppConfig


class AgentstatsConfig(AppConfig):
    name = "agentstats"
    verbose_name = "agentstats"

    def ready(self) -> None:
        from agentstats import checks  # noqa: F401 - registers the deploy checks
