"""Log records that carry the request id or the Celery task id they belong to."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_context_id() -> str:
    """The id of the request or task being served, '-' outside both."""
    request_id = request_id_var.get()
    if request_id:
        return request_id
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a hard dependency
        return "-"
    # current_task is a proxy: truthiness asks whether a task is really executing here.
    if current_task and current_task.request.id:
        return str(current_task.request.id)
    return "-"


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context_id = current_context_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so log shippers need no parsing rules."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context_id = getattr(record, "context_id", "-")
        if context_id != "-":
            document["context_id"] = context_id
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)
