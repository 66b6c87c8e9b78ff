"""The service from a terminal (issue 15, item 6): offline /docs, `similar`/`analogy` on a
service model, `download`, failure reasons in `jobs`, 401 hints, and the REST `a b c` form."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.service

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

URL_ATTRIBUTE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


def _page_urls(html: str) -> list[str]:
    return [a or b for a, b in URL_ATTRIBUTE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(service_server, page: str) -> None:
    server = service_server()
    response = server.http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower() and "googleapis" not in html
    urls = _page_urls(html)
    scripts = [u for u in urls if u.endswith(".js")]
    assert len(scripts) == 1, urls  # swagger-ui-bundle.js or redoc.standalone.js
    assert "/openapi.json" in urls or 'spec-url="/openapi.json"' in html
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # this server, no host
        asset = server.http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url  # the real file, not an error page
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url
        elif url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url
    if page == "/docs":
        assert any(u.endswith("/swagger-ui.css") for u in urls)
        bundle = server.http.get(scripts[0]).text
        assert "SwaggerUIBundle" in bundle  # the page's script defines what the page calls
        # Swagger UI 5 renders the OpenAPI 3.1 document FastAPI writes (4.x cannot)
        assert server.http.get("/openapi.json").json()["openapi"].startswith("3.1")
        assert re.search(r'"5\.\d+\.\d+"', bundle)
        assert server.http.get("/docs/oauth2-redirect").status_code == 200


def test_docs_routes_stay_out_of_the_schema(service_server) -> None:
    server = service_server()
    paths = server.http.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
    missing = server.http.get("/docs/assets/no-such-file.js")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "there is no such route."}


# ---- the CLI against a real server --------------------------------------------------------


def _run(capsys, argv: list[str]) -> tuple[str, str]:
    from distw2v.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, (argv, out, err)
    return out, err


def _one_line_error(capsys, argv: list[str], *parts: str) -> str:
    from distw2v.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def trained(service_server, service_corpus, tmp_path, monkeypatch):
    """A server with one succeeded job, the CLI pointed at it (no token file in HOME)."""
    from conftest import SERVICE_TOKEN

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no generated token to fall back on
    server = service_server()
    source = service_corpus(tmp_path / "roots" / "a.txt", seed=3)
    job = server.submit([str(source)])
    assert server.wait(job["id"])["state"] == "succeeded"
    monkeypatch.setenv("DISTW2V_SERVER", server.url)
    monkeypatch.setenv("DISTW2V_TOKEN", SERVICE_TOKEN)
    return server, job["id"]


def _extract_native(path: Path, into: Path) -> Path:
    import tarfile

    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into


def test_similar_analogy_and_download_of_a_service_model(trained, tmp_path, capsys,
                                                          monkeypatch) -> None:
    server, job_id = trained
    out_dir = tmp_path / "downloads"
    out_dir.mkdir()

    # download: every format, atomically, with a progress bar; the bytes are the artifact's
    for fmt, name in (("native", f"{job_id}.tar"), ("word2vec-bin", f"{job_id}-vectors.bin"),
                      ("word2vec-text", f"{job_id}-vectors.txt")):
        out, err = _run(capsys, ["download", job_id, "--format", fmt, "--out", str(out_dir)])
        path = out_dir / name
        assert out.startswith(f"wrote {path} ("), out
        assert "100%" in err and name in err  # the bar, named by the file
        assert path.read_bytes() == server.http.get(f"/v1/jobs/{job_id}/artifacts/{fmt}").content
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"{job_id}.tar", f"{job_id}-vectors.bin", f"{job_id}-vectors.txt"])  # no .part left
    _one_line_error(capsys, ["download", job_id, "--out", str(out_dir)],
                    f"distw2v download: error: {out_dir / (job_id + '.tar')} exists; "
                    "pass --overwrite to replace it.")
    chosen = out_dir / "model.tar"
    _run(capsys, ["download", job_id, "--out", str(chosen), "--quiet"])
    assert chosen.read_bytes() == (out_dir / f"{job_id}.tar").read_bytes()
    _run(capsys, ["download", job_id, "--out", str(chosen), "--overwrite", "--quiet"])
    _one_line_error(capsys, ["download", job_id, "--out", str(tmp_path / "no" / "x.tar")],
                    f"the folder {tmp_path / 'no'} does not exist.")
    monkeypatch.chdir(out_dir)  # no --out: the server's file name, in the current folder
    (out_dir / f"{job_id}-vectors.txt").unlink()
    _run(capsys, ["download", job_id, "--format", "word2vec-text", "-q"])
    assert (out_dir / f"{job_id}-vectors.txt").stat().st_size > 100

    # similar/analogy by job id answer as the same model, downloaded, answers locally
    local = _extract_native(out_dir / f"{job_id}.tar", tmp_path / "extracted") / job_id
    for argv in (["similar", "{}", "w1", "w2", "--topn", "4"],
                 ["analogy", "{}", "w1", "w2", "w3", "--topn", "3"],
                 ["analogy", "{}", "w4", "w5", "w6", "--method", "3cosmul"]):
        remote, _ = _run(capsys, [a.format(job_id) for a in argv])
        here, _ = _run(capsys, [a.format(local) for a in argv])
        assert remote == here and len(remote.splitlines()) >= 4, (remote, here)
        explicit, _ = _run(capsys, [a.format(job_id) for a in argv] + ["--server", server.url])
        assert explicit == remote
    assert remote.splitlines()[0] == "w4 : w5 :: w6 : ?"

    # a local directory named like a job id is still read locally, even with no server
    monkeypatch.chdir(local.parent)
    monkeypatch.setenv("DISTW2V_SERVER", "http://127.0.0.1:9")  # nothing listens there
    by_dir, _ = _run(capsys, ["similar", job_id, "w1", "--topn", "4"])
    assert by_dir.splitlines()[0] == "w1:" and len(by_dir.splitlines()) == 5
    monkeypatch.setenv("DISTW2V_SERVER", server.url)

    # errors are one sentence, exit status 2
    _one_line_error(capsys, ["similar", job_id, "zebra", "--server", server.url],
                    "distw2v similar: error: 'zebra' is not in the vocabulary.")
    _one_line_error(capsys, ["analogy", "0123456789abcdef", "w1", "w2", "w3"],
                    "distw2v analogy: error: there is no job 0123456789abcdef.")
    _one_line_error(capsys, ["download", "0123456789abcdef"],
                    "distw2v download: error: there is no job 0123456789abcdef.")


HOW_TO_FIX = ("give the server's token with --token-file PATH, $DISTW2V_TOKEN or --token TOKEN "
              "(a `distw2v serve` started without a token writes the one it generated to "
              "DATA_DIR/token, by default ~/.local/share/distw2v-service/token).")


def test_a_401_says_how_to_give_the_token(trained, service_corpus, tmp_path, capsys,
                                          monkeypatch) -> None:
    server, job_id = trained
    source = service_corpus(tmp_path / "roots" / "b.txt", seed=4)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-42\n")
    line = _one_line_error(capsys, ["submit", str(source), "--token-file", str(wrong)],
                           "distw2v submit: error: the bearer token is not valid "
                           f"(sent: the token in {wrong}); ", HOW_TO_FIX)
    assert line.endswith(HOW_TO_FIX)
    _one_line_error(capsys, ["similar", job_id, "w1", "--token-file", str(wrong)],
                    "distw2v similar: error: the bearer token is not valid", HOW_TO_FIX)
    monkeypatch.setenv("DISTW2V_TOKEN", "still-not-the-token")
    _one_line_error(capsys, ["download", job_id, "--out", str(tmp_path / "m.tar")],
                    "(sent: the token from $DISTW2V_TOKEN); ", HOW_TO_FIX)
    assert not (tmp_path / "m.tar").exists()
    monkeypatch.delenv("DISTW2V_TOKEN")
    _one_line_error(capsys, ["jobs"], "distw2v jobs: error: the server needs a bearer token "
                    "and none was found; " + HOW_TO_FIX)
    # the token a local serve generated, found in the default data directory, when wrong
    generated = tmp_path / "home" / ".local" / "share" / "distw2v-service" / "token"
    generated.parent.mkdir(parents=True)
    generated.write_text("an-old-generated-token\n")
    _one_line_error(capsys, ["submit", str(source)],
                    f"the bearer token is not valid (sent: the token in {generated}); ")
    assert server.http.get("/v1/jobs").json()["total"] == 1  # nothing was submitted


def test_jobs_shows_why_a_job_failed(trained, service_corpus, tmp_path, capsys) -> None:
    server, ok_id = trained
    rare = service_corpus(tmp_path / "roots" / "rare.txt", seed=5, sentences=2, vocab=500)
    failed = server.submit([str(rare)], vocab={"min_count": 100}, name="too-rare")
    job = server.wait(failed["id"])
    assert job["state"] == "failed" and job["error"]
    out, _ = _run(capsys, ["jobs"])
    lines = out.splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.startswith(failed["id"]))
    assert lines[row].split()[:2] == [failed["id"], "failed"] and lines[row].endswith("too-rare")
    assert lines[row + 1] == " " * (len(failed["id"]) + 2) + f"error: {job['error']}"
    assert sum("error:" in ln for ln in lines) == 1  # only the failed job has one
    assert any(ln.startswith(ok_id) for ln in lines)


def test_a_cut_off_download_leaves_no_file(tmp_path, capsys, monkeypatch) -> None:
    """A server that promises 100 kB and hangs up after 5 kB: no file, one sentence."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    served = threading.Event()

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n"
                         b"Content-Type: application/x-tar\r\n"
                         b'Content-Disposition: attachment; filename="../../escape.tar"\r\n'
                         b"\r\n" + b"x" * 5000)
        served.set()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    monkeypatch.setenv("DISTW2V_TOKEN", "some-token-123")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.chdir(out_dir)
    _one_line_error(capsys, ["download", "0123456789abcdef", "-q", "--server",
                             f"http://127.0.0.1:{listener.getsockname()[1]}"],
                    "distw2v download: error: the download of job 0123456789abcdef was cut "
                    "off (", "); nothing was written.")
    assert served.wait(10)
    thread.join(10)
    listener.close()
    assert list(out_dir.iterdir()) == [] and list(tmp_path.glob("*.tar")) == []


def test_rest_analogy_takes_the_cli_form(trained) -> None:
    server, job_id = trained
    route = f"/v1/models/{job_id}/analogy"
    classic = server.http.get(route, params={"positive": ["w2", "w3"], "negative": "w1"})
    assert classic.status_code == 200
    for words in ("w1 w2 w3", "w1,w2,w3", " w1  w2 w3 "):
        answer = server.http.get(route, params={"words": words})
        assert answer.status_code == 200, answer.text
        assert answer.json() == classic.json()
        assert answer.json()["positive"] == ["w2", "w3"] and answer.json()["negative"] == ["w1"]
    cosmul = server.http.get(route, params={"words": "w1 w2 w3", "method": "3cosmul",
                                            "topn": 3}).json()["similar"]
    model = server.service.models.get(job_id)
    expected = model.most_similar_cosmul(["w2", "w3"], ["w1"], topn=3)
    assert [(s["word"], pytest.approx(s["score"])) for s in cosmul] == expected
    for params, sentence in (
        ({"words": "w1 w2"}, "words takes three words 'a b c' (a is to b as c is to ?); it "
                             "has 2."),
        ({"words": "w1 w2 w3", "positive": "w4"},
         "give either words=a b c or positive and negative, not both."),
        ({}, "give words=a b c, or at least one positive word."),
        ({"negative": "w1"}, "give words=a b c, or at least one positive word."),
    ):
        refused = server.http.get(route, params=params)
        assert refused.status_code == 422 and refused.json()["detail"] == sentence, refused.text
    unknown = server.http.get(route, params={"words": "w1 w2 zebra"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "'zebra' is not in the vocabulary."
    # documented: the words and method parameters, and 422 among the responses
    operation = server.http.get("/openapi.json").json()["paths"][
        "/v1/models/{job_id}/analogy"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert "a b c" in params["words"]["description"]
    assert params["method"]["schema"]["enum"] == ["3cosadd", "3cosmul"]
    assert not params["positive"].get("required", False)
    assert "422" in operation["responses"]
