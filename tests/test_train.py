"""The local trainer: determinism, chunk planning and that training learns structure."""

from __future__ import annotations

import numpy as np
import pytest

from distw2v.config import TrainConfig, VocabConfig
from distw2v.encode import encode_corpus
from distw2v.train import plan_chunks, schedule, train
from distw2v.vocab import build_vocabulary


def topic_corpus(seed: int = 0, sentences: int = 3000):
    """Sentences that each draw words from one of two disjoint topics."""
    rng = np.random.default_rng(seed)
    topics = [[f"x{i}" for i in range(15)], [f"y{i}" for i in range(15)]]
    return [list(rng.choice(topics[s % 2], size=rng.integers(5, 12))) for s in range(sentences)]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    sentences = topic_corpus()
    vocab = build_vocabulary(sentences, VocabConfig(min_count=1))
    corpus = encode_corpus(sentences, vocab, tmp_path_factory.mktemp("enc") / "enc",
                           shard_words=7000)
    return vocab, corpus


def test_chunks_cover_every_sentence_once(encoded) -> None:
    _, corpus = encoded
    assert len(corpus.shards) > 1
    chunks = plan_chunks(corpus, batch_words=1000)
    for i in range(len(corpus.shards)):
        _, offsets = corpus.load_shard(i)
        mine = [c for c in chunks if c.shard == i]
        assert mine[0].s_lo == 0 and mine[-1].s_hi == len(offsets) - 1
        assert all(a.s_hi == b.s_lo for a, b in zip(mine, mine[1:]))
        assert all(c.words == offsets[c.s_hi] - offsets[c.s_lo] for c in mine)
    assert sum(c.words for c in chunks) == corpus.words


def test_schedule_visits_every_chunk_once_per_epoch_in_a_seeded_order(encoded) -> None:
    _, corpus = encoded
    chunks = plan_chunks(corpus, batch_words=1000)
    tasks = schedule(chunks, epochs=3, seed=5)
    orders = [[t.index for t in tasks if t.epoch == e] for e in range(3)]
    assert [t.epoch for t in tasks] == sorted(t.epoch for t in tasks)
    assert all(sorted(order) == list(range(len(chunks))) for order in orders)
    assert orders[0] != orders[1] and orders[0] != list(range(len(chunks)))
    assert all(t.chunk == chunks[t.index] for t in tasks)
    # the learning rate follows the order of training, not the place in the file
    assert [t.words_before for t in tasks] == [0] + np.cumsum(
        [t.chunk.words for t in tasks])[:-1].tolist()
    assert tasks[-1].words_before + tasks[-1].chunk.words == 3 * corpus.words
    assert [t.index for t in schedule(chunks, epochs=3, seed=5)] == [t.index for t in tasks]


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_one_worker_is_bit_identical_and_seed_matters(encoded, model: str) -> None:
    vocab, corpus = encoded
    config = TrainConfig(model=model, dim=16, epochs=2, workers=1, seed=7, batch_words=2000)
    first = train(corpus, vocab, config)
    second = train(corpus, vocab, config)
    assert np.array_equal(first.syn0, second.syn0)
    assert np.array_equal(first.syn1, second.syn1)
    other = train(corpus, vocab, TrainConfig(model=model, dim=16, epochs=2, workers=1, seed=8,
                                             batch_words=2000))
    assert not np.array_equal(first.syn0, other.syn0)
    assert first.words == 2 * corpus.words and first.pairs > 0


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_training_separates_topics(encoded, model: str) -> None:
    vocab, corpus = encoded
    seen = []
    result = train(corpus, vocab, TrainConfig(model=model, dim=20, epochs=5, workers=2,
                                              sample=0, batch_words=3000),
                   on_progress=seen.append, report_every=0.001)
    unit = result.syn0 / np.linalg.norm(result.syn0, axis=1, keepdims=True)
    topic = np.array([w[0] == "x" for w in vocab.words])
    cos = unit @ unit.T
    within = cos[np.ix_(topic, topic)].mean() + cos[np.ix_(~topic, ~topic)].mean()
    across = 2 * cos[np.ix_(topic, ~topic)].mean()
    assert within - across > 0.5
    assert seen[-1].words_done == seen[-1].total_words == 5 * corpus.words
    assert seen[-1].alpha == pytest.approx(TrainConfig(model=model).min_alpha, rel=1e-3)
