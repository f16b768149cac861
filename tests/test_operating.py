"""Operating Arbitra: supervision and restarts, hang-up, single instance, clear start-up errors,
the beat lock, orphans of a killed `up`, and the demo's history surviving restarts."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings

from devtools.supervisor import ChildSpec, ProcessSupervisor, stop_orphans
from tests import up_harness
from tests.up_harness import ROOT, UpRun, processes_marked, wait_for

scratch_database = up_harness.scratch_database

# --- configuration errors and refusals before anything starts ----------------------------------------


def _manage_up(env_overrides: dict[str, str], *arguments: str, state_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARBITRA_STATE_DIR": str(state_dir), **env_overrides}
    return subprocess.run([sys.executable, "manage.py", "up", *arguments], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "nonsense", "postgres or postgresql"),
        ("REDIS_URL", "redis://localhost:port/0", "numeric port"),
        ("CELERY_TASK_SOFT_TIME_LIMIT", "700", "below CELERY_TASK_TIME_LIMIT (600)"),
        ("CELERY_VISIBILITY_TIMEOUT", "600", "above CELERY_TASK_TIME_LIMIT (600)"),
        ("COMPUTE_BATCH_SIZE", "lots", "an integer ≥ 1"),
        ("RATE_LIMIT_FACTOR", "0", "a number > 0"),
        ("LOG_FORMAT", "xml", "one of text, json"),
    ],
)
def test_a_bad_setting_stops_up_with_one_line_naming_it_and_exit_status_2(tmp_path, variable, value, expected):
    result = _manage_up({variable: value}, state_dir=tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and repr(value) in lines[0] and expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_taken_web_port_is_named_with_its_flag_before_anything_starts(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = _manage_up(
            {"DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL},
            "--web-port", str(port), state_dir=tmp_path,
        )  # fmt: skip

    assert result.returncode == 2
    assert f"port {port}" in result.stdout and "--web-port" in result.stdout, result.stdout
    assert "started" not in result.stdout, "nothing may start when a port is taken"
    assert not (tmp_path / "up-status.json").exists()


def test_the_same_port_for_two_services_is_refused(tmp_path):
    result = _manage_up(
        {"DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL},
        "--web-port", "18999", "--flower-port", "18999", state_dir=tmp_path,
    )  # fmt: skip

    assert result.returncode == 2
    assert "port 18999" in result.stdout and "--flower-port" in result.stdout


# --- the supervisor on its own ------------------------------------------------------------------------------


def test_a_child_that_keeps_failing_stops_supervision_with_its_name_and_last_lines(tmp_path):
    supervisor = ProcessSupervisor(stream=open(os.devnull, "w"), colour=False, max_failures=3, failure_window=60,  # noqa: SIM115
                                   status_file=tmp_path / "status.json")  # fmt: skip
    supervisor.start(ChildSpec("flaky", [sys.executable, "-c", "print('cannot open the widget'); raise SystemExit(3)"]))
    try:
        reason = supervisor.supervise(threading.Event(), poll_seconds=0.05)
    finally:
        supervisor.stop_all()

    assert reason is not None
    assert reason.startswith("flaky exited 3 times within 60 s (last exit code 3)")
    assert "cannot open the widget" in reason


def test_orphans_a_killed_supervisor_left_are_stopped_and_reused_pids_are_not(tmp_path):
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    from arbitra.health import process_start_ticks

    status = {
        "pid": 1, "start_ticks": 0,
        "children": {
            "beat": {"pid": orphan.pid, "start_ticks": process_start_ticks(orphan.pid)},
            # Same pid, another start time: a process that merely reuses a recorded pid.
            "web": {"pid": bystander.pid, "start_ticks": (process_start_ticks(bystander.pid) or 0) + 1},
        },
    }  # fmt: skip
    (tmp_path / "status.json").write_text(json.dumps(status))
    said = []
    try:
        stopped = stop_orphans(tmp_path / "status.json", say=said.append, timeout=20)
        assert stopped == ["beat"]
        assert orphan.wait(timeout=20) is not None
        assert bystander.poll() is None
        assert "beat" in said[0] and str(orphan.pid) in said[0]
    finally:
        for process in (orphan, bystander):
            process.kill()
            process.wait()


# --- beat is single-instance ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_second_beat_waits_for_the_lock_and_takes_over_when_the_first_goes():
    from arbitra.beat import BEAT_LOCK_KEY, _connect, acquire_beat_lock

    holder = _connect()
    assert holder.execute("SELECT pg_try_advisory_lock(%s)", (BEAT_LOCK_KEY,)).fetchone()[0]
    acquired = []
    waiter = threading.Thread(target=lambda: acquired.append(acquire_beat_lock(poll_seconds=0.1)), daemon=True)
    waiter.start()
    try:
        time.sleep(1.0)
        assert acquired == [], "a second beat must wait while the first holds the lock"
        holder.close()  # the first beat's session ends (exit or crash)
        waiter.join(timeout=30)
        assert len(acquired) == 1
        still_held = _connect()
        assert still_held.execute("SELECT pg_try_advisory_lock(%s)", (BEAT_LOCK_KEY,)).fetchone()[0] is False
        still_held.close()
    finally:
        holder.close()
        for connection in acquired:
            connection.close()


# --- the whole service set ----------------------------------------------------------------------------------------


def _api_answers(up: UpRun, failures: list[str], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            status = requests.get(f"{up.base}/api/v1/ingest/status", timeout=10).status_code
            if status != 200:
                failures.append(f"HTTP {status}")
        except requests.RequestException as error:
            failures.append(type(error).__name__)
        stop.wait(0.5)


# The demo serves Data API v2, whose rows become visible up to its serving lag (90 s) after their
# trade time: fills older than this are all stored once ingest keeps up.
SETTLED_SECONDS = 150


def _verify_settled(up: UpRun) -> subprocess.CompletedProcess:
    return up.manage("verify_upstream", "--until", str(int(time.time()) - SETTLED_SECONDS))


@pytest.mark.slow
def test_up_restarts_a_killed_worker_stops_on_hangup_and_resumes_the_same_demo_history(scratch_database, tmp_path):
    up = UpRun(database_url=scratch_database, state_dir=tmp_path, redis_url=settings.REDIS_URL)
    try:
        up.start()
        up.wait_ready()
        screen = up.log.read_text()
        assert f"password in {tmp_path / 'admin_password'}" in screen
        assert (tmp_path / "admin_password").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "flower_password").stat().st_mode & 0o777 == 0o600
        flower_secret = (tmp_path / "flower_password").read_text().strip()
        assert all(flower_secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
                   for pid in processes_marked(up.marker))  # fmt: skip
        assert flower_secret not in screen

        # One `up` per state folder.
        second = subprocess.run(up.argv(), cwd=ROOT, env=up.env, capture_output=True, text=True, timeout=120, check=False)
        assert second.returncode == 1
        assert f"pid {up.process.pid}" in second.stderr and "since" in second.stderr

        # Flower: /metrics wants the password, unsafe requests the XSRF token.
        flower = f"http://127.0.0.1:{up.flower}"
        wait_for(lambda: requests.get(f"{flower}/healthcheck", timeout=5).ok, timeout=120, what="Flower")
        assert requests.get(f"{flower}/metrics", timeout=10).status_code == 401
        assert requests.get(f"{flower}/metrics", auth=("admin", flower_secret), timeout=10).status_code == 200
        forged = requests.post(f"{flower}/api/worker/pool/grow/ingest@x", auth=("admin", flower_secret), timeout=10)
        assert forged.status_code == 403

        wait_for(lambda: requests.get(f"{up.base}/api/v1/ingest/status", timeout=10).json()["data"], timeout=120,
                 what="the ingest status endpoint", log=up.log)  # fmt: skip

        # kill -9 the ingest worker: it comes back, and the API answers throughout.
        failures: list[str] = []
        stop_polling = threading.Event()
        poller = threading.Thread(target=_api_answers, args=(up, failures, stop_polling), daemon=True)
        poller.start()
        killed = up.status()["children"]["ingest"]["pid"]
        os.kill(killed, signal.SIGKILL)
        restarted = wait_for(
            lambda: (child := up.status()["children"]["ingest"])["restarts"] == 1 and child["running"] and child,
            timeout=60, what="the ingest worker's restart", log=up.log,
        )  # fmt: skip
        assert restarted["pid"] != killed and restarted["last_exit"] == -9
        time.sleep(3)
        stop_polling.set()
        poller.join(timeout=30)
        assert failures == [], f"the API did not answer while the worker restarted: {failures}"
        assert "ingest exited unexpectedly (exit code -9)" in up.log.read_text()
        metrics = requests.get(f"{up.base}/metrics", timeout=30).text
        assert 'arbitra_process_restarts{process="ingest"} 1' in metrics

        # Data has flowed: the history is complete (the verify after the restart must compare something).
        wait_for(lambda: _verify_settled(up).returncode == 0, timeout=240, what="a complete first history",
                 every=5, log=up.log)  # fmt: skip

        # SIGHUP (the terminal closed) stops everything, as Ctrl-C does.
        up.stop(signal.SIGHUP)
        wait_for(lambda: processes_marked(up.marker) == [], timeout=30, what="every process to be gone")
        assert "received SIGHUP, stopping everything" in up.log.read_text()

        # Restart: the emulator publishes the same history the database holds, plus what happened since.
        up.start()
        up.wait_ready()
        assert "resuming the emulator history" in up.log.read_text()
        first_cursor = json.loads((tmp_path / "demo-emulator.json").read_text())["start"]
        verify = wait_for(lambda: (r := _verify_settled(up)).returncode == 0 and r, timeout=240,
                          what="verify_upstream complete after the restart", every=5, log=up.log)  # fmt: skip
        report = json.loads(verify.stdout)
        assert report["complete"] is True and report["missing"] == 0 and report["unexpected"] == 0
        assert report["truth_fills"] > 0
        # Up to now, nothing stored is foreign to the emulator's history (the symptom of a regenerated one).
        everything = json.loads(up.manage("verify_upstream", "--everything").stdout)
        assert everything["unexpected"] == 0 and everything["duplicated"] == 0
        assert json.loads((tmp_path / "demo-emulator.json").read_text())["start"] == first_cursor
    finally:
        with_timeout_stop = up.process is not None and up.process.poll() is None
        if with_timeout_stop:
            up.stop(signal.SIGINT)
        up.kill_everything()
    assert processes_marked(up.marker) == []


# --- passwords, resets, what the health page says ---------------------------------------------------------------


@pytest.mark.django_db
def test_admin_password_sets_a_new_password_kept_in_a_file_only_its_owner_reads(tmp_path):
    from django.contrib.auth import authenticate
    from django.core.management import call_command

    secret_file = tmp_path / "admin_password"
    out = io.StringIO()
    call_command("admin_password", "--if-missing", "--file", str(secret_file), stdout=out)
    first = secret_file.read_text().strip()
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert first not in out.getvalue() and str(secret_file) in out.getvalue()
    assert authenticate(username="admin", password=first) is not None

    call_command("admin_password", "--if-missing", "--file", str(secret_file), stdout=io.StringIO())
    assert secret_file.read_text().strip() == first, "--if-missing changes nothing once an admin exists"

    call_command("admin_password", "--file", str(secret_file), stdout=io.StringIO())
    second = secret_file.read_text().strip()
    assert second != first and secret_file.stat().st_mode & 0o777 == 0o600
    assert authenticate(username="admin", password=first) is None
    assert authenticate(username="admin", password=second) is not None


def _mark_as_demo(database_url: str) -> None:
    from psycopg import sql

    from devtools.management.commands.up import DEMO_DATABASE_MARK

    with psycopg.connect(database_url, autocommit=True) as connection:
        name = connection.execute("SELECT current_database()").fetchone()[0]
        connection.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(f"{DEMO_DATABASE_MARK} 0123abcd (test)")))  # fmt: skip


def test_real_polymarket_mode_refuses_a_demo_database(scratch_database, tmp_path):
    _mark_as_demo(scratch_database)
    result = _manage_up({"DATABASE_URL": scratch_database, "REDIS_URL": settings.REDIS_URL},
                        "--upstream", "polymarket", "--web-port", str(up_harness.free_port()),
                        "--flower-port", str(up_harness.free_port()), state_dir=tmp_path)  # fmt: skip

    assert result.returncode == 2
    assert "holds demo data" in result.stdout and "database of its own" in result.stdout, result.stdout


def test_demo_reset_wipes_a_demo_database_after_confirmation_and_refuses_other_databases(scratch_database, tmp_path):
    env = {**os.environ, "DATABASE_URL": scratch_database, "REDIS_URL": settings.REDIS_URL, "ARBITRA_STATE_DIR": str(tmp_path)}
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    with psycopg.connect(scratch_database, autocommit=True) as connection:
        connection.execute("INSERT INTO ingest_run (job_name, kind, started_at, status, stats_json, error_text, task_id) "
                           "VALUES ('ingest.data_api.trades', 'scheduled', now(), 'succeeded', '{}', '', '')")  # fmt: skip
    (tmp_path / "demo-emulator.json").write_text("{}")

    def reset(*arguments: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", "demo_reset", *arguments], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    refused = reset("--yes")
    assert refused.returncode != 0 and "not a database `up` marked as a demo one" in refused.stderr

    _mark_as_demo(scratch_database)
    unconfirmed = reset()
    assert unconfirmed.returncode != 0 and "not confirmed" in unconfirmed.stderr
    assert (tmp_path / "demo-emulator.json").exists()

    wiped = reset("--yes")
    assert wiped.returncode == 0, wiped.stderr
    with psycopg.connect(scratch_database) as connection:
        assert connection.execute("SELECT count(*) FROM ingest_run").fetchone() == (0,)
    assert not (tmp_path / "demo-emulator.json").exists()


@pytest.mark.django_db
def test_the_health_page_names_an_unreachable_host_and_labels_the_emulators_injected_dead_letters(admin_client, settings):
    from ingest.models import IngestDeadLetter, IngestRun, RunStatus

    settings.POLYMARKET_DATA_API_URL = "https://data-api.polymarket.com"
    IngestRun.objects.create(
        job_name="ingest.data_api.trades", status=RunStatus.FAILED,
        error_text=(
            "UpstreamUnavailable: https://data-api.polymarket.com/trades?limit=500: ConnectionError: "
            "HTTPSConnectionPool(host='data-api.polymarket.com', port=443): Max retries exceeded (Caused by "
            "NameResolutionError(\"Failed to resolve 'data-api.polymarket.com' ([Errno -3] Temporary failure in name "
            "resolution)\")) after 5 attempt(s): \nTraceback ..."
        ),
    )  # fmt: skip
    row = {"icon": "https://img.emulator.invalid/market/1.png", "price": 0.5, "timestamp": 1796160000}
    IngestDeadLetter.objects.create(source="data_api", stream="trades", payload=row, error="proxyWallet: missing")
    IngestDeadLetter.objects.create(source="data_api", stream="v2_trades", payload={**row, "proxy_wallet": "0xdef",
                                    "price": "abc"}, error="price: not a number: 'abc'")  # fmt: skip
    real_row = {**row, "proxyWallet": "0xabc", "icon": "https://polymarket-upload.s3.amazonaws.com/x.png"}
    del real_row["timestamp"]
    IngestDeadLetter.objects.create(source="data_api", stream="trades", payload=real_row, error="timestamp: missing")

    page = admin_client.get("/admin/ingest/health/").content.decode()
    assert "Upstream data-api.polymarket.com unreachable: Temporary failure in name resolution" in page

    # Once the breaker opens, the tile still names the cause, not the breaker.
    IngestRun.objects.create(
        job_name="ingest.data_api.trades", status=RunStatus.CIRCUIT_OPEN,
        error_text="data_api: circuit breaker is open, call refused without contacting the upstream",
    )  # fmt: skip
    page = admin_client.get("/admin/ingest/health/").content.decode()
    assert "Upstream data-api.polymarket.com unreachable: Temporary failure in name resolution" in page
    assert "circuit breaker now open" in page
    assert "2 of them injected on purpose by the demo emulator" in page


@pytest.mark.django_db
def test_ingest_status_gives_the_wall_clock_age_of_the_newest_stored_fill(client):
    from datetime import timedelta

    from django.utils import timezone


    streams = {row["job_name"]: row for row in client.get("/api/v1/ingest/status").json()["data"]}
    assert streams["ingest.data_api.trades"]["newest_stored_age_seconds"] is None

    # A fill traded 90 s ago is 90 s old, whatever the last run measured as lag (stored the way
    # ingest stores fills: the writer keeps the newest fill's time, so the API reads no fill table).
    from ingest.sources.data_api.parsing import OccurrenceCounter
    from ingest.sources.data_api.writing import trade_page_v2_ingest

    traded = int((timezone.now() - timedelta(seconds=90)).timestamp())
    row = {"proxy_wallet": "0x" + "3" * 40, "side": "BUY", "token_id": "1", "condition_id": "0x" + "2" * 64,
           "size": 1, "price": 0.5, "timestamp": traded, "transaction_hash": "0x" + "1" * 64}
    assert trade_page_v2_ingest(run=None, rows=[row], counter=OccurrenceCounter()).inserted == 1
    streams = {row["job_name"]: row for row in client.get("/api/v1/ingest/status").json()["data"]}
    assert 89 <= streams["ingest.data_api.trades"]["newest_stored_age_seconds"] <= 150
    assert streams["ingest.data_api.trades"]["newest_stored_time"] is not None
    assert streams["ingest.gamma.markets"]["newest_stored_age_seconds"] is None
