from django.contrib import admin
from django.urls import include, path

from arbitra import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", include("ingest.metrics")),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
]

# JSON envelopes for /api/v1 paths, Django's pages elsewhere (see api.exceptions).
handler400 = "api.exceptions.handler400"
handler403 = "api.exceptions.handler403"
handler404 = "api.exceptions.handler404"
handler500 = "api.exceptions.handler500"
