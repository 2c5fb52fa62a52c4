from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace site agents"

    def ready(self) -> None:
        from marketplace.registration.revocation_signals import connect_revocation_signals

        connect_revocation_signals()
