"""Fuzzing the live service with schemathesis: every operation of its OpenAPI document gets
generated requests (valid and invalid), sent with the bearer token to a real uvicorn server,
and every answer must be described by the document (status code, content type, body) and
never a 5xx.

The server has a tiny allowed root with a tiny corpus and runs one job at a time; a few real
jobs (succeeded, failed) are made first, and half of the generated job ids are swapped for
theirs, so the model routes answer 200, 409 and 410 as well as 404 (the delete route gets a
job of its own to delete). Examples are bounded and
derandomized (the same requests every run).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.service

schemathesis = pytest.importorskip("schemathesis")
from conftest import serve_in_thread  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402 - after the importorskip
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from distw2v.service.api import create_app  # noqa: E402
from distw2v.service.server import Service  # noqa: E402
from distw2v.service.settings import ServiceConfig  # noqa: E402

TOKEN = "fuzz-token-0123456789"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = 40  # per operation and generation mode


@dataclass
class Live:
    url: str
    service: Service
    http: httpx.Client
    job_ids: list[str]  # real jobs that generated ids are swapped for
    doomed: str  # the one real job the delete route gets (so the others stay)


def _wait(http: httpx.Client, job_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("fuzz")
    roots = base / "roots"
    roots.mkdir()
    corpus = roots / "tiny.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 20)
    config = ServiceConfig(data_dir=str(base / "data"), allowed_roots=str(roots), token=TOKEN,
                           max_concurrent_jobs=1, max_jobs_per_token=3,
                           cancel_grace_seconds=1.0, job_time_limit="2m")
    service = Service.build(config)
    url, server, thread = serve_in_thread(create_app(service))
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=30)
    tiny = {"dim": 4, "epochs": 1, "workers": 1}
    ok = http.post("/v1/jobs", json={"sources": [str(corpus)], "vocab": {"min_count": 1},
                                     "train": tiny}).json()
    bad = http.post("/v1/jobs", json={"sources": [str(corpus)], "vocab": {"min_count": 10**6},
                                      "train": tiny}).json()
    assert _wait(http, ok["id"], ("succeeded",))["state"] == "succeeded"
    assert _wait(http, bad["id"], ("failed",))["state"] == "failed"
    gone = http.post("/v1/jobs", json={"sources": [str(corpus)], "vocab": {"min_count": 1},
                                       "train": tiny}).json()
    _wait(http, gone["id"], ("succeeded",))
    import shutil

    shutil.rmtree(config.data_path / "models" / gone["id"])  # a model that vanished
    doomed = http.post("/v1/jobs", json={"sources": [str(corpus)],
                                         "vocab": {"min_count": 10**6}, "train": tiny}).json()
    _wait(http, doomed["id"], ("failed",))
    yield Live(url, service, http, [ok["id"], bad["id"], gone["id"]], doomed["id"])
    # whatever the fuzzer queued (a retried job, say) is cancelled before the server stops
    for job in http.get("/v1/jobs", params={"limit": 500}).json()["jobs"]:
        if job["state"] in ("queued", "running"):
            http.delete(f"/v1/jobs/{job['id']}")
    server.should_exit = True
    thread.join(timeout=30)
    http.close()
    service.store.close()


def _swap_job_id(case: Any, job_ids: list[str]) -> None:
    """Half of the generated job ids are replaced by a real job's (chosen by a hash)."""
    job_id = case.path_parameters.get("job_id") if case.path_parameters else None
    if isinstance(job_id, str):
        pick = zlib.crc32(job_id.encode("utf-8", "surrogatepass")) % (2 * len(job_ids))
        if pick < len(job_ids):
            case.path_parameters["job_id"] = job_ids[pick]


def _fuzzer(operation: Any, mode: GenerationMode, live: Live,
            seen: dict[int, set[str]]) -> Any:
    """A hypothesis test sending `operation`'s generated requests and checking each answer."""
    from hypothesis import given

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        _swap_job_id(case, [live.doomed] if operation.label.endswith("/delete")
                     else live.job_ids)
        response = case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                                          checks=CHECKS)
        seen.setdefault(response.status_code, set()).add(operation.label)

    return fuzz


@pytest.mark.timeout(300)
def test_every_generated_request_gets_a_documented_answer(live: Live) -> None:
    from hypothesis.errors import Unsatisfiable

    api = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    failures: list[str] = []
    seen: dict[int, set[str]] = {}  # status code -> operations that answered it
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzzer(operation, mode, live, seen)()
            except Unsatisfiable:  # nothing to make invalid: a route without parameters
                assert mode is GenerationMode.NEGATIVE, operation.label
            except BaseException as exc:  # one report per operation and mode, all of them
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    print({code: sorted(ops) for code, ops in sorted(seen.items())})
    # every operation answered, and the requests got past the token to the real jobs
    assert set().union(*seen.values()) == {op.label for op in operations}
    assert {200, 202, 204, 401, 403, 404, 409, 410, 422} <= set(seen), sorted(seen)


def test_the_fuzzed_server_still_serves(live: Live) -> None:
    """After the fuzzing: nothing broke, and the fuzzer's jobs stayed within the limits."""
    assert live.http.get("/healthz").json()["status"] == "ok"
    assert live.http.get(f"/v1/jobs/{live.job_ids[0]}").json()["state"] == "succeeded"
    assert len(live.service.runner.running_ids()) <= 1
    metrics = live.http.get("/metrics").text
    assert 'status="500"' not in metrics
    assert Path(live.service.config.data_path / "jobs.db").is_file()
