"""S3 sources and S3 artifact storage, against moto's S3 server on loopback."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from distw2v.config import RunConfig, SparkConfig
from distw2v.vectors import Vectors

pytestmark = pytest.mark.service


def test_s3_sources_and_s3_artifacts(tmp_path, s3, service_server, service_corpus) -> None:
    endpoint, fs = s3
    fs.mkdir("corpora")
    fs.mkdir("models")
    for i in range(2):
        local = service_corpus(tmp_path / f"part{i}.txt", seed=10 + i)
        fs.put_file(str(local), f"corpora/set/part{i}.txt")
    server = service_server(s3_endpoint_url=endpoint, artifacts_url="s3://models/runs",
                            allowed_bucket=("corpora",))
    job = server.wait(server.submit(["s3://corpora/set/*.txt"])["id"])
    assert job["state"] == "succeeded", job["error"]
    jid = job["id"]
    assert job["summary"]["files"] == 2 and job["summary"]["corpus_words"] == 2 * 400 * 8
    # The model lives in the bucket, one directory per job; nothing stays in the data dir.
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"models/runs/{jid}")) == [
        "meta.json", "vectors.npy", "words.tsv"]
    data = server.service.config.data_path
    assert not (data / "models").exists() and not (data / "jobs" / jid).exists()
    fs.get(f"models/runs/{jid}", str(tmp_path / "fetched"), recursive=True)
    model = Vectors.load(tmp_path / "fetched")
    assert len(model) == 40 and model.dim == 8
    # Queries and exports read a cached local copy of the S3 model.
    similar = server.http.get(f"/v1/models/{jid}/similar", params={"word": "w0", "topn": 3})
    assert similar.status_code == 200
    assert [r["word"] for r in similar.json()["similar"]] == [
        w for w, _ in model.most_similar("w0", topn=3)]
    text = server.http.get(f"/v1/jobs/{jid}/artifacts/word2vec-text")
    (tmp_path / "v.txt").write_bytes(text.content)
    np.testing.assert_array_equal(Vectors.load_word2vec(tmp_path / "v.txt").matrix,
                                  model.matrix)
    # A missing object fails the job with one sentence; its artifacts never appear.
    missing = server.wait(server.submit(["s3://corpora/set/nope.txt"])["id"])
    assert missing["state"] == "failed"
    assert missing["error"] == "s3://corpora/set/nope.txt does not exist."
    assert not fs.exists(f"models/runs/{missing['id']}")


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")
def test_a_spark_job_reads_and_writes_s3_through_the_services_endpoint(
        tmp_path, s3, service_server, service_corpus) -> None:
    endpoint, fs = s3
    for bucket in ("corpora", "models", "scratch"):
        fs.mkdir(bucket)
    fs.put_file(str(service_corpus(tmp_path / "part.txt", seed=3)), "corpora/one/part.txt")
    spark = SparkConfig(spark_master="local[2]", shards=2, partitions=2,
                        work_dir="s3://scratch/work")
    server = service_server(s3_endpoint_url=endpoint, artifacts_url="s3://models/runs",
                            allowed_bucket=("corpora",), spark=spark, run=RunConfig(checkpoint_dir="s3://scratch/ckpt"))
    job = server.wait(server.submit(["s3://corpora/one/part.txt"], engine="spark")["id"],
                      timeout=180)
    assert job["state"] == "succeeded", job["error"]
    jid = job["id"]
    # the job's own sub-directories: its counts stay, its checkpoints go once it succeeded
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"scratch/work/{jid}")) == [
        "counts.npy", "keep.npy"]
    assert not fs.exists(f"scratch/ckpt/{jid}")
    fs.get(f"models/runs/{jid}", str(tmp_path / "fetched"), recursive=True)
    model = Vectors.load(tmp_path / "fetched")
    assert len(model) == 40 and model.meta["engine"] == "spark"
