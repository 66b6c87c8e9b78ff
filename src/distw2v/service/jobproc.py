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
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from ..config import RunConfig, SparkConfig, TrainConfig, VocabConfig, from_dict
from ..corpus.policy import SourcePolicy, policy_for
from ..errors import Distw2vError
from ..progress import ProgressEvent

# Overall progress: counting and encoding are each assumed to take a tenth of the time.
_STAGES = {"vocabulary": (0.0, 0.1), "encoding": (0.1, 0.2), "counting and encoding": (0.0, 0.2),
           "training": (0.2, 0.98)}
REPORT_INTERVAL = 0.25  # seconds between progress messages


class Reporter:
    """Writes the JSON-lines messages that the runner reads."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def send(self, kind: str, **fields: Any) -> None:
        self.out.write(json.dumps({"type": kind, **fields}) + "\n")
        self.out.flush()


class JobProgress:
    """The engine's ProgressEvents as the runner's `progress` messages: the stage, the whole
    job's fraction done, and while training the rate, ETA and epoch; at most one message per
    REPORT_INTERVAL, but always a phase's first and last."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.last = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        edge = event.done == event.initial or event.finished
        if not edge and now - self.last < REPORT_INTERVAL:
            return
        self.last = now
        stage = f"{event.phase} (recovery {event.recovery})" if event.recovery else event.phase
        fields: dict[str, Any] = {"stage": stage}
        low, high = _STAGES.get(event.phase, (None, None))
        if low is not None and high is not None:
            fields["progress"] = low + (high - low) * (event.fraction or 0.0)
        if event.phase == "training":
            fields.update(words_per_second=event.rate, eta_seconds=event.eta_seconds,
                          epoch=event.epoch, loss=event.loss)
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

    from ..engines import engine_named
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

    def log(text: str) -> None:
        reporter.send("log", message=text)

    spark_config = from_dict(SparkConfig, spec.get("spark", {}))
    run_config = from_dict(RunConfig, {**spec.get("run", {}), "engine": spec["engine"]})
    engine = engine_named(run_config.engine, spark_config)
    _, summary = engine.train(files, model, vocab_config, train_config, run_config=run_config,
                              word2vec=None, on_progress=JobProgress(reporter), log=log,
                              ann_threshold=None)
    reporter.send("progress", stage="evaluating", progress=0.98, eta_seconds=None)
    evaluation = _evaluate(model, spec)
    reporter.send("progress", stage="saving", progress=0.99)
    # what the model keeps in the artifact store, for the token's bytes quota
    model_bytes = sum(f.stat().st_size for f in model.iterdir() if f.is_file())
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
            "model_bytes": model_bytes,
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
