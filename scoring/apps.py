from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring (scores, anomalies, feed)"

    def ready(self) -> None:
        # The compute pipeline is marts, then scoring: scoring joins it from above, so the marts
        # layer never imports the layer after it.
        from marts.services import mart_batch_consumer_register
        from scoring.services import wallet_scores_write

        mart_batch_consumer_register(wallet_scores_write)
        # /metrics is served by ingest; the edge baselines' seal adds its families from above.
        from ingest.metrics import metric_families_register
        from scoring.metrics import edge_seal_metric_families

        metric_families_register(edge_seal_metric_families)
