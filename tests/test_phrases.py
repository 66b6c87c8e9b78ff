"""Phrases (word2phrase, gensim's Phrases): the scores, passes, the bounded bigram count, the
joining rule (against gensim's own), the table file, and `train --phrases` in both engines."""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from distw2v.cli import main
from distw2v.config import PhrasesConfig, SparkConfig, TrainConfig, VocabConfig
from distw2v.corpus import iter_sentences, read_phrase_table
from distw2v.corpus.phrases import Phrase, PhraseTable, write_phrase_table
from distw2v.errors import Distw2vError
from distw2v.phrases import count_sentences, find_phrases, score
from distw2v.pipeline import Sentences, train_local
from distw2v.vectors import Vectors

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")


def planted_sentences(n: int = 3000, seed: int = 3) -> list[list[str]]:
    """Random words with 'new york' (a third of them in 'new york city') and distractor
    'new' and 'york' planted."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(100)]
    out = []
    for i in range(n):
        tokens = list(rng.choice(words, size=8))
        at = int(rng.integers(0, 8))
        if i % 3 == 0:
            tokens[at:at] = ["new", "york", "city"] if i % 9 == 0 else ["new", "york"]
        elif i % 5 == 0:
            tokens[at:at] = ["new"] if i % 2 else ["york"]
        out.append(tokens)
    return out


def write_corpus(path, sentences) -> str:
    path.write_text("".join(" ".join(s) + "\n" for s in sentences))
    return str(path)


# --- scores ------------------------------------------------------------------------------


def test_scores_match_a_hand_computed_example() -> None:
    # n(a)=20, n(b)=10, n(ab)=8, N=1000, min_count=5
    assert score(20, 10, 8, 1000, 5, PhrasesConfig()) == pytest.approx((8 - 5) / 200 * 1000)
    assert score(20, 10, 8, 1000, 5, PhrasesConfig()) == pytest.approx(15.0)
    npmi = score(20, 10, 8, 1000, 5, PhrasesConfig(scoring="npmi"))
    assert npmi == pytest.approx(math.log(40) / -math.log(0.008))  # log(.008/(.02*.01))
    assert npmi == pytest.approx(0.76401, abs=1e-5)
    assert score(20, 10, 4, 1000, 5, PhrasesConfig()) == -math.inf  # below min_count


def test_counting_scores_a_tiny_corpus_as_by_hand(tmp_path) -> None:
    # "a b" 6 times, "a c" 2 times, "d b" 2 times: n(a)=8, n(b)=8, n(ab)=6, N=20
    corpus = write_corpus(tmp_path / "c.txt", [["a", "b"]] * 6 + [["a", "c"]] * 2 +
                          [["d", "b"]] * 2)
    table, _ = find_phrases([corpus], VocabConfig(min_count=2), PhrasesConfig(threshold=1.0))
    assert [(p.text, p.count) for p in table.phrases] == [("a_b", 6)]
    assert table.phrases[0].score == pytest.approx((6 - 2) / (8 * 8) * 20)  # 1.25


def test_threshold_and_scoring_are_checked() -> None:
    with pytest.raises(Distw2vError, match="threshold must be below 1 with scoring npmi"):
        PhrasesConfig(scoring="npmi", threshold=2.0)
    assert PhrasesConfig().min_score == 100.0
    assert PhrasesConfig(scoring="npmi").min_score == 0.5


# --- passes and the bounded count --------------------------------------------------------


def test_two_passes_find_a_trigram(tmp_path) -> None:
    corpus = write_corpus(tmp_path / "c.txt", planted_sentences())
    config = VocabConfig(min_count=5)
    one, _ = find_phrases([corpus], config, PhrasesConfig(threshold=5.0))
    two, _ = find_phrases([corpus], config, PhrasesConfig(threshold=5.0, passes=2))
    assert "new_york" in {p.text for p in one.phrases}
    assert "new_york_city" not in {p.text for p in one.phrases}
    found = {p.text: p for p in two.phrases}
    assert found["new_york_city"].pass_number == 2
    assert (found["new_york_city"].left, found["new_york_city"].right) == ("new_york", "city")
    assert two.join("x new york city new york".split()) == ["x", "new_york_city", "new_york"]


def test_pruning_keeps_the_bigram_table_under_its_cap() -> None:
    sentences = planted_sentences(4000)
    cap = 300
    config = PhrasesConfig(max_bigrams=cap, threshold=5.0)
    vocab_config = VocabConfig(min_count=5)
    counts = count_sentences([], vocab_config, config)
    largest = 0
    for tokens in sentences:
        counts.add(tokens)
        largest = max(largest, len(counts.bigrams.counts))
    assert largest <= cap
    assert counts.bigrams.prune_passes > 0
    unbounded = count_sentences(sentences, vocab_config, PhrasesConfig(threshold=5.0))
    assert len(unbounded.bigrams.counts) > 5 * cap  # the cap did bind
    # the planted phrase is frequent enough to survive pruning, with an approximate count
    phrases = {p.text for p in counts.select(vocab_config, config, 1)}
    assert "new_york" in phrases


# --- joining -----------------------------------------------------------------------------


def w2p_scorer(worda_count, wordb_count, bigram_count, len_vocab, min_count,
               corpus_word_count) -> float:
    """word2phrase's score, in gensim's custom-scorer signature."""
    return score(worda_count, wordb_count, bigram_count, corpus_word_count, min_count,
                 PhrasesConfig())


def _frozen(table: PhraseTable, pass_index: int):
    """gensim's FrozenPhrases holding exactly the phrases of one pass of `table`."""
    from gensim.models.phrases import FrozenPhrases

    frozen = FrozenPhrases.__new__(FrozenPhrases)
    frozen.threshold, frozen.min_count, frozen.delimiter = 0.0, 1, "_"
    frozen.scoring, frozen.connector_words = "default", frozenset()
    frozen.phrasegrams = {p.text: 1.0 for p in table.phrases if p.pass_number == pass_index}
    return frozen


def test_joining_equals_gensim_on_the_same_table() -> None:
    pytest.importorskip("gensim")
    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(12)]
    pairs = {(str(a), str(b)) for a, b in rng.choice(words, size=(30, 2))}
    second = {(f"{a}_{b}", str(c)) for (a, b), c in zip(sorted(pairs)[:10], rng.choice(words, 10))}
    table = PhraseTable([Phrase(a, b, 1.0, 1, 1) for a, b in pairs] +
                        [Phrase(a, b, 1.0, 1, 2) for a, b in second])
    first, then = _frozen(table, 1), _frozen(table, 2)
    joined_any = 0
    for _ in range(2000):
        sentence = [str(w) for w in rng.choice(words, size=int(rng.integers(0, 12)))]
        assert table.join(sentence, passes=1) == first[sentence]
        assert table.join(sentence) == then[first[sentence]]
        joined_any += table.join(sentence) != sentence
    assert joined_any > 1000  # the tables did join


def test_the_phrases_found_equal_gensims_with_the_same_score() -> None:
    gensim_phrases = pytest.importorskip("gensim.models.phrases")
    sentences = planted_sentences()
    counts = count_sentences(sentences, VocabConfig(min_count=5), PhrasesConfig(threshold=5.0))
    ours = {p.text: p.score for p in counts.select(VocabConfig(min_count=5),
                                                   PhrasesConfig(threshold=5.0), 1)}
    theirs = gensim_phrases.Phrases(sentences, min_count=5, threshold=5.0, scoring=w2p_scorer,
                                    connector_words=frozenset()).export_phrases()
    assert ours.keys() == theirs.keys() and "new_york" in ours
    assert all(ours[k] == pytest.approx(theirs[k]) for k in ours)


# --- the table file ----------------------------------------------------------------------


def test_the_table_file_round_trips_and_is_written_atomically(tmp_path) -> None:
    table = PhraseTable([Phrase("new", "york", 1234.5, 87, 1), Phrase("a_b", "c", 3.0, 9, 2),
                         Phrase("a", "b_c", 2.0, 9, 1)], {"threshold": 1.0})
    path = tmp_path / "p.tsv"
    write_phrase_table(path, table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tsv"]
    assert path.read_text().splitlines()[1:3] == ["phrase\tscore\tcount\tpass\tleft\tright",
                                                  "new_york\t1234.5\t87\t1\tnew\tyork"]
    back = read_phrase_table(str(path))
    assert back.phrases == table.phrases and back.header["threshold"] == 1.0
    # "a_b_c" is a + b_c in pass 1 and a_b + c in pass 2: never ambiguous
    assert back.join(["a", "b_c"]) == ["a_b_c"] and back.join(["a_b", "c"]) == ["a_b_c"]


HEADER = '# {"format": "distw2v-phrases", "format_version": 1}\n'
COLUMNS = "phrase\tscore\tcount\tpass\tleft\tright\n"


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the phrases file: .* does not exist."),
    ("new_york\t1\t2\t1\tnew\tyork\n", "is not a phrase table from `distw2v phrases`"),
    (HEADER + "phrase\tscore\n", "line 2 is not the column names"),
    (HEADER + COLUMNS + "new_york\t1\ttwo\t1\tnew\tyork\n", "line 3 is not 'phrase<TAB>score"),
    (HEADER + COLUMNS + "new_york\t1\t2\t1\tnew\tyorkshire\n", "line 3 is not a phrase"),
    (HEADER + COLUMNS + "new_york\t1\t2\t0\tnew\tyork\n", "line 3 is not a phrase"),
    ('# {"format": "distw2v-phrases", "format_version": 7}\n', "has format version 7"),
    ('# {"format": "distw2v-phrases", "format_version": 1, "size": 2}\n' + COLUMNS +
     "new_york\t1\t2\t1\tnew\tyork\n", "is truncated"),
])
def test_a_bad_phrases_file_is_one_sentence(tmp_path, capsys, content, message) -> None:
    corpus = write_corpus(tmp_path / "c.txt", [["new", "york"]] * 5)
    table = tmp_path / "p.tsv"
    if content is not None:
        table.write_text(content)
    code = main(["vocab", corpus, "--out", str(tmp_path / "v.tsv"), "--phrases", str(table)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("distw2v vocab: error: ")
    assert re.search(message, err), err


def test_the_reader_joins_the_table_config_names(tmp_path) -> None:
    corpus = write_corpus(tmp_path / "c.txt", [["in", "new", "york", "now"]])
    write_phrase_table(tmp_path / "p.tsv", PhraseTable([Phrase("new", "york", 9.0, 5, 1)]))
    config = VocabConfig(phrases=str(tmp_path / "p.tsv"))
    assert list(iter_sentences([corpus], config)) == [["in", "new_york", "now"]]
    assert list(iter_sentences([corpus], VocabConfig())) == [["in", "new", "york", "now"]]


# --- the command and training ------------------------------------------------------------


FAST = ["--dim", "8", "--epochs", "1", "--workers", "1", "--min-count", "5", "-q"]


def test_phrases_command_then_train_puts_new_york_in_the_vocabulary(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt", planted_sentences())
    table = tmp_path / "p.tsv"
    assert main(["phrases", corpus, "--out", str(table), "--threshold", "5", "--passes", "2",
                 "-q"]) == 0
    assert "phrase(s) (word2phrase score above 5) written to" in capsys.readouterr().out
    assert main(["train", corpus, "--out", str(tmp_path / "m"), "--phrases", str(table),
                 *FAST]) == 0
    words = Vectors.load(tmp_path / "m").words
    assert {"new_york", "new_york_city"} <= set(words)
    assert main(["train", corpus, "--out", str(tmp_path / "plain"), *FAST]) == 0
    assert "new_york" not in Vectors.load(tmp_path / "plain").words


def test_the_command_says_when_the_bound_pruned_the_count(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt", planted_sentences())
    assert main(["phrases", corpus, "--out", str(tmp_path / "p.tsv"), "--threshold", "5",
                 "--max-bigrams", "300"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"max_bigrams=300 and pruned rare words 0 and rare bigrams [1-9]\d* "
                     r"time\(s\), so their counts are approximate", err), err
    assert "new_york" in {p.text for p in read_phrase_table(str(tmp_path / "p.tsv")).phrases}


def test_in_memory_sentences_are_joined_too(tmp_path) -> None:
    write_phrase_table(tmp_path / "p.tsv", PhraseTable([Phrase("new", "york", 9.0, 5, 1)]))
    vectors, _ = train_local(Sentences(planted_sentences(600)), None,
                             VocabConfig(min_count=5, phrases=str(tmp_path / "p.tsv")),
                             TrainConfig(dim=8, epochs=1, workers=1))
    assert "new_york" in vectors.words


@pytest.mark.spark
@needs_java
def test_spark_counts_the_phrases_the_local_engine_finds(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt", planted_sentences())
    common = [corpus, "--threshold", "5", "--passes", "2", "-q"]
    assert main(["phrases", *common, "--out", str(tmp_path / "local.tsv")]) == 0
    assert main(["phrases", *common, "--out", str(tmp_path / "spark.tsv"), "--engine", "spark",
                 "--spark-master", "local[2]", "--partitions", "3"]) == 0
    local, spark = (read_phrase_table(str(tmp_path / f)) for f in ("local.tsv", "spark.tsv"))
    assert spark.phrases == local.phrases
    assert "new_york_city" in {p.text for p in spark.phrases}


@pytest.mark.spark
@needs_java
def test_spark_training_joins_the_phrases_on_the_executors(tmp_path) -> None:
    from distw2v.distributed.driver import train_spark

    corpus = write_corpus(tmp_path / "c.txt", planted_sentences(600))
    write_phrase_table(tmp_path / "p.tsv", PhraseTable([Phrase("new", "york", 9.0, 5, 1)]))
    train_spark([corpus], tmp_path / "m", VocabConfig(min_count=5, phrases=str(tmp_path /
                                                                                "p.tsv")),
                TrainConfig(dim=4, epochs=1, sample=0, seed=1),
                SparkConfig(spark_master="local[2]", shards=1, partitions=2))
    words = Vectors.load(tmp_path / "m").words
    assert "new_york" in words and "york" in words  # york also stands alone


# --- the planted-names generator ---------------------------------------------------------


def test_planted_names_are_found_and_their_words_also_stand_alone(tmp_path) -> None:
    from distw2v.synthetic import write_phrase_corpus

    info = write_phrase_corpus(tmp_path / "n.txt", tokens=150_000, entities=40, seed=2)
    again = write_phrase_corpus(tmp_path / "again.txt", tokens=150_000, entities=40, seed=2)
    assert (tmp_path / "n.txt").read_bytes() == (tmp_path / "again.txt").read_bytes()
    assert again.names == info.names and len(info.names) == 3 * 40
    truth = set((tmp_path / "n.phrases.txt").read_text().split())
    assert truth == set(info.names)
    words = Counter(w for line in (tmp_path / "n.txt").read_text().splitlines()
                    for w in line.split())
    first, second = info.names[0].split("_")
    assert words[first] > 1.5 * words[second] / 2  # written alone as well as in the name
    table, _ = find_phrases([info.path], VocabConfig(min_count=5), PhrasesConfig(passes=2))
    joined = Counter(w for s in iter_sentences([info.path], VocabConfig(), phrases=table)
                     for w in s if "_" in w)
    assert {w for w, n in joined.items() if n >= 5} == truth
