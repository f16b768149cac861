from django.apps import AppConfig


class MartsConfig(AppConfig):
    name = "marts"
    verbose_name = "Marts (per-wallet aggregates)"
