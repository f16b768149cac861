from django.apps import AppConfig


class MartsConfig(AppConfig):
    name = "marts"
    verbose_name = "Marts (per-wallet aggregates)"

    def ready(self) -> None:
        # /metrics is served by ingest; the marts layer adds its families from above.
        from ingest.metrics import metric_families_register
        from marts.metrics import ledger_metric_families

        metric_families_register(ledger_metric_families)
        # Every drain batch re-marks its wallets' ledger positions at the latest prices.
        from marts.ledger_services import ledger_marks_for_batch
        from marts.services import mart_batch_consumer_register

        mart_batch_consumer_register(ledger_marks_for_batch)
        # The ledger's entries join the monthly partition maintenance (ingest.partitions).
        from ingest.partitions import partitioned_table_register
        from marts.partitions import LEDGER_ENTRY

        partitioned_table_register(LEDGER_ENTRY)
