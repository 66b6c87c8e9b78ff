"""The Spark engine end to end: local[2], a standalone master + worker, and a shard killed
mid-training. Needs Java (`.ci/setup.d/java.sh` installs it in CI)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import fsspec.config
import numpy as np
import pytest
from cluster import StandaloneCluster

from distw2v.cli import main
from distw2v.config import RunConfig, SparkConfig, TrainConfig, VocabConfig
from distw2v.corpus import input_splits
from distw2v.distributed.client import PSClient
from distw2v.distributed.driver import spark_context, train_spark
from distw2v.distributed.encoding import _encode_with_table, encode_by_join
from distw2v.distributed.processes import ANNOUNCE
from distw2v.errors import Distw2vError
from distw2v.progress import ProgressEvent
from distw2v.vectors import Vectors

pytestmark = [pytest.mark.spark,
              pytest.mark.skipif(shutil.which("java") is None,
                                 reason="Spark needs Java; .ci/setup.d/java.sh installs it")]
SETTINGS = ["--quiet", "--dim", "16", "--min-count", "1", "--sample", "0", "--seed", "3"]


def topic_corpus(path: Path, sentences: int = 4000, seed: int = 0) -> Path:
    """Sentences that each use the words of one of three disjoint topics."""
    rng = np.random.default_rng(seed)
    topics = [[f"{t}{i}" for i in range(12)] for t in "abc"]
    with gzip.open(path, "wt") as out:
        for s in range(sentences):
            out.write(" ".join(rng.choice(topics[s % 3], size=rng.integers(5, 12))) + "\n")
    return path


def topic_separation(vectors: Vectors) -> float:
    unit = vectors.unit_vectors(range(len(vectors)))
    topic = np.array([w[0] for w in vectors.words])
    same = topic[:, None] == topic[None, :]
    cos = unit @ unit.T
    return float(cos[same & ~np.eye(len(topic), dtype=bool)].mean() - cos[~same].mean())


@pytest.mark.parametrize("strategy", ["columns", "rows"])
def test_local_spark_trains_and_exports(tmp_path, capsys, strategy: str) -> None:
    corpus = topic_corpus(tmp_path / "c.txt.gz")
    out = tmp_path / "model"
    code = main(["train", str(corpus), "--out", str(out), "--engine", "spark",
                 "--spark-master", "local[2]", "--shards", "2", "--partitions", "2",
                 "--epochs", "3", "--word2vec-out", str(tmp_path / "v.txt"),
                 "--strategy", strategy, *SETTINGS])
    assert code == 0, capsys.readouterr().err
    vectors = Vectors.load(out)
    assert len(vectors) == 36 and vectors.dim == 16
    assert vectors.meta["engine"] == "spark"
    assert vectors.meta["spark_config"]["strategy"] == strategy
    assert topic_separation(vectors) > 0.4  # random vectors give about 0
    losses = vectors.meta["epoch_loss"]  # the mean SGNS loss a pair, each epoch
    # (36 words: negatives are often words of the same topic, so it need not fall here;
    # test_quality shows it falling on planted relations)
    assert list(losses) == ["1", "2", "3"] and all(0 < x < 6 * 0.7 for x in losses.values())
    text = Vectors.load_word2vec(tmp_path / "v.txt")
    np.testing.assert_allclose(text.matrix, vectors.matrix, rtol=1e-6)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize("shards_on", ["spark", "local"])
def test_local_spark_trains_over_tls(tmp_path, capsys, shards_on: str) -> None:
    """--shard-tls on: shards placed by Spark (their announcements checked by MAC) or started
    by the driver serve TLS under the run's certificate, and the tasks train through it."""
    corpus = topic_corpus(tmp_path / "c.txt.gz", sentences=1500)
    out = tmp_path / "model"
    code = main(["train", str(corpus), "--out", str(out), "--engine", "spark",
                 "--spark-master", "local[3]", "--shards", "1", "--partitions", "2",
                 "--shards-on", shards_on, "--shard-tls", "on", "--epochs", "2", *SETTINGS])
    assert code == 0, capsys.readouterr().err
    vectors = Vectors.load(out)
    assert vectors.meta["spark_config"]["shard_tls"] == "on"
    assert topic_separation(vectors) > 0.2


def test_local_spark_trains_cbow_like_the_local_trainer(tmp_path, capsys) -> None:
    corpus = topic_corpus(tmp_path / "c.txt.gz")
    separations = {}
    for engine in ("spark", "local"):
        out = tmp_path / engine
        extra = ["--spark-master", "local[2]", "--shards", "2", "--partitions", "2"] \
            if engine == "spark" else []
        code = main(["train", str(corpus), "--out", str(out), "--engine", engine, *extra,
                     "--model", "cbow", "--epochs", "3", *SETTINGS])
        assert code == 0, capsys.readouterr().err
        vectors = Vectors.load(out)
        assert vectors.meta["train_config"]["model"] == "cbow"
        separations[engine] = topic_separation(vectors)
    assert separations["spark"] > 0.4, separations  # random vectors give about 0
    assert separations["spark"] > separations["local"] - 0.15, separations


@pytest.fixture()
def standalone_cluster(tmp_path):
    """One worker of 3 cores: 2 for the shards Spark places, 1 for training."""
    with StandaloneCluster(tmp_path / "cluster", workers=1, cores=3) as cluster:
        yield cluster.url


def test_standalone_master_and_worker(tmp_path, standalone_cluster) -> None:
    corpus = topic_corpus(tmp_path / "c.txt.gz", sentences=2000, seed=1)
    figures, summary = train_spark(
        [str(corpus)], tmp_path / "model",
        VocabConfig(min_count=1), TrainConfig(dim=16, epochs=2, sample=0, seed=5),
        SparkConfig(spark_master=standalone_cluster, shards=2, partitions=2))
    vectors = Vectors.load(tmp_path / "model")
    assert len(vectors) == 36
    assert topic_separation(vectors) > 0.3
    assert figures["words"] == summary.trained_words > 0
    assert figures["pairs"] > 0 and figures["bytes_sent"] > 0


def start_shard(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "distw2v.cli", "ps-shard", "--port", "0",
                             *args],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith(ANNOUNCE), line
    return proc, line[len(ANNOUNCE):].strip()


def test_killed_shard_fails_the_run_naming_it(tmp_path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt.gz", sentences=20000, seed=2)
    shards = [start_shard() for _ in range(2)]
    addresses = [address for _, address in shards]
    outcome: dict[str, BaseException] = {}
    ended = threading.Event()

    def run() -> None:
        try:
            train_spark([str(corpus)], tmp_path / "model", VocabConfig(min_count=1),
                        TrainConfig(dim=16, epochs=50, sample=0),
                        SparkConfig(spark_master="local[2]", ps=",".join(addresses),
                                    partitions=2, batch_pairs=500))
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            ended.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        with PSClient(addresses[:1]) as probe:  # wait until training really runs
            deadline = time.monotonic() + 120
            trained = 0
            while not trained and not ended.is_set() and time.monotonic() < deadline:
                try:
                    trained = probe.stats()[0]["global_words"]
                except Distw2vError:
                    pass
                time.sleep(0.2)
        assert trained > 0 and not ended.is_set(), (trained, outcome)  # killed mid-training
        shards[1][0].kill()
        shards[1][0].wait()
        # the run ends (300 s only bounds a failure) ...
        assert ended.wait(300), "the driver hung after a shard died"
        thread.join()
        # ... failing, naming the dead shard
        error = outcome.get("error")
        assert isinstance(error, Distw2vError), error
        assert f"shard 1 at {addresses[1]}" in str(error)
        assert "\n" not in str(error)
        assert not (tmp_path / "model").exists()
    finally:
        for proc, _ in shards:
            if proc.poll() is None:
                proc.kill()


def test_vocabulary_above_broadcast_limit_is_encoded_by_a_join(tmp_path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt.gz", sentences=1500, seed=4)
    with gzip.open(corpus, "rt") as f:
        words = sum(len(line.split()) for line in f)
    messages: list[str] = []
    figures, _ = train_spark(
        [str(corpus)], tmp_path / "model", VocabConfig(min_count=1),
        TrainConfig(dim=16, epochs=2, sample=0, seed=2),
        SparkConfig(spark_master="local[2]", shards=2, partitions=2, broadcast_limit=0),
        log=messages.append)
    assert any("distributed join" in m for m in messages)
    assert figures["words"] == 2 * words  # every word encoded, in its sentence
    assert topic_separation(Vectors.load(tmp_path / "model")) > 0.3


@pytest.mark.parametrize(("sentences", "bucket_words"),
                         [(1000, 3), (5, 1000)])  # 5 sentences, 8 partitions: 3 empty ones
def test_join_encoding_equals_the_broadcast_table(sentences: int, bucket_words: int,
                                                  monkeypatch) -> None:
    monkeypatch.setattr("distw2v.distributed.encoding.BUCKET_WORDS", bucket_words)
    rng = np.random.default_rng(sentences)
    words = [f"w{i}" for i in range(60)]
    corpus = [list(rng.choice(words, size=rng.integers(1, 9))) for _ in range(sentences)]
    corpus.append(["w59", "w58"])  # only unknown words: the sentence goes
    vocab = {w: i for i, w in enumerate(words[:40])}
    with spark_context("local[2]") as sc:
        rdd = sc.parallelize(corpus, 8)
        encoded, _ = encode_by_join(rdd, sc.parallelize(list(vocab.items()), 3), len(vocab))
        joined = encoded.collect()
        direct = rdd.mapPartitions(_encode_with_table(sc.broadcast(vocab))).collect()
    assert len(joined) == len(direct) == 8
    for (ids, offsets), (want_ids, want_offsets) in zip(joined, direct):
        assert ids.dtype == np.int32 and offsets.dtype == np.int64
        assert np.array_equal(ids, want_ids) and np.array_equal(offsets, want_offsets)
    assert sum(len(ids) for ids, _ in joined) == sum(w in vocab for s in corpus for w in s)


def test_work_dir_on_s3(tmp_path, s3, monkeypatch) -> None:
    endpoint, fs = s3
    fs.mkdir("scratch")
    # Every process (driver, Spark's Python workers, shards) reads the endpoint from the
    # environment; this one read its environment at import, so it is told directly too.
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})
    corpus = topic_corpus(tmp_path / "c.txt.gz", sentences=1500, seed=6)
    train_spark([str(corpus)], tmp_path / "model", VocabConfig(min_count=1),
                TrainConfig(dim=16, epochs=2, sample=0, seed=2),
                SparkConfig(spark_master="local[2]", shards=2, partitions=2,
                            work_dir="s3://scratch/run1/"))
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls("scratch/run1")) == [
        "counts.npy", "keep.npy"]
    vectors = Vectors.load(tmp_path / "model")
    assert len(vectors) == 36 and topic_separation(vectors) > 0.3


@pytest.mark.parametrize("strategy", ["columns", "rows"])
def test_a_failed_run_resumes_from_its_last_checkpoint(tmp_path, strategy: str) -> None:
    corpus = topic_corpus(tmp_path / "c.txt.gz", sentences=20000, seed=3)
    with gzip.open(corpus, "rt") as f:
        words = sum(len(line.split()) for line in f)
    checkpoints = tmp_path / "ckpt"
    progress = checkpoints / "progress.json"
    train = TrainConfig(dim=16, epochs=4, sample=0, seed=4)
    shards = [start_shard("--checkpoint-root", str(checkpoints)) for _ in range(2)]
    outcome: dict[str, BaseException] = {}

    def first_attempt() -> None:
        try:
            train_spark([str(corpus)], tmp_path / "model", VocabConfig(min_count=1), train,
                        SparkConfig(spark_master="local[2]", partitions=2, batch_pairs=2000,
                                    ps=",".join(address for _, address in shards),
                                    strategy=strategy, row_chunk_words=2000),
                        run_config=RunConfig(checkpoint_dir=str(checkpoints)))
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=first_attempt, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not progress.exists() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        shards[1][0].kill()  # after the first saved epoch: the run stops partway
        thread.join(90)
    finally:
        for proc, _ in shards:
            if proc.poll() is None:
                proc.kill()
    assert isinstance(outcome.get("error"), Distw2vError), outcome
    done = json.loads(progress.read_text())["epochs_done"]
    assert 1 <= done < 4
    assert sorted(p.name for p in checkpoints.iterdir()) == [f"epoch-{done}", "progress.json"]

    # Another seed is another run: its columns would be wrong, so it is refused.
    with pytest.raises(Distw2vError, match="another run .*train_config"):
        train_spark([str(corpus)], tmp_path / "other", VocabConfig(min_count=1),
                    replace(train, seed=5),
                    SparkConfig(spark_master="local[2]", shards=2, partitions=2,
                                strategy=strategy),
                    run_config=RunConfig(checkpoint_dir=str(checkpoints)))

    # The same run again, on fresh shards the driver starts itself, goes on after `done`.
    messages: list[str] = []
    events: list[ProgressEvent] = []
    figures, _ = train_spark([str(corpus)], tmp_path / "model", VocabConfig(min_count=1), train,
                             SparkConfig(spark_master="local[2]", shards=2, partitions=2,
                                         batch_pairs=2000, strategy=strategy,
                                         row_chunk_words=2000),
                             run_config=RunConfig(checkpoint_dir=str(checkpoints)),
                             on_progress=events.append, log=messages.append)
    assert any(f"resuming after epoch {done} of 4" in m for m in messages)
    assert figures["words"] == (4 - done) * words
    # progress starts where the first attempt stopped and ends full, never past it
    training = [e for e in events if e.phase == "training"]
    assert training[0].initial == training[0].done == done * words
    assert training[-1].finished and training[-1].done == training[-1].total == 4 * words
    assert all(e.total is not None and e.done <= e.total for e in training)
    assert [e.epoch for e in training if e.epoch is not None][-1] == 4
    assert json.loads(progress.read_text())["epochs_done"] == 4
    assert topic_separation(Vectors.load(tmp_path / "model")) > 0.3


def test_one_big_plain_file_is_read_in_pieces_each_line_once(tmp_path, monkeypatch) -> None:
    packed = topic_corpus(tmp_path / "c.txt.gz", sentences=3000, seed=8)
    plain = tmp_path / "c.txt"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    words = sum(len(line.split()) for line in plain.read_text().splitlines())
    monkeypatch.setattr("distw2v.distributed.driver.SPLIT_BYTES", 4096)
    assert len(input_splits([str(plain)], 4096)) > 10
    figures, summary = train_spark(
        [str(plain)], tmp_path / "model", VocabConfig(min_count=1),
        TrainConfig(dim=16, epochs=2, sample=0, seed=2),
        SparkConfig(spark_master="local[2]", shards=2, partitions=2))
    assert summary.corpus_words == words and figures["words"] == 2 * words
    assert topic_separation(Vectors.load(tmp_path / "model")) > 0.3


def test_the_cli_says_where_the_spark_run_trains_without_spark_start_up_noise(tmp_path) -> None:
    corpus = topic_corpus(tmp_path / "c.txt.gz", sentences=400)
    run = subprocess.run(
        [sys.executable, "-m", "distw2v.cli", "train", str(corpus), "--out",
         str(tmp_path / "model"), "--engine", "spark", "--spark-master", "local[2]",
         "--shards", "1", "--partitions", "3", "--dim", "8", "--epochs", "1",
         "--min-count", "1"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert ("spark: master local[2], 2 task slots, 1 shards as local subprocesses, "
            "3 partitions") in run.stderr
    for noise in ("log4j", "NativeCodeLoader", "Setting default log level", "setLogLevel"):
        assert noise not in run.stderr, run.stderr
