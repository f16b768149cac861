import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the 'admin' superuser with a generated password (printed once) if no superuser exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--reveal-file",
            help="also write the new password to this file (mode 600) so `up` can repeat it in its banner",
        )

    def handle(self, *args, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("admin user already exists (its password was printed when it was created)")
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username=options["username"], email="", password=password)
        if options["reveal_file"]:
            path = Path(options["reveal_file"])
            path.touch(mode=0o600)
            path.write_text(password)
        banner = "=" * 64
        self.stdout.write(banner)
        self.stdout.write(f"Created admin user '{options['username']}' with password: {password}")
        self.stdout.write("It is shown only this once; change it in the admin.")
        self.stdout.write(banner)
