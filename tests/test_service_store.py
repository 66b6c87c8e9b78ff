"""The job store on SQLite and on a real PostgreSQL server that this test starts.

PostgreSQL comes from Debian's postgresql package (.ci/setup.d/postgres.sh installs it when
missing); the Postgres cases are skipped, saying so, only when it is not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from distw2v.errors import Distw2vError
from distw2v.service.settings import ServiceConfig
from distw2v.service.store import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobStore,
    normalize_url,
)

pytestmark = pytest.mark.service

SPEC = {"sources": ["/x"], "vocab": {}, "train": {}}


def _initdb() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1])
    on_path = shutil.which("initdb")
    return Path(on_path) if on_path else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 (initdb + pg_ctl into a temp dir)."""
    initdb = _initdb()
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package, which "
                    ".ci/setup.d/postgres.sh installs, could not be installed here); "
                    "the PostgreSQL job-store tests are skipped.")
    bindir = initdb.parent
    prefix: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="distw2v-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root: run it as the postgres user
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root and there is no 'postgres' user to run PostgreSQL as.")
        os.chown(tmp, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = tmp / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{Path(args[0]).name} failed: {done.stderr.strip()} {tail}")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp / "data"
    run(str(bindir / "initdb"), "-D", str(data), "-U", "distw2v", "--auth=trust", "-E", "UTF8",
        "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "server.log"), "-w",
        "-t", "60", "-o",
        f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql://distw2v@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    url: str = request.getfixturevalue("postgres_url")
    store = JobStore(url)  # a clean table for each test
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS distw2v_jobs")
    store.close()
    return url


def _new(store: JobStore, owner: str = "o", name: str = "j"):
    return store.create(owner=owner, name=name, engine="local", format="text", spec=SPEC,
                        epochs=3)


def test_queue_order_and_conditional_state_changes(store_url) -> None:
    store = JobStore(store_url)
    jobs = [_new(store, name=f"j{i}") for i in range(4)]
    assert [j.state for j in jobs] == [QUEUED] * 4
    assert store.cancel(jobs[1].id)
    assert store.claim_next().id == jobs[0].id  # oldest first; the cancelled one is skipped
    assert store.claim_next().id == jobs[2].id
    assert store.report(jobs[0].id, progress=0.5, epoch=2, stage="training")
    assert not store.report(jobs[1].id, progress=0.5)  # not running: ignored
    assert store.finish(jobs[0].id, SUCCEEDED, summary={"words": 3})
    assert not store.finish(jobs[0].id, FAILED, error="late")  # already finished
    assert not store.cancel(jobs[0].id)
    done = store.get(jobs[0].id)
    assert done.state == SUCCEEDED and done.progress == 1.0 and done.summary == {"words": 3}
    assert store.get(jobs[0].id, owner="someone else") is None
    # A retried job goes to the back of the queue.
    assert store.retry(jobs[1].id, attempts=1)
    assert store.claim_next().id == jobs[3].id
    retried = store.claim_next()
    assert retried.id == jobs[1].id and retried.attempts == 2
    assert store.counts() == {QUEUED: 0, RUNNING: 3, SUCCEEDED: 1, FAILED: 0, CANCELLED: 0}
    assert sorted(store.recover()) == sorted([jobs[1].id, jobs[2].id, jobs[3].id])
    assert store.get(jobs[2].id).error.startswith("the server stopped while this job was")
    listed, total = store.list_jobs("o", state=FAILED, limit=2)
    assert total == 3 and len(listed) == 2 and listed[0].id == jobs[3].id
    store.close()


def test_concurrent_claims_never_hand_out_a_job_twice(store_url) -> None:
    store = JobStore(store_url)
    ids = {_new(store).id for _ in range(30)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claim() -> None:
        while (job := store.claim_next()) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    store.close()


def test_claims_are_fair_across_owners(store_url) -> None:
    """One owner's long queue does not starve the others: a free slot goes round-robin
    across owners with queued jobs, each owner's own jobs in order."""
    store = JobStore(store_url)
    names = ["a1", "a2", "a3", "a4", "b1", "c1", "c2"]  # a queued first, then b, then c
    jobs = {n: _new(store, owner=n[0], name=n) for n in names}
    order = []
    while (job := store.claim_next()) is not None:  # one slot: claim, finish, claim ...
        order.append(job.name)
        assert store.finish(job.id, SUCCEEDED)
    assert order == ["a1", "b1", "c1", "a2", "c2", "a3", "a4"]
    # several slots: the owner whose last job started longest ago goes first ...
    more = [_new(store, owner=n[0], name=n) for n in ("a5", "a6", "a7", "b2", "b3")]
    claimed = [store.claim_next() for _ in range(3)]
    assert [j.name for j in claimed] == ["b2", "a5", "b3"]
    # ... but the one with fewer running jobs before that, though it started one last
    for job in (claimed[0], claimed[2]):
        assert store.finish(job.id, SUCCEEDED)
    more.append(_new(store, owner="b", name="b4"))
    assert store.claim_next().name == "b4"  # b: none running, a: a5
    assert store.claim_next(exclude={more[1].id}).name == "a7"  # a6 waits for its reaping
    assert store.claim_next().name == "a6" and store.claim_next() is None
    assert {j.id for j in jobs.values()} | {j.id for j in more} == set(
        store.ids_in([SUCCEEDED, RUNNING]))
    store.close()


def test_a_whole_job_through_a_server_on_postgres(
    tmp_path, postgres_url, service_server, service_corpus
) -> None:
    store = JobStore(postgres_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS distw2v_jobs")
    store.close()
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=3)
    server = service_server(db=postgres_url)
    job = server.wait(server.submit([str(source)])["id"])
    assert job["state"] == "succeeded", job["error"]
    assert job["summary"]["trained_words"] > 0
    similar = server.http.get(f"/v1/models/{job['id']}/similar", params={"word": "w1"})
    assert similar.status_code == 200 and len(similar.json()["similar"]) == 10
    # The row is in PostgreSQL, not in a SQLite file.
    assert not (server.service.config.data_path / "jobs.db").exists()
    assert JobStore(postgres_url).get(job["id"]).state == SUCCEEDED


def test_store_urls(tmp_path) -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert ServiceConfig(data_dir=str(tmp_path)).db_url == f"sqlite:///{tmp_path / 'jobs.db'}"
    with pytest.raises(Distw2vError, match="unsupported job store URL 'mysql'"):
        JobStore("mysql://u@h/db")
    with pytest.raises(Distw2vError, match="cannot open the job store"):
        JobStore(f"sqlite:///{tmp_path / 'missing-dir' / 'jobs.db'}")


def test_quota_exclusion_attempts_and_retention(store_url) -> None:
    from distw2v.service.store import QuotaError

    store = JobStore(store_url)
    first = store.create(owner="a", name="1", engine="local", format="text", spec=SPEC,
                         epochs=3, max_active=2)
    second = store.create(owner="a", name="2", engine="local", format="text", spec=SPEC,
                          epochs=3, max_active=2)
    with pytest.raises(QuotaError, match="you already have 2 queued or running jobs"):
        store.create(owner="a", name="3", engine="local", format="text", spec=SPEC, epochs=3,
                     max_active=2)
    assert store.create(owner="b", name="b", engine="local", format="text", spec=SPEC,
                        epochs=3, max_active=2).owner == "b"  # per owner
    assert store.active_count("a") == 2
    with pytest.raises(QuotaError, match="you already keep 2 jobs, the most this server"):
        store.create(owner="a", name="3", engine="local", format="text", spec=SPEC, epochs=3,
                     max_stored=2)
    assert store.model_bytes("a") == {}  # no model yet
    # a job whose last attempt is still being reaped is passed over, not lost
    assert store.claim_next(exclude={first.id}).id == second.id
    assert store.claim_next(exclude={first.id}).owner == "b"
    assert store.claim_next(exclude={first.id}) is None
    claimed = store.claim_next()
    assert claimed.id == first.id and claimed.attempts == 1
    assert store.cancel(first.id)
    with pytest.raises(QuotaError):  # a retry counts against the quota as well
        store.retry(first.id, 1, owner="a", max_active=1)  # `second` is still running
    assert store.get(first.id).state == "cancelled"
    assert store.retry(first.id, 1, owner="a", max_active=2)
    assert store.claim_next().attempts == 2
    # the old attempt's late messages change nothing
    assert not store.report(first.id, attempt=1, progress=0.9)
    assert not store.finish(first.id, SUCCEEDED, attempt=1)
    assert store.finish(first.id, FAILED, attempt=2, error="x.")
    # retention: only finished jobs that ended before the cutoff
    ended = store.get(first.id).finished_at
    assert store.expired(ended) == [] and store.expired(ended + 1) == [first.id]
    assert not store.delete(second.id, ended + 1)  # still running
    assert store.delete(first.id, ended + 1) and store.get(first.id) is None
    # the model bytes the bytes quota counts: succeeded jobs' own measure
    assert store.finish(second.id, SUCCEEDED, summary={"model_bytes": 1234})
    assert store.model_bytes("a") == {second.id: 1234} and store.model_bytes("b") == {}
    store.close()
