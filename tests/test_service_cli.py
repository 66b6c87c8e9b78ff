"""`distw2v serve` as a real process, and `submit --wait`, `jobs`, `cancel`, `retry` against it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_until_healthy

from distw2v.cli import main
from distw2v.service.store import JobStore

pytestmark = pytest.mark.service

FAST = ["--dim", "8", "--epochs", "2", "--min-count", "1", "--workers", "1"]


def _one_line_error(capsys, argv: list[str], match: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def served(tmp_path, monkeypatch):
    """`distw2v serve` in its own process, with the token it generates for itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path / "data"
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "distw2v.cli", "serve", "--port", str(port), "--data-dir",
         str(data), "--allowed-roots", str(tmp_path / "roots"), "--max-concurrent-jobs", "1"],
        stdout=log, stderr=subprocess.STDOUT,
        # without $DISTW2V_TOKEN, serve generates its token into the data directory
        env={k: v for k, v in os.environ.items() if k != "DISTW2V_TOKEN"},
    )
    url = f"http://127.0.0.1:{port}"
    if not wait_until_healthy(url, process):
        raise RuntimeError((tmp_path / "serve.log").read_text())
    token = (data / "token").read_text().strip()
    monkeypatch.setenv("DISTW2V_SERVER", url)
    monkeypatch.setenv("DISTW2V_TOKEN", token)
    yield url, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log.close()


def test_submit_wait_jobs_cancel_against_a_real_server(
    tmp_path, capsys, served, service_corpus, service_processes
) -> None:
    url, process = served
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=1)
    assert main(["submit", str(source), "--name", "first", "--wait", *FAST]) == 0
    out, err = capsys.readouterr()
    job_id = out.split()[1]
    assert out.splitlines()[0] == f"job {job_id} queued"
    assert f"job {job_id} succeeded:" in out and "words/s" in out
    assert "100%" in err  # the progress bar, fed by the API
    assert main(["jobs"]) == 0
    out, _ = capsys.readouterr()
    header, row = out.splitlines()[:2]
    assert header.split() == ["ID", "STATE", "PROGRESS", "CREATED", "NAME"]
    assert row.split()[:3] == [job_id, "succeeded", "100%"] and row.endswith("first")
    _one_line_error(capsys, ["cancel", job_id],
                    f"distw2v cancel: error: job {job_id} is already succeeded; only queued "
                    "or running jobs can be cancelled.")
    _one_line_error(capsys, ["retry", job_id], "only failed or cancelled jobs can be retried.")
    # a finished job is deleted with its model; then it is gone
    assert main(["delete", job_id]) == 0
    assert capsys.readouterr().out.strip() == f"job {job_id} deleted"
    _one_line_error(capsys, ["delete", job_id], f"there is no job {job_id}.")

    # A long job, cancelled from the CLI, then retried with one call.
    assert main(["submit", str(source), "--dim", "8", "--epochs", "5000", "--min-count", "1",
                 "--workers", "1"]) == 0
    long_id = capsys.readouterr().out.split()[1]
    assert main(["cancel", long_id]) == 0
    assert capsys.readouterr().out.strip() == f"job {long_id} cancelled"
    assert main(["jobs", "--state", "cancelled"]) == 0
    assert long_id in capsys.readouterr().out
    assert main(["retry", long_id]) == 0
    assert capsys.readouterr().out.strip().endswith("(attempt 2)")
    _one_line_error(capsys, ["delete", long_id], f"cancel it first (DELETE /v1/jobs/{long_id})")
    assert main(["cancel", long_id]) == 0
    capsys.readouterr()

    # Bad input: one line each, exit status 2.
    _one_line_error(capsys, ["submit", str(tmp_path / "roots" / "nope.txt"), *FAST],
                    f"{tmp_path / 'roots' / 'nope.txt'} does not exist.")
    _one_line_error(capsys, ["submit", str(tmp_path / "elsewhere.txt"), *FAST],
                    "is outside the allowed roots.")
    _one_line_error(capsys, ["submit", str(source), "--dim", "0"],
                    "distw2v submit: error: dim must be at least 1.")
    wrong = tmp_path / "wrong-token"
    wrong.write_text("wrong-token-123\n")
    _one_line_error(capsys, ["jobs", "--token-file", str(wrong)],
                    "distw2v jobs: error: the bearer token is not valid (sent: the token in")
    # --token still works, with a warning that ps shows it
    assert main(["jobs", "--token", os.environ["DISTW2V_TOKEN"]]) == 0
    assert capsys.readouterr().err.startswith("warning: --token is visible to every user")
    empty = tmp_path / "roots" / "empty.txt"
    empty.write_text("")
    _one_line_error(capsys, ["submit", str(empty), "--wait", *FAST],
                    "the dataset is empty: every file in the sources is empty.")
    rare = service_corpus(tmp_path / "roots" / "rare.txt", seed=2, sentences=2, vocab=500)
    _one_line_error(capsys, ["submit", str(rare), "--wait", "--quiet", "--min-count", "100",
                             "--dim", "8"], "failed: ")

    # SIGTERM stops the server cleanly; a job it was running is stopped and marked failed.
    assert main(["submit", str(source), "--dim", "8", "--epochs", "5000", "--min-count", "1",
                 "--workers", "1"]) == 0
    running_id = capsys.readouterr().out.split()[1]
    deadline = time.monotonic() + 30
    while not service_processes(running_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service_processes(running_id)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not service_processes(running_id)
    stopped = JobStore(f"sqlite:///{tmp_path / 'data' / 'jobs.db'}").get(running_id)
    assert stopped is not None and stopped.state == "failed"
    assert stopped.error == ("the server was stopped while this job was running; resubmit it "
                             f"with POST /v1/jobs/{running_id}/retry.")
    _one_line_error(capsys, ["jobs", "--server", url],
                    f"distw2v jobs: error: cannot reach the server at {url}:")


def test_serve_refuses_a_public_address_without_a_token(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("DISTW2V_TOKEN", raising=False)  # serve would take it as its token
    _one_line_error(capsys, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
                    "distw2v serve: error: refusing to listen on 0.0.0.0 without a token; "
                    "pass --token or --tokens-file (or listen on 127.0.0.1).")
    _one_line_error(capsys, ["serve", "--data-dir", str(tmp_path), "--max-concurrent-jobs", "0"],
                    "distw2v serve: error: max_concurrent_jobs must be at least 1.")
