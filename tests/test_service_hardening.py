"""The service's job, bounds and API holes (issue 15), each shown by trying the attack:
cancel-then-retry races, settings without bounds, quotas, time limits, retention, 500s,
vanished models, stale cached models and visible tokens."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import wait_until_healthy

from distw2v.config import SparkConfig, TrainConfig, VocabConfig, bounds_of
from distw2v.errors import Distw2vError
from distw2v.service.cli import TOKEN_VISIBLE, serve_token
from distw2v.service.server import Service
from distw2v.service.settings import ServiceConfig

pytestmark = pytest.mark.service

LONG = {"dim": 8, "epochs": 5000, "workers": 1, "seed": 3}
FAST = {"dim": 8, "epochs": 1, "workers": 1, "seed": 3}
ENDED = ("failed", "cancelled")


def _sentence(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail
    assert detail.endswith(".") and "\n" not in detail, detail
    return detail


class _ProcessWatch:
    """Samples /proc in a thread: the most training processes alive at once, in all and for
    any one job (zombies, already dead, are not counted)."""

    def __init__(self, processes) -> None:
        self.processes = processes
        self.jobs: list[str] = []
        self.peak_total = 0
        self.peak_per_job = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._done.is_set():
            counts = [len(self.processes(job_id)) for job_id in list(self.jobs)]
            if counts:
                self.peak_total = max(self.peak_total, sum(counts))
                self.peak_per_job = max(self.peak_per_job, max(counts))
            self._done.wait(0.002)


SLOW_EXIT = """
import os, signal, time

def _slow_exit(signum, frame):
    time.sleep(1.0)  # as a process with clean-up to do (a JVM's shutdown hooks) takes time
    os._exit(128 + signum)

signal.signal(signal.SIGTERM, _slow_exit)
"""


def _slow_to_stop(tmp_path: Path, monkeypatch) -> None:
    """Training processes started from now on take a second to stop after SIGTERM."""
    site = tmp_path / "slow-exit"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_EXIT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))


def test_cancel_then_retry_at_once_never_runs_two_processes_of_a_job(
    tmp_path, monkeypatch, service_server, service_corpus, service_processes, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="distw2v.service")
    _slow_to_stop(tmp_path, monkeypatch)
    server = service_server(max_concurrent_jobs=2)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=2, sentences=2000))
    job = server.submit([source], train=LONG)
    jid = job["id"]
    scratch = server.service.config.data_path / "jobs" / jid
    rounds = 6
    with _ProcessWatch(service_processes) as watch:
        watch.jobs.append(jid)
        for attempt in range(1, rounds + 1):
            # the attempt's process is up (the runner has started it) ...
            server.wait(jid, until=lambda j, a=attempt: j["attempts"] == a
                        and j["state"] == "running")
            deadline = time.monotonic() + 30
            while not service_processes(jid) and time.monotonic() < deadline:
                time.sleep(0.01)
            # ... and is cancelled and retried at once, before it has had time to exit
            assert server.http.delete(f"/v1/jobs/{jid}").json()["state"] == "cancelled"
            retried = server.http.post(f"/v1/jobs/{jid}/retry")
            assert retried.status_code == 202, retried.text
            assert retried.json()["attempts"] == attempt + 1
        last = rounds + 1
        running = server.wait(jid, until=lambda j: j["attempts"] == last
                              and j["stage"] == "training" and j["progress"] > 0.2)
        assert running["state"] == "running"
        # the new attempt's scratch directory was not taken by an old attempt's reader
        assert scratch.is_dir()
        assert server.service.runner.running_ids() == [jid]
        assert len(service_processes(jid)) == 1
        assert server.http.delete(f"/v1/jobs/{jid}").status_code == 200
        deadline = time.monotonic() + 20
        while (service_processes(jid) or server.service.runner.running_ids()) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
    assert watch.peak_per_job == 1, "two processes of one job ran at once"
    assert watch.peak_total <= 2
    assert not service_processes(jid), "a training process outlived every cancel"
    assert server.job(jid)["state"] == "cancelled"
    # the log tells the same story as the store: every attempt ended cancelled, none else
    ends = re.findall(rf"job {jid} attempt (\d+) (\w+)",
                      "\n".join(r.getMessage() for r in caplog.records))
    finished = [(int(a), how) for a, how in ends if how != "started"]
    assert finished == [(a, "cancelled") for a in range(1, last + 1)], finished
    assert not scratch.exists()


def test_a_retried_job_succeeds_and_the_log_agrees(
    tmp_path, monkeypatch, service_server, service_corpus, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="distw2v.service")
    _slow_to_stop(tmp_path, monkeypatch)
    server = service_server(max_concurrent_jobs=1)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=3))
    # long enough to be cancelled while it trains, short enough to run whole on retry
    jid = server.submit([source], train={**LONG, "epochs": 400})["id"]
    server.wait(jid, until=lambda j: j["stage"] == "training")
    assert server.http.delete(f"/v1/jobs/{jid}").status_code == 200
    retried = server.http.post(f"/v1/jobs/{jid}/retry")  # at once
    assert retried.status_code == 202 and retried.json()["state"] == "queued"
    done = server.wait(jid)
    assert done["state"] == "succeeded" and done["attempts"] == 2, done["error"]
    ends = [m for m in (r.getMessage() for r in caplog.records)
            if m.startswith(f"job {jid} attempt") and "started" not in m]
    assert ends == [f"job {jid} attempt 1 cancelled", f"job {jid} attempt 2 succeeded"]
    assert server.http.get(f"/v1/models/{jid}/similar", params={"word": "w1"}).status_code == 200


# ---- bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "name", "value", "message"),
    [
        ("train", "dim", 10**9, "dim must be at most 10000."),
        ("train", "workers", 100_000, "workers must be at most 1024."),
        ("train", "epochs", 10**12, "epochs must be at most 10000."),
        ("train", "alpha", 1e308, "alpha must be at most 1.0."),
        ("train", "alpha", 0.0, "alpha must be greater than 0."),
        ("train", "window", 10**6, "window must be at most 1000."),
        ("train", "negative", 5000, "negative must be at most 1000."),
        ("train", "sample", 2.0, "sample must be at most 1.0."),
        ("train", "min_alpha", -1.0, "min_alpha must not be negative."),
        ("train", "seed", 2**53, "seed must be at most 9007199254740991."),
        ("train", "batch_words", 10**12, "batch_words must be at most 10000000."),
        ("vocab", "max_final_vocab", 2**40, "max_final_vocab must be at most 2147483647."),
        ("vocab", "max_sentence_length", 10**9, "max_sentence_length must be at most 1000000."),
    ],
)
def test_out_of_bounds_settings_are_422_with_one_sentence(
    tmp_path, service_server, service_corpus, section, name, value, message
) -> None:
    server = service_server()
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=0)
    response = server.http.post("/v1/jobs", json={"sources": [str(source)],
                                                  section: {name: value}})
    detail = _sentence(response, 422)
    assert detail == f"invalid request: {section}.{name}: {message}"
    assert response.json()["errors"] == [{"field": f"{section}.{name}", "message": message}]
    assert server.http.get("/v1/jobs").json()["total"] == 0


def test_nan_is_refused_by_the_dataclass() -> None:
    with pytest.raises(Distw2vError, match="alpha must be a number, not NaN"):
        TrainConfig(alpha=float("nan"))
    with pytest.raises(Distw2vError, match="shards must be at most 1024"):
        SparkConfig(shards=5000)


def test_every_numeric_setting_has_bounds_in_openapi_and_help(service_server) -> None:
    import dataclasses

    schema = service_server().http.get("/openapi.json").json()["components"]["schemas"]
    for cls, model in ((TrainConfig, "TrainSettings"), (VocabConfig, "VocabSettings")):
        for f in dataclasses.fields(cls):
            if f.name == "format":  # the request's own field, not a vocab setting: a choice
                continue
            low, high, exclusive = bounds_of(f)
            prop = schema[model]["properties"][f.name]
            number = next((b for b in prop.get("anyOf", [prop])
                           if b.get("type") in ("integer", "number")), None)
            if number is None:  # booleans and strings
                assert low is None and high is None, f.name
                continue
            assert low is not None and high is not None, f"{f.name} has no bounds"
            assert number["exclusiveMinimum" if exclusive else "minimum"] == low
            assert number["maximum"] == high
    out = subprocess.run([sys.executable, "-m", "distw2v.cli", "submit", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "vector dimension, 1 to 10000 (default: 100)" in " ".join(out.split())
    assert "initial learning rate, greater than 0, at most 1.0 (default:" in " ".join(out.split())


# ---- quotas and limits --------------------------------------------------------------------


def test_a_token_may_have_only_so_many_queued_and_running_jobs(
    tmp_path, service_server, service_corpus
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice-token-123\nbob-token-4567\n")
    server = service_server(token=None, tokens_file=str(tokens), max_concurrent_jobs=1,
                            max_jobs_per_token=2)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    body = {"sources": [source], "vocab": {"min_count": 1}, "train": LONG}
    alice = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer alice-token-123"})
    bob = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer bob-token-4567"})
    try:
        first, second = (alice.post("/v1/jobs", json=body).json() for _ in range(2))
        third = alice.post("/v1/jobs", json=body)
        assert _sentence(third, 429) == (
            "you already have 2 queued or running jobs, the most this server allows "
            "(--max-jobs-per-token); wait for one to end or cancel one.")
        assert bob.post("/v1/jobs", json=body).status_code == 201  # a quota per token
        assert alice.delete(f"/v1/jobs/{first['id']}").status_code == 200
        replacement = alice.post("/v1/jobs", json=body)
        assert replacement.status_code == 201
        # a retry counts too
        assert _sentence(alice.post(f"/v1/jobs/{first['id']}/retry"), 429).startswith(
            "you already have 2 queued or running jobs")
        assert alice.get("/v1/jobs", params={"state": "queued"}).json()["total"] + \
            alice.get("/v1/jobs", params={"state": "running"}).json()["total"] == 2
        for jid in (second["id"], replacement.json()["id"]):
            alice.delete(f"/v1/jobs/{jid}")
        for job in bob.get("/v1/jobs").json()["jobs"]:
            bob.delete(f"/v1/jobs/{job['id']}")
    finally:
        alice.close()
        bob.close()


def _clients(server):
    """Two tokens' clients on a server started with a tokens file of alice and bob."""
    alice = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer alice-token-123"})
    bob = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer bob-token-4567"})
    return alice, bob


def _tokens(tmp_path) -> str:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice-token-123\nbob-token-4567\n")
    return str(tokens)


def _wait_state(client: httpx.Client, jid: str, states: tuple[str, ...],
                timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/v1/jobs/{jid}").json())["state"] not in states:
        assert time.monotonic() < deadline, f"job {jid} did not get to {states}: {job}"
        time.sleep(0.05)
    return job


def test_a_finished_job_is_deleted_whole_by_its_owner_only(
    tmp_path, service_server, service_corpus
) -> None:
    server = service_server(token=None, tokens_file=_tokens(tmp_path), max_concurrent_jobs=1)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    body = {"sources": [source], "vocab": {"min_count": 1}, "train": dict(FAST)}
    alice, bob = _clients(server)
    with alice, bob:
        jid = alice.post("/v1/jobs", json=body).json()["id"]
        assert _wait_state(alice, jid, ("succeeded",) + ENDED)["state"] == "succeeded"
        artifacts = server.service.artifacts
        for fmt in ("word2vec-bin", "word2vec-text"):  # the bytes quota's bound holds
            bound = artifacts.export_bound(jid, fmt)
            export = alice.get(f"/v1/jobs/{jid}/artifacts/{fmt}")
            assert export.status_code == 200 and 0 < len(export.content) <= bound
            assert artifacts.export_bound(jid, fmt) == 0  # kept: nothing more to add
        data = server.service.config.data_path
        kept = [data / "models" / jid, data / "cache" / jid, data / "logs" / f"{jid}.log"]
        assert all(path.exists() for path in kept)
        assert _sentence(bob.post(f"/v1/jobs/{jid}/delete"), 404) == f"there is no job {jid}."
        long = alice.post("/v1/jobs", json={**body, "train": LONG}).json()["id"]
        assert _sentence(alice.post(f"/v1/jobs/{long}/delete"), 409).startswith(
            f"job {long} is ")  # queued or running
        deleted = alice.post(f"/v1/jobs/{jid}/delete")
        assert deleted.status_code == 204 and deleted.content == b""
        assert not any(path.exists() for path in kept)
        assert _sentence(alice.get(f"/v1/jobs/{jid}"), 404) == f"there is no job {jid}."
        assert _sentence(alice.get(f"/v1/models/{jid}/similar", params={"word": "w1"}),
                         404) == f"there is no job {jid}."
        assert alice.delete(f"/v1/jobs/{long}").status_code == 200


def test_one_token_cannot_starve_another_behind_its_queue(
    tmp_path, service_server, service_corpus
) -> None:
    """The attack: token A fills the queue, token B submits one job; B's job must not wait
    behind all of A's (the order is the store's record of when each job started)."""
    server = service_server(token=None, tokens_file=_tokens(tmp_path), max_concurrent_jobs=1)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    body = {"sources": [source], "vocab": {"min_count": 1}, "train": dict(FAST)}
    alice, bob = _clients(server)
    with alice, bob:
        first = alice.post("/v1/jobs", json={**body, "train": LONG}).json()["id"]
        _wait_state(alice, first, ("running",))
        queued = [alice.post("/v1/jobs", json=body).json()["id"] for _ in range(8)]
        theirs = bob.post("/v1/jobs", json=body).json()["id"]
        assert alice.delete(f"/v1/jobs/{first}").status_code == 200  # the slot frees
        assert _wait_state(bob, theirs, ("succeeded",) + ENDED)["state"] == "succeeded"
        for jid in queued:  # A's jobs, queued before B's, did not go first
            alice.delete(f"/v1/jobs/{jid}")
    store = server.service.store
    started = store.get(theirs).started_at
    assert started is not None and store.get(first).started_at < started
    before = [jid for jid in queued if (store.get(jid).started_at or float("inf")) < started]
    assert before == [], f"{len(before)} of A's queued jobs started before B's one job"


def test_a_token_over_its_stored_jobs_quota_is_refused(
    tmp_path, service_server, service_corpus
) -> None:
    """The attack: one token keeps ever more finished jobs (cancelled ones here)."""
    server = service_server(token=None, tokens_file=_tokens(tmp_path), max_concurrent_jobs=1,
                            max_stored_jobs_per_token=3)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    body = {"sources": [source], "vocab": {"min_count": 1}, "train": LONG}
    alice, bob = _clients(server)
    with alice, bob:
        kept = [alice.post("/v1/jobs", json=body).json()["id"] for _ in range(3)]
        for jid in reversed(kept):  # all finished now, and still stored
            assert alice.delete(f"/v1/jobs/{jid}").json()["state"] == "cancelled"
        assert _sentence(alice.post("/v1/jobs", json=body), 429) == (
            "you already keep 3 jobs, the most this server allows "
            "(--max-stored-jobs-per-token); delete finished jobs you no longer need "
            "(POST /v1/jobs/ID/delete, or `distw2v delete ID`) to make room.")
        assert alice.get("/v1/jobs").json()["total"] == 3
        other = bob.post("/v1/jobs", json=body)  # a quota per token
        assert other.status_code == 201
        assert bob.delete(f"/v1/jobs/{other.json()['id']}").status_code == 200
        # deleting one (the last, which never had a process) makes room for one
        assert alice.post(f"/v1/jobs/{kept[-1]}/delete").status_code == 204
        again = alice.post("/v1/jobs", json=body)
        assert again.status_code == 201
        assert alice.delete(f"/v1/jobs/{again.json()['id']}").status_code == 200


def test_a_token_over_its_bytes_quota_is_refused_and_exports_count(
    tmp_path, service_server, service_corpus
) -> None:
    """The attack: models and their on-demand word2vec exports (full copies in the cache)
    fill the disk. Here one model plus its binary export is the whole quota."""
    first = service_server(token=None, tokens_file=_tokens(tmp_path), max_concurrent_jobs=1)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    body = {"sources": [source], "vocab": {"min_count": 1}, "train": dict(FAST)}
    alice, bob = _clients(first)
    with alice, bob:
        jid = alice.post("/v1/jobs", json=body).json()["id"]
        done = _wait_state(alice, jid, ("succeeded",) + ENDED)
        assert done["state"] == "succeeded", done["error"]
        export = alice.get(f"/v1/jobs/{jid}/artifacts/word2vec-bin")
        assert export.status_code == 200
    data = first.service.config.data_path
    model = done["summary"]["model_bytes"]
    assert model == sum(f.stat().st_size for f in (data / "models" / jid).iterdir())
    first.stop()
    # the same data, served with a quota of exactly the model and its export
    quota = model + len(export.content)
    server = service_server(config=first.service.config, token=None,
                            max_stored_bytes_per_token=quota)
    alice, bob = _clients(server)
    with alice, bob:
        used = f"{quota / 1024:.1f} KiB"
        free = ("delete finished jobs you no longer need (POST /v1/jobs/ID/delete, or "
                "`distw2v delete ID`) to make room.")
        assert _sentence(alice.post("/v1/jobs", json=body), 429) == (
            f"your jobs already keep {used}, and this server allows a token {used} "
            f"(--max-stored-bytes-per-token); {free}")
        text = _sentence(alice.get(f"/v1/jobs/{jid}/artifacts/word2vec-text"), 429)
        assert text.startswith("this export takes up to ") and text.endswith(
            f" and your jobs keep {used} of the {used} this server allows a token "
            f"(--max-stored-bytes-per-token); {free}"), text
        assert not (data / "cache" / jid / "vectors.txt").exists()
        # what is already kept can still be read; another token has its own quota
        assert alice.get(f"/v1/jobs/{jid}/artifacts/word2vec-bin").content == export.content
        assert bob.post("/v1/jobs", json={**body, "train": LONG}).status_code == 201
        # deleting the job frees its model and its export
        assert alice.post(f"/v1/jobs/{jid}/delete").status_code == 204
        assert alice.post("/v1/jobs", json={**body, "train": LONG}).status_code == 201
        for client in (alice, bob):
            for job in client.get("/v1/jobs", params={"state": "queued"}).json()["jobs"]:
                client.delete(f"/v1/jobs/{job['id']}")
            for job in client.get("/v1/jobs", params={"state": "running"}).json()["jobs"]:
                client.delete(f"/v1/jobs/{job['id']}")


def test_a_job_past_the_time_limit_is_stopped_and_failed(
    tmp_path, monkeypatch, service_server, service_corpus, service_processes
) -> None:
    monkeypatch.setenv("DISTW2V_TOKEN", "server-secret-token")
    server = service_server(max_concurrent_jobs=1, job_time_limit="2h")
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0, sentences=2000))
    jid = server.submit([source], train=LONG)["id"]
    server.wait(jid, until=lambda j: j["stage"] == "training")
    # the training process is not handed the server's token
    (pid,) = service_processes(jid)
    assert b"server-secret-token" not in Path(f"/proc/{pid}/environ").read_bytes()
    runner = server.service.runner
    runner.clock = lambda: time.time() + 3600  # one hour in: still within the limit
    assert runner.wait_for_pass()
    queued = server.submit([source])  # a second job waits for the slot
    assert server.job(jid)["state"] == "running" and service_processes(jid) == [pid]
    runner.clock = lambda: time.time() + 2 * 3600 + 1
    assert runner.wait_for_pass()
    failed = server.wait(jid, timeout=30)
    assert failed["state"] == "failed"
    assert failed["error"] == ("the job ran longer than this server's time limit of 2h "
                               "(--job-time-limit) and was stopped.")
    assert not service_processes(jid)
    # the freed slot goes to the queued job, whose own clock starts when it starts
    assert server.wait(queued["id"])["state"] == "succeeded"
    with pytest.raises(Distw2vError, match="job_time_limit must be a duration"):
        ServiceConfig(job_time_limit="soon")
    assert ServiceConfig(job_time_limit="none").time_limit_seconds is None
    assert ServiceConfig(job_time_limit="90m").time_limit_seconds == 5400


def test_retention_deletes_old_finished_jobs_and_the_model_cache_forgets_them(
    tmp_path, service_server, service_corpus
) -> None:
    server = service_server(max_concurrent_jobs=1, retention_days=1)
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    old = server.wait(server.submit([source])["id"])
    assert old["state"] == "succeeded", old["error"]
    jid = old["id"]
    data = server.service.config.data_path
    similar = f"/v1/models/{jid}/similar"
    assert server.http.get(similar, params={"word": "w1"}).status_code == 200  # cached now
    assert (data / "models" / jid).is_dir() and (data / "logs" / f"{jid}.log").is_file()
    server.http.get(f"/v1/jobs/{jid}/artifacts/word2vec-text")  # an export in the cache
    assert (data / "cache" / jid).is_dir()
    runner = server.service.runner
    runner.clock = lambda: time.time() + 0.5 * 86400  # half a day later: kept
    assert runner.wait_for_pass()
    assert server.job(jid)["id"] == jid and (data / "models" / jid).is_dir()
    runner.clock = lambda: time.time() + 1.01 * 86400  # a day later: deleted
    assert runner.wait_for_pass()
    assert _sentence(server.http.get(f"/v1/jobs/{jid}"), 404) == f"there is no job {jid}."
    assert _sentence(server.http.get(similar, params={"word": "w1"}), 404) == \
        f"there is no job {jid}."
    assert not (data / "models" / jid).exists() and not (data / "cache" / jid).exists()
    assert not (data / "logs" / f"{jid}.log").exists()
    assert jid not in [j["id"] for j in server.http.get("/v1/jobs").json()["jobs"]]
    with pytest.raises(Distw2vError, match="retention_days must not be negative"):
        ServiceConfig(retention_days=-1)


def test_retention_is_on_by_default_and_0_turns_it_off(
    tmp_path, service_server, service_corpus
) -> None:
    """The attack: with retention off, one token's finished jobs were kept for ever."""
    assert ServiceConfig().retention_days == 30
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    for days, forever in ((None, False), (0, True)):
        server = service_server(max_concurrent_jobs=1, **(
            {} if days is None else {"retention_days": days}))
        jid = server.wait(server.submit([source])["id"])["id"]
        runner = server.service.runner
        for later in (29.9, 30.01, 10_000):  # days after the job ended
            kept = later < 30 or forever
            runner.clock = lambda later=later: time.time() + later * 86400
            assert runner.wait_for_pass()
            found = server.http.get(f"/v1/jobs/{jid}").status_code
            assert found == (200 if kept else 404), (days, later)
            models = server.service.config.data_path / "models" / jid
            assert models.is_dir() == kept


# ---- 500s and the error schema ------------------------------------------------------------


def test_huge_paging_values_are_422_not_500(service_server) -> None:
    server = service_server()
    for params in ({"offset": 2**63}, {"offset": 2**63 - 1}, {"limit": 2**63},
                   {"offset": -1}, {"limit": "many"}):
        detail = _sentence(server.http.get("/v1/jobs", params=params), 422)
        assert detail.startswith(f"invalid request: {next(iter(params))}:"), detail
    assert server.http.get("/v1/jobs", params={"offset": 10**9}).status_code == 200


def test_openapi_describes_the_errors_the_app_returns(service_server) -> None:
    server = service_server()
    doc = server.http.get("/openapi.json").json()
    error = doc["components"]["schemas"]["ErrorOut"]
    assert error["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    expected = {
        ("/v1/jobs", "post"): {"401", "403", "413", "422", "429"},
        ("/v1/jobs", "get"): {"401", "422"},
        ("/v1/jobs/{job_id}", "get"): {"401", "404", "422"},
        ("/v1/jobs/{job_id}", "delete"): {"401", "404", "409", "422"},
        ("/v1/jobs/{job_id}/retry", "post"): {"401", "404", "409", "422", "429"},
        ("/v1/jobs/{job_id}/delete", "post"): {"401", "404", "409", "422"},
        ("/v1/jobs/{job_id}/artifacts/{fmt}", "get"): {"401", "404", "409", "410", "422",
                                                       "429"},
        ("/v1/models/{job_id}/similar", "get"): {"400", "401", "404", "409", "410", "422"},
    }
    for (path, method), codes in expected.items():
        responses = doc["paths"][path][method]["responses"]
        assert codes <= set(responses), (path, method, set(responses))
        for code in codes:
            ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorOut"
    # and the app does return that shape for a 422
    bad = server.http.get("/v1/jobs", params={"limit": 0}).json()
    assert isinstance(bad["detail"], str) and bad["errors"][0]["field"] == "limit"


# ---- vanished models and the model cache --------------------------------------------------


def test_a_vanished_model_is_410_before_any_byte_is_sent(
    tmp_path, service_server, service_corpus
) -> None:
    server = service_server()
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    jid = server.wait(server.submit([source])["id"])["id"]
    assert server.http.get(f"/v1/models/{jid}/similar", params={"word": "w1"}).status_code == 200
    native = server.http.get(f"/v1/jobs/{jid}/artifacts/native")
    assert native.status_code == 200
    assert int(native.headers["content-length"]) == len(native.content)
    server.http.get(f"/v1/jobs/{jid}/artifacts/word2vec-text")  # cached export
    # the model disappears from the artifact store (an operator, a lost disk)
    shutil.rmtree(server.service.config.data_path / "models" / jid)
    gone = f"the model of job {jid} is no longer available in " \
           f"{server.service.artifacts.url}."
    for route in (f"/v1/jobs/{jid}/artifacts/native", f"/v1/jobs/{jid}/artifacts/word2vec-text",
                  f"/v1/jobs/{jid}/artifacts/word2vec-bin", f"/v1/models/{jid}/similar?word=w1",
                  f"/v1/models/{jid}/vector?word=w1", f"/v1/models/{jid}"):
        assert _sentence(server.http.get(route), 410) == gone, route
    assert len(server.service.models) == 0  # the cache let go of it


# ---- tokens out of the process list -------------------------------------------------------


def test_serve_takes_the_token_from_a_file_or_the_environment(tmp_path) -> None:
    base = ServiceConfig(data_dir=str(tmp_path / "data"))
    warnings: list[str] = []
    env = {"DISTW2V_TOKEN": "env-token-123456"}
    assert serve_token(base, env, warnings.append).token == "env-token-123456"
    given = serve_token(ServiceConfig(token="flag-token-1234"), env, warnings.append)
    assert given.token == "flag-token-1234" and warnings == [TOKEN_VISIBLE]
    token_file = tmp_path / "token"
    token_file.write_text("# the service's token\nfile-token-123456\n")
    from_file = serve_token(ServiceConfig(data_dir=str(tmp_path / "d"),
                                          token_file=str(token_file)), env, warnings.append)
    assert from_file.token is None  # the file wins over the environment
    service = Service.build(from_file)
    try:
        assert service.tokens.owner("file-token-123456") is not None
        assert service.tokens.owner("env-token-123456") is None
    finally:
        service.store.close()
    (tmp_path / "short").write_text("short\n")
    with pytest.raises(Distw2vError, match="holds no token of at least 8 characters"):
        Service.build(ServiceConfig(data_dir=str(tmp_path / "e"), token_file=str(tmp_path /
                                                                               "short")))
    with pytest.raises(Distw2vError, match="cannot read the token file"):
        Service.build(ServiceConfig(data_dir=str(tmp_path / "e"),
                                    token_file=str(tmp_path / "missing")))


def test_a_served_token_from_the_environment_is_not_in_the_process_list(tmp_path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = "secret-env-token-42"
    env = {**os.environ, "DISTW2V_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, "-m", "distw2v.cli", "serve", "--port", str(port), "--data-dir",
         str(tmp_path / "data"), "--quiet"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_healthy(url, process), "serve did not start"
        ok = httpx.get(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert not (tmp_path / "data" / "token").exists()  # no generated token
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert token.encode() not in cmdline
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "warning" not in err
