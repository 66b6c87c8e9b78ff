"""Spark set-up for the driver: the SparkContext, and the one sentence a failed job means."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..corpus.policy import ENV_VAR as SOURCE_POLICY_VAR
from ..errors import CorpusError, Distw2vError, VocabularyError
from ..progress import OnProgress, Phase
from .client import ShardUnavailableError

PROGRESS_SECONDS = 0.5  # how often a phase of Spark jobs is reported
LOG4J_FILE = "log4j2.properties"  # beside this module: Spark's logging, errors only


@contextmanager
def spark_context(master: str, app: str = "distw2v",
                  max_cores: int | None = None) -> Iterator[Any]:
    try:
        from pyspark import SparkConf, SparkContext
    except ImportError:
        raise Distw2vError(
            "the spark engine needs pyspark: pip install 'distw2v[spark]'."
        ) from None
    # Python workers must import distw2v: run them with this interpreter and import path (a
    # cluster whose workers have distw2v installed needs neither, and they do no harm there).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    python_path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    conf = (SparkConf().setMaster(master).setAppName(app)
            .set("spark.pyspark.python", sys.executable)
            .set("spark.executorEnv.PYTHONPATH", python_path)
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.python.worker.reuse", "true"))
    if max_cores is not None:
        conf.set("spark.cores.max", str(max_cores))
    if not conf.contains("spark.driver.extraJavaOptions"):  # a user's own setting wins
        conf.set("spark.driver.extraJavaOptions",
                 f"-Dlog4j2.configurationFile={Path(__file__).with_name(LOG4J_FILE)}")
    # Executors read the same storage as the driver (sources, --work-dir), set up the same
    # way: fsspec's and AWS's variables go with them, as spark-submit does for AWS keys.
    # The source policy goes too: executors open sources as checked (corpus/policy.py), with no
    # redirect followed and no fsspec chain, exactly as the driver's process would.
    for key, value in os.environ.items():
        if key.startswith(("FSSPEC_", "AWS_")) or key == SOURCE_POLICY_VAR:
            conf.setExecutorEnv(key, value)
    try:
        sc = SparkContext(conf=conf)
    except Exception as exc:  # Py4J and JVM start-up errors carry long Java traces
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Distw2vError(f"cannot start Spark with master {master!r}: {first}") from None
    sc.setLogLevel("ERROR")
    try:
        yield sc
    finally:
        sc.stop()


@contextmanager
def reported_jobs(sc: Any, on_progress: OnProgress | None, phase: str) -> Iterator[None]:
    """The Spark jobs this thread starts inside, reported as one phase in tasks done (its
    total grows as their stages start)."""
    group = f"distw2v-{phase}-{id(sc)}-{time.monotonic_ns()}"
    sc.setJobGroup(group, phase, False)
    done = threading.Event()

    def watch() -> None:
        with Phase(on_progress, phase, None, "task") as report:
            while not done.wait(PROGRESS_SECONDS):
                report.reach(*_tasks(sc, group))
            report.reach(*_tasks(sc, group))

    watcher = threading.Thread(target=watch, name="distw2v-spark-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        sc.setLocalProperty("spark.jobGroup.id", None)  # later jobs are not this phase's


def _tasks(sc: Any, group: str) -> tuple[int, int | None]:
    """(tasks completed, tasks) over the stages of the group's jobs that Spark still knows."""
    tracker = sc.statusTracker()
    completed = total = 0
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        if info is None:
            continue
        # a finished job's skipped stages (their output was cached) never ran
        finished = info.status == "SUCCEEDED"
        for stage in info.stageIds:
            stage_info = tracker.getStageInfo(stage)
            if stage_info is not None:
                completed += stage_info.numCompletedTasks
                total += stage_info.numCompletedTasks if finished else stage_info.numTasks
    return completed, total or None


def spark_failure(exc: BaseException) -> Distw2vError:
    """The one sentence a failed Spark job means, from the Python error inside the Java one."""
    text = str(exc)
    for kind in (ShardUnavailableError, CorpusError, VocabularyError, Distw2vError):
        marker = f"{kind.__module__}.{kind.__name__}: "
        if marker in text:
            message = text.split(marker, 1)[1].splitlines()[0]
            return kind(message)
    last = [ln for ln in text.splitlines() if ln.strip()][-1:] or [type(exc).__name__]
    return Distw2vError(f"the Spark job failed: {last[0].strip()[:300]}")


def executor_id() -> str:
    """Spark's id of the executor running this task (from the log URL it gives every worker)."""
    url = os.environ.get("SPARK_LOG_URL_STDERR", "")
    marker = "executorId="
    return url.split(marker, 1)[1].split("&", 1)[0] if marker in url else "driver"
