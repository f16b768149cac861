"""`manage.py admin_password`: a new generated password for the admin user, kept in a 0600 file.

The password is never printed (it would scroll away or land in a log); the file in the state folder
holds it, readable by its owner only. `up` runs this with --if-missing on every start, so the first
start creates the user and later starts only say where the password is.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

ADMIN_PASSWORD_FILE_NAME = "admin_password"  # noqa: S105 - a file name, not a secret


def admin_password_file() -> Path:
    return Path(settings.STATE_DIR) / ADMIN_PASSWORD_FILE_NAME


def write_secret_file(path: Path, secret: str) -> None:
    """Write `secret` to `path` readable by its owner only, also when the file already existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, f"{secret}\n".encode())
    finally:
        os.close(descriptor)


class Command(BaseCommand):
    help = "Set a new generated password for the admin user (created when missing); it goes to a 0600 file."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--file", type=Path, default=None, help="where the password goes (default: STATE_DIR/admin_password)")
        parser.add_argument(
            "--if-missing", action="store_true",
            help="only create the user when no superuser exists yet; otherwise change nothing",
        )

    def handle(self, *args, **options):
        target = options["file"] or admin_password_file()
        users = get_user_model()
        username = options["username"]
        if options["if_missing"] and users.objects.filter(is_superuser=True).exists():
            where = f"password in {target}" if target.exists() else "set one with `manage.py admin_password`"
            self.stdout.write(f"admin user exists ({where})")
            return
        password = secrets.token_urlsafe(15)
        with transaction.atomic():
            user = users.objects.filter(username=username).first()
            if user is None:
                user = users.objects.create_superuser(username=username, email="", password=password)
                action = "created admin user"
            else:
                user.set_password(password)
                user.is_active = user.is_staff = user.is_superuser = True
                user.save()
                action = "new password for"
            write_secret_file(target, password)
        self.stdout.write(f"{action} {username!r}: password written to {target} (mode 600)")
