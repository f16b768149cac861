"""Flower's configuration file (`celery -A arbitra flower --conf=arbitra/flowerconfig.py`).

The password never appears on a command line (where `ps` shows it to every user) or in a log: it
comes from FLOWER_PASSWORD or from the file FLOWER_PASSWORD_FILE names, and Flower refuses to start
without one. Unsafe requests (POST, PUT, DELETE) must carry Tornado's XSRF token, which Flower's own
pages then send with every request; `/metrics` asks for the same credentials as every other page
(`/healthcheck` stays open for probes).

Tornado executes this file and keeps the globals that name Flower options (`basic_auth`).
"""

import os
from pathlib import Path

import tornado.web
from flower.urls import settings as _tornado_settings
from flower.views import BaseHandler as _BaseHandler
from flower.views.monitor import Metrics as _Metrics


def _password() -> str:
    direct = os.environ.get("FLOWER_PASSWORD", "").strip()
    if direct:
        return direct
    secret_file = os.environ.get("FLOWER_PASSWORD_FILE", "").strip()
    if secret_file:
        try:
            return Path(secret_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SystemExit(f"flower: FLOWER_PASSWORD_FILE={secret_file!r} cannot be read: {error.strerror}") from None
    raise SystemExit("flower: set FLOWER_PASSWORD or FLOWER_PASSWORD_FILE; Flower does not run without a password")


_secret = _password()
if not _secret:
    raise SystemExit("flower: the Flower password is empty")
basic_auth = [f"{os.environ.get('FLOWER_USER', '').strip() or 'admin'}:{_secret}"]
del _secret

_tornado_settings["xsrf_cookies"] = True

# Flower's pages post with jQuery, which knows nothing of the token: every page sets the cookie and
# tells jQuery to send it back as the X-XSRFToken header Tornado checks.
_XSRF_SCRIPT = (
    b'<script>(function(){var m=document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);'
    b'if(m&&window.jQuery){jQuery.ajaxSetup({headers:{"X-XSRFToken":decodeURIComponent(m[1])}});}})();</script>'
)
_original_render_string = _BaseHandler.render_string


def _render_string_with_xsrf(self, template_name, **kwargs):
    page = _original_render_string(self, template_name, **kwargs)
    self.xsrf_token  # noqa: B018 - reading it sets the _xsrf cookie
    if b"</body>" in page:
        page = page.replace(b"</body>", _XSRF_SCRIPT + b"</body>", 1)
    return page


_BaseHandler.render_string = _render_string_with_xsrf
_Metrics.get = tornado.web.authenticated(_Metrics.get)
