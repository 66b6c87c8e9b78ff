"""The service's source checks, each tried as an attacker would: fsspec chains, DNS rebinding,
redirects, private address literals, buckets not allowed, unbounded listings, malformed
sources and decompression bombs. Real servers on 127.0.0.1 (the service, an HTTPS server,
moto's S3), a resolver monkeypatched only where rebinding has to be simulated."""

from __future__ import annotations

import gzip
import ipaddress
import shutil
import socket
import zipfile
from pathlib import Path

import pytest

from distw2v import pinned
from distw2v.config import VocabConfig
from distw2v.corpus import CorpusStats, iter_sentences
from distw2v.corpus import policy as source_policy
from distw2v.corpus.policy import SourcePolicy
from distw2v.errors import CorpusError
from distw2v.service import security
from distw2v.service.settings import ServiceConfig

pytestmark = pytest.mark.service

PUBLIC = "93.184.216.34"
PRIVATE_REFUSAL = ("resolves to a loopback or private address; this server does not read "
                   "from those (see --allow-private-https).")


def _sentence(response, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail and "\n" not in detail
    assert detail.endswith("."), detail
    return detail


def _resolver(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """socket.getaddrinfo answering each name from its list in turn (the last one repeats);
    returns the names asked, in order."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        queue = answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


@pytest.fixture
def roots(tmp_path, service_corpus) -> Path:
    root = tmp_path / "roots"
    service_corpus(root / "a.txt", seed=0)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret words only the server should see\n")
    (root / "x").symlink_to(outside)
    return root


# --- 1. fsspec chains and other filesystems ------------------------------------------------------


def test_fsspec_chains_and_other_filesystems_are_refused(
        tmp_path, roots, monkeypatch, service_server) -> None:
    _resolver(monkeypatch, {"public.example": [PUBLIC]})
    outside = tmp_path / "outside"
    with zipfile.ZipFile(outside / "c.zip", "w") as archive:
        archive.writestr("secret.txt", "secret words\n")
    server = service_server(allowed_bucket=("corpora",))
    chain = "chains filesystems with '::', which this server does not allow (see " \
            "--allow-fsspec-chaining)."
    cases = [
        (f"{roots}/x::file", f"{roots}/x::file {chain}"),
        (f"{roots}/x/secret.txt::file", f"{roots}/x/secret.txt::file {chain}"),
        (f"https://public.example/c.txt::file://{outside}/secret.txt",
         f"https://public.example/c.txt::file://{outside}/secret.txt {chain}"),
        (f"s3://corpora/c.txt::file://{outside}/secret.txt",
         f"s3://corpora/c.txt::file://{outside}/secret.txt {chain}"),
        (f"simplecache::file://{outside}/secret.txt",
         f"simplecache::file://{outside}/secret.txt {chain}"),
        (f"zip://secret.txt::file://{outside}/c.zip",
         f"zip://secret.txt::file://{outside}/c.zip {chain}"),
        ("memory://secret.txt", "memory://secret.txt has the unsupported scheme 'memory'; use "
         "a local path, s3://, https:// or hdfs://."),
        (f"zip://{outside}/c.zip", f"zip://{outside}/c.zip has the unsupported scheme 'zip'; "
         "use a local path, s3://, https:// or hdfs://."),
        (f"file://localhost{outside}/secret.txt", f"file://localhost{outside}/secret.txt names "
         "a host; a file:// URL must be file:///PATH."),
        (f"file://{roots}/x/secret.txt", f"local path file://{roots}/x/secret.txt is outside "
         "the allowed roots."),
        ("data:,secret", "local path data:,secret must be absolute."),
    ]
    for source, expected in cases:
        response = server.http.post("/v1/jobs", json={"sources": [source]})
        assert _sentence(response, 403) == expected, source
    assert server.http.get("/v1/jobs").json()["total"] == 0


def test_the_reader_refuses_what_the_policy_refuses_when_it_opens(tmp_path, roots) -> None:
    """A job handed a source that skipped the checks (a forged spec, a tree changed since)
    still reads nothing outside: the reader checks again as it opens."""
    policy = source_policy.policy_for([roots], False)
    (roots / "late.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    config = VocabConfig(min_count=1)
    with policy.installed():
        for source, message in [
            (f"{roots}/x::file", "chains filesystems with '::'"),
            (str(roots / "late.txt"), "is outside the allowed roots"),
            (f"{roots}/x/secret.txt", "is outside the allowed roots"),
        ]:
            with pytest.raises(CorpusError, match=message):
                list(iter_sentences(source, config))
        assert sum(len(s) for s in iter_sentences(str(roots / "a.txt"), config)) == 400 * 8
    with pytest.raises(CorpusError, match="is outside the allowed roots"):
        source_policy.open_checked(str(roots / "late.txt"), policy)


def test_chaining_when_enabled_wraps_only_an_allowed_source(tmp_path, roots) -> None:
    with zipfile.ZipFile(roots / "c.zip", "w") as archive:
        archive.writestr("inner.txt", "alpha beta\ngamma\n")
    with zipfile.ZipFile(tmp_path / "outside" / "c.zip", "w") as archive:
        archive.writestr("inner.txt", "secret\n")
    policy = source_policy.policy_for([roots], False, allow_chaining=True)
    config = VocabConfig(min_count=1)
    with policy.installed():
        inside = f"zip://inner.txt::file://{roots}/c.zip"
        assert list(iter_sentences(inside, config)) == [["alpha", "beta"], ["gamma"]]
        for source, message in [
            (f"zip://inner.txt::file://{roots}/x/c.zip", "is outside the allowed roots"),
            (f"{roots}/x::file", "chains '/"),
            ("memory://a::file:///etc/passwd", "chains 'memory'"),
            (f"zip://inner.txt::https://{PUBLIC}/c.zip", "https sources cannot be chained"),
        ]:
            with pytest.raises(Exception, match=message):
                list(iter_sentences(source, config))


# --- 2. SSRF: rebinding, redirects, literals ----------------------------------------------------


def test_dns_rebinding_between_the_check_and_the_open_reaches_nothing(
        monkeypatch, service_https) -> None:
    service_https.routes["GET /c.txt"] = (200, {}, b"words from loopback\n")
    asked = _resolver(monkeypatch, {"rebind.test": [PUBLIC, "127.0.0.1"]})
    url = service_https.url("/c.txt", host="rebind.test")
    policy = SourcePolicy()
    assert security.checked_files([url], policy) == [url]  # public when checked
    with policy.installed(), pytest.raises(CorpusError, match="resolves to a loopback"):
        list(iter_sentences([url], VocabConfig(min_count=1)))
    assert asked == ["rebind.test", "rebind.test"]
    assert service_https.requests == []


def test_the_pinned_opener_connects_to_the_address_it_checked(
        monkeypatch, service_https) -> None:
    service_https.routes["GET /c.txt"] = (200, {}, b"words from loopback\n")
    asked = _resolver(monkeypatch, {"rebind.test": [PUBLIC, "127.0.0.1"]})
    connected: list[tuple[str, int]] = []

    def connect(address, timeout=None, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", connect)
    url = service_https.url("/c.txt", host="rebind.test")
    with pytest.raises(CorpusError, match=f"cannot reach {url}: Connection refused"):
        pinned.open_https(url, allow_private=False)
    assert asked == ["rebind.test"] and connected == [(PUBLIC, service_https.port)]
    assert service_https.requests == []


def test_https_is_read_with_the_urls_host_name_for_tls_and_host(service_https) -> None:
    service_https.routes["GET /c.txt?part=1"] = (200, {}, b"one two\nthree\n")
    url = service_https.url("/c.txt?part=1", host="localhost")
    with SourcePolicy(allow_private_https=True).installed():
        assert list(iter_sentences([url], VocabConfig(min_count=1))) == [
            ["one", "two"], ["three"]]
    assert service_https.requests == [("GET", "/c.txt?part=1", f"localhost:{service_https.port}")]
    with pytest.raises(CorpusError, match="does not exist"):
        pinned.open_https(service_https.url("/missing.txt"), allow_private=True)


def _redirecting(service_https) -> str:
    service_https.routes.update({
        "HEAD /corpus.txt": (200, {}, b""),  # HEAD says fine, the GET redirects
        "GET /corpus.txt": (302, {"Location": "/secret.txt"}, b""),
        "GET /secret.txt": (200, {}, b"secret secret words\n" * 50),
    })
    return service_https.url("/corpus.txt")


def test_redirects_are_never_followed_by_a_job(service_server, service_https) -> None:
    url = _redirecting(service_https)
    server = service_server(allow_private_https=True)
    job = server.wait(server.submit([url])["id"])
    assert job["state"] == "failed"
    assert job["error"] == (f"{url} answered with a redirect (HTTP 302); redirects are not "
                            "followed, name the final URL.")
    assert "GET /secret.txt" not in service_https.paths()
    assert "GET /corpus.txt" in service_https.paths()


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")
def test_spark_executors_follow_no_redirect_either(service_server, service_https) -> None:
    from distw2v.config import SparkConfig

    url = _redirecting(service_https)
    spark = SparkConfig(spark_master="local[1]", shards=1, partitions=1)
    server = service_server(allow_private_https=True, spark=spark)
    job = server.wait(server.submit([url], engine="spark")["id"], timeout=180)
    assert job["state"] == "failed"
    assert "answered with a redirect (HTTP 302); redirects are not followed" in job["error"]
    assert "GET /secret.txt" not in service_https.paths()
    assert "HEAD /corpus.txt" not in service_https.paths()  # no check that a GET could betray


PRIVATE_LITERALS = [
    "https://[64:ff9b::7f00:1]/x",  # NAT64 of 127.0.0.1
    "https://[64:ff9b::a00:1]/x",  # NAT64 of 10.0.0.1
    "https://[64:ff9b:1::a9fe:a9fe]/x",  # local-use NAT64 of 169.254.169.254
    "https://[2002:7f00:1::]/x",  # 6to4 of 127.0.0.1
    "https://[2002:c0a8:101::1]/x",  # 6to4 of 192.168.1.1
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:a9fe:a9fe]/latest/meta-data",
    "https://[::7f00:1]/",  # IPv4-compatible
    "https://[::1]/", "https://[::]/", "https://[fe80::1]/", "https://[fc00::1]/",
    "https://[fec0::1]/", "https://[ff02::1]/", "https://[2001::1]/",  # Teredo
    "https://127.0.0.1/", "https://0.0.0.0/", "https://169.254.169.254/latest/meta-data",
    "https://100.64.0.1/", "https://224.0.0.1/", "https://240.0.0.1/", "https://10.1.2.3/",
]
ODD_IPV4 = ["https://0x7f000001/", "https://2130706433/", "https://127.1/",
            "https://0177.0.0.1/", "https://0x7f.0.0.1/"]


def test_private_address_literals_are_refused(api_server) -> None:
    for url in PRIVATE_LITERALS:
        response = api_server.http.post("/v1/jobs", json={"sources": [url]})
        assert _sentence(response, 403) == f"{url} {PRIVATE_REFUSAL}", url
    for url in ODD_IPV4:
        response = api_server.http.post("/v1/jobs", json={"sources": [url]})
        assert _sentence(response, 403) == (f"{url} writes its IPv4 address in a non-standard "
                                            "form; use dotted decimal."), url
    assert api_server.http.get("/v1/jobs").json()["total"] == 0


def test_public_addresses_and_their_embeddings_pass() -> None:
    for text in (PUBLIC, "2606:2800:220:1::1", "64:ff9b::5db8:d822", "2002:5db8:d822::1",
                 "::ffff:93.184.216.34"):
        assert pinned.is_public(ipaddress.ip_address(text)), text
    assert not pinned.is_public(ipaddress.ip_address("64:ff9b:1::5db8:d822"))  # local-use
    for url in PRIVATE_LITERALS:
        host = url.split("//", 1)[1].split("/", 1)[0].strip("[]")
        assert not pinned.is_public(ipaddress.ip_address(host)), url


# --- 3. buckets and namenodes ----------------------------------------------------------------


def test_only_allowed_buckets_are_read(tmp_path, s3, service_server, service_corpus) -> None:
    endpoint, fs = s3
    for bucket in ("corpora", "secrets"):
        fs.mkdir(bucket)
    fs.put_file(str(service_corpus(tmp_path / "a.txt", seed=1)), "corpora/a.txt")
    fs.put_file(str(service_corpus(tmp_path / "s.txt", seed=2, prefix="s")), "secrets/s.txt")
    closed = service_server(s3_endpoint_url=endpoint)
    assert _sentence(closed.http.post("/v1/jobs", json={"sources": ["s3://corpora/a.txt"]}),
                     403) == ("s3://corpora/a.txt is refused: this server reads no S3 bucket "
                              "(start it with --allowed-bucket NAME).")
    server = service_server(s3_endpoint_url=endpoint, allowed_bucket=("corpora",))
    for source, expected in [
        ("s3://secrets/s.txt", "s3://secrets/s.txt names the bucket 'secrets', which this "
         "server does not read (see --allowed-bucket)."),
        ("s3a://secrets/s.txt", "s3a://secrets/s.txt names the bucket 'secrets', which this "
         "server does not read (see --allowed-bucket)."),
        ("s3://corpora", "s3://corpora names no object or prefix in the bucket."),
        ("s3://corpora/../secrets/s.txt", "s3://corpora/../secrets/s.txt has a '.' or '..' "
         "segment; name the object directly."),
        ("s3://*/s.txt", "s3://*/s.txt names the bucket '*', which this server does not read "
         "(see --allowed-bucket)."),
    ]:
        response = server.http.post("/v1/jobs", json={"sources": [source]})
        assert _sentence(response, 403) == expected, source
    job = server.wait(server.submit(["s3://corpora/a.txt"])["id"])
    assert job["state"] == "succeeded", job["error"]
    words = server.http.get(f"/v1/models/{job['id']}").json()["words"]
    assert words == 40


def test_hdfs_sources_need_an_allowed_namenode() -> None:
    closed = SourcePolicy()
    with pytest.raises(security.SourceError, match="names the namenode 'nn.example:8020', "
                       "which this server does not read"):
        source_policy.parse_source("hdfs://nn.example:8020/corpus", closed)
    with pytest.raises(security.SourceError, match="names no namenode"):
        source_policy.parse_source("hdfs:///corpus", SourcePolicy(namenodes=("nn.example",)))
    any_port = SourcePolicy(namenodes=("nn.example",))
    parsed = source_policy.parse_source("hdfs://NN.example:8020/c", any_port)
    assert parsed.host == "nn.example:8020"
    one_port = SourcePolicy(namenodes=("nn.example:8020",))
    assert source_policy.parse_source("hdfs://nn.example:8020/c", one_port).path == "/c"
    with pytest.raises(security.SourceError, match="'nn.example:9000'"):
        source_policy.parse_source("hdfs://nn.example:9000/c", one_port)


def test_serve_takes_repeated_bucket_and_namenode_flags() -> None:
    from distw2v.cli import build_parser
    from distw2v.options import config_from_args as build

    args = build_parser().parse_args(["serve", "--allowed-bucket", "a", "--allowed-bucket", "b",
                                      "--allowed-namenode", "nn:8020",
                                      "--max-job-input-bytes", "1000"])
    config = build(ServiceConfig, args)
    assert config.allowed_bucket == ("a", "b") and config.allowed_namenode == ("nn:8020",)
    policy = config.source_policy()
    assert policy.buckets == ("a", "b") and policy.max_input_bytes == 1000
    assert SourcePolicy.from_json(policy.to_json()) == policy
    none = build(ServiceConfig, build_parser().parse_args(["serve"]))
    assert none.allowed_bucket == () and none.source_policy().buckets == ()
    assert none.max_job_input_bytes == 100 << 30  # 100 GiB unless given, not a terabyte


# --- 4. bounded listings -----------------------------------------------------------------------


def test_listings_are_bounded_in_files_and_time(tmp_path, roots, monkeypatch,
                                                service_server) -> None:
    many = roots / "many"
    many.mkdir()
    for i in range(30):
        (many / f"f{i:02d}.txt").write_text("w\n")
    loop = roots / "loop"
    loop.mkdir()
    (loop / "a.txt").write_text("w\n")
    (loop / "again").symlink_to(loop)  # os.walk would follow it forty levels deep
    server = service_server(max_source_files=10)
    for source in (f"{many}/*.txt", str(many), str(loop)):
        response = server.http.post("/v1/jobs", json={"sources": [source]})
        assert _sentence(response, 422) == ("sources.0: the sources name more than 10 files "
                                            "(the server's --max-source-files); name fewer.")
    assert server.http.post("/v1/jobs", json={"sources": [f"{many}/f0*.txt"]}).status_code == 201
    # time: a clock that moves a second per look; the limit is five seconds
    ticks = iter(range(10_000))
    monkeypatch.setattr(source_policy, "_clock", lambda: float(next(ticks)))
    policy = source_policy.policy_for([roots], False, listing_seconds=5.0)
    with pytest.raises(CorpusError, match=r"listing the sources took longer than 5 s"):
        security.check_source(f"{many}/*.txt", policy)
    # the job's own listing, off the request thread, is bounded in files only
    assert len(source_policy.expand_checked(f"{many}/*.txt", policy)) == 30


def test_a_glob_through_a_link_out_names_only_the_link_never_what_is_outside(
        tmp_path, roots, api_server) -> None:
    outside = tmp_path / "outside"  # roots/x leads there; it holds secret.txt
    for source in (f"{roots}/*/secret.txt", f"{roots}/x*/*.txt", f"{roots}/**/*.txt",
                   f"{roots}/*"):
        response = api_server.http.post("/v1/jobs", json={"sources": [source]})
        detail = _sentence(response, 403)
        assert detail == (f"local path {source} goes through {roots / 'x'}, a link that "
                          "leads outside the allowed roots."), detail
        said = detail.replace(source, "")  # what the server adds to what the user gave
        assert "secret" not in said and str(outside) not in said


def _spellings(folder: Path, count: int) -> list[str]:
    """`count` different strings naming the same directory (so no deduplication helps)."""
    return [str(folder) + "/" * k for k in range(1, count + 1)]


def test_a_request_naming_a_directory_a_thousand_times_costs_one_listing(
        tmp_path, roots, service_server) -> None:
    many = roots / "many"
    many.mkdir()
    for i in range(300):
        (many / f"f{i:03d}.txt").write_text("w\n")
    server = service_server(max_source_files=5000)
    # the same string a thousand times: listed once, stored once
    job = server.submit([str(many)] * 1000)
    assert job["sources"] == [str(many)]
    # a thousand spellings of it: one budget for the request, not 5000 files each
    response = server.http.post("/v1/jobs", json={"sources": _spellings(many, 1000)})
    assert _sentence(response, 422).endswith("the sources name more than 5,000 files (the "
                                             "server's --max-source-files); name fewer.")


def test_listings_run_off_the_event_loop_and_others_are_answered_meanwhile(
        tmp_path, roots, service_server) -> None:
    import threading

    import httpx

    many = roots / "many"
    many.mkdir()
    for i in range(2000):
        (many / f"f{i:04d}.txt").write_text("w\n")
    other = "other-token-0123456789"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{other}\n")
    server = service_server(max_source_files=10**7, source_listing_seconds=2.0,
                            tokens_file=str(tokens))
    attack = {"sources": _spellings(many, 1000)}  # about 20 s of listing, were it unbounded
    answers: list[httpx.Response] = []

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=60,
                          headers=dict(server.http.headers)) as client:
            answers.append(client.post("/v1/jobs", json=attack))

    posts = [threading.Thread(target=post) for _ in range(6)]  # more than LISTING_THREADS
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {other}"}) as them:
        assert them.get("/v1/jobs").status_code == 200
        for thread in posts:
            thread.start()
        waits, during = [], 0
        while any(t.is_alive() for t in posts):
            response = them.get("/v1/jobs")
            assert response.status_code == 200, response.text
            waits.append(response.elapsed.total_seconds())
            during += any(t.is_alive() for t in posts)
        for thread in posts:
            thread.join(timeout=30)
    # every attack request answered with one sentence: listed to its deadline (422), or
    # never given a listing thread before it (503)
    assert len(answers) == len(posts)
    for response in answers:
        assert response.status_code in (422, 503), response.text
        detail = _sentence(response, response.status_code)
        assert "took longer than 2 s" in detail or "busy listing" in detail
    assert any(r.status_code == 422 for r in answers)
    # the other token was answered many times while they listed, each time promptly
    assert during >= 10, waits
    assert sorted(waits)[len(waits) // 2] < 0.25 and max(waits) < 2.0, waits


def test_a_request_resolves_each_https_host_once_and_only_so_many(
        monkeypatch, roots, service_server) -> None:
    names = {f"h{i}.example": [PUBLIC] for i in range(40)}
    asked = _resolver(monkeypatch, names)
    server = service_server()
    same_host = [f"https://h0.example/part{i}.txt" for i in range(1000)]
    server.submit(same_host)
    assert asked == ["h0.example"]
    response = server.http.post("/v1/jobs", json={
        "sources": [f"https://h{i}.example/a.txt" for i in range(40)]})
    assert _sentence(response, 422) == (f"sources.{source_policy.MAX_LOOKUPS}: the sources "
                                        f"name more than {source_policy.MAX_LOOKUPS} https "
                                        "hosts; name fewer.")
    assert len(asked) == 1 + source_policy.MAX_LOOKUPS


# --- 5. malformed sources ---------------------------------------------------------------------


@pytest.fixture
def api_server(roots, service_server):
    return service_server()


def test_malformed_sources_get_one_sentence_never_a_500(roots, api_server, caplog) -> None:
    cases = [
        (f"{roots}/a\x00.txt", f"sources.0: the source {str(roots) + '/a' + chr(0) + '.txt'!r} "
         "contains a control character ('\\x00'); name a path or URL without one."),
        (f"{roots}/a.txt\nINFO job forged: queued", "contains a control character ('\\n')"),
        (f"{roots}/a.txt\u2028forged", "contains a control character ('\\u2028')"),
        ("https://[::1/x", "sources.0: https://[::1/x is not a valid URL (Invalid IPv6 URL)."),
        ("https://example.com:99999/x", "sources.0: https://example.com:99999/x is not a valid "
         "URL (Port out of range 0-65535)."),
        ("https:///x", "sources.0: https:///x has no host name."),
        ("https://user:pw@example.com/x", "carries a user name or password"),
        ("hdfs://[::1/x", "is not a valid URL"),
    ]
    with caplog.at_level("INFO", logger="distw2v.service"):
        for source, expected in cases:
            response = api_server.http.post("/v1/jobs", json={"sources": [source]})
            detail = _sentence(response, 422)
            assert detail == expected or expected in detail, (source, detail)
    assert not any("forged" in record.getMessage() for record in caplog.records)
    assert api_server.http.get("/v1/jobs").json()["total"] == 0


# --- 6. decompressed bytes ----------------------------------------------------------------------


def _bomb(path: Path, megabytes: int) -> Path:
    block = b"bomb " * (1 << 18)  # 1.25 MiB of one word
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(int(megabytes / 1.25)):
            out.write(block)
    return path


def test_a_gzip_bomb_stops_at_the_jobs_input_limit(roots, service_server) -> None:
    bomb = _bomb(roots / "bomb.txt.gz", 40)
    assert bomb.stat().st_size < 200_000
    server = service_server(max_job_input_bytes=2_000_000)
    job = server.wait(server.submit([str(bomb)])["id"])
    assert job["state"] == "failed"
    assert job["error"] == ("the input is larger than the limit of 2,000,000 decompressed "
                            f"bytes; reading stopped in {bomb}.")
    small = server.wait(server.submit([str(roots / "a.txt")])["id"])
    assert small["state"] == "succeeded", small["error"]


def test_the_limit_counts_every_file_of_a_pass_and_stops_early(tmp_path) -> None:
    bomb = _bomb(tmp_path / "bomb.gz", 20)
    stats = CorpusStats(max_decompressed_bytes=3_000_000)
    with pytest.raises(CorpusError, match="larger than the limit of 3,000,000"):
        for _ in iter_sentences([str(bomb)], VocabConfig(min_count=1), stats):
            pass
    assert 3_000_000 < stats.decompressed_bytes <= 3_000_000 + (1 << 20)
    (tmp_path / "one.txt").write_text("a b\n" * 500)  # 2,000 bytes a file
    (tmp_path / "two.txt").write_text("a b\n" * 500)
    stats = CorpusStats(max_decompressed_bytes=3_000)
    with pytest.raises(CorpusError, match="reading stopped in .*two.txt"):
        list(iter_sentences([str(tmp_path / "one.txt"), str(tmp_path / "two.txt")],
                            VocabConfig(min_count=1), stats))


def test_any_string_is_a_source_or_one_sentence(roots, monkeypatch) -> None:
    """Whatever a client sends as a source, the check answers with files or a
    Distw2vError, never another exception (which the API would turn into a 500)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from distw2v.errors import Distw2vError

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [])  # no network in a fuzz
    policy = source_policy.policy_for([roots], False, buckets=("corpora",), namenodes=("nn",))
    prefixes = st.sampled_from(["", f"{roots}/", "file://", "https://", "https://[",
                                "s3://corpora/", "hdfs://nn/", "zip://", "::", "s3a://"])

    @settings(max_examples=400, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(prefixes, st.text(st.characters(exclude_categories=()), max_size=60))
    def check(prefix: str, rest: str) -> None:
        try:
            security.check_source(prefix + rest, policy)
        except Distw2vError as exc:
            assert str(exc).endswith(".") and "\n" not in str(exc)

    check()
    with pytest.raises(source_policy.InvalidSource, match="contains a lone surrogate"):
        security.check_source(f"{roots}/a\ud800.txt", policy)  # JSON may carry one


def test_a_phrase_table_is_checked_as_a_source(tmp_path, roots, service_server) -> None:
    """`vocab.phrases` names a file the job reads: refused at submission outside the roots,
    and by the reader as it opens it (a forged spec)."""
    outside = tmp_path / "outside" / "secret.txt"
    server = service_server()
    response = server.http.post("/v1/jobs", json={"sources": [str(roots / "a.txt")],
                                                  "vocab": {"phrases": str(outside)}})
    assert _sentence(response, 403) == f"vocab.phrases: local path {outside} is outside the " \
                                       "allowed roots."
    assert server.http.get("/v1/jobs").json()["total"] == 0
    with source_policy.policy_for([roots], False).installed():
        with pytest.raises(CorpusError, match="is outside the allowed roots"):
            list(iter_sentences(str(roots / "a.txt"), VocabConfig(phrases=str(outside))))
