"""Every corpus format end to end: through the CLI, the service (a `format` in POST /v1/jobs,
an s3:// WET source on moto's server) and the Spark engine (local[2])."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from distw2v.cli import main
from distw2v.synthetic.reddit import write_reddit_dump
from distw2v.synthetic.wet import write_wet_file
from distw2v.vectors import Vectors

TOPICS = [[f"{t}{i}" for i in range(10)] for t in ("alpha", "beta", "gamma")]
GERMAN = [f"wort{i}" for i in range(10)]
MENU = "Home | About | Contact | Imprint"
FAST = ["--quiet", "--dim", "16", "--epochs", "3", "--min-count", "6", "--sample", "0",
        "--seed", "3"]


def topic_lines(rng: np.random.Generator, topic: list[str], lines: int) -> list[str]:
    """Lines of one topic's words, with punctuation the Unicode tokenizer must drop."""
    return [", ".join(rng.choice(topic, size=rng.integers(5, 10))) + "." for _ in range(lines)]


def wet_pages(pages: int = 240, seed: int = 0) -> list[tuple[str | None, str]]:
    """English pages of one topic each under a menu line, and German pages of other words."""
    rng = np.random.default_rng(seed)
    records: list[tuple[str | None, str]] = []
    for p in range(pages):
        if p % 4 == 3:
            records.append(("deu", "\n".join(topic_lines(rng, GERMAN, 6))))
        else:
            text = "\n".join([MENU, *topic_lines(rng, TOPICS[p % 3], 6)])
            records.append(("eng" if p % 8 else "eng,fra", text))
    return records


def reddit_comments(comments: int = 600, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    items: list[dict] = []
    for c in range(comments):
        topic = TOPICS[c % 3]
        body = " ".join(topic_lines(rng, topic, 2)) + f" [see here](https://x.org/{c})"
        if c % 10 == 9:
            body = "[deleted]"
        items.append({"id": f"c{c}", "subreddit": ["AskScience", "pics"][c % 2],
                      "author": "someone", "body": body, "score": 1})
    return items


def topic_separation(vectors: Vectors) -> float:
    """Mean cosine within a topic minus across topics, over the topic words."""
    words = [w for topic in TOPICS for w in topic if w in vectors]
    unit = vectors.unit_vectors([vectors.index[w] for w in words])
    topic = np.array([w.rstrip("0123456789") for w in words])
    same = topic[:, None] == topic[None, :]
    cos = unit @ unit.T
    return float(cos[same & ~np.eye(len(words), dtype=bool)].mean() - cos[~same].mean())


def train_cli(capsys, *argv: str, quiet: bool = True) -> tuple[Vectors, str]:
    code = main(["train", *map(str, argv), *(FAST if quiet else FAST[1:])])
    err = capsys.readouterr().err
    assert code == 0, err
    out = Path(argv[argv.index("--out") + 1])
    return Vectors.load(out), err


# --- the CLI ------------------------------------------------------------------------------


def test_wet_through_the_cli(tmp_path: Path, capsys) -> None:
    source = tmp_path / "crawl.warc.wet.gz"
    write_wet_file(source, wet_pages())
    vectors, _ = train_cli(capsys, source, "--format", "wet", "--languages", "eng",
                           "--out", tmp_path / "m")
    words = set(vectors.words)
    assert set(TOPICS[0]) <= words
    assert not words & set(GERMAN)  # German pages left out
    # the menu line is on 180 pages: kept on the first 5 only, so below --min-count 6
    assert not words & {"Home", "About", "Contact", "Imprint"}
    assert not any(w.startswith("WARC") for w in words)
    assert topic_separation(vectors) > 0.3


def test_a_wet_file_read_as_text_gets_the_warning(tmp_path: Path, capsys) -> None:
    source = tmp_path / "crawl.warc.wet"
    write_wet_file(source, wet_pages(60))
    main(["train", str(source), "--out", str(tmp_path / "m"), *FAST])
    err = capsys.readouterr().err
    assert "look like WARC headers" in err and "--format wet" in err


def test_reddit_zst_through_the_cli(tmp_path: Path, capsys) -> None:
    source = tmp_path / "RC_2024-01.zst"
    write_reddit_dump(source, reddit_comments(), long_window=True)
    vectors, _ = train_cli(capsys, source, "--format", "reddit", "--subreddits", "askscience",
                           "--out", tmp_path / "m")
    words = set(vectors.words)
    assert set(TOPICS[1]) <= words
    assert not words & {"deleted", "https", "x.org", "body"}  # the link's URL is gone
    assert {"see", "here"} <= words  # ... its text stays
    assert topic_separation(vectors) > 0.3


def write_jsonl(path: Path, records: int = 400) -> Path:
    """Records with their text at meta.text, and a bad line as the 8th."""
    rng = np.random.default_rng(2)
    lines = [f'{{"meta": {{"text": "{" ".join(topic_lines(rng, TOPICS[i % 3], 2))}"}}}}'
             for i in range(records)]
    lines.insert(7, "{not json")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_with_a_bad_line_through_the_cli(tmp_path: Path, capsys) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl")
    vectors, err = train_cli(capsys, source, "--format", "jsonl", "--text-field", "meta.text",
                             "--out", tmp_path / "m")
    assert set(TOPICS[2]) <= set(vectors.words)
    assert "1 malformed record skipped, the first at" in err and "line 8" in err
    assert topic_separation(vectors) > 0.3


def test_a_reddit_dump_read_as_text_gets_the_warning(tmp_path: Path, capsys) -> None:
    source = tmp_path / "RC.jsonl"
    write_reddit_dump(source, reddit_comments(200))
    main(["train", str(source), "--out", str(tmp_path / "m"), *FAST])
    err = capsys.readouterr().err
    # compact JSON (as the dumps are) glues keys to values: the first line names it
    assert "begins with a JSON object" in err and "--format reddit" in err


def test_format_options_are_refused_before_any_reading(tmp_path: Path, capsys) -> None:
    code = main(["train", str(tmp_path / "none.jsonl"), "--format", "jsonl",
                 "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "format jsonl needs text_field" in err and "Traceback" not in err


# --- the service --------------------------------------------------------------------------


@pytest.mark.service
def test_wet_and_reddit_jobs_through_the_service(tmp_path, service_server) -> None:
    roots = tmp_path / "roots"
    roots.mkdir()
    write_wet_file(roots / "crawl.warc.wet.gz", wet_pages())
    write_reddit_dump(roots / "RC.zst", reddit_comments(), long_window=True)
    write_jsonl(roots / "docs.jsonl")
    server = service_server()
    vocab = {"min_count": 6}
    jobs = {"wet": server.submit([str(roots / "crawl.warc.wet.gz")], format="wet",
                                 vocab={**vocab, "languages": "eng"}),
            "reddit": server.submit([str(roots / "RC.zst")], format="reddit", vocab=vocab),
            "jsonl": server.submit([str(roots / "docs.jsonl")], format="jsonl",
                                   vocab={**vocab, "text_field": "meta.text"})}
    for name, job in jobs.items():
        assert job["format"] == name and job["vocab"]["format"] == name
        done = server.wait(job["id"], timeout=120)
        assert done["state"] == "succeeded", done["error"]
        similar = server.http.get(f"/v1/models/{job['id']}/similar",
                                  params={"word": "alpha0", "topn": 3})
        assert similar.status_code == 200
    bad = server.http.post("/v1/jobs", json={"sources": [str(roots / "RC.zst")],
                                             "format": "jsonl"})
    assert bad.status_code == 422 and "text_field" in bad.json()["detail"]
    unknown = server.http.post("/v1/jobs", json={"sources": [str(roots / "RC.zst")],
                                                 "format": "csv"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "format"


@pytest.mark.service
def test_an_s3_wet_source_on_moto(tmp_path, s3, service_server) -> None:
    endpoint, fs = s3
    fs.mkdir("crawl")
    write_wet_file(tmp_path / "a.warc.wet.gz", wet_pages(seed=5))
    fs.put_file(str(tmp_path / "a.warc.wet.gz"), "crawl/segments/a.warc.wet.gz")
    server = service_server(s3_endpoint_url=endpoint, allowed_bucket=("crawl",))
    job = server.submit(["s3://crawl/segments/a.warc.wet.gz"], format="wet",
                        vocab={"min_count": 6, "languages": "eng"})
    done = server.wait(job["id"], timeout=120)
    assert done["state"] == "succeeded", done["error"]
    words = server.http.get(f"/v1/models/{job['id']}/similar", params={"word": "wort1"})
    assert words.status_code == 404  # German pages left out


# --- the Spark engine ---------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")
def test_every_record_format_through_the_spark_engine(tmp_path: Path, capsys) -> None:
    # a crawl manifest of three WET files (plain ones: still one task a file) under a base
    crawl = tmp_path / "mirror" / "crawl-data" / "wet"
    crawl.mkdir(parents=True)
    for i in range(3):
        write_wet_file(crawl / f"{i}.warc.wet", wet_pages(seed=i))
    manifest = tmp_path / "wet.paths.gz"
    with gzip.open(manifest, "wt") as out:
        out.writelines(f"crawl-data/wet/{i}.warc.wet\n" for i in range(3))
    write_reddit_dump(tmp_path / "RC.zst", reddit_comments(), long_window=True)
    write_jsonl(tmp_path / "docs.jsonl")
    spark = ["--engine", "spark", "--spark-master", "local[2]", "--shards", "2",
             "--partitions", "2"]
    for name, source, options, files in (
            ("wet", manifest, ["--languages", "eng", "--crawl-base", tmp_path / "mirror",
                               "--max-files", "2"], "2 files"),
            ("reddit", tmp_path / "RC.zst", [], "1 file"),
            ("jsonl", tmp_path / "docs.jsonl", ["--text-field", "meta.text"], "1 file")):
        vectors, err = train_cli(capsys, source, "--format", name, *options,
                                 "--out", tmp_path / name, *spark, quiet=False)
        assert set(TOPICS[0]) <= set(vectors.words), name
        assert not set(vectors.words) & set(GERMAN)
        if name == "jsonl":  # its bad line, found by an executor
            assert "1 malformed record skipped, the first at" in err and "line 8" in err
        # what reading saw, summed over the executors
        assert f"read {files}, " in err and " records" in err, err
        assert topic_separation(vectors) > 0.3, name


@pytest.mark.service
def test_a_manifest_cannot_lead_a_job_outside_the_allowed_roots(tmp_path, service_server) -> None:
    roots = tmp_path / "roots"
    roots.mkdir()
    secret = tmp_path / "secret.warc.wet"  # outside the roots
    write_wet_file(secret, wet_pages(20))
    for name, lines, base in (("url.paths", [f"file://{secret}"], None),
                              ("base.paths", [str(secret).lstrip("/")], "/"),
                              ("dotdot.paths", ["../secret.warc.wet"], f"{roots}/")):
        (roots / name).write_text("\n".join(lines) + "\n")
        server = service_server()
        vocab = {"min_count": 1, **({"crawl_base": base} if base else {})}
        job = server.submit([str(roots / name)], format="wet", vocab=vocab)
        done = server.wait(job["id"], timeout=60)
        assert done["state"] == "failed", (name, done)
        assert "refused" in done["error"] or "outside the allowed roots" in done["error"], (
            name, done["error"])
        server.stop()
