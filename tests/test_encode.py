"""Encoding sentences into id shards."""

from __future__ import annotations

import pytest

from distw2v.config import VocabConfig
from distw2v.encode import EncodedCorpus, encode_corpus
from distw2v.errors import CorpusError, ModelFormatError
from distw2v.vocab import build_vocabulary

SENTENCES = [["a", "b", "zz", "a"], ["zz"], ["c", "a", "b"], ["b", "a"]] * 3


def decode(corpus: EncodedCorpus, words: list[str]) -> list[list[str]]:
    out = []
    for i in range(len(corpus.shards)):
        ids, offsets = corpus.load_shard(i)
        out += [[words[w] for w in ids[offsets[s]:offsets[s + 1]]] for s in range(len(offsets) - 1)]
    return out


def test_round_trip_drops_unknown_words_and_empty_sentences(tmp_path) -> None:
    vocab = build_vocabulary(SENTENCES, VocabConfig(min_count=7))
    assert vocab.words == ["a", "b"]
    corpus = encode_corpus(SENTENCES, vocab, tmp_path / "enc", shard_words=5)
    assert len(corpus.shards) > 1
    expected = [[w for w in s if w in ("a", "b")] for s in SENTENCES]
    assert decode(corpus, vocab.words) == [s for s in expected if s]
    assert corpus.words == sum(map(len, expected))
    assert corpus.corpus_words == sum(map(len, SENTENCES))
    reopened = EncodedCorpus.open(tmp_path / "enc")
    assert reopened == corpus


def test_mismatched_vocabulary_and_corrupt_manifest(tmp_path) -> None:
    vocab = build_vocabulary(SENTENCES, VocabConfig(min_count=1))
    corpus = encode_corpus(SENTENCES, vocab, tmp_path / "enc")
    other = build_vocabulary(SENTENCES, VocabConfig(min_count=4))
    with pytest.raises(ModelFormatError, match="different vocabulary"):
        corpus.check_matches(other)
    (tmp_path / "enc" / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="corrupt"):
        EncodedCorpus.open(tmp_path / "enc")


def test_failure_mid_stream_leaves_nothing(tmp_path) -> None:
    vocab = build_vocabulary(SENTENCES, VocabConfig(min_count=1))

    def broken():
        yield ["a", "b"]
        raise CorpusError("disk went away.")

    with pytest.raises(CorpusError):
        encode_corpus(broken(), vocab, tmp_path / "enc")
    assert list(tmp_path.iterdir()) == []


def test_corpus_without_known_words_is_an_error(tmp_path) -> None:
    vocab = build_vocabulary(SENTENCES, VocabConfig(min_count=1))
    with pytest.raises(CorpusError, match="no word of the vocabulary"):
        encode_corpus([["qq", "rr"]], vocab, tmp_path / "enc")
    assert not (tmp_path / "enc").exists()
