"""Tests for distw2v.corpus: sources, decompression, tokenization, bounded memory, errors."""

from __future__ import annotations

import bz2
import functools
import glob
import gzip
import http.server
import io
import lzma
import random
import subprocess
import sys
import threading
import time
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from distw2v.config import VocabConfig
from distw2v.corpus import (
    CorpusStats,
    describe_stats,
    expand_sources,
    input_splits,
    iter_sentences,
    iter_sentences_in_range,
    open_binary,
)
from distw2v.corpus.listing import _glob, _glob_match
from distw2v.errors import CorpusError

PLAIN = VocabConfig()
TEXT = "The quick  brown fox\n\njumps over\tthe lazy dog\r\n   \nlast line without newline"
EXPECTED = [
    ["The", "quick", "brown", "fox"],
    ["jumps", "over", "the", "lazy", "dog"],
    ["last", "line", "without", "newline"],
]

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": zstandard.ZstdCompressor().compress,
}


def write(path: Path, data: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


def reference(text: str, config: VocabConfig) -> list[list[str]]:
    """Slow, obviously-correct tokenizer the streaming reader must agree with."""
    sentences = []
    for line in text.split("\n"):
        tokens = []
        for token in line.split():
            if config.lowercase:
                token = token.lower()
            token = "".join(
                ch
                for ch in token
                if not (config.strip_punctuation and unicodedata.category(ch).startswith("P"))
                and not (config.strip_digits and unicodedata.category(ch) == "Nd")
            )
            if token:
                tokens.append(token)
        size = config.max_sentence_length
        sentences += [tokens[i : i + size] for i in range(0, len(tokens), size)]
    return sentences


# --------------------------------------------------------------------------- reading


def test_plain_text_sentences_and_stats(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", TEXT)
    stats = CorpusStats()
    assert list(iter_sentences(path, PLAIN, stats)) == EXPECTED
    assert stats.files == 1
    assert stats.lines == 5  # the empty and the blank line count as lines
    assert stats.tokens == 13
    assert stats.invalid_utf8_lines == 0
    assert stats.total_bytes == stats.bytes_read == len(TEXT.encode())


def test_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.txt", "\ufeffhello world\n")
    assert list(iter_sentences(path, PLAIN)) == [["hello", "world"]]


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    stats = CorpusStats()
    assert list(iter_sentences(write(tmp_path / "e.txt", b""), PLAIN, stats)) == []
    assert (stats.files, stats.lines, stats.tokens) == (1, 0, 0)


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_compressed_formats(tmp_path: Path, ext: str) -> None:
    raw = COMPRESSORS[ext](TEXT.encode())
    path = write(tmp_path / f"a.txt.{ext}", raw)
    stats = CorpusStats()
    assert list(iter_sentences(path, PLAIN, stats)) == EXPECTED
    # bytes_read counts the compressed bytes on storage, not the decompressed text
    assert stats.bytes_read == stats.total_bytes == len(raw)


def test_gzip_detected_by_magic_bytes_despite_txt_name(tmp_path: Path) -> None:
    path = write(tmp_path / "misleading.txt", gzip.compress(TEXT.encode()))
    assert list(iter_sentences(path, PLAIN)) == EXPECTED


def test_multi_member_gzip_and_multi_frame_zstd(tmp_path: Path) -> None:
    part = b"one two\n"
    gz = write(tmp_path / "m.gz", gzip.compress(part) + gzip.compress(part))
    zst_frame = zstandard.ZstdCompressor().compress(part)
    zst = write(tmp_path / "m.zst", zst_frame + zst_frame)
    for path in (gz, zst):
        assert list(iter_sentences(path, PLAIN)) == [["one", "two"], ["one", "two"]]


def test_zstd_with_a_long_window_as_pushshift_writes_it(tmp_path: Path) -> None:
    # zstd --long=31 declares a window beyond the decoder's default limit (2^27): a frame
    # of unknown size written with window_log 28 needs the same raised limit
    text = "".join(f"w{i % 97} é{i % 13}\n" for i in range(20_000)).encode()
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=28)
    packed = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(
            packed, closefd=False) as out:
        out.write(text)  # streamed: no content size in the header, the window stays 2^28
    path = write(tmp_path / "RC_2020-01.zst", packed.getvalue())
    with pytest.raises(zstandard.ZstdError, match="too much memory"):
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(packed.getvalue())).read()
    with pytest.raises(CorpusError, match="raise --zstd-window-log .* to 28 to read it"):
        list(iter_sentences(path, PLAIN))  # a text file: held to zstd's own limit
    sentences = list(iter_sentences(path, VocabConfig(zstd_window_log=28),
                                    block_size=1000))  # é split at block edges
    assert sentences == [line.split() for line in text.decode().splitlines()]


def _zstd_bomb(path: Path, blocks: int, window_log: int = 31) -> str:
    """A zstd frame that declares a 2**window_log window, then `blocks` RLE blocks of
    128 KiB of 'a' (4 bytes each): a few KB that fill the window they declare."""
    header = b"\x28\xb5\x2f\xfd" + bytes([0x00, (window_log - 10) << 3])  # no size given
    block = (128 << 10) << 3 | 1 << 1  # size, type RLE
    body = (block.to_bytes(3, "little") + b"a") * (blocks - 1)
    return write(path, header + body + (block | 1).to_bytes(3, "little") + b"a")  # last


def test_a_zstd_window_over_the_limit_is_refused_in_one_sentence(tmp_path: Path) -> None:
    bomb = _zstd_bomb(tmp_path / "bomb.zst", blocks=8)
    refusal = (f"{bomb} declares a zstd window of 2 GiB, over the 128 MiB allowed: raise "
               f"--zstd-window-log (the vocab setting zstd_window_log) to 31 to read it.")
    for config in (PLAIN, VocabConfig(format="jsonl", text_field="body"),
                   VocabConfig(format="reddit", zstd_window_log=27)):
        with pytest.raises(CorpusError) as refused:
            list(iter_sentences(bomb, config))
        assert str(refused.value) == refusal
    # allowed 2 GiB, the same frame reads: 1 MiB of 'a', one token
    assert list(iter_sentences(bomb, VocabConfig(zstd_window_log=31))) == [["a" * (1 << 20)]]
    # a job's vocab settings carry it (the service builds VocabConfig from them), and the
    # reader of a Spark task's input split takes it from there
    from distw2v.service.schemas import InvalidSetting, JobRequest, to_configs

    vocab, _ = to_configs(JobRequest(sources=[bomb], vocab={"zstd_window_log": 31}))
    assert list(iter_sentences_in_range(bomb, 0, None, vocab)) == [["a" * (1 << 20)]]
    with pytest.raises(CorpusError, match="to 31 to read it"):
        list(iter_sentences_in_range(bomb, 0, None, PLAIN))
    with pytest.raises(InvalidSetting, match="^zstd_window_log must be at most 31.$"):
        to_configs(JobRequest(sources=[bomb], vocab={"zstd_window_log": 32}))
    huge = write(tmp_path / "huge.zst", b"\x28\xb5\x2f\xfd\xe0" + (1 << 40).to_bytes(8, "little"))
    with pytest.raises(CorpusError, match=r"window of 1,024 GiB, .* no zstd decoder reads one "
                                          r"over 2 GiB\.$"):
        list(iter_sentences(huge, VocabConfig(zstd_window_log=31)))


def test_a_refused_zstd_window_costs_no_memory(tmp_path: Path) -> None:
    # 2,048 blocks: 256 MiB of output, which the decoder keeps in a window of that much
    bomb = _zstd_bomb(tmp_path / "bomb.zst", blocks=2048)
    script = f"""if True:
        import resource
        from distw2v.corpus import open_binary
        from distw2v.errors import CorpusError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            with open_binary({bomb!r}) as stream:
                while stream.read(1 << 20):
                    pass
        except CorpusError as exc:
            print(exc)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10)
        """
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].endswith("raise --zstd-window-log (the vocab setting zstd_window_log) to 31 "
                           "to read it.")
    assert int(out[1]) < 32  # MiB the reader added to its process


def test_open_binary_decompresses_and_counts_raw_bytes(tmp_path: Path) -> None:
    raw = lzma.compress(b"x" * 100_000)
    path = write(tmp_path / "blob.dat", raw)  # no extension: magic bytes decide
    stats = CorpusStats()
    with open_binary(path, stats) as stream:
        assert stream.read(10) == b"x" * 10
        assert stream.read() == b"x" * 99_990
        assert stream.read(5) == b""
    assert stats.bytes_read == len(raw)


def test_several_files_in_order_with_stats(tmp_path: Path) -> None:
    a = write(tmp_path / "b.txt", "from b\n")
    b = write(tmp_path / "a.txt.gz", gzip.compress(b"from a\n"))
    stats = CorpusStats()
    assert list(iter_sentences([a, b], PLAIN, stats)) == [["from", "b"], ["from", "a"]]
    assert stats.files == 2 and stats.lines == 2 and stats.tokens == 4
    assert describe_stats(stats) == "2 files, 2 lines, 4 tokens"


# --------------------------------------------------------------------------- sources


def test_directory_expansion_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    for name in ["b.txt", "a.txt", "sub/c.txt", "sub/a.txt", ".hidden.txt", ".git/x.txt"]:
        write(root / name, "w\n")
    expected = [str(root / n) for n in ["a.txt", "b.txt", "sub/a.txt", "sub/c.txt"]]
    assert expand_sources(str(root)) == expected


def test_glob_expansion_sorted_and_recursive(tmp_path: Path) -> None:
    for name in ["z.txt", "m.txt", "a.gz", "deep/k.txt"]:
        write(tmp_path / name, "w\n")
    assert expand_sources(str(tmp_path / "*.txt")) == [
        str(tmp_path / "m.txt"),
        str(tmp_path / "z.txt"),
    ]
    assert expand_sources(str(tmp_path / "**" / "*.txt")) == [
        str(tmp_path / "deep/k.txt"),
        str(tmp_path / "m.txt"),
        str(tmp_path / "z.txt"),
    ]


_REMOTE_TREE = ["a.gz", "x/a.gz", "x/y/b.txt", "x/y/z/c.gz", ".h/a.gz", "ab/ba.gz", "x/.d.gz",
                "aa", "x/aa.txt", "x/y/z/w/aa.gz"]
_PATTERN_PARTS = ["*", "**", "a*", "?", "[ax]*", "x", "y", "*.gz", ".*", "[!a]*", "*a*"]


@pytest.fixture(scope="module")
def remote_tree() -> Iterator[Any]:
    import fsspec

    fs = fsspec.filesystem("memory")
    for name in _REMOTE_TREE:
        fs.pipe(f"/globbed/{name}", b"w\n")
    yield fs
    fs.rm("/globbed", recursive=True)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_PATTERN_PARTS), min_size=1, max_size=4))
def test_a_remote_glob_matches_what_fsspec_glob_matches(remote_tree: Any,
                                                        parts: list[str]) -> None:
    pattern = "/globbed/" + "/".join(parts)
    assume(glob.has_magic(pattern))  # as _expand_fsspec asks only then
    assert sorted(_glob(remote_tree, pattern)) == sorted(remote_tree.glob(pattern, detail=True))


def test_a_remote_glob_takes_linear_time(remote_tree: Any) -> None:
    # fsspec's glob, one regex for the whole path, took 0.47 s for a*a*a*b against a
    # 1,000-character name (1,000x the time for 100 characters), 56 s for twelve '*'
    # against 40 characters, 0.14 s for **/**/**/b against one name 300 directories deep
    # (42 s for six '**/' against 100)
    def seconds(match: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            match()
            best = min(best, time.perf_counter() - start)
        return best

    def listing(n: int) -> float:
        remote_tree.pipe(f"/slow/{'a' * n}", b"w\n")
        with pytest.raises(CorpusError, match="matches no files"):
            expand_sources("memory:///slow/a*a*a*b")
        took = seconds(lambda: _glob(remote_tree, "/slow/a*a*a*b"))
        remote_tree.rm("/slow", recursive=True)
        return took

    def deep(n: int) -> float:  # a listing has every directory above: match one name
        return seconds(lambda: _glob_match(["**", "**", "**", "b"], ["a"] * n, True))

    for time_of, n in ((listing, 100), (deep, 300)):
        growth = time_of(10 * n) / (10 * time_of(n))
        assert growth < 2.5, (time_of.__name__, growth)


def test_sources_keep_their_order_and_a_file_is_read_once(tmp_path: Path) -> None:
    b = write(tmp_path / "b.txt", "b\n")
    a = write(tmp_path / "a.txt", "a\n")
    assert expand_sources([b, str(tmp_path / "*.txt"), a]) == [b, a]


def test_file_url(tmp_path: Path) -> None:
    path = write(tmp_path / "dir" / "a.txt.gz", gzip.compress(TEXT.encode()))
    url = Path(path).as_uri()
    assert url.startswith("file://")
    assert expand_sources(url) == [url]
    assert list(iter_sentences(url, PLAIN)) == EXPECTED
    # a directory given as a URL expands to URLs of its files
    (listed,) = expand_sources((tmp_path / "dir").as_uri())
    assert listed.startswith("file://") and listed.endswith("/dir/a.txt.gz")
    assert list(iter_sentences(listed, PLAIN)) == EXPECTED


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_url_through_fsspec(http_root: tuple[str, Path]) -> None:
    pytest.importorskip("aiohttp")
    base, root = http_root
    write(root / "c.txt.gz", gzip.compress(TEXT.encode()))
    url = f"{base}/c.txt.gz"
    assert expand_sources(url) == [url]
    stats = CorpusStats()
    assert list(iter_sentences(url, PLAIN, stats)) == EXPECTED
    assert stats.bytes_read == (root / "c.txt.gz").stat().st_size
    with pytest.raises(CorpusError, match="missing.txt"):
        expand_sources(f"{base}/missing.txt")
    # larger than fsspec's default 5 MB block, from a server that ignores Range requests
    big = "word " * 1_400_000 + "\nend\n"
    write(root / "big.txt", big)
    stats = CorpusStats()
    assert sum(map(len, iter_sentences(f"{base}/big.txt", PLAIN, stats))) == 1_400_001
    assert stats.bytes_read == len(big)


def test_unreachable_http_url() -> None:
    pytest.importorskip("aiohttp")
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.txt"
    with pytest.raises(CorpusError, match=f"127.0.0.1:{port}/x.txt"):
        expand_sources(url)


# --------------------------------------------------------------------------- tokenizing


def test_max_sentence_length_cuts_long_lines(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(10)]
    path = write(tmp_path / "l.txt", " ".join(words) + "\nshort one\n")
    config = VocabConfig(max_sentence_length=4)
    assert list(iter_sentences(path, config)) == [
        words[0:4],
        words[4:8],
        words[8:10],
        ["short", "one"],
    ]


def test_tokenizer_options(tmp_path: Path) -> None:
    line = "Hello, WORLD! «Quoted» 3rd l'été ΟΔΟΣ ٣٤ 42 -- ..."
    path = write(tmp_path / "t.txt", line + "\n")
    assert list(iter_sentences(path, PLAIN)) == [line.split()]
    lower = VocabConfig(lowercase=True)
    assert list(iter_sentences(path, lower)) == [line.lower().split()]
    assert list(iter_sentences(path, lower))[0][5] == "οδος"  # final sigma per token
    punct = VocabConfig(strip_punctuation=True)
    assert list(iter_sentences(path, punct)) == [
        ["Hello", "WORLD", "Quoted", "3rd", "lété", "ΟΔΟΣ", "٣٤", "42"]
    ]
    digits = VocabConfig(strip_digits=True)
    assert list(iter_sentences(path, digits))[0][3:6] == ["rd", "l'été", "ΟΔΟΣ"]
    assert "٣٤" not in list(iter_sentences(path, digits))[0]  # Arabic-Indic digits are Nd
    every = VocabConfig(lowercase=True, strip_punctuation=True, strip_digits=True)
    assert list(iter_sentences(path, every)) == [["hello", "world", "quoted", "rd", "lété", "οδος"]]


def test_tokenizer_options_on_ascii_and_non_ascii_blocks_agree(tmp_path: Path) -> None:
    # ASCII text takes the str.translate path, non-ASCII the lookup-array path.
    ascii_line = "It's 10:30, isn't it? Yes -- 100%!"
    config = VocabConfig(lowercase=True, strip_punctuation=True, strip_digits=True)
    plain = write(tmp_path / "ascii.txt", ascii_line + "\n")
    accented = write(tmp_path / "accent.txt", ascii_line + " é\n")
    assert list(iter_sentences(plain, config)) == reference(ascii_line, config)
    assert list(iter_sentences(accented, config)) == [reference(ascii_line, config)[0] + ["é"]]


def test_multibyte_characters_split_across_blocks(tmp_path: Path) -> None:
    # Every character is 2-4 bytes; a 16-byte block cuts them at every possible offset.
    text = "\n".join(" ".join(["日本語", "ελληνικά", "😀😀", "é"] * 7) for _ in range(9))
    path = write(tmp_path / "u.txt", text)
    for offset in range(4):
        shifted = write(tmp_path / f"u{offset}.txt", "x" * offset + text)
        stats = CorpusStats()
        got = list(iter_sentences(shifted, PLAIN, stats, block_size=16))
        assert got == reference("x" * offset + text, PLAIN)
        assert stats.invalid_utf8_lines == 0
    assert list(iter_sentences(path, PLAIN, block_size=17)) == reference(text, PLAIN)


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    data = b"good line\nbad \xff\xfe line\nalso good\ntrunc\xe6\x97\nend \xe6\x97"
    stats = CorpusStats()
    got = list(iter_sentences(write(tmp_path / "bad.txt", data), PLAIN, stats))
    assert got == [
        ["good", "line"],
        ["bad", "\ufffd\ufffd", "line"],
        ["also", "good"],
        ["trunc\ufffd"],
        ["end", "\ufffd"],  # an incomplete character at the very end is replaced too
    ]
    assert stats.invalid_utf8_lines == 3
    assert describe_stats(stats).endswith("; 3 lines had invalid UTF-8 (replaced)")


def test_invalid_utf8_in_a_line_longer_than_a_block(tmp_path: Path) -> None:
    data = b"start \xff " + b"word " * 100 + b"\nnext line\n"
    stats = CorpusStats()
    got = list(iter_sentences(write(tmp_path / "x.txt", data), PLAIN, stats, block_size=32))
    assert got == [["start", "\ufffd"] + ["word"] * 100, ["next", "line"]]
    assert stats.invalid_utf8_lines == 1  # found in the part tokenized before the line ended
    assert stats.lines == 2
    assert stats.tokens == 104


def test_long_lines_with_small_blocks_match_the_reference(tmp_path: Path) -> None:
    rng = random.Random(7)
    words = ["a", "bb", "ccc", "Ünï", "ωμέγα", "日本", "x,y", "9"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 300))) for _ in range(30)]
    text = "\n".join(lines)
    path = write(tmp_path / "r.txt", text)
    for config in (
        VocabConfig(max_sentence_length=7),
        VocabConfig(max_sentence_length=1, lowercase=True, strip_punctuation=True),
        VocabConfig(strip_digits=True),
    ):
        for block_size in (16, 50, 333):
            stats = CorpusStats()
            got = list(iter_sentences(path, config, stats, block_size=block_size))
            assert got == reference(text, config), (config, block_size)
            assert stats.lines == 30
            assert stats.tokens == sum(map(len, got))


def test_randomized_against_reference(tmp_path: Path) -> None:
    rng = random.Random(3)
    alphabet = list("aBé日😀1٣,.« \t\n\r") + ["\u2028", "\x85", "Σ"]
    path = tmp_path / "fuzz.txt"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        block_size = rng.randint(16, 40)
        if max(map(len, text.split()), default=0) > block_size:
            continue  # a token longer than a block may be cut; covered elsewhere
        config = VocabConfig(
            lowercase=rng.random() < 0.5,
            strip_punctuation=rng.random() < 0.5,
            strip_digits=rng.random() < 0.5,
            max_sentence_length=rng.randint(1, 5),
        )
        path.write_text(text, encoding="utf-8")
        got = list(iter_sentences(str(path), config, block_size=block_size))
        assert got == reference(text, config), (text, config, block_size)


def test_token_longer_than_a_block_is_cut_not_lost(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "a " + "x" * 100 + " b\n")
    got = list(iter_sentences(path, PLAIN, block_size=32))
    assert got[0][0] == "a" and got[-1][-1] == "b"
    assert "".join(t for s in got for t in s if t.startswith("x")) == "x" * 100


def test_single_line_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    word = b"abcdefghijklmnopqrstuvwxy "  # 26 bytes, no newline anywhere
    count = 20_000_000 // len(word)
    path = write(tmp_path / "oneline.txt", word * count)
    list(iter_sentences(write(tmp_path / "warm.txt", "warm up\n"), PLAIN))  # imports
    stats = CorpusStats()
    tracemalloc.start()
    try:
        longest = 0
        for sentence in iter_sentences(path, PLAIN, stats):
            longest = max(longest, len(sentence))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.tokens == count and stats.lines == 1
    assert longest == PLAIN.max_sentence_length
    assert peak < 6_000_000, f"peak {peak / 1e6:.1f} MB while streaming a 20 MB line"


# --------------------------------------------------------------------------- errors


def test_missing_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="nope.txt does not exist"):
        expand_sources(missing)
    with pytest.raises(CorpusError, match="nope.txt"):
        iter_sentences([missing], PLAIN)  # raised at the call, before iterating
    with pytest.raises(CorpusError, match="nope.txt"):
        with open_binary(missing):
            pass


def test_empty_glob_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"\*\.txt matches no files"):
        expand_sources(str(tmp_path / "*.txt"))
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty" / ".hidden", "x\n")
    with pytest.raises(CorpusError, match="empty contains no files"):
        expand_sources(str(tmp_path / "empty"))
    with pytest.raises(CorpusError, match="no corpus source"):
        expand_sources([])


def test_unknown_protocol() -> None:
    with pytest.raises(CorpusError, match="nosuchproto://bucket/x.txt.*unknown protocol"):
        expand_sources("nosuchproto://bucket/x.txt")


@pytest.mark.parametrize(
    ("url", "package"), [("s3://bucket/corpus.txt", "s3fs"), ("gcs://b/c.txt", "gcsfs")]
)
def test_missing_backend_names_the_package(url: str, package: str) -> None:
    try:
        __import__(package)
    except ImportError:
        pass
    else:
        pytest.skip(f"{package} is installed")
    with pytest.raises(CorpusError, match=f"{url}.*install {package}"):
        expand_sources(url)


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
def test_truncated_file(tmp_path: Path, ext: str) -> None:
    raw = COMPRESSORS[ext](TEXT.encode() * 200)
    path = write(tmp_path / f"cut.txt.{ext}", raw[: len(raw) // 2])
    with pytest.raises(CorpusError, match=f"cut.txt.{ext}"):
        list(iter_sentences(path, PLAIN))


def test_corrupt_gzip(tmp_path: Path) -> None:
    raw = bytearray(gzip.compress(TEXT.encode() * 100))
    raw[20:40] = b"\xff" * 20
    path = write(tmp_path / "bad.gz", bytes(raw))
    with pytest.raises(CorpusError, match="bad.gz could not be read or decompressed"):
        list(iter_sentences(path, PLAIN))


def test_wrong_extension_content_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "fake.gz", "plain text pretending to be gzip\n")
    with pytest.raises(CorpusError, match="fake.gz"):
        list(iter_sentences(path, PLAIN))


def test_binary_garbage(tmp_path: Path) -> None:
    rng = random.Random(0)
    with_nul = write(tmp_path / "img.bin", bytes([0]) + rng.randbytes(4000))
    with pytest.raises(CorpusError, match=r"img.bin does not look like text \(binary data\?\)"):
        list(iter_sentences(with_nul, PLAIN))
    no_nul = bytes(rng.randrange(128, 256) for _ in range(4000))  # mostly invalid UTF-8
    gz = write(tmp_path / "noise.gz", gzip.compress(no_nul))
    with pytest.raises(CorpusError, match="noise.gz does not look like text"):
        list(iter_sentences(gz, PLAIN))


def test_iter_sentences_rejects_a_tiny_block_size(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="block_size"):
        iter_sentences(write(tmp_path / "a.txt", "a\n"), PLAIN, block_size=1)


def test_describe_stats_singular_and_invalid() -> None:
    stats = CorpusStats(files=1, lines=12_345, tokens=1_234_567, invalid_utf8_lines=1)
    assert describe_stats(stats) == (
        "1 file, 12,345 lines, 1,234,567 tokens; 1 line had invalid UTF-8 (replaced)"
    )


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_byte_ranges_hand_out_every_line_once(tmp_path, trailing_newline: bool) -> None:
    rng = random.Random(7)
    tokens = ["a", "bé", "ü€x", "word", "𝔘nicode", "zz"]  # 1- to 4-byte characters
    lines = [" ".join(rng.choice(tokens) for _ in range(rng.choice([0, 1, 3, 8, 40])))
             for _ in range(150)]
    text = "\n".join(lines) + ("\n" if trailing_newline else "")
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    size = len(text.encode())
    config = VocabConfig(min_count=1, max_sentence_length=16)
    whole = list(iter_sentences([str(path)], config))
    for split_bytes in (1, 7, 100, 4096, size - 1, size):
        splits = input_splits([str(path)], split_bytes)
        assert splits[0][1] == 0 and all(a[2] == b[1] for a, b in zip(splits, splits[1:]))
        assert len(splits) == 1 or splits[-1][2] == size
        got = [s for uri, start, end in splits
               for s in iter_sentences_in_range(uri, start, end, config)]
        assert got == whole, split_bytes


def test_a_compressed_file_is_one_range_read_by_the_range_at_zero(tmp_path) -> None:
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt") as out:
        out.write("one two\nthree\n" * 5000)
    assert input_splits([str(path)], 10) == [(str(path), 0, None)]
    disguised = tmp_path / "c.txt"  # gzip bytes under a plain name: split, then detected
    disguised.write_bytes(path.read_bytes())
    splits = input_splits([str(disguised)], 10)
    assert len(splits) > 1
    config = VocabConfig(min_count=1)
    read = [list(iter_sentences_in_range(u, a, b, config)) for u, a, b in splits]
    assert read[0] == list(iter_sentences([str(path)], config))
    assert all(r == [] for r in read[1:])
