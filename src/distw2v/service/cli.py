"""`distw2v serve|submit|jobs|cancel|retry|delete|download`: the service's commands, added to
the main parser; and `similar`/`analogy` answered by a service model (`on_server`).

`serve`'s flags are generated from ServiceConfig and `submit`'s training flags from the same
VocabConfig/TrainConfig as `distw2v train`, so every setting is declared once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import RunConfig, SparkConfig, TrainConfig, VocabConfig, to_dict
from ..errors import Distw2vError
from ..options import add_config_options, config_from_args
from .settings import ServiceConfig
from .states import FINISHED, STATES

CommandFactory = Callable[[str, str], argparse.ArgumentParser]
JOB_ID = re.compile(r"[0-9a-f]{16}")  # what the job store's ids look like
ARTIFACTS = ("native", "word2vec-bin", "word2vec-text")


TOKEN_VISIBLE = (
    "warning: --token is visible to every user of this machine in the process list; "
    "prefer --token-file or $DISTW2V_TOKEN."
)


def _client_options(p: argparse.ArgumentParser) -> None:
    from .client import DEFAULT_SERVER

    p.add_argument("--server", default=None, metavar="URL",
                   help=f"service URL (default: $DISTW2V_SERVER or {DEFAULT_SERVER})")
    p.add_argument("--token", default=None,
                   help="bearer token; visible in the process list, so prefer --token-file "
                   "(default: $DISTW2V_TOKEN, or the token a local `distw2v serve` wrote "
                   "into its data directory)")
    p.add_argument("--token-file", default=None, metavar="PATH",
                   help="file holding the bearer token")
    p.add_argument("--ca-cert", default=None, metavar="PATH",
                   help="CA certificate (PEM) to trust for an https server signed by a private "
                   "CA (default: $DISTW2V_CA_CERT, else the system's trusted CAs)")


def _client(args: argparse.Namespace) -> Any:
    from .client import Client, default_server, find_token
    from .server import read_token_file

    if args.token:
        print(TOKEN_VISIBLE, file=sys.stderr)
        token, source = args.token, "the token from --token"
    elif args.token_file:
        token, source = read_token_file(args.token_file), f"the token in {args.token_file}"
    else:
        token, source = find_token()
    return Client(args.server or default_server(), token, token_source=source,
                  ca_cert=args.ca_cert)


def _absolute(source: str) -> str:
    """Local paths are sent absolute: the server does not share our working directory."""
    return source if "://" in source else os.path.abspath(os.path.expanduser(source))


def cmd_serve(args: argparse.Namespace) -> None:
    from .serving import serve

    config = config_from_args(ServiceConfig, args, spark=config_from_args(SparkConfig, args),
                              run=config_from_args(RunConfig, args))
    config = serve_token(config, os.environ, warn=lambda text: print(text, file=sys.stderr))
    serve(config, say=(lambda _: None) if args.quiet else
          (lambda text: print(text, file=sys.stderr, flush=True)))


def serve_token(config: ServiceConfig, environ: Mapping[str, str],
                warn: Callable[[str], None]) -> ServiceConfig:
    """--token (with a warning: ps shows it), else --token-file, else $DISTW2V_TOKEN."""
    if config.token:
        warn(TOKEN_VISIBLE)
    elif not config.token_file and environ.get("DISTW2V_TOKEN"):
        return replace(config, token=environ["DISTW2V_TOKEN"])
    return config


def _describe(job: dict[str, Any]) -> str:
    parts = [job["stage"] or job["state"]]
    if job.get("epoch"):
        parts.append(f"epoch {job['epoch']}/{job['epochs']}")
    if job.get("words_per_second"):
        parts.append(f"{job['words_per_second']:,.0f} words/s")
    return ", ".join(parts)


def _wait(client: Any, job: dict[str, Any], quiet: bool, interval: float) -> dict[str, Any]:
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", disable=quiet, file=sys.stderr, dynamic_ncols=True,
               desc=f"job {job['id']}", bar_format="{desc}: {percentage:3.0f}%|{bar}| "
               "[{elapsed}<{remaining}{postfix}]")
    shown = 0.0
    try:
        while job["state"] not in FINISHED:
            time.sleep(interval)
            job = client.job(job["id"])
            done = round(100 * job["progress"], 1)
            if done > shown:
                bar.update(done - shown)
                shown = done
            bar.set_postfix_str(_describe(job), refresh=True)
    finally:
        bar.close()
    return job


def cmd_submit(args: argparse.Namespace) -> None:
    request = {
        "name": args.name or "",
        "sources": [_absolute(s) for s in args.sources],
        "format": args.format,  # the request's own field, not a vocab setting
        "engine": args.engine,
        "vocab": {k: _absolute(v) if k == "phrases" and v else v
                  for k, v in to_dict(config_from_args(VocabConfig, args)).items()
                  if k != "format"},
        "train": to_dict(config_from_args(TrainConfig, args)),
    }
    with _client(args) as client:
        job = client.submit(request)
        print(f"job {job['id']} {job['state']}")
        if not args.wait:
            return
        job = _wait(client, job, args.quiet, args.poll_interval)
    if job["state"] == "succeeded":
        summary = job.get("summary") or {}
        print(f"job {job['id']} succeeded: {summary.get('trained_words', 0):,} words trained "
              f"at {summary.get('words_per_second', 0):,.0f} words/s")
        if job.get("evaluation"):
            print(json.dumps(job["evaluation"], indent=2))
        return
    if job["state"] == "failed":
        raise Distw2vError(f"job {job['id']} failed: {job.get('error') or 'no reason given.'}")
    raise Distw2vError(f"job {job['id']} was cancelled.")


def cmd_jobs(args: argparse.Namespace) -> None:
    with _client(args) as client:
        page = client.jobs(args.state, args.limit, args.offset)
    if args.json:
        print(json.dumps(page, indent=2))
        return
    rows = [("ID", "STATE", "PROGRESS", "CREATED", "NAME")]
    for job in page["jobs"]:
        rows.append((job["id"], job["state"], f"{100 * job['progress']:.0f}%",
                     job["created_at"][:19].replace("T", " "), job["name"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    errors = {job["id"]: job.get("error") for job in page["jobs"]}
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
        if errors.get(row[0]):  # why it failed, under its row
            print(f"{' ' * (widths[0] + 2)}error: {errors[row[0]]}")
    shown = len(page["jobs"])
    if page["total"] > args.offset + shown:
        print(f"({shown} of {page['total']}; see --offset)")


def cmd_download(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    def bar(total: int | None, name: str) -> Any:
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                    disable=args.quiet, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    with _client(args) as client:
        path = client.download(args.id, args.format, args.out, overwrite=args.overwrite,
                               progress=bar)
    note = " (a tar of the model directory: tar -xf it)" if args.format == "native" else ""
    print(f"wrote {path} ({path.stat().st_size:,} bytes, {args.format}){note}")


# ---- `similar` and `analogy` on a service model ----------------------------------------------


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--server, --token, --token-file for `similar`/`analogy` (for a job id as MODEL)."""
    _client_options(p)


def on_server(args: argparse.Namespace) -> bool:
    """Is MODEL a service job? With --server, always; else when it looks like a job id and
    is not a local path (a local model directory keeps working as before)."""
    if args.server:
        return True
    return bool(JOB_ID.fullmatch(args.model)) and not Path(args.model).exists()


def similar_on_server(args: argparse.Namespace) -> None:
    with _client(args) as client:
        for word in args.words:
            answer = client.similar(args.model, word, args.topn)
            print(f"{word}:")
            for found in answer["similar"]:
                print(f"  {found['word']:<24} {found['score']:.4f}")


def analogy_on_server(args: argparse.Namespace) -> None:
    with _client(args) as client:
        answer = client.analogy(args.model, args.a, args.b, args.c, args.topn, args.method)
    print(f"{args.a} : {args.b} :: {args.c} : ?")
    for found in answer["similar"]:
        print(f"  {found['word']:<24} {found['score']:.4f}")


def cmd_cancel(args: argparse.Namespace) -> None:
    with _client(args) as client:
        job = client.cancel(args.id)
    print(f"job {job['id']} {job['state']}")


def cmd_retry(args: argparse.Namespace) -> None:
    with _client(args) as client:
        job = client.retry(args.id)
    print(f"job {job['id']} {job['state']} (attempt {job['attempts']})")


def cmd_delete(args: argparse.Namespace) -> None:
    with _client(args) as client:
        client.delete(args.id)
    print(f"job {args.id} deleted")


def add_commands(command: CommandFactory) -> None:
    """Register the service subcommands through the main parser's `command(name, help)`."""
    p = command("serve", "run the training service (REST API, job queue, model queries)")
    add_config_options(p, ServiceConfig, "service")
    add_config_options(p, SparkConfig, "spark engine (jobs submitted with engine 'spark')")
    add_config_options(p, RunConfig, "checkpoints (every job gets a sub-directory)",
                       exclude=("engine", "init", "keep_output"))  # each job's own
    p.set_defaults(run=cmd_serve)

    p = command("submit", "submit a training job to a running service")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="files, directories or globs under the server's allowed roots, or "
                   "s3://, https://, hdfs:// URLs")
    p.add_argument("--name", default="", help="a label for the job")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="trainer (default: %(default)s)")
    p.add_argument("--wait", action="store_true",
                   help="follow the job with a progress bar until it ends (Ctrl-C stops "
                   "following, not the job)")
    p.add_argument("--poll-interval", type=float, default=0.5, help=argparse.SUPPRESS)
    _client_options(p)
    add_config_options(p, VocabConfig, "vocabulary")
    add_config_options(p, TrainConfig, "training")
    p.set_defaults(run=cmd_submit)

    p = command("jobs", "list your jobs on a running service, newest first")
    p.add_argument("--state", choices=STATES)
    p.add_argument("--limit", type=int, default=50, help="jobs to show (default: 50)")
    p.add_argument("--offset", type=int, default=0, help="skip this many (default: 0)")
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    _client_options(p)
    p.set_defaults(run=cmd_jobs)

    p = command("download", "download a succeeded job's vectors into a file (atomically: a "
                "cut-off download leaves no file)")
    p.add_argument("id", metavar="JOB_ID")
    p.add_argument("--format", choices=ARTIFACTS, default="native",
                   help="native (a tar of the model directory), word2vec-bin or word2vec-text "
                   "(default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="file or existing folder to write to (default: the server's file name, "
                   "JOB_ID.tar or JOB_ID-vectors.bin|txt, in the current folder)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _client_options(p)
    p.set_defaults(run=cmd_download)

    p = command("cancel", "cancel a queued or running job")
    p.add_argument("id", metavar="ID")
    _client_options(p)
    p.set_defaults(run=cmd_cancel)

    p = command("retry", "queue a failed or cancelled job again")
    p.add_argument("id", metavar="ID")
    _client_options(p)
    p.set_defaults(run=cmd_retry)

    p = command("delete", "delete a finished job with its model, exports and logs (frees "
                "quota)")
    p.add_argument("id", metavar="ID")
    _client_options(p)
    p.set_defaults(run=cmd_delete)
