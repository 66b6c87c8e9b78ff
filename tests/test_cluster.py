"""The Spark engine on a real standalone cluster (a master and three workers, each its own JVM):
shards placed by Spark on distinct executors, a worker killed with SIGKILL mid-epoch, and the
run recovering by itself from its last checkpoint. Also a shard task killed in local mode, and
two service jobs sharing one cluster. Needs Java (`.ci/setup.d/java.sh` installs it in CI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cluster import StandaloneCluster

from distw2v.config import RunConfig, SparkConfig, TrainConfig, VocabConfig
from distw2v.distributed.driver import train_spark
from distw2v.evaluate import evaluate_analogies
from distw2v.synthetic import PlantedCorpus, write_planted_corpus
from distw2v.vectors import Vectors

pytestmark = [pytest.mark.spark,
              pytest.mark.skipif(shutil.which("java") is None,
                                 reason="Spark needs Java; .ci/setup.d/java.sh installs it")]
PLACED = re.compile(r"shard (\d+) at (\S+) on executor (\S+) \(pid (\d+)\)")
TRAIN = TrainConfig(dim=100, window=5, negative=5, epochs=5, sample=1e-3, seed=1)  # as test_quality
VOCAB = VocabConfig(min_count=5)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> PlantedCorpus:
    path = tmp_path_factory.mktemp("planted") / "planted.txt"
    return write_planted_corpus(path, tokens=400_000, entities=12, filler_vocab=2_000, seed=0)


def wait_gone(pid: int, timeout: float = 120.0) -> None:
    """Wait until process `pid` has exited (or is a zombie left for its parent to reap)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (FileNotFoundError, ProcessLookupError):  # gone before the open, or the read
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs {timeout:.0f} s after its host was killed")


def accuracy(planted: PlantedCorpus, model: Path) -> float:
    return evaluate_analogies(Vectors.load(model), planted.analogies).accuracy


# a checkpoint saved with work still to do: within epochs 1-4 or at the end of one of them
EARLY_CHECKPOINT = (rf"checkpoint: epoch [1-{TRAIN.epochs - 1}]"
                    rf"(, \d+ partitions done| of {TRAIN.epochs} done)")


class Run:
    """train_spark in a thread, its log lines kept for the test to wait on. With `pause_on`,
    the driver stops in the first log line matching it until `resume` is set, so that a test
    can break something at that point however fast the epochs go."""

    def __init__(self, *args: Any, pause_on: str | None = None, **kwargs: Any) -> None:
        self.messages: list[str] = []
        self.outcome: dict[str, Any] = {}
        self.changed = threading.Condition()
        self.pause_on = pause_on
        self.resume = threading.Event()
        kwargs["log"] = self._log
        self.thread = threading.Thread(target=self._run, args=args, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _log(self, message: str) -> None:
        with self.changed:
            self.messages.append(message)
            self.changed.notify_all()
        if self.pause_on is not None and re.search(self.pause_on, message):
            self.pause_on = None
            assert self.resume.wait(300), "the test never resumed the run"

    def _run(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.outcome["result"] = train_spark(*args, **kwargs)
        except BaseException as exc:
            self.outcome["error"] = exc
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 300.0) -> list[str]:
        """The log lines matching `pattern`, once there are `count` of them."""
        def found() -> list[str]:
            return [m for m in self.messages if re.search(pattern, m)]

        with self.changed:
            self.changed.wait_for(
                lambda: len(found()) >= count or not self.thread.is_alive(), timeout)
            assert len(found()) >= count, (pattern, self.messages, self.outcome)
            return found()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_: object) -> None:
        """Let a paused run go on and wait for it, also when the test failed: its Spark
        context must stop before the next test starts one."""
        self.resume.set()
        self.thread.join(600)

    def result(self, timeout: float = 600.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run hung"
        assert "error" not in self.outcome, self.outcome["error"]
        return self.outcome["result"]


@pytest.mark.parametrize("strategy", ["columns", "rows"])
def test_a_standalone_cluster_loses_a_shards_worker_and_recovers(planted, tmp_path,
                                                                 strategy: str) -> None:
    with StandaloneCluster(tmp_path / "cluster", workers=3, cores=2) as cluster:
        # small batches (chunks): more round trips make each epoch long enough to be
        # interrupted even with the kernels compiled already (warm caches: 1 s epochs)
        spark = SparkConfig(spark_master=cluster.url, shards=2, partitions=12,
                            checkpoint_every=0.02, batch_pairs=4000, strategy=strategy,
                            row_chunk_words=2000)
        whole = Run([planted.path], tmp_path / "whole", VOCAB, TRAIN, spark)
        whole.result()

        checkpoints = tmp_path / "ckpt"
        with Run([planted.path], tmp_path / "model", VOCAB, TRAIN, spark,
                 run_config=RunConfig(checkpoint_dir=str(checkpoints)),
                 pause_on=EARLY_CHECKPOINT) as run:
            placed = [PLACED.search(m) for m in run.wait_for(PLACED.pattern, count=2)]
            assert len({m.group(3) for m in placed if m}) == 2  # two executors, one shard each
            hosts = {int(m.group(1)): cluster.worker_running(int(m.group(4)))
                     for m in placed if m}
            assert len(set(hosts.values())) == 2, hosts  # ... on two different workers
            shard_pid = next(int(m.group(4)) for m in placed if m and m.group(1) == "0")

            run.wait_for(EARLY_CHECKPOINT)  # saved mid-run; the driver waits in that log line
            cluster.kill_worker(hosts[0])
            wait_gone(shard_pid)  # the executor (and the shard in it) go when their worker does
            run.resume.set()
            figures, summary = run.result()
        recovery = run.wait_for(r"recovery 1/3: ")[0]
        assert "shard" in recovery and "resuming from" in recovery
        progress = json.loads((checkpoints / "progress.json").read_text())
        assert progress["epochs_done"] == TRAIN.epochs
        assert summary.trained_words > 0
        whole_accuracy, recovered = accuracy(planted, tmp_path / "whole"), \
            accuracy(planted, tmp_path / "model")
        assert whole_accuracy >= 0.9
        assert recovered >= whole_accuracy - 0.02, (recovered, whole_accuracy)


def test_a_killed_shard_task_recovers_in_local_mode(planted, tmp_path) -> None:
    # small batches: more round trips make each epoch last long enough to be interrupted
    spark = SparkConfig(spark_master="local[4]", shards=2, shards_on="spark", partitions=8,
                        checkpoint_every=0.001, batch_pairs=2000)
    with Run([planted.path], tmp_path / "model", VOCAB, TRAIN, spark,
             run_config=RunConfig(checkpoint_dir=str(tmp_path / "ckpt")),
             pause_on=EARLY_CHECKPOINT) as run:
        placed = [PLACED.search(m) for m in run.wait_for(PLACED.pattern, count=2)]
        run.wait_for(EARLY_CHECKPOINT)
        pid = int(placed[1].group(4)) if placed[1] else 0
        assert pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        run.resume.set()
        run.result()
    assert run.wait_for(r"recovery 1/3: ")
    assert accuracy(planted, tmp_path / "model") >= 0.9


def test_two_service_jobs_share_one_standalone_cluster(tmp_path, service_server,
                                                       service_corpus) -> None:
    # 6 cores: each job takes 3 (--max-cores), 2 for its shards and 1 to train on
    with StandaloneCluster(tmp_path / "cluster", workers=3, cores=2, memory="2g") as cluster:
        spark = SparkConfig(spark_master=cluster.url, shards=2, partitions=2, max_cores=3)
        server = service_server(spark=spark, max_concurrent_jobs=2)
        sources = [str(service_corpus(tmp_path / "roots" / f"part{i}.txt", seed=i))
                   for i in range(2)]
        ids = [server.submit([source], engine="spark")["id"] for source in sources]
        both = cluster.wait_for(lambda state: len(state.get("activeapps", [])) == 2)
        assert all(app["cores"] <= 3 for app in both["activeapps"]), both["activeapps"]
        jobs = [server.wait(jid, timeout=300) for jid in ids]
        assert [job["state"] for job in jobs] == ["succeeded", "succeeded"], jobs
        for jid in ids:
            model = Vectors.load(server.service.artifacts.local_model(jid))
            assert len(model) == 40 and model.meta["engine"] == "spark"
