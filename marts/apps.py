from django.apps import AppConfig


class MartsConfig(AppConfig):
    name = "marts"
    verbose_name = "Marts (per-wallet aggregates)"

    def ready(self) -> None:
        # /metrics is served by ingest; the marts layer adds its families from above.
        from ingest.metrics import metric_families_register
        from marts.metrics import ledger_metric_families

        metric_families_register(ledger_metric_families)
