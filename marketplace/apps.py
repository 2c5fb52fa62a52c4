from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace site agents"

    def ready(self) -> None:
        from marketplace.metrics import checks  # noqa: F401 - registers the deploy checks
        from marketplace.registration.revocation_signals import connect_revocation_signals

        connect_revocation_signals()
