"""CI step: every requirement has a wheel for each supported Python (3.11 and 3.14), so `dev.py` installs
on a machine without compilers. Fails only when the registry answers that a distribution is missing;
a registry that cannot be reached (timeout, DNS, proxy) is reported and skipped, never a red build.

    python .ci/check_wheels.py [--python 3.11 --python 3.14] [-r requirements.txt …]

1. Resolve the requirement files for this interpreter (metadata only, `pip install --dry-run --report`).
2. For each target version, ask pip for a binary-only, no-deps install of exactly those pins with
   that version's tags (dry run again: no wheel is downloaded, only index pages and metadata).
Pure-Python packages published only as an sdist (feedparser's sgmllib3k) build anywhere and are named,
not failed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT_FILES = ["requirements-dev.txt", "requirements-embedded.txt"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
MISSING = re.compile(r"(?:No matching distribution found for|Could not find a version that satisfies the requirement) (\S+)")
UNREACHABLE = re.compile(
    r"(timed out|Timeout|Max retries exceeded|Temporary failure in name resolution|Name or service not known|"
    r"Connection (?:refused|reset|aborted)|NewConnectionError|ProxyError|SSLError|Network is unreachable|"
    r"No route to host|HTTP error 5\d\d)",
    re.IGNORECASE,
)
PIP_TIMEOUT_SECONDS = 240
SKIPPED, PASSED, FAILED = 0, 0, 1


def _pip(*arguments: str) -> tuple[int | None, str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--timeout", "15", "--retries", "2", *arguments]
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return None, f"pip did not finish within {PIP_TIMEOUT_SECONDS} s"
    return result.returncode, result.stdout + result.stderr


def _judge(code: int | None, output: str, what: str) -> int | None:
    """None when pip succeeded; otherwise the exit status this step ends with."""
    if code == 0:
        return None
    # pip says "no matching distribution" also when it could not read the index at all: evidence of
    # an unreachable registry (its retry warnings, a timeout) wins, so a bad network never fails CI.
    unreachable = UNREACHABLE.search(output)
    missing = sorted(set(MISSING.findall(output)))
    if missing and code is not None and not unreachable:
        print(f"check_wheels: {what}: no wheel for {', '.join(missing)}", file=sys.stderr)
        return FAILED
    if code is None or unreachable:
        reason = unreachable
        print(f"check_wheels: {what}: registry unreachable ({reason.group(1) if reason else output.strip()}); "
              "skipping this check, not failing the build", file=sys.stderr)  # fmt: skip
        return SKIPPED
    print(f"check_wheels: {what}: pip failed in an unexpected way; not failing the build on it:\n{output[-2000:]}",
          file=sys.stderr)  # fmt: skip
    return SKIPPED


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", action="append", dest="versions", help="target Python version (repeatable)")
    parser.add_argument("-r", "--requirement", action="append", dest="files", help="requirement file (repeatable)")
    options = parser.parse_args(argv)
    versions = options.versions or ["3.11", "3.14"]
    requirement_args = [arg for name in options.files or REQUIREMENT_FILES for arg in ("-r", name)]
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "report.json"
        code, output = _pip("install", "--dry-run", "--quiet", "--ignore-installed", "--report", str(report_path),
                            *requirement_args)  # fmt: skip
        verdict = _judge(code, output, "resolving the requirements")
        if verdict is not None:
            return verdict
        wheels, sdist_only = [], []
        for item in json.loads(report_path.read_text())["install"]:
            pin = f"{item['metadata']['name']}=={item['metadata']['version']}"
            (sdist_only if not item["download_info"]["url"].endswith(".whl") else wheels).append(pin)
        platform_args = [arg for platform in PLATFORMS for arg in ("--platform", platform)]

        def binary_only_install(version: str) -> tuple[int | None, str]:
            return _pip(
                "install", "--dry-run", "--quiet", "--ignore-installed", "--no-deps", "--only-binary=:all:",
                "--python-version", version, "--implementation", "cp", *platform_args,
                "--target", str(Path(scratch) / f"target-{version}"), *wheels,
            )  # fmt: skip

        with ThreadPoolExecutor(max_workers=len(versions)) as pool:
            answers = list(pool.map(binary_only_install, versions))
        for version, (code, output) in zip(versions, answers, strict=True):
            verdict = _judge(code, output, f"Python {version}")
            if verdict is not None:
                return verdict
            print(f"check_wheels: Python {version}: wheels for all {len(wheels)} packages")
        if sdist_only:
            print(f"check_wheels: published as source only (pure Python, built at install): {', '.join(sdist_only)}")
    return PASSED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
