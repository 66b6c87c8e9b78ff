"""The local trainer: determinism, chunk planning and that training learns structure."""

from __future__ import annotations

import numpy as np
import pytest

from distw2v.checkpoints import RunCheckpoints
from distw2v.config import TrainConfig, VocabConfig
from distw2v.encode import encode_corpus
from distw2v.errors import Distw2vError
from distw2v.training import plan_chunks, schedule, train
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


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(encoded, tmp_path, model,
                                                                   monkeypatch) -> None:
    vocab, corpus = encoded
    config = TrainConfig(model=model, dim=12, epochs=3, workers=1, seed=2, batch_words=1000)
    whole = train(corpus, vocab, config)
    run = {"engine": "local", "what": "this test"}

    saved = RunCheckpoints.saved

    def crash_after_epoch_1(self, epoch):  # a crash right after epoch 1 is safely saved
        saved(self, epoch)
        if epoch == 1:
            raise Interrupted

    monkeypatch.setattr(RunCheckpoints, "saved", crash_after_epoch_1)
    with pytest.raises(Interrupted):
        train(corpus, vocab, config, checkpoints=RunCheckpoints(str(tmp_path), run))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-1", "progress.json"]

    seen = []
    resumed = train(corpus, vocab, config, checkpoints=RunCheckpoints(str(tmp_path), run),
                    on_progress=seen.append)
    assert resumed.words == 2 * corpus.words  # only the epochs left
    assert seen[0].words_done >= corpus.words and seen[-1].words_done == 3 * corpus.words
    np.testing.assert_array_equal(resumed.syn0, whole.syn0)
    np.testing.assert_array_equal(resumed.syn1, whole.syn1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-3", "progress.json"]

    # a finished run given its directory again trains nothing and returns the saved vectors
    again = train(corpus, vocab, config, checkpoints=RunCheckpoints(str(tmp_path), run))
    assert again.words == 0
    np.testing.assert_array_equal(again.syn0, whole.syn0)


def test_checkpoints_of_another_run_or_damaged_ones_are_refused(encoded, tmp_path) -> None:
    vocab, corpus = encoded
    config = TrainConfig(dim=8, epochs=2, workers=1, seed=2, batch_words=1000)
    train(corpus, vocab, config, checkpoints=RunCheckpoints(str(tmp_path), {"seed": 2}))
    with pytest.raises(Distw2vError, match="another run .*seed"):
        RunCheckpoints(str(tmp_path), {"seed": 3}).epochs_done()
    (tmp_path / "epoch-2" / "syn1.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(Distw2vError, match="checkpoint .* is unreadable"):
        train(corpus, vocab, config, checkpoints=RunCheckpoints(str(tmp_path), {"seed": 2}))
