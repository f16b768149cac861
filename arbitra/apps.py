from django.apps import AppConfig


class ArbitraConfig(AppConfig):
    name = "arbitra"
    verbose_name = "Arbitra service set"
