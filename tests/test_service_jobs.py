"""The service with real servers and real training processes: queueing, concurrency,
cancelling, crashes, recovery after a dead server, artifacts, queries and evaluation."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from distw2v.config import RunConfig, SparkConfig, TrainConfig, VocabConfig, to_dict
from distw2v.service.artifacts import Artifacts
from distw2v.service.runner import Runner
from distw2v.service.security import owner_of
from distw2v.service.settings import ServiceConfig
from distw2v.service.store import RUNNING, Job, JobStore
from distw2v.vectors import Vectors

pytestmark = pytest.mark.service

# A job that trains long enough to be cancelled or killed mid-way (stopped by the test).
LONG = {"dim": 8, "epochs": 5000, "workers": 1, "seed": 3}


def _roots(tmp_path: Path) -> Path:
    return tmp_path / "roots"


def test_three_jobs_two_at_a_time_all_succeed_with_different_vectors(
    tmp_path, service_server, service_corpus
) -> None:
    server = service_server(max_concurrent_jobs=2)
    sources = [service_corpus(_roots(tmp_path) / f"d{i}.txt", seed=i, sentences=600)
               for i in range(3)]
    jobs = [server.submit([str(s)], name=f"d{i}", train={**LONG, "epochs": 40})
            for i, s in enumerate(sources)]
    assert [j["state"] for j in jobs] == ["queued"] * 3
    # While the first two train, the third waits in the queue.
    for job in jobs[:2]:
        server.wait(job["id"], until=lambda j: j["state"] == "running")
    assert server.job(jobs[2]["id"])["state"] == "queued"
    metrics = server.http.get("/metrics").text
    assert "distw2v_job_processes 2.0" in metrics and "distw2v_queue_length 1.0" in metrics
    assert server.http.get("/healthz").json()["max_concurrent_jobs"] == 2
    done = [server.wait(j["id"], timeout=90) for j in jobs]
    assert [d["state"] for d in done] == ["succeeded"] * 3, [d["error"] for d in done]
    first, second, third = done
    # The first two overlapped; the third started only once one of them had finished.
    assert first["started_at"] < second["finished_at"]
    assert second["started_at"] < first["finished_at"]
    assert third["started_at"] >= min(first["finished_at"], second["finished_at"])
    assert all(d["progress"] == 1.0 and d["epoch"] == 40 for d in done)
    vectors = [np.array(server.http.get(f"/v1/models/{d['id']}/vector",
                                         params={"word": "w1"}).json()["vector"])
               for d in done]
    assert all(len(v) == 8 for v in vectors)
    assert not np.allclose(vectors[0], vectors[1])
    assert not np.allclose(vectors[1], vectors[2])
    assert not np.allclose(vectors[0], vectors[2])


def test_artifacts_stream_and_queries_answer(tmp_path, service_server, service_corpus) -> None:
    server = service_server()
    source = service_corpus(_roots(tmp_path) / "a.txt", seed=1)
    job = server.wait(server.submit([str(source)])["id"])
    assert job["state"] == "succeeded", job["error"]
    assert job["summary"]["trained_words"] > 0 and job["evaluation"] is None
    assert job["words_per_second"] > 0 and job["eta_seconds"] is None
    jid = job["id"]
    model = Vectors.load(server.service.artifacts.local_model(jid))

    text = server.http.get(f"/v1/jobs/{jid}/artifacts/word2vec-text")
    assert text.status_code == 200
    path = tmp_path / "v.txt"
    path.write_bytes(text.content)
    np.testing.assert_array_equal(Vectors.load_word2vec(path, binary=False).matrix,
                                  model.matrix)
    binary = server.http.get(f"/v1/jobs/{jid}/artifacts/word2vec-bin")
    path = tmp_path / "v.bin"
    path.write_bytes(binary.content)
    np.testing.assert_array_equal(Vectors.load_word2vec(path, binary=True).matrix, model.matrix)
    native = server.http.get(f"/v1/jobs/{jid}/artifacts/native")
    assert native.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(native.content)) as tar:
        tar.extractall(tmp_path / "native", filter="data")
    np.testing.assert_array_equal(Vectors.load(tmp_path / "native" / jid).matrix, model.matrix)
    assert server.http.get(f"/v1/jobs/{jid}/artifacts/pickle").status_code == 422

    similar = server.http.get(f"/v1/models/{jid}/similar", params={"word": "w3", "topn": 4})
    assert similar.status_code == 200
    assert similar.json()["similar"] == [
        {"word": w, "score": pytest.approx(s, abs=1e-6)}
        for w, s in model.most_similar("w3", topn=4)
    ]
    analogy = server.http.get(f"/v1/models/{jid}/analogy",
                              params={"positive": ["w1", "w2"], "negative": "w3", "topn": 2})
    assert [r["word"] for r in analogy.json()["similar"]] == [
        w for w, _ in model.most_similar(["w1", "w2"], ["w3"], topn=2)
    ]
    vector = server.http.get(f"/v1/models/{jid}/vector", params={"word": "w5"}).json()
    np.testing.assert_allclose(vector["vector"], model["w5"], rtol=1e-6)
    info = server.http.get(f"/v1/models/{jid}").json()
    assert info == {"id": jid, "words": len(model), "dim": 8}


def test_cancel_stops_the_process_within_seconds_and_frees_its_slot(
    tmp_path, service_server, service_corpus, service_processes
) -> None:
    server = service_server(max_concurrent_jobs=1)
    source = str(service_corpus(_roots(tmp_path) / "a.txt", seed=2, sentences=2000))
    long = server.submit([source], train=LONG)
    waiting = server.submit([source])
    server.wait(long["id"], until=lambda j: j["stage"] == "training" and j["progress"] > 0.2)
    assert server.job(waiting["id"])["state"] == "queued"
    assert service_processes(long["id"])
    scratch = server.service.config.data_path / "jobs" / long["id"]
    assert scratch.is_dir()
    [attempt] = [h for h in list(server.service.runner._running.values())
                 if h.job.id == long["id"]]

    response = server.http.delete(f"/v1/jobs/{long['id']}")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    try:  # the process exits; 60 s only bounds a failure
        code = attempt.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("the training process outlived its cancel") from None
    # Stopped by the cancel's SIGTERM, so within seconds: not finished by itself (0), not
    # SIGKILLed after the grace period (cancel_grace_seconds=2).
    assert code == -signal.SIGTERM, code
    assert not service_processes(long["id"]), "the training process outlived its cancel"
    # The slot is free: the queued job runs and succeeds; the cancelled one left nothing.
    assert server.wait(waiting["id"])["state"] == "succeeded"
    assert not scratch.exists()
    assert server.job(long["id"])["state"] == "cancelled"
    assert not (server.service.config.data_path / "models" / long["id"]).exists()
    # Cancelling a finished job is a conflict, with one sentence.
    again = server.http.delete(f"/v1/jobs/{waiting['id']}")
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"job {waiting['id']} is already succeeded; only queued or running jobs can be "
        "cancelled."
    )
    # A queued job can be cancelled too, and a cancelled job retried.
    queued = server.submit([source], train=LONG)
    blocker_state = server.http.delete(f"/v1/jobs/{queued['id']}").json()["state"]
    assert blocker_state == "cancelled"
    retried = server.http.post(f"/v1/jobs/{waiting['id']}/retry")
    assert retried.status_code == 409


def test_a_crashing_job_fails_cleanly_and_the_server_keeps_serving(
    tmp_path, service_server, service_corpus, service_processes
) -> None:
    server = service_server(max_concurrent_jobs=1)
    source = str(service_corpus(_roots(tmp_path) / "a.txt", seed=4, sentences=2000))
    doomed = server.submit([source], train=LONG)
    server.wait(doomed["id"], until=lambda j: j["stage"] == "training")
    for pid in service_processes(doomed["id"]):
        os.kill(pid, signal.SIGKILL)
    failed = server.wait(doomed["id"])
    assert failed["state"] == "failed"
    assert failed["error"] == ("the training process was killed by signal 9 (SIGKILL); "
                               "it may have run out of memory.")
    assert "Traceback" not in failed["error"]
    assert server.http.get("/healthz").status_code == 200
    assert server.wait(server.submit([source])["id"])["state"] == "succeeded"


def test_a_killed_local_job_resumes_from_its_checkpoints_on_retry(
    tmp_path, service_server, service_corpus, service_processes
) -> None:
    ckpt = tmp_path / "ckpt"
    server = service_server(max_concurrent_jobs=1, run=RunConfig(checkpoint_dir=str(ckpt)))
    source = str(service_corpus(_roots(tmp_path) / "a.txt", seed=6, sentences=2000))
    epochs = 400
    job = server.submit([source], train={**LONG, "epochs": epochs})
    progress = ckpt / job["id"] / "progress.json"  # the job's own sub-directory
    deadline = time.monotonic() + 60
    while not progress.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in service_processes(job["id"]):
        os.kill(pid, signal.SIGKILL)
    assert server.wait(job["id"])["state"] == "failed"
    saved = json.loads(progress.read_text())["epochs_done"]
    assert 1 <= saved < epochs

    assert server.http.post(f"/v1/jobs/{job['id']}/retry").status_code == 202
    done = server.wait(job["id"], timeout=120)
    assert done["state"] == "succeeded" and done["attempts"] == 2, done["error"]
    words = sum(len(line.split()) for line in Path(source).read_text().splitlines())
    assert done["summary"]["trained_words"] == (epochs - saved) * words  # the rest only
    assert not (ckpt / job["id"]).exists()  # removed once the model is published


def test_jobs_left_running_by_a_dead_server_fail_and_retry_in_one_call(
    tmp_path, service_server, service_corpus
) -> None:
    from distw2v.service.settings import ServiceConfig

    source = str(service_corpus(_roots(tmp_path) / "a.txt", seed=5))
    config = ServiceConfig(data_dir=str(tmp_path / "data"), allowed_roots=str(_roots(tmp_path)))
    config.data_path.mkdir(parents=True)
    # A server "died" while this job ran: the store says running, no process exists.
    store = JobStore(config.db_url)
    spec = {"sources": [source], "vocab": to_dict(VocabConfig(min_count=1)),
            "train": to_dict(TrainConfig(dim=8, epochs=2, workers=1))}
    job = store.create(owner=owner_of("test-token-0123456789"), name="orphan", engine="local",
                       format="text", spec=spec, epochs=2)
    assert store.claim_next() is not None and store.get(job.id).state == RUNNING
    store.close()

    server = service_server(config)
    failed = server.job(job.id)
    assert failed["state"] == "failed"
    assert failed["error"] == (
        "the server stopped while this job was running; resubmit it with "
        f"POST /v1/jobs/{job.id}/retry."
    )
    retried = server.http.post(f"/v1/jobs/{job.id}/retry")
    assert retried.status_code == 202 and retried.json()["state"] in ("queued", "running")
    done = server.wait(job.id)
    assert done["state"] == "succeeded" and done["attempts"] == 2 and done["error"] is None


def test_failed_jobs_say_why_in_one_sentence(tmp_path, service_server, service_corpus) -> None:
    server = service_server(allow_private_https=True)
    rare = service_corpus(_roots(tmp_path) / "rare.txt", seed=6, sentences=3, vocab=1000)
    below = server.submit([str(rare)], vocab={"min_count": 50})
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    unreachable = server.submit([f"https://127.0.0.1:{closed}/corpus.txt"])
    results = {name: server.wait(j["id"]) for name, j in
               (("below", below), ("unreachable", unreachable))}
    for name, job in results.items():
        assert job["state"] == "failed", name
        assert "Traceback" not in job["error"] and job["error"].endswith("."), job["error"]
    assert "min_count" in results["below"]["error"]
    assert results["unreachable"]["error"].startswith(
        f"cannot reach https://127.0.0.1:{closed}/corpus.txt: ")
    # A failed job has no model to query.
    response = server.http.get(f"/v1/models/{below['id']}/similar", params={"word": "w1"})
    assert response.status_code == 409


def test_the_job_process_hands_the_engine_to_the_pipeline_and_reports_its_error(
    tmp_path, monkeypatch, service_corpus
) -> None:
    from distw2v.distributed import driver
    from distw2v.errors import Distw2vError
    from distw2v.progress import Phase
    from distw2v.service import jobproc

    seen: dict[str, object] = {}

    def fake_train_spark(sources, out, vocab_config, train_config, spark_config, *,
                         run_config, word2vec, on_progress, log, ann_threshold):
        seen.update(engine=run_config.engine, sources=list(sources), dim=train_config.dim,
                    shards=spark_config.shards, master=spark_config.spark_master,
                    checkpoints=run_config.checkpoint_dir)
        with Phase(on_progress, "training", 100, "word") as phase:
            phase.advance(50)
            phase.note(epoch=2, epochs=4, learning_rate=0.01)
        raise Distw2vError("cannot start Spark with master 'local[1]'.")

    monkeypatch.setattr(driver, "train_spark", fake_train_spark)
    roots = tmp_path / "roots"
    source = service_corpus(roots / "a.txt", seed=1)
    spec = {"job_id": "j1", "sources": [str(source)], "engine": "spark",
            "vocab": {"min_count": 1}, "train": {"dim": 12}, "roots": [str(roots)],
            "spark": {"spark_master": "local[1]", "shards": 3},
            "run": {"checkpoint_dir": str(tmp_path / "ckpt" / "j1")},
            "allow_private_https": False, "scratch_dir": str(tmp_path / "scratch")}
    out = io.StringIO()
    with pytest.raises(Distw2vError, match="cannot start Spark"):
        jobproc.run_job(spec, jobproc.Reporter(out))
    assert seen == {"engine": "spark", "sources": [str(source)], "dim": 12, "shards": 3,
                    "master": "local[1]", "checkpoints": str(tmp_path / "ckpt" / "j1")}
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["type"] == "progress" and last["stage"] == "training" and last["epoch"] == 2
    assert last["progress"] == pytest.approx(0.2 + 0.78 * 0.5)
    assert last["words_per_second"] > 0 and last["eta_seconds"] > 0


def test_evaluation_figures_when_the_server_has_evaluation_files(
    tmp_path, service_server, service_corpus
) -> None:
    analogies = tmp_path / "analogies.txt"
    analogies.write_text(": section\nw1 w2 w3 w4\nw5 w6 w7 w8\n")
    similarity = tmp_path / "sim.tsv"
    similarity.write_text("w1\tw2\t1.0\nw3\tw4\t2.0\nw5\tw6\t3.0\nw7\tunknown\t1.0\n")
    server = service_server(eval_analogies=str(analogies), eval_similarity=str(similarity))
    source = service_corpus(_roots(tmp_path) / "a.txt", seed=8)
    job = server.wait(server.submit([str(source)])["id"])
    assert job["state"] == "succeeded", job["error"]
    figures = job["evaluation"]
    assert figures["analogies"][0]["total"] == 2
    assert 0.0 <= figures["analogies"][0]["accuracy"] <= 1.0
    assert figures["similarity"][0]["pairs"] == 3 and figures["similarity"][0]["oov"] == 1


def test_spark_jobs_get_their_own_work_and_checkpoint_directories(tmp_path) -> None:
    """Jobs run side by side: a directory the operator gives is split per job (a retry keeps
    its job's, so it resumes from that job's checkpoints)."""
    config = ServiceConfig(data_dir=str(tmp_path / "data"),
                           spark=SparkConfig(work_dir="s3://scratch/work/"),
                           run=RunConfig(checkpoint_dir=str(tmp_path / "ckpt")))
    runner = Runner(config, None, Artifacts(str(tmp_path / "models"), tmp_path / "cache"))
    base = {f.name: None for f in fields(Job)}
    specs = [runner._spec(Job(**{**base, "id": jid, "engine": "spark", "format": "text",
                                 "spec": {"sources": ["c.txt"], "vocab": {}, "train": {}}}))
             for jid in ("job1", "job2")]
    assert [s["spark"]["work_dir"] for s in specs] == ["s3://scratch/work/job1",
                                                     "s3://scratch/work/job2"]
    assert [s["run"]["checkpoint_dir"] for s in specs] == [
        f"{tmp_path / 'ckpt'}/job1", f"{tmp_path / 'ckpt'}/job2"]
    assert specs[0]["spark"]["shards"] == SparkConfig().shards


def test_a_resumed_jobs_progress_starts_where_it_stopped(monkeypatch) -> None:
    from distw2v.progress import ProgressEvent
    from distw2v.service import jobproc

    outs = [io.StringIO(), io.StringIO()]
    resumed = jobproc.JobProgress(jobproc.Reporter(outs[0]))
    resumed(ProgressEvent("training", 600, 1000, "word", initial=600))
    # 100 words in 10 s: the 600 of the earlier attempt are not speed
    resumed(ProgressEvent("training", 700, 1000, "word", initial=600, seconds=10.0,
                          finished=True))
    jobproc.JobProgress(jobproc.Reporter(outs[1]))(ProgressEvent("training", 0, 1000, "word"))
    reports = [[json.loads(line) for line in out.getvalue().splitlines()] for out in outs]
    assert reports[0][-1]["words_per_second"] == 10.0 and reports[0][-1]["eta_seconds"] == 30.0
    assert reports[0][0]["progress"] > reports[1][0]["progress"]  # opens at 60%, not at 0
