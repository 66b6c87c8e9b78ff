"""Both engines select the vocabulary by the same rules (distw2v.vocab's one home of them):
min_count, frequency order with ties alphabetical, max_final_vocab, and the same sentence
when no word survives. Needs Java, as tests/test_spark.py."""

from __future__ import annotations

import shutil

import pytest

from distw2v.config import SparkConfig, TrainConfig, VocabConfig
from distw2v.distributed.driver import train_spark
from distw2v.errors import VocabularyError
from distw2v.vectors import Vectors
from distw2v.vocab import build_vocabulary

pytestmark = [pytest.mark.spark,
              pytest.mark.skipif(shutil.which("java") is None,
                                 reason="Spark needs Java; .ci/setup.d/java.sh installs it")]

# counts: b 6, a 6, c 4, e 3, d 3, f 2, g 1 (ties both ways round the alphabet)
SENTENCES = [["b", "a", "c", "e", "d", "f", "g"], ["b", "a", "c", "e", "d", "f"],
             ["b", "a", "c", "e", "d"], ["b", "a", "c"], ["b", "a"], ["b", "a"]]


def test_spark_selects_the_vocabulary_as_the_local_engine(tmp_path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(" ".join(s) + "\n" for s in SENTENCES))
    train = TrainConfig(dim=4, epochs=1, sample=0, seed=1)
    spark = SparkConfig(spark_master="local[2]", shards=1, partitions=1)
    config = VocabConfig(min_count=2, max_final_vocab=4)
    train_spark([str(corpus)], tmp_path / "model", config, train, spark)
    assert Vectors.load(tmp_path / "model").words == build_vocabulary(SENTENCES, config).words
    assert build_vocabulary(SENTENCES, config).words == ["a", "b", "c", "d"]

    rare = VocabConfig(min_count=50)
    with pytest.raises(VocabularyError) as local:
        build_vocabulary(SENTENCES, rare)
    with pytest.raises(VocabularyError) as distributed:
        train_spark([str(corpus)], tmp_path / "rare", rare, train, spark)
    assert str(distributed.value) == str(local.value)
