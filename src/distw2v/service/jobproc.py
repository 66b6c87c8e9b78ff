"""One training job in its own process: `python -m distw2v.service.jobproc --job ID`.

The runner writes the job's spec as JSON on stdin; this process reports on stdout, one JSON
object a line (`progress`, `log`, then `done` or `error`), and writes anything else (warnings,
tracebacks) to stderr, which the runner sends to the job's log file. No pickle is involved:
the spec and the messages are plain JSON.

Exit status: 0 done, 2 a failure with a clear message (bad data, bad settings), 1 a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from ..config import RunConfig, SparkConfig, TrainConfig, VocabConfig, from_dict
from ..corpus.policy import SourcePolicy, policy_for
from ..errors import Distw2vError

# Overall progress: counting and encoding are each assumed to take a tenth of the time.
_STAGES = {"vocabulary": (0.0, 0.1), "encoding": (0.1, 0.2), "training": (0.2, 0.98)}
_EPOCH = re.compile(r"epoch (\d+)/(\d+)")
_RECOVERY = re.compile(r"recovery \d+/\d+")
REPORT_INTERVAL = 0.25  # seconds between progress messages


class Reporter:
    """Writes the JSON-lines messages that the runner reads."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def send(self, kind: str, **fields: Any) -> None:
        self.out.write(json.dumps({"type": kind, **fields}) + "\n")
        self.out.flush()


class _Bar:
    """A tqdm-like bar (update, set_postfix_str, close) that reports to the runner."""

    def __init__(self, reporter: Reporter, desc: str = "", total: float | None = None,
                 initial: float = 0.0, **_: Any) -> None:
        self.reporter = reporter
        self.stage = desc
        self.total = total
        self.initial = initial  # done by an earlier attempt (a resumed run)
        self.done = initial
        self.epoch: int | None = None
        self.recovery: str | None = None  # the Spark engine's "recovery n/m" after a lost shard
        self.start = time.monotonic()
        self.last = 0.0
        self._emit(force=True)

    def update(self, n: float = 1) -> None:
        self.done += n
        self._emit()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        match = _EPOCH.search(s)
        if match:
            self.epoch = int(match.group(1))
        recovery = _RECOVERY.search(s)
        if recovery:
            self.recovery = recovery.group(0)
        self._emit()

    def close(self) -> None:
        self._emit(force=True)

    def _emit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < REPORT_INTERVAL:
            return
        self.last = now
        low, high = _STAGES.get(self.stage, (None, None))
        fields: dict[str, Any] = {
            "stage": f"{self.stage} ({self.recovery})" if self.recovery else self.stage}
        fraction = min(1.0, self.done / self.total) if self.total else None
        if low is not None and high is not None:
            fields["progress"] = low + (high - low) * (fraction or 0.0)
        if self.stage == "training":
            elapsed = now - self.start
            now_done = self.done - self.initial
            rate = now_done / elapsed if elapsed > 0 and now_done else None
            fields["words_per_second"] = rate
            remaining = (self.total or 0) - self.done
            fields["eta_seconds"] = remaining / rate if rate else None
            fields["epoch"] = self.epoch
        self.reporter.send("progress", **fields)


def _evaluate(model: Path, spec: dict[str, Any]) -> dict[str, Any] | None:
    from ..evaluate import evaluate_analogies, evaluate_similarity, results_to_json
    from ..vectors import Vectors

    analogies, similarity = spec.get("eval_analogies"), spec.get("eval_similarity")
    if not analogies and not similarity:
        return None
    vectors = Vectors.load(model)
    results: list[Any] = []
    if analogies:
        results.append(evaluate_analogies(vectors, analogies))
    if similarity:
        results.append(evaluate_similarity(vectors, similarity))
    return results_to_json(results)


def run_job(spec: dict[str, Any], reporter: Reporter) -> None:
    """Check the sources again, train, evaluate and publish the model."""
    policy = (SourcePolicy.from_json(spec["source_policy"]) if spec.get("source_policy")
              else policy_for(spec["roots"], spec["allow_private_https"]))
    # While the job runs the reader opens only what the policy allows, checked as it opens
    # each file (https through the checked address, no redirect followed), here and in the
    # Spark executors this process starts: they inherit the policy with the environment.
    with policy.installed():
        _run_checked(spec, policy, reporter)


def _run_checked(spec: dict[str, Any], policy: SourcePolicy, reporter: Reporter) -> None:
    import fsspec.config
    import fsspec.core

    from ..pipeline import run
    from .artifacts import Artifacts
    from .security import checked_files

    if spec.get("s3_endpoint_url"):
        fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = spec["s3_endpoint_url"]
        # the spark engine's executors and shards are this process's children
        os.environ["FSSPEC_S3_ENDPOINT_URL"] = spec["s3_endpoint_url"]
    vocab_config = from_dict(VocabConfig, spec["vocab"])
    train_config = from_dict(TrainConfig, spec["train"])
    files = checked_files(spec["sources"], policy)
    scratch = Path(spec["scratch_dir"])
    model = scratch / "model"

    def progress(**kwargs: Any) -> _Bar:
        return _Bar(reporter, **kwargs)

    def log(text: str) -> None:
        reporter.send("log", message=text)

    spark_config = from_dict(SparkConfig, spec.get("spark", {}))
    run_config = from_dict(RunConfig, spec.get("run", {}))
    _, summary = run(files, model, vocab_config, train_config, engine=spec["engine"],
                     spark_config=spark_config, run_config=run_config, progress=progress,
                     log=log)
    reporter.send("progress", stage="evaluating", progress=0.98, eta_seconds=None)
    evaluation = _evaluate(model, spec)
    reporter.send("progress", stage="saving", progress=0.99)
    artifacts = Artifacts(spec["artifacts_url"], Path(spec["cache_dir"]),
                          spec.get("s3_endpoint_url"))
    location = artifacts.publish(spec["job_id"], model)
    if run_config.checkpoint_dir:  # kept only for a retry
        try:
            fs, path = fsspec.core.url_to_fs(run_config.checkpoint_dir)
            if fs.exists(path):
                fs.rm(path, recursive=True)
        except OSError as exc:  # the model is published: say so, do not fail the job
            log(f"could not remove the checkpoints in {run_config.checkpoint_dir}: {exc}")
    # last: it is this process's working directory, and fsspec's local rm reads that
    shutil.rmtree(scratch, ignore_errors=True)
    reporter.send(
        "done",
        summary={
            "corpus_words": summary.corpus_words,
            "trained_words": summary.trained_words,
            "seconds": round(summary.seconds, 3),
            "words_per_second": round(summary.words_per_second, 1),
            "peak_rss_mb": round(summary.peak_rss_mb, 1),
            "files": len(files),
            "location": location,
        },
        evaluation=evaluation,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distw2v.service.jobproc")
    parser.add_argument("--job", required=True, help="job id (shown in ps; the spec says it too)")
    parser.parse_args(argv)
    # Messages go to the original stdout; everything else printed lands in the log (stderr).
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    reporter = Reporter(channel)
    try:
        spec = json.loads(sys.stdin.read())
        run_job(spec, reporter)
    except Distw2vError as exc:
        reporter.send("error", message=str(exc))
        return 2
    except OSError as exc:  # disk full, permission denied, a storage error: one line
        traceback.print_exc()
        where = f" ({exc.filename})" if exc.filename else ""
        reporter.send("error", message=f"the job failed: {exc.strerror or exc}{where}.")
        return 2
    except MemoryError:
        reporter.send("error", message="the training process ran out of memory.")
        return 1
    except Exception as exc:  # a bug: the details go to the log, one sentence to the user
        traceback.print_exc()
        reporter.send("error", message=f"the job failed with an internal error "
                      f"({type(exc).__name__}); the server log has the details.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
