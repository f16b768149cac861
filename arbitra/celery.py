"""The Celery application shared by every worker, beat and Flower."""

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")

app = Celery("arbitra")
# All Celery options live in Django settings under the CELERY_ prefix: one place to read them.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_django_logging(**_kwargs) -> None:
    """Keep Django's LOGGING (JSON lines, task ids) instead of Celery's own handlers."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
