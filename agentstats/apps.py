from django.apps import AppConfig


class AgentstatsConfig(AppConfig):
    name = "agentstats"
    verbose_name = "agentstats"
