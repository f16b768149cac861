#!/usr/bin/env python
"""Django's command-line entry point for Arbitra."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    from django.core.management import execute_from_command_line

    from arbitra.configuration import CONFIGURATION_ERROR_EXIT_STATUS, ConfigurationError

    try:
        # Settings read the environment on first access: a bad value stops here, as one line,
        # before Django would swallow it and report an unknown command instead.
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018
    except ConfigurationError as error:
        sys.stderr.write(f"configuration error: {error}\n")
        sys.exit(CONFIGURATION_ERROR_EXIT_STATUS)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
