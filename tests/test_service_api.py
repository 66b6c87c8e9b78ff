"""The REST API's contract: validation, tokens, ownership, source checks, limits, metrics.

Each bad input gets one clear 4xx sentence (never a traceback)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from distw2v.config import TrainConfig, VocabConfig
from distw2v.errors import Distw2vError
from distw2v.service import security
from distw2v.service.schemas import JobRequest, TrainSettings, VocabSettings
from distw2v.service.settings import ServiceConfig

pytestmark = pytest.mark.service


def _sentence(response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail
    assert detail.endswith("."), detail
    return detail


@pytest.fixture
def api(tmp_path, service_server, service_corpus):
    service_corpus(tmp_path / "roots" / "a.txt", seed=0)
    (tmp_path / "roots" / "empty.txt").write_text("")
    return service_server()


def test_request_model_is_generated_from_the_config_dataclasses() -> None:
    for model, cls in ((VocabSettings, VocabConfig), (TrainSettings, TrainConfig)):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        fields.pop("format", None)  # the request's own field (below), not a vocab setting
        assert set(model.model_fields) == set(fields)
        for name, f in fields.items():
            assert model.model_fields[name].default == f.default
            assert model.model_fields[name].description == f.metadata["help"]
    assert JobRequest.model_fields["train"].annotation is TrainSettings
    fmt = next(f for f in dataclasses.fields(VocabConfig) if f.name == "format")
    assert JobRequest.model_fields["format"].default == fmt.default
    assert JobRequest.model_fields["format"].description == fmt.metadata["help"]


def test_openapi_docs_healthz_and_metrics(api) -> None:
    schema = api.http.get("/openapi.json").json()
    assert "/v1/jobs" in schema["paths"] and "/v1/models/{job_id}/similar" in schema["paths"]
    train = schema["components"]["schemas"]["TrainSettings"]
    assert train["additionalProperties"] is False and "dim" in train["properties"]
    assert api.http.get("/docs").status_code == 200
    assert api.http.get("/healthz").json()["status"] == "ok"
    api.http.get("/v1/jobs")
    text = api.http.get("/metrics").text
    assert 'distw2v_jobs{state="queued"} 0.0' in text
    assert "distw2v_queue_length 0.0" in text
    assert 'distw2v_request_seconds_count{method="GET",route="/v1/jobs",status="200"} 1.0' in text


def test_the_docs_pages_forbid_framing_and_run_only_their_own_scripts(api) -> None:
    import base64
    import hashlib
    import re

    for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/"):
        response = api.http.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        policy = dict(part.strip().split(" ", 1)
                      for part in response.headers["Content-Security-Policy"].split(";"))
        assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'", path
        assert policy["base-uri"] == "'none'" and "'unsafe-eval'" not in str(policy), path
        # scripts: this server's, and the page's own inline ones by hash, nothing else
        inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
        hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()
                  + "'" for s in inline}
        assert set(policy["script-src"].split()) == {"'self'", *hashes}, path
        assert (path == "/redoc" or path == "/") == (not inline), path
        assert "http" not in response.headers["Content-Security-Policy"], path  # no CDN


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"train": {"dim": 0}}, "train.dim", "dim must be at least 1."),
        ({"train": {"dim": "big"}}, "train.dim", "Input should be a valid integer"),
        ({"train": {"model": "glove"}}, "train.model", "Input should be 'skipgram' or 'cbow'"),
        ({"train": {"dimension": 8}}, "train.dimension", "Extra inputs are not permitted"),
        ({"vocab": {"min_count": 0}}, "vocab.min_count", "min_count must be at least 1."),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"engine": "gpu"}, "engine", "Input should be 'local' or 'spark'"),
        ({"format": "parquet"}, "format", "Input should be 'text'"),
        ({"sources": []}, "sources", "List should have at least 1 item after validation"),
    ],
)
def test_invalid_settings_get_422_naming_the_field(api, tmp_path, body, field, message) -> None:
    payload = {"sources": [str(tmp_path / "roots" / "a.txt")], **body}
    response = api.http.post("/v1/jobs", json=payload)
    detail = _sentence(response, 422)
    assert detail.startswith(f"invalid request: {field}: {message}"), detail
    assert response.json()["errors"][0]["field"] == field
    assert api.http.get("/v1/jobs").json()["total"] == 0


def test_bad_sources_are_refused_with_one_sentence(api, tmp_path) -> None:
    roots = tmp_path / "roots"
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret words\n")
    (roots / "link.txt").symlink_to(outside)
    (roots / "linkdir").symlink_to(tmp_path)
    cases = [
        (str(roots / "missing.txt"), 422, f"sources.0: {roots / 'missing.txt'} does not exist."),
        (str(roots / "*.gz"), 422, f"sources.0: pattern {roots / '*.gz'} matches no files."),
        (str(roots / "empty.txt"), 422,
         "the dataset is empty: every file in the sources is empty."),
        (str(outside), 403, f"local path {outside} is outside the allowed roots."),
        (f"{roots}/../secret.txt", 403, f"local path {roots}/../secret.txt is outside the "
         "allowed roots."),
        (str(roots / "link.txt"), 403, f"local path {roots / 'link.txt'} is outside the "
         "allowed roots."),
        (str(roots / "linkdir" / "*.txt"), 403, f"local path {roots / 'linkdir' / '*.txt'} is "
         "outside the allowed roots."),
        ("a.txt", 403, "local path a.txt must be absolute."),
        ("https://127.0.0.1/corpus.txt", 403, "https://127.0.0.1/corpus.txt resolves to a "
         "loopback or private address; this server does not read from those (see "
         "--allow-private-https)."),
        ("https://10.1.2.3/c.txt", 403, "https://10.1.2.3/c.txt resolves to a loopback or "
         "private address; this server does not read from those (see --allow-private-https)."),
        ("https://localhost:8443/c.txt", 403, "https://localhost:8443/c.txt resolves to a "
         "loopback or private address; this server does not read from those (see "
         "--allow-private-https)."),
        ("http://example.com/c.txt", 403, "http://example.com/c.txt uses plain http; use "
         "https."),
        ("ftp://example.com/c.txt", 403, "ftp://example.com/c.txt has the unsupported scheme "
         "'ftp'; use a local path, s3://, https:// or hdfs://."),
    ]
    for source, status, expected in cases:
        response = api.http.post("/v1/jobs", json={"sources": [source]})
        assert _sentence(response, status) == expected, source
    # A directory with a symlink out of the roots is refused as a whole.
    response = api.http.post("/v1/jobs", json={"sources": [str(roots)]})
    assert _sentence(response, 403) == (f"local path {roots} goes through "
                                        f"{roots / 'link.txt'}, a link that leads outside "
                                        "the allowed roots.")
    assert api.http.get("/v1/jobs").json()["total"] == 0


def test_local_paths_need_configured_roots(tmp_path, service_server, service_corpus) -> None:
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=0)
    server = service_server(allowed_roots="")
    response = server.http.post("/v1/jobs", json={"sources": [str(source)]})
    assert _sentence(response, 403) == (
        f"local path {source} is not accepted: this server has no allowed roots (start it "
        "with --allowed-roots)."
    )


def test_tokens_are_required_and_each_sees_only_its_own_jobs(
    tmp_path, service_server, service_corpus
) -> None:
    import httpx

    tokens = tmp_path / "tokens"
    tokens.write_text("# one token a line\nalice-token-123\nbob-token-4567\n")
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=0)
    server = service_server(token=None, tokens_file=str(tokens), max_concurrent_jobs=1)
    anonymous = httpx.Client(base_url=server.url)
    alice = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer alice-token-123"})
    bob = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer bob-token-4567"})
    wrong = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer nope-nope-1"})
    for route in ("/v1/jobs", "/v1/jobs/abc", "/v1/models/abc/similar?word=x"):
        missing = anonymous.get(route)
        assert _sentence(missing, 401) == ("this route needs a bearer token (header "
                                           "'Authorization: Bearer TOKEN').")
        assert missing.headers["www-authenticate"] == "Bearer"
        assert _sentence(wrong.get(route), 401) == "the bearer token is not valid."
    assert _sentence(anonymous.post("/v1/jobs", json={"sources": ["x"]}), 401)
    job = alice.post("/v1/jobs", json={"sources": [str(source)], "train": {"dim": 8,
                                       "epochs": 1, "workers": 1}})
    assert job.status_code == 201
    jid = job.json()["id"]
    assert alice.get(f"/v1/jobs/{jid}").status_code == 200
    assert [j["id"] for j in alice.get("/v1/jobs").json()["jobs"]] == [jid]
    assert bob.get("/v1/jobs").json() == {"jobs": [], "total": 0, "limit": 50, "offset": 0}
    for response in (bob.get(f"/v1/jobs/{jid}"), bob.delete(f"/v1/jobs/{jid}"),
                     bob.post(f"/v1/jobs/{jid}/retry"),
                     bob.get(f"/v1/models/{jid}/similar", params={"word": "w1"}),
                     bob.get(f"/v1/jobs/{jid}/artifacts/native")):
        assert _sentence(response, 404) == f"there is no job {jid}."
    # The store keeps a hash of the token, never the token.
    stored = server.service.store.get(jid)
    assert stored is not None and stored.owner == security.owner_of("alice-token-123")
    assert "alice-token-123" not in stored.owner
    for client in (anonymous, alice, bob, wrong):
        client.close()


def test_listing_filters_by_state_and_pages(tmp_path, service_server, service_corpus) -> None:
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    server = service_server(max_concurrent_jobs=1)
    long = {"dim": 8, "epochs": 5000, "workers": 1}
    jobs = [server.submit([source], train=long, engine=engine)
            for engine in ("local", "local", "spark")]
    assert jobs[2]["engine"] == "spark" and jobs[2]["state"] == "queued"
    ids = [j["id"] for j in jobs]
    for jid in reversed(ids):  # the queued ones first, so that none of them starts
        assert server.http.delete(f"/v1/jobs/{jid}").json()["state"] == "cancelled"
    page = server.http.get("/v1/jobs", params={"limit": 2}).json()
    assert page["total"] == 3 and [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    page2 = server.http.get("/v1/jobs", params={"limit": 2, "offset": 2}).json()
    assert [j["id"] for j in page2["jobs"]] == ids[:1]
    assert server.http.get("/v1/jobs", params={"state": "cancelled"}).json()["total"] == 3
    assert server.http.get("/v1/jobs", params={"state": "running"}).json()["total"] == 0
    detail = _sentence(server.http.get("/v1/jobs", params={"state": "done"}), 422)
    assert detail.startswith("invalid request: state: Input should be 'queued'")
    assert _sentence(server.http.get("/v1/jobs", params={"limit": 0}), 422).startswith(
        "invalid request: limit:")
    assert _sentence(server.http.get("/v1/jobs/nope"), 404) == "there is no job nope."
    assert _sentence(server.http.delete("/v1/jobs/nope"), 404) == "there is no job nope."


def test_queries_refuse_unknown_words_and_unfinished_models(
    tmp_path, service_server, service_corpus
) -> None:
    source = str(service_corpus(tmp_path / "roots" / "a.txt", seed=0))
    server = service_server(max_concurrent_jobs=1)
    done = server.wait(server.submit([source])["id"])
    assert done["state"] == "succeeded"
    jid = done["id"]
    similar = server.http.get(f"/v1/models/{jid}/similar", params={"word": "zebra"})
    assert _sentence(similar, 404) == "'zebra' is not in the vocabulary."
    vector = server.http.get(f"/v1/models/{jid}/vector", params={"word": "zebra"})
    assert _sentence(vector, 404) == "'zebra' is not in the vocabulary."
    analogy = server.http.get(f"/v1/models/{jid}/analogy",
                              params={"positive": ["w1", "zebra"], "negative": "w2"})
    assert _sentence(analogy, 404) == "'zebra' is not in the vocabulary."
    too_many = server.http.get(f"/v1/models/{jid}/similar", params={"word": "w1", "topn": 5000})
    assert _sentence(too_many, 422).startswith("invalid request: topn:")
    no_word = server.http.get(f"/v1/models/{jid}/similar")
    assert _sentence(no_word, 422) == "invalid request: word: Field required."
    running = server.submit([source], train={"dim": 8, "epochs": 5000, "workers": 1})
    server.wait(running["id"], states=("running",))
    busy = server.http.get(f"/v1/models/{running['id']}/similar", params={"word": "w1"})
    assert _sentence(busy, 409) == (f"job {running['id']} is running; only a succeeded job "
                                    "has a model.")
    artifact = server.http.get(f"/v1/jobs/{running['id']}/artifacts/word2vec-bin")
    assert artifact.status_code == 409
    server.http.delete(f"/v1/jobs/{running['id']}")


def test_request_size_is_limited(api, tmp_path) -> None:
    huge = {"sources": [str(tmp_path / "roots" / "a.txt")], "name": "x" * (2 << 20)}
    response = api.http.post("/v1/jobs", json=huge)
    assert _sentence(response, 413) == "the request body is larger than the limit of 1048576 bytes."
    many = {"sources": [str(tmp_path / "roots" / "a.txt")] * 1001}
    assert _sentence(api.http.post("/v1/jobs", json=many), 422).startswith(
        "invalid request: sources: List should have at most 1000 items")
    assert _sentence(api.http.post("/v1/jobs", content=b"{not json",
                                   headers={"content-type": "application/json"}), 422)


def test_serve_settings_and_tokens(tmp_path) -> None:
    with pytest.raises(Distw2vError, match="refusing to listen on 0.0.0.0 without a token"):
        security.load_tokens(ServiceConfig(data_dir=str(tmp_path), host="0.0.0.0"))
    # On loopback serve makes a token and keeps it for local clients (mode 0600).
    tokens, path = security.load_tokens(ServiceConfig(data_dir=str(tmp_path)))
    assert path == tmp_path / "token" and path.read_text().strip() == tokens[0]
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert len(tokens[0]) == 48 and set(tokens[0]) <= set("0123456789abcdef")  # never "-..."
    assert security.load_tokens(ServiceConfig(data_dir=str(tmp_path)))[0] == tokens
    assert security.load_tokens(ServiceConfig(data_dir=str(tmp_path), host="0.0.0.0",
                                              token="long-enough-token"))[0] == [
        "long-enough-token"]
    with pytest.raises(Distw2vError, match="token must be at least 8 characters long"):
        ServiceConfig(token="short")
    with pytest.raises(Distw2vError, match="max_concurrent_jobs must be at least 1"):
        ServiceConfig(max_concurrent_jobs=0)
    empty = tmp_path / "empty-tokens"
    empty.write_text("# nothing\n")
    with pytest.raises(Distw2vError, match="holds no token"):
        security.load_tokens(ServiceConfig(tokens_file=str(empty)))
    assert ServiceConfig().concurrency >= 1
    checker = security.Tokens(["alpha-token-1", "beta-token-22"])
    assert checker.owner("beta-token-22") == security.owner_of("beta-token-22")
    assert checker.owner("beta-token-2") is None


def test_https_sources_resolve_to_public_addresses_only(monkeypatch) -> None:
    import socket

    def fake(host, port, type=0):  # noqa: A002 - socket's own keyword
        table = {"public.example": "93.184.216.34", "rebind.example": "192.168.1.5"}
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table.get(host, host), port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    security.check_https("https://public.example/corpus.txt", allow_private=False)
    with pytest.raises(security.SourceError, match="resolves to a loopback or private"):
        security.check_https("https://rebind.example/c.txt", allow_private=False)
    security.check_https("https://rebind.example/c.txt", allow_private=True)
    with pytest.raises(security.SourceError, match="resolves to a loopback or private"):
        security.check_https("https://[::ffff:127.0.0.1]/c.txt", allow_private=False)


def test_the_job_process_checks_the_expanded_files_again(tmp_path: Path) -> None:
    roots = [tmp_path.resolve() / "roots"]
    roots[0].mkdir()
    (roots[0] / "ok.txt").write_text("a b c\n")
    assert security.checked_files([str(roots[0] / "*.txt")], roots, False) == [
        str(roots[0] / "ok.txt")]
    # A symlink planted after submission is caught when the job expands its sources.
    (tmp_path / "secret.txt").write_text("x\n")
    (roots[0] / "late.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(security.SourceError, match="late.txt, a link that leads outside"):
        security.checked_files([str(roots[0] / "*.txt")], roots, False)
