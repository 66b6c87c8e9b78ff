"""A model larger than any one process, at small scale: four parameter-server shards whose
address space (RLIMIT_AS) is capped below the full model's size train one epoch on Spark and
export; every process's peak resident memory stays below half the full model.

The full model (input + output matrices, float32) is 250,000 words x 800 columns = 1.6 GB;
each shard holds a quarter of it. The dimension is large and the vocabulary small so that
the model is several times the ~0.5 GB of address space a shard (Python, NumPy, numba,
gRPC) needs before it holds anything, while the test stays quick. The driver runs in its
own process, so its peak is its own and not the test runner's. `benchmarks/big_model.py`
does the same at 2 million words x 300. Needs Java.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from distw2v.distributed.processes import ANNOUNCE
from distw2v.distributed.shard import Batch, ParameterShard, ShardSpec
from distw2v.synthetic import word, write_zipf_corpus
from distw2v.vectors import Vectors

pytestmark = [pytest.mark.spark,
              pytest.mark.skipif(shutil.which("java") is None,
                                 reason="Spark needs Java; .ci/setup.d/java.sh installs it")]

VOCAB, DIM, SHARDS, TOKENS = 250_000, 800, 4, 500_000
MODEL_BYTES = VOCAB * DIM * 4 * 2  # input and output matrices
CAP_BYTES = MODEL_BYTES * 4 // 5  # each shard's address space: below the full model
MB = 1 << 20

DRIVER = textwrap.dedent("""
    import json, sys
    from distw2v.config import SparkConfig, TrainConfig, VocabConfig
    from distw2v.distributed.driver import train_spark
    from distw2v.memory import peak_rss_mb
    corpus, out, ps, dim = sys.argv[1:5]
    figures, summary = train_spark(
        [corpus], out, VocabConfig(min_count=1), TrainConfig(dim=int(dim), epochs=1, seed=3),
        SparkConfig(spark_master="local[2]", ps=ps, partitions=2))
    print(json.dumps({"figures": figures, "driver_peak_rss_mb": peak_rss_mb(),
                      "summary_peak_rss_mb": summary.peak_rss_mb}))
""")


def status(pid: int) -> dict[str, int]:
    """VmPeak, VmHWM, ... of a live process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[key] = int(value.split()[0])
    return fields


def warm_kernel_cache(tmp_path: Path) -> None:
    """Run a tiny shard here, uncapped, so numba's cache holds the shard's kernels: a capped
    shard should load them, not spend address space compiling them."""
    np.save(tmp_path / "counts.npy", np.arange(20, 0, -1, dtype=np.int64))
    shard = ParameterShard()
    shard.configure(ShardSpec(vocab_size=20, dim=4, lo=0, hi=4, negative=2, seed=1,
                              counts_uri=str(tmp_path / "counts.npy")))
    batch = Batch(centers=np.array([1, 2], np.int32), ctx_offsets=np.array([0, 1, 2], np.int64),
                  contexts=np.array([3, 4], np.int32), seed=5)
    dots, _ = shard.dot(batch, 2)
    shard.update(batch.key, dots, 0.025)


def capped_shard() -> subprocess.Popen[str]:
    def limit() -> None:  # runs in the child before exec
        resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))

    # fewer malloc arenas and BLAS threads: address space they would reserve, not use
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "distw2v.cli", "ps-shard", "--host", "127.0.0.1", "--port", "0",
         "--threads", "4"], stdout=subprocess.PIPE, text=True, env=env, preexec_fn=limit)


def test_shards_capped_below_the_model_train_and_export(tmp_path) -> None:
    assert CAP_BYTES < MODEL_BYTES
    corpus = tmp_path / "corpus"
    write_zipf_corpus(corpus, vocab_size=VOCAB, tokens=TOKENS, seed=1,
                      words_per_file=TOKENS // 2)
    warm_kernel_cache(tmp_path)
    shards = [capped_shard() for _ in range(SHARDS)]
    try:
        addresses = []
        for proc in shards:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.startswith(ANNOUNCE), f"a capped shard did not start: {line!r}"
            addresses.append(line[len(ANNOUNCE):].strip())
        for proc in shards:  # the cap is really in force
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
            assert f"Max address space         {CAP_BYTES}" in limits
        out = tmp_path / "model"
        run = subprocess.run([sys.executable, "-c", DRIVER, str(corpus), str(out),
                              ",".join(addresses), str(DIM)],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        report = json.loads(run.stdout.strip().splitlines()[-1])
        shard_status = [status(proc.pid) for proc in shards]
        assert all(proc.poll() is None for proc in shards)  # none died on the way
    finally:
        for proc in shards:
            proc.terminate()
        for proc in shards:
            proc.wait(timeout=30)

    figures = report["figures"]
    assert figures["words"] == TOKENS and figures["pairs"] > 0
    assert figures["shard_bytes_held"] == [MODEL_BYTES // SHARDS] * SHARDS
    for s in shard_status:  # each held its quarter within the cap
        assert MODEL_BYTES // SHARDS < s["VmPeak"] * 1024 <= CAP_BYTES

    half = MODEL_BYTES / 2 / MB
    peaks = {f"shard {i}": s["VmHWM"] / 1024 for i, s in enumerate(shard_status)}
    peaks["executors' Python workers"] = figures["executor_python_peak_rss_mb"]
    peaks["JVM"] = figures["jvm_peak_rss_mb"]
    peaks["driver Python"] = report["driver_peak_rss_mb"]
    print(f"\nfull model {MODEL_BYTES / MB:,.0f} MiB, half {half:,.0f} MiB, "
          f"shard cap {CAP_BYTES / MB:,.0f} MiB")
    for name, peak in peaks.items():
        print(f"  {name:<26} peak RSS {peak:8,.0f} MiB")
    assert all(0 < peak < half for peak in peaks.values()), peaks

    vectors = Vectors.load(out)
    assert (len(vectors), vectors.dim) == (VOCAB, DIM)
    assert set(vectors.words) == {word(r) for r in range(VOCAB)}
    for lo in range(0, VOCAB, 25_000):
        block = np.asarray(vectors.matrix[lo:lo + 25_000])
        assert np.isfinite(block).all() and np.abs(block).max() > 0
