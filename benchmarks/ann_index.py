"""Fast queries on a 2-million-word model: the nearest-neighbour index against the exact scan.

1. `--compare`: hnswlib, faiss (HNSW and IVF) and usearch (f32, f16, i8) on the first 200k
   rows: build time on all cores, size, recall@10 against the exact top 10, single-threaded
   queries/s and p50/p99 latency. This is how distw2v's library and parameters were chosen.
2. The full model (default 2M x 300, written once to --model-dir and reused): `distw2v index`
   builds the index in a child process (time, size on disk, the child's peak RSS), then
   Vectors.most_similar answers the same queries from the index and with exact=True:
   queries/s, p50/p99 latency, recall@10 of the index against the exact answers.

The vectors are synthetic but structured, so that neighbours mean something: 4,000 Gaussian
cluster centres in a 64-dimensional latent space, a member's latent point is its centre plus
noise, and a fixed random map takes it to `dim` dimensions, plus a little isotropic noise
(a word's 10th neighbour is at cosine ~0.8, near what trained word2vec models show).

    python benchmarks/ann_index.py [--compare] [--words 2000000] [--dim 300]
        [--model-dir /tmp/distw2v-ann-2m] [--json benchmarks/results/ann_index.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb  # noqa: E402

from distw2v import ann  # noqa: E402
from distw2v.vectors import INDEX_FILE, Vectors, VectorsWriter, unit_rows  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "ann_index.json"
BLOCK = 1 << 16
CLUSTERS, LATENT = 4000, 64


def synthetic_rows(lo: int, hi: int, dim: int, seed: int = 1) -> np.ndarray:
    """Rows [lo, hi) of the synthetic model: the same rows whatever the blocking."""
    space = np.random.default_rng(seed)
    centres = space.standard_normal((CLUSTERS, LATENT), dtype=np.float32)
    lift = (space.standard_normal((LATENT, dim)) / np.sqrt(LATENT)).astype(np.float32)
    out = np.empty((hi - lo, dim), dtype=np.float32)
    for start in range(lo - lo % BLOCK, hi, BLOCK):  # one generator per aligned block
        rng = np.random.default_rng([seed, start])
        latent = centres[rng.integers(CLUSTERS, size=BLOCK)]
        latent += 0.5 * rng.standard_normal((BLOCK, LATENT), dtype=np.float32)
        rows = latent @ lift + 0.15 * rng.standard_normal((BLOCK, dim), dtype=np.float32)
        a, b = max(lo, start), min(hi, start + BLOCK)
        out[a - lo : b - lo] = rows[a - start : b - start]
    return out


def write_model(path: Path, words: int, dim: int) -> float:
    """The synthetic model, without an index (built and timed separately); seconds taken."""
    start = time.perf_counter()
    counts = np.arange(words, 0, -1, dtype=np.int64)
    names = (f"w{i}" for i in range(words))
    with VectorsWriter(path, names, counts, dim, {"synthetic": "clusters"},
                       ann_threshold=0) as writer:
        for lo in range(0, words, BLOCK):
            writer.write_rows(lo, synthetic_rows(lo, min(lo + BLOCK, words), dim))
    return time.perf_counter() - start


def ensure_model(path: Path, words: int, dim: int) -> dict[str, Any]:
    """The model at `path` when it is the one asked for, else a fresh one."""
    try:
        info = json.loads((path / "meta.json").read_text())
        if (info["size"], info["dim"]) == (words, dim) and info["meta"].get("synthetic"):
            return {"written_seconds": None, "reused": True}
    except (OSError, ValueError, KeyError):
        pass
    return {"written_seconds": round(write_model(path, words, dim), 1), "reused": False}


def latencies(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> dict[str, float]:
    """Single-threaded: one query at a time."""
    fn(queries[0])  # warm
    lat = []
    start = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        fn(q)
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    return {"queries": len(queries), "qps": round(len(queries) / wall, 1),
            "p50_ms": round(1000 * float(np.percentile(lat, 50)), 3),
            "p99_ms": round(1000 * float(np.percentile(lat, 99)), 3)}


def recall_at_10(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f[:10]) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return round(hits / (10 * len(truth)), 4)


# ---- 1. the libraries on a subset ----------------------------------------------------------


def compare(n: int, dim: int, queries: int, threads: int) -> list[dict[str, Any]]:
    unit = unit_rows(synthetic_rows(0, n, dim))
    qids = np.random.default_rng(7).choice(n, queries, replace=False)
    scores = unit[qids] @ unit.T
    scores[np.arange(queries), qids] = -np.inf
    truth = np.argpartition(-scores, 10, axis=1)[:, :10]
    del scores
    k = 11  # the query word itself comes back first
    rows: list[dict[str, Any]] = []

    def measure(lib: str, params: str, build_s: float, size: int,
                search: Callable[[np.ndarray], np.ndarray]) -> None:
        found = [[int(x) for x in search(unit[q]) if x != q] for q in qids]
        row = {"library": lib, "params": params, "build_seconds": round(build_s, 1),
               "size_mb": round(size / 2**20, 1), "recall_at_10": recall_at_10(found, truth),
               **latencies(search, unit[qids])}
        print(json.dumps(row), flush=True)
        rows.append(row)

    tmp = Path(f"/tmp/distw2v-ann-compare-{os.getpid()}.index")
    try:
        from usearch.index import Index

        for dtype in ("f32", "f16", "i8"):
            index = Index(ndim=dim, metric="cos", dtype=dtype, connectivity=16,
                          expansion_add=128)
            t = time.perf_counter()
            index.add(np.arange(n, dtype=np.uint64), unit, threads=threads)
            build = time.perf_counter() - t
            index.save(str(tmp))
            view = Index.restore(str(tmp), view=True)
            for ef in (32, 64, 128):
                view.expansion_search = ef
                measure("usearch", f"{dtype} connectivity=16 expansion_add=128 "
                        f"expansion_search={ef}", build, tmp.stat().st_size,
                        lambda q, v=view: np.asarray(v.search(q, k, threads=1).keys))
            del index, view

        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, M=16, ef_construction=128)
        index.set_num_threads(threads)
        t = time.perf_counter()
        index.add_items(unit, np.arange(n))
        build = time.perf_counter() - t
        index.save_index(str(tmp))
        index.set_num_threads(1)
        for ef in (32, 64, 128):
            index.set_ef(ef)
            measure("hnswlib", f"M=16 ef_construction=128 ef={ef}", build, tmp.stat().st_size,
                    lambda q, i=index: i.knn_query(q[None], k=k)[0][0])
        del index

        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 128
        t = time.perf_counter()
        index.add(unit)
        build = time.perf_counter() - t
        faiss.write_index(index, str(tmp))
        faiss.omp_set_num_threads(1)
        for ef in (32, 64, 128):
            index.hnsw.efSearch = ef
            measure("faiss", f"HNSWFlat M=16 efConstruction=128 efSearch={ef}", build,
                    tmp.stat().st_size, lambda q, i=index: i.search(q[None], k)[1][0])
        del index

        nlist = int(4 * np.sqrt(n))

        def ivf(index: Any, kind: str, nprobes: tuple[int, ...]) -> None:
            """Train and fill an IVF index on a seeded sample, then measure each nprobe."""
            faiss.omp_set_num_threads(threads)
            t = time.perf_counter()
            index.train(unit[np.random.default_rng(3).choice(n, min(n, 40 * nlist),
                                                             replace=False)])
            index.add(unit)
            build = time.perf_counter() - t
            faiss.write_index(index, str(tmp))
            faiss.omp_set_num_threads(1)
            for nprobe in nprobes:
                index.nprobe = nprobe
                measure("faiss", f"{kind} nlist={nlist} nprobe={nprobe}", build,
                        tmp.stat().st_size, lambda q, i=index: i.search(q[None], k)[1][0])

        ivf(faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT),
            "IVFFlat", (8, 16, 32))
        ivf(faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist,
                                          faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT),
            "IVF-SQ8", (16, 32))
    finally:
        tmp.unlink(missing_ok=True)

    # distw2v's own path: the index built by Vectors.save, queries through most_similar
    # (2x candidates re-scored exactly), one query at a time.
    model = Path(f"/tmp/distw2v-ann-compare-{os.getpid()}")
    try:
        words = [f"w{i}" for i in range(n)]
        Vectors(words, unit).save(model, ann_threshold=1)
        vectors = Vectors.load(model)
        found = [[vectors.word_id(w) for w, _ in vectors.most_similar(f"w{q}", topn=10)]
                 for q in qids]
        record = vectors.ann.record if vectors.ann else {}
        row = {"library": "distw2v (faiss)",
               "params": f"{record.get('params')} nprobe={ann.NPROBE} candidates "
                         f"{ann.CANDIDATES_FACTOR}x(topn + 1), exact re-score",
               "build_seconds": record.get("build_seconds"),
               "size_mb": round((model / INDEX_FILE).stat().st_size / 2**20, 1),
               "recall_at_10": recall_at_10(found, truth),
               **latencies(lambda q: vectors.most_similar(q, topn=10),
                           np.array([f"w{q}" for q in qids]))}
        print(json.dumps(row), flush=True)
        rows.append(row)
    finally:
        shutil.rmtree(model, ignore_errors=True)
    return rows


# ---- 2. the full model ---------------------------------------------------------------------


def build_index(model: Path) -> dict[str, Any]:
    """`distw2v index MODEL` in a child process: its wall time and peak resident memory."""
    (model / INDEX_FILE).unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "distw2v.cli", "index", str(model)], check=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": round(wall, 1), "index_mb": round((model / INDEX_FILE).stat().st_size
                                                        / 2**20, 1),
            "vectors_mb": round((model / "vectors.npy").stat().st_size / 2**20, 1),
            "child_peak_rss_mb": round(peak, 1)}


def full_model(model: Path, queries: int, exact_timed: int) -> dict[str, Any]:
    start = time.perf_counter()
    vectors = Vectors.load(model)
    load_s = time.perf_counter() - start
    if vectors.ann is None:
        raise SystemExit(f"{model} has no usable index")
    rng = np.random.default_rng(11)
    words = [vectors.words[i] for i in rng.choice(len(vectors), queries, replace=False)]
    indexed = latencies(lambda w: vectors.most_similar(w, topn=10), np.array(words))
    found = [[vectors.word_id(w) for w, _ in vectors.most_similar(w, topn=10)] for w in words]
    rss_indexed = peak_rss_mb()
    start = time.perf_counter()
    vectors.norms  # noqa: B018 - what the first exact query computes (one float per row)
    unit_s = time.perf_counter() - start
    exact = latencies(lambda w: vectors.most_similar(w, topn=10, exact=True),
                      np.array(words[:exact_timed]))
    ids = [vectors.word_id(w) for w in words]
    truth, _ = vectors.most_similar_batch(vectors.unit_vectors(ids), 10,
                                          exclude=[[i] for i in ids], exact=True)
    return {"load_seconds": round(load_s, 2), "index": indexed, "exact": exact,
            "norms_seconds": round(unit_s, 1),
            "speedup_qps": round(indexed["qps"] / exact["qps"], 1),
            "recall_at_10": recall_at_10(found, truth),
            "peak_rss_mb_before_exact": round(rss_indexed, 1),
            "peak_rss_mb_after_exact": round(peak_rss_mb(), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="only compare the libraries")
    parser.add_argument("--compare-words", type=int, default=200_000)
    parser.add_argument("--words", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--exact-timed", type=int, default=50,
                        help="exact queries timed one by one (each scans every row)")
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/distw2v-ann-2m"))
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--keep-index", action="store_true",
                        help="query the model's index as it is (keep the last build figures)")
    args = parser.parse_args()
    figures: dict[str, Any] = json.loads(args.json.read_text()) if args.json.exists() else {}
    threads = os.cpu_count() or 1
    if args.compare:
        figures["compare"] = {"words": args.compare_words, "dim": args.dim,
                              "queries": args.queries, "build_threads": threads,
                              "rows": compare(args.compare_words, args.dim, args.queries,
                                              threads), "machine": machine()}
    else:
        run: dict[str, Any] = {"words": args.words, "dim": args.dim}
        run["model"] = ensure_model(args.model_dir, args.words, args.dim)
        print(f"model in {args.model_dir}: {run['model']}", flush=True)
        keep = args.keep_index and (args.model_dir / INDEX_FILE).exists()
        run["build"] = (figures["full"]["build"] if keep else build_index(args.model_dir))
        print(f"index: {run['build']}", flush=True)
        run.update(full_model(args.model_dir, args.queries, args.exact_timed))
        run["machine"] = machine()
        figures["full"] = run
        print(json.dumps({k: v for k, v in run.items() if k != "machine"}, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
