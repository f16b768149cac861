#!/usr/bin/env python3
"""Arbitra's two entry points on a machine with nothing but Python 3.11+.

    python3 dev.py up      start the whole service set (embedded PostgreSQL/Redis + emulator)
    python3 dev.py reset   wipe the demo's data (after a confirmation); the next `up` starts afresh
    python3 dev.py test    run the test suite

Each creates .venv on first use and installs (again only when a requirements file changed)
what it needs, then runs inside it. Extra arguments pass through (`dev.py test -k cursor`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = {
    "up": ["requirements.txt", "requirements-embedded.txt"],
    "reset": ["requirements.txt", "requirements-embedded.txt"],
    "test": ["requirements-dev.txt", "requirements-embedded.txt"],
}


def ensure_environment(files: list[str]) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under whatever python3 the user has
        sys.exit(f"Arbitra needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    digest = hashlib.sha256()
    for name in files:
        digest.update((ROOT / name).read_bytes())
        if name == "requirements-dev.txt":
            digest.update((ROOT / "requirements.txt").read_bytes())
    stamp = VENV / f".installed-{digest.hexdigest()[:16]}"
    if stamp.exists():
        return
    print(f"installing {', '.join(files)} into .venv …", flush=True)
    command = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for name in files:
        command += ["-r", str(ROOT / name)]
    subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603 - fixed argv
    stamp.touch()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in REQUIREMENTS:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment(REQUIREMENTS[command])
    os.chdir(ROOT)
    if command == "up":
        arguments = [str(PYTHON), "manage.py", "up", *rest]
    elif command == "reset":
        arguments = [str(PYTHON), "manage.py", "demo_reset", *rest]
    else:
        arguments = [str(PYTHON), "-m", "pytest", *rest]
    os.execv(arguments[0], arguments)  # noqa: S606 - replaces this process with the venv's python
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
