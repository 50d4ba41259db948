from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "loyalty.ledger"
    label = "ledger"
    verbose_name = "Points ledger"

    def ready(self) -> None:
        from loyalty.core import privacy
        from loyalty.ledger import privacy as ledger_privacy

        privacy.register(section="points", exporter=ledger_privacy.export_member, eraser=ledger_privacy.erase_member)
