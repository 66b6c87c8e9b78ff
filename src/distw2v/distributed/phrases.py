"""`distw2v phrases --engine spark`: the executors read the corpus and count words and
bigrams, each partition with the memory bound of the local count (distw2v.phrases); the
counts are summed by key, and each bigram meets its words' counts in two joins (no process
holds the vocabulary), where distw2v.phrases' rules score and keep it. Each further pass
joins the phrases found so far (a broadcast table) and counts again."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import add
from typing import Any

from ..config import PhrasesConfig, SparkConfig, VocabConfig
from ..corpus import CorpusStats, describe_stats, input_splits
from ..corpus.phrases import Phrase, PhraseTable
from ..errors import Distw2vError
from ..phrases import PassCounts, describe_pass, keep, table_header
from ..progress import OnProgress
from ..vocab import empty_corpus_error
from .driver import SPLIT_BYTES
from .encoding import StatsSum, _read_split
from .session import reported_jobs, spark_context, spark_failure

# The key of a partition's count of units (words and phrases); the others are str or tuple.
# It is found by filtering: RDD.lookup hashes the key in the driver, which needs PYTHONHASHSEED.
UNITS = 0


def _counter(table: Any, vocab_config: VocabConfig, config: PhrasesConfig,
             prunes: tuple[Any, Any]) -> Callable[[Iterator[list[str]]], Iterator[Any]]:
    """Each partition's counts, pruned as the local count is; how often each counter pruned
    goes to the accumulators `prunes` (words, bigrams)."""
    def count(sentences: Iterator[list[str]]) -> Iterator[tuple[Any, int]]:
        counts = PassCounts.bounded(vocab_config, config)
        for tokens in table.value.join_all(sentences):
            counts.add(tokens)
        prunes[0].add(counts.words.prune_passes)
        prunes[1].add(counts.bigrams.prune_passes)
        yield UNITS, counts.corpus_words
        yield from counts.words.counts.items()
        yield from counts.bigrams.counts.items()
    return count


def _select(counts: Any, corpus_words: int, vocab_config: VocabConfig, config: PhrasesConfig,
            pass_number: int) -> list[Phrase]:
    """The phrases among the summed counts: each bigram joined with its left word's count,
    then its right word's."""
    min_count = vocab_config.min_count
    words = counts.filter(lambda kv: isinstance(kv[0], str) and kv[1] >= min_count)
    bigrams = counts.filter(lambda kv: isinstance(kv[0], tuple) and kv[1] >= min_count)
    by_left = bigrams.map(lambda kv: (kv[0][0], (kv[0][1], kv[1]))).join(words)
    by_right = by_left.map(lambda r: (r[1][0][0], (r[0], r[1][0][1], r[1][1]))).join(words)

    def scored(row: Any) -> Phrase | None:
        right, ((left, n_ab, n_a), n_b) = row
        return keep(left, right, n_ab, n_a, n_b, corpus_words, vocab_config, config,
                    pass_number)

    return by_right.map(scored).filter(lambda p: p is not None).collect()  # type: ignore[no-any-return]


def find_phrases_on_spark(
    sources: Sequence[str], vocab_config: VocabConfig, config: PhrasesConfig,
    spark_config: SparkConfig, on_progress: OnProgress | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[PhraseTable, CorpusStats]:
    """The phrases of `sources`, counted by Spark's executors in `config.passes` passes."""
    from pyspark import StorageLevel

    if vocab_config.phrases:
        raise Distw2vError("phrases are found in the plain corpus: leave out --phrases.")
    splits = input_splits(sources, SPLIT_BYTES, vocab_config)
    with spark_context(spark_config.spark_master, "distw2v phrases",
                       max_cores=spark_config.max_cores) as sc:
        try:
            partitions = spark_config.partitions or max(sc.defaultParallelism, 1)
            seen = sc.accumulator(CorpusStats(), StatsSum())
            sentences = (sc.parallelize(splits, len(splits))
                         .flatMap(lambda split: _read_split(split, vocab_config, seen))
                         .repartition(partitions)
                         .persist(StorageLevel.MEMORY_AND_DISK))
            found: list[Phrase] = []
            corpus_words: list[int] = []
            try:
                for pass_number in range(1, config.passes + 1):
                    table = sc.broadcast(PhraseTable(found))
                    prunes = (sc.accumulator(0), sc.accumulator(0))
                    with reported_jobs(sc, on_progress, f"phrases pass {pass_number}"):
                        counter = _counter(table, vocab_config, config, prunes)
                        counts = (sentences.mapPartitions(counter)
                                  .reduceByKey(add).persist(StorageLevel.MEMORY_AND_DISK))
                        units = counts.filter(lambda kv: kv[0] == UNITS).values().sum()
                        if pass_number == 1:
                            log("read " + describe_stats(seen.value))
                        if units == 0:
                            raise empty_corpus_error()
                        new = _select(counts, units, vocab_config, config, pass_number)
                    counts.unpersist()
                    table.unpersist()
                    log(describe_pass(pass_number, len(new), units, prunes[0].value,
                                      prunes[1].value, config, vocab_config)
                        + " (distributed count)")
                    found += new
                    corpus_words.append(units)
                    if not new:
                        break
            finally:
                sentences.unpersist()
            stats = seen.value
        except Distw2vError:
            raise
        except Exception as exc:  # a failed Spark job: Py4J wraps the executor's error
            raise spark_failure(exc) from None
    return PhraseTable(found, table_header(vocab_config, config, corpus_words)), stats
