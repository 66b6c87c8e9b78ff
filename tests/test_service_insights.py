"""The routes behind the web page: progress history, log tail, 2-D projection; and the page's
own files (served from the package, nothing from elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from distw2v.service.history import ProgressHistory
from distw2v.service.insights import pca_2d
from distw2v.service.web import STATIC

pytestmark = pytest.mark.service


def _sentence(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith("."), detail
    return detail


@pytest.fixture
def finished(tmp_path, service_server, service_corpus):
    """A server with one succeeded job (40 words) and one failed one."""
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=3, sentences=1500)
    server = service_server(max_concurrent_jobs=1)
    ok = server.submit([str(source)], train={"dim": 8, "epochs": 3, "workers": 1, "seed": 5})
    bad = server.submit([str(source)], vocab={"min_count": 10**6})
    assert server.wait(ok["id"])["state"] == "succeeded"
    assert server.wait(bad["id"])["state"] == "failed"
    return server, ok["id"], bad["id"]


def test_history_log_and_projection_of_a_finished_job(finished) -> None:
    server, ok, bad = finished
    history = server.http.get(f"/v1/jobs/{ok}/history").json()
    assert history["job_id"] == ok and history["attempt"] == 1
    samples = history["samples"]
    times = [s["t"] for s in samples]
    assert times == sorted(times) and len(samples) >= 2
    stages = [s["stage"] for s in samples]
    assert "vocabulary" in stages and "training" in stages
    training = [s for s in samples if s["stage"] == "training"]
    rates = [s["learning_rate"] for s in training]
    assert all(r is not None for r in rates) and rates == sorted(rates, reverse=True)
    assert rates[0] == pytest.approx(0.025, rel=0.05)  # skip-gram's default start
    assert rates[-1] >= 0.0001 - 1e-12
    assert any(s["words_per_second"] for s in training)
    assert all(s["learning_rate"] is None for s in samples if s["stage"] != "training")
    losses = [s["loss"] for s in training if s["loss"] is not None]  # the chart's loss curve
    assert losses and all(0 < x < 6 * 0.7 for x in losses)  # below a random model's 6 ln 2
    # the history outlives the attempt: it is on disk
    assert (server.service.config.data_path / "logs" / f"{ok}.history.json").is_file()

    log = server.http.get(f"/v1/jobs/{ok}/log").json()
    assert log["job_id"] == ok and log["lines"][0].startswith("--- attempt 1")
    assert log["truncated"] is False
    last = server.http.get(f"/v1/jobs/{ok}/log", params={"tail": 1}).json()
    assert last["lines"] == log["lines"][-1:] and last["truncated"] is (len(log["lines"]) > 1)
    failed = server.http.get(f"/v1/jobs/{bad}/log").json()["lines"]
    assert failed and failed[0].startswith("--- attempt 1")
    # the process's stderr (tracebacks, server paths) stays in the server's own log file
    stderr = server.service.config.data_path / "logs" / f"{bad}.log"
    with open(stderr, "a", encoding="utf-8") as out:
        out.write(f'  File "{server.service.config.data_path}/secret.py", line 1\n')
    shown = server.http.get(f"/v1/jobs/{bad}/log").json()["lines"]
    assert shown == failed and not any("secret.py" in line for line in shown)

    words = server.http.get(f"/v1/models/{ok}/similar", params={"word": "w1"}).json()
    assert words["similar"]
    top = server.http.get(f"/v1/models/{ok}/projection", params={"n": 10}).json()
    assert [p["rank"] for p in top["words"]] == list(range(10))
    assert all(p["top"] for p in top["words"])
    first, second = top["explained_variance"]
    assert 1.0 >= first >= second >= 0.0
    again = server.http.get(f"/v1/models/{ok}/projection", params={"n": 10}).json()
    assert again == top  # the same model always gives the same picture
    # every word when n is larger than the vocabulary; include adds words below the top n
    everything = server.http.get(f"/v1/models/{ok}/projection", params={"n": 1000}).json()
    assert len(everything["words"]) == 40
    rare = everything["words"][-1]["word"]
    near = server.http.get(f"/v1/models/{ok}/projection",
                           params=[("n", "5"), ("include", rare), ("include", "w1")]).json()
    ranks = [p["rank"] for p in near["words"]]
    assert ranks[:5] == list(range(5)) and len(ranks) == 6  # w1 is either in the top 5 or added
    assert near["words"][-1]["word"] == rare and near["words"][-1]["top"] is False
    # the coordinates are the PCA of the top-n unit vectors, as NumPy computes it
    vectors = server.service.models.get(ok)
    mean, components, _ = pca_2d(vectors.unit_vectors(range(5)))
    expected = (vectors.get_vector(rare, norm=True) - mean) @ components.T
    assert near["words"][-1]["x"] == pytest.approx(expected[0], abs=1e-4)
    assert near["words"][-1]["y"] == pytest.approx(expected[1], abs=1e-4)


def test_the_new_routes_refuse_bad_requests_with_one_sentence(finished) -> None:
    server, ok, bad = finished
    http = server.http
    assert _sentence(http.get("/v1/jobs/nope/history"), 404) == "there is no job nope."
    assert _sentence(http.get("/v1/jobs/nope/log"), 404) == "there is no job nope."
    assert _sentence(http.get("/v1/models/nope/projection"), 404) == "there is no job nope."
    for tail in (0, 2001, "x"):
        assert _sentence(http.get(f"/v1/jobs/{ok}/log", params={"tail": tail}), 422
                         ).startswith("invalid request: tail:")
    for n in (0, 1001, "x"):
        assert _sentence(http.get(f"/v1/models/{ok}/projection", params={"n": n}), 422
                         ).startswith("invalid request: n:")
    assert _sentence(http.get(f"/v1/models/{ok}/projection", params={"include": "zzz"}),
                     404) == "'zzz' is not in the vocabulary."
    many = ",".join(f"w{i}" for i in range(40)) + "," + ",".join(f"w{i}" for i in range(11))
    assert _sentence(http.get(f"/v1/models/{ok}/projection", params={"include": many}),
                     400) == "include takes at most 50 words."
    assert _sentence(http.get(f"/v1/models/{bad}/projection"), 409) == (
        f"job {bad} is failed; only a succeeded job has a model.")
    anonymous = httpx.Client(base_url=server.url)
    wrong = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer wrong-token-1"})
    for route in (f"/v1/jobs/{ok}/history", f"/v1/jobs/{ok}/log",
                  f"/v1/models/{ok}/projection"):
        assert _sentence(anonymous.get(route), 401).startswith("this route needs a bearer")
        assert _sentence(wrong.get(route), 401) == "the bearer token is not valid."
    anonymous.close()
    wrong.close()
    # a vanished model is a 410, as for the other model routes
    server.service.models.drop(ok)
    import shutil

    shutil.rmtree(server.service.config.data_path / "models" / ok)
    assert _sentence(http.get(f"/v1/models/{ok}/projection"), 410)


def test_another_tokens_job_is_not_found(tmp_path, service_server, service_corpus) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice-token-123\nbob-token-4567\n")
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=0)
    server = service_server(token=None, tokens_file=str(tokens), max_concurrent_jobs=1)
    alice = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer alice-token-123"})
    bob = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer bob-token-4567"})
    job = alice.post("/v1/jobs", json={"sources": [str(source)], "vocab": {"min_count": 1},
                                       "train": {"dim": 4, "epochs": 1, "workers": 1}}).json()
    server.http = alice  # so that wait polls as alice (the fixture closes it)
    assert server.wait(job["id"])["state"] == "succeeded"
    assert alice.get(f"/v1/jobs/{job['id']}/history").status_code == 200
    for route in ("/v1/jobs/{}/history", "/v1/jobs/{}/log", "/v1/models/{}/projection"):
        assert _sentence(bob.get(route.format(job["id"])), 404) == f"there is no job {job['id']}."
    bob.close()


def test_the_openapi_document_describes_the_new_routes(service_server) -> None:
    schema = service_server().http.get("/openapi.json").json()
    for path, codes in (("/v1/jobs/{job_id}/history", {"401", "404", "422"}),
                        ("/v1/jobs/{job_id}/log", {"401", "404", "422"}),
                        ("/v1/models/{job_id}/projection",
                         {"400", "401", "404", "409", "410", "422"})):
        operation = schema["paths"][path]["get"]
        assert codes <= set(operation["responses"]), path
        assert operation["security"] == [{"HTTPBearer": []}], path
    params = {p["name"]: p["schema"] for p in
              schema["paths"]["/v1/models/{job_id}/projection"]["get"]["parameters"]}
    assert params["n"]["minimum"] == 1 and params["n"]["maximum"] == 1000
    assert "/" in schema["paths"]


def test_history_is_thinned_kept_per_attempt_and_written_to_disk(tmp_path: Path) -> None:
    now = [1000.0]
    history = ProgressHistory(tmp_path, limit=8, clock=lambda: now[0])
    history.begin("j", 1, {"epochs": 2, "alpha": 0.5, "min_alpha": 0.1})
    history.record("j", 1, {"stage": "vocabulary", "progress": 0.05})
    for i in range(200):  # 200 s of training, a message every second
        now[0] += 1.0
        history.record("j", 1, {"stage": "training", "progress": 0.2 + 0.78 * i / 199,
                                "words_per_second": 1000.0 + i, "epoch": 1 + i // 100})
    history.record("j", 0, {"stage": "training", "progress": 0.9})  # an old attempt: ignored
    attempt, samples = history.samples("j")
    assert attempt == 1 and len(samples) <= 8 + 1
    assert samples[0]["stage"] == "vocabulary" and samples[0]["learning_rate"] is None
    assert samples[-1]["t"] == 200.0  # the newest message is never lost to the thinning
    assert samples[-1]["learning_rate"] == pytest.approx(0.1)  # the end of the schedule
    assert samples[1]["learning_rate"] == pytest.approx(0.5)  # its start
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)
    history.end("j", 1)
    assert history.samples("j") == (1, samples)  # read back from the file
    history.begin("j", 2, {})
    assert history.samples("j") == (2, [])  # a retry starts afresh
    history.delete("j")
    assert history.samples("j") == (None, []) and not any(tmp_path.iterdir())


def test_pca_finds_the_axes_of_largest_variance() -> None:
    rng = np.random.default_rng(0)
    rows = np.zeros((500, 6))
    rows[:, 2] = rng.normal(0, 3.0, 500)  # the widest axis
    rows[:, 4] = rng.normal(0, 1.0, 500)
    rows += 5.0  # the mean is removed
    mean, components, explained = pca_2d(rows)
    assert np.allclose(mean, rows.mean(axis=0))
    assert components[0, 2] == pytest.approx(1.0, abs=1e-3)  # signs fixed: largest > 0
    assert components[1, 4] == pytest.approx(1.0, abs=1e-3)
    assert explained[0] == pytest.approx(0.9, abs=0.03) and sum(explained) == pytest.approx(1)
    assert pca_2d(np.ones((1, 3)))[2] == [0.0, 0.0]  # one word: no variance, no error


def test_the_page_is_served_from_the_package_and_loads_nothing_from_elsewhere(
    service_server,
) -> None:
    server = service_server()
    page = server.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    for name in ("app.js", "app.css"):
        response = httpx.get(f"{server.url}/static/{name}")  # no token needed for the page
        assert response.status_code == 200 and response.text == (STATIC / name).read_text()
        assert response.headers["x-content-type-options"] == "nosniff"
    assert _sentence(httpx.get(f"{server.url}/static/nothing.js"), 404)
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        # the one URL is the SVG namespace, an identifier that is never fetched
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, path.name
