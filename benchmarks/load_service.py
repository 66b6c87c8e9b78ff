"""A bounded load test of the training service, on loopback only.

Starts `distw2v serve` as its own process on 127.0.0.1 (temporary data directory), trains one
model on the bundled demo corpus, then:

1. 50 job submissions from 10 client threads (tiny corpora, so the queue drains quickly),
2. 2,000 similarity queries from 20 threads against the finished model, while those jobs
   train (the machine is busy, as it would be in use),
3. waits for every submitted job to finish,
4. 500 queries spread over all finished models (more than the model cache holds), to show
   that the server's memory stays bounded by its LRU,
5. 2,000 similarity queries from 20 threads against a 2-million-word x 300 model answered
   through its nearest-neighbour index: the synthetic model of benchmarks/ann_index.py
   (made there, or here when --big-model does not hold it), hard-linked into the artifact
   store as the model of a job that succeeded, which is how the server finds any model.

It prints p50/p99 latency per phase, the count of 5xx answers (must be 0) and the server's
resident memory before and after (for the big model also its peak, and how much of it is
the mapped index and vectors rather than the server's own memory). Every request loop is
bounded in count and time.

    python benchmarks/load_service.py                 # prints a table
    python benchmarks/load_service.py --json out.json  # also writes the figures
    python benchmarks/load_service.py --big-model none # phases 1-4 only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "us-presidential-addresses.txt.gz"
TOKEN = "load-test-token-0123"
DEADLINE_S = 600  # the whole run stops by itself after this


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (peak), RssAnon (the process's own) and RssFile (mapped files)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = round(int(line.split()[1]) / 1024, 1)
    return fields


def link_model(src: Path, dest: Path) -> None:
    """Hard-link a model directory's files (a copy where links cannot be made)."""
    dest.mkdir(parents=True)
    for file in src.iterdir():
        try:
            os.link(file, dest / file.name)
        except OSError:
            shutil.copy2(file, dest / file.name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_corpus(path: Path, seed: int, sentences: int = 300) -> None:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(sentences):
            out.write(" ".join(rng.choice(words) for _ in range(8)) + "\n")


class Recorder:
    """Latencies and status codes of one phase (thread-safe)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0  # transport errors (no HTTP answer at all)
        self._lock = threading.Lock()

    def call(self, client: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TransportError:
            with self._lock:
                self.errors += 1
            return None
        elapsed = time.perf_counter() - start
        with self._lock:
            self.latencies.append(elapsed)
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else 0.0

        return {
            "phase": self.name,
            "requests": len(lat) + self.errors,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(1000 * lat[-1], 2) if lat else 0.0,
            "mean_ms": round(1000 * statistics.fmean(lat), 2) if lat else 0.0,
            "status": {str(k): v for k, v in sorted(self.statuses.items())},
            "5xx": sum(v for k, v in self.statuses.items() if k >= 500),
            "transport_errors": self.errors,
        }


def run_threads(threads: int, tasks: list[Callable[[], None]]) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(t) for t in tasks]:
            future.result(timeout=DEADLINE_S)
    return time.perf_counter() - start


def wait_job(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} did not finish in {timeout:.0f} s: {job}")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("--submit-threads", type=int, default=10)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--query-threads", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--big-model", default="/tmp/distw2v-ann-2m",
                        help="the 2M-word model directory (made when missing), or 'none'")
    parser.add_argument("--big-words", type=int, default=2_000_000)
    args = parser.parse_args()
    big = None if args.big_model == "none" else Path(args.big_model)
    if big is not None:
        from ann_index import ensure_model

        from distw2v.vectors import Vectors, add_index

        ensure_model(big, args.big_words, 300)
        if Vectors.load(big).ann is None:
            add_index(big, log_line=print)
    started = time.monotonic()

    tmp = Path(tempfile.mkdtemp(prefix="distw2v-load-"))
    roots = tmp / "roots"
    roots.mkdir()
    for i in range(args.submissions):
        write_corpus(roots / f"small{i}.txt", seed=i)
    if DEMO.exists():
        shutil.copy(DEMO, roots / "demo.txt.gz")
    else:
        write_corpus(roots / "demo.txt.gz", seed=999, sentences=20_000)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "distw2v.cli", "serve", "--port", str(port), "--host",
         "127.0.0.1", "--data-dir", str(tmp / "data"), "--allowed-roots", str(roots),
         "--model-cache-size", "4", "--max-jobs-per-token", str(max(20, args.submissions))],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DISTW2V_TOKEN": TOKEN},
    )
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=60)
    try:
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() - started > 60:
                raise SystemExit("the server did not start:\n" + (tmp / "serve.log").read_text())
            time.sleep(0.1)
        figures: dict[str, Any] = {"server_rss_mb": {"started": round(rss_mb(server.pid), 1)}}

        # The model the queries run against.
        demo = client.post("/v1/jobs", json={
            "name": "demo", "sources": [str(roots / "demo.txt.gz")],
            "vocab": {"lowercase": True, "strip_punctuation": True, "min_count": 3},
            "train": {"dim": 50, "epochs": 1, "seed": 1},
        }).json()
        model = wait_job(client, demo["id"], timeout=300)
        if model["state"] != "succeeded":
            raise SystemExit(f"the demo model failed: {model['error']}")
        export = client.get(f"/v1/jobs/{model['id']}/artifacts/word2vec-text").text
        words = [line.split(" ", 1)[0] for line in export.splitlines()[1:2001]]
        client.get(f"/v1/models/{model['id']}/similar", params={"word": words[0]})  # load it
        figures["server_rss_mb"]["model_loaded"] = round(rss_mb(server.pid), 1)

        # 1. Submissions.
        submit = Recorder("submit (POST /v1/jobs)")
        job_ids: list[str] = []
        ids_lock = threading.Lock()
        per_thread = args.submissions // args.submit_threads

        def submitter(t: int) -> Callable[[], None]:
            def work() -> None:
                with httpx.Client(base_url=url, timeout=60,
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                    for k in range(per_thread):
                        i = t * per_thread + k
                        response = submit.call(http, "POST", "/v1/jobs", json={
                            "name": f"small{i}", "sources": [str(roots / f"small{i}.txt")],
                            "vocab": {"min_count": 1},
                            "train": {"dim": 8, "epochs": 1, "workers": 1, "seed": i},
                        })
                        if response is not None and response.status_code == 201:
                            with ids_lock:
                                job_ids.append(response.json()["id"])
            return work

        submit_s = run_threads(args.submit_threads,
                               [submitter(t) for t in range(args.submit_threads)])

        # 2. Similarity queries while those jobs train.
        similar = Recorder("similar (GET /v1/models/{id}/similar)")
        per_query_thread = args.queries // args.query_threads

        def querier(t: int) -> Callable[[], None]:
            def work() -> None:
                rng = random.Random(t)
                with httpx.Client(base_url=url, timeout=60,
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                    for _ in range(per_query_thread):
                        similar.call(http, "GET", f"/v1/models/{model['id']}/similar",
                                     params={"word": rng.choice(words), "topn": 10})
            return work

        query_s = run_threads(args.query_threads,
                              [querier(t) for t in range(args.query_threads)])
        figures["server_rss_mb"]["after_queries"] = round(rss_mb(server.pid), 1)

        # 3. The queue drains.
        drain_start = time.perf_counter()
        states: dict[str, int] = {}
        for job_id in job_ids:
            state = wait_job(client, job_id, timeout=DEADLINE_S)["state"]
            states[state] = states.get(state, 0) + 1
        drain_s = time.perf_counter() - drain_start

        # 4. Queries spread over every finished model (many more than the LRU holds).
        spread = Recorder("similar over 50 models (LRU of 4)")
        finished = list(job_ids)

        def spreader(t: int) -> Callable[[], None]:
            def work() -> None:
                rng = random.Random(100 + t)
                with httpx.Client(base_url=url, timeout=60,
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                    for _ in range(500 // args.query_threads):
                        spread.call(http, "GET", f"/v1/models/{rng.choice(finished)}/similar",
                                    params={"word": f"w{rng.randrange(40)}", "topn": 5})
            return work

        run_threads(args.query_threads, [spreader(t) for t in range(args.query_threads)])
        figures["server_rss_mb"]["after_spread_queries"] = round(rss_mb(server.pid), 1)
        phases = [submit.summary(), similar.summary(), spread.summary()]
        if big is not None:
            phases.append(big_model_phase(client, url, args, roots, tmp, big, server.pid,
                                          figures))
        metrics = client.get("/metrics").text

        figures["phases"] = phases
        figures["submit_seconds"] = round(submit_s, 2)
        figures["query_seconds"] = round(query_s, 2)
        figures["queries_per_second"] = round(len(similar.latencies) / query_s, 1)
        figures["drain_seconds"] = round(drain_s, 2)
        figures["job_states"] = states
        figures["model"] = client.get(f"/v1/models/{model['id']}").json()
        figures["max_concurrent_jobs"] = client.get("/healthz").json()["max_concurrent_jobs"]
        figures["metrics_lines"] = sum(1 for ln in metrics.splitlines()
                                       if ln.startswith("distw2v_"))
    finally:
        client.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'phase':<40} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'5xx':>5}")
    for phase in figures["phases"]:
        print(f"{phase['phase']:<40} {phase['requests']:>8} {phase['p50_ms']:>8} "
              f"{phase['p99_ms']:>8} {phase['max_ms']:>8} {phase['5xx']:>5}")
    rss = figures["server_rss_mb"]
    print("server RSS MiB: " + ", ".join(f"{k} {v}" for k, v in rss.items()))
    if "big_model" in figures:
        print(f"big model: {json.dumps(figures['big_model'])}")
    print(f"jobs: {figures['job_states']} (queue drained in {figures['drain_seconds']} s, "
          f"{figures['max_concurrent_jobs']} at a time); "
          f"{figures['queries_per_second']} similarity queries/s")
    if args.json:
        if args.json.exists():  # the run before this one stays in the file, one level deep
            before = json.loads(args.json.read_text())
            figures["previous"] = {k: v for k, v in before.items() if k != "previous"}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    bad = sum(p["5xx"] + p["transport_errors"] for p in figures["phases"])
    failed = sum(v for k, v in figures["job_states"].items() if k != "succeeded")
    return 1 if bad or failed else 0


def big_model_phase(client: httpx.Client, url: str, args: argparse.Namespace, roots: Path,
                    tmp: Path, big: Path, pid: int, figures: dict[str, Any]) -> dict[str, Any]:
    """Phase 5: the 2M-word model, put in the artifact store as a finished job's model."""
    job = client.post("/v1/jobs", json={
        "name": "big", "sources": [str(roots / "small0.txt")], "vocab": {"min_count": 1},
        "train": {"dim": 8, "epochs": 1, "workers": 1}}).json()
    if wait_job(client, job["id"], timeout=300)["state"] != "succeeded":
        raise SystemExit("the job for the big model failed")
    store = tmp / "data" / "models" / job["id"]  # the server's default artifact store
    shutil.rmtree(store)
    link_model(big, store)
    before = memory_mb(pid)
    start = time.perf_counter()
    info = client.get(f"/v1/models/{job['id']}").json()  # loads it
    load_s = time.perf_counter() - start
    loaded = memory_mb(pid)
    recorder = Recorder("similar on 2M x 300 (index)")
    per_thread = args.queries // args.query_threads

    def querier(t: int) -> Callable[[], None]:
        def work() -> None:
            rng = random.Random(500 + t)
            with httpx.Client(base_url=url, timeout=60,
                              headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                for _ in range(per_thread):
                    recorder.call(http, "GET", f"/v1/models/{job['id']}/similar",
                                  params={"word": f"w{rng.randrange(info['words'])}",
                                          "topn": 10})
        return work

    seconds = run_threads(args.query_threads, [querier(t) for t in range(args.query_threads)])
    figures["big_model"] = {
        "words": info["words"], "dim": info["dim"], "load_seconds": round(load_s, 2),
        "query_seconds": round(seconds, 2),
        "queries_per_second": round(len(recorder.latencies) / seconds, 1),
        "server_memory_mb": {"before_load": before, "loaded": loaded,
                             "after_queries": memory_mb(pid)},
        "index_mb": round((big / "ann.index").stat().st_size / 2**20, 1),
    }
    return recorder.summary()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
