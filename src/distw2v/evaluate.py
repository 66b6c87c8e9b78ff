"""Word-analogy, word-similarity and neighbour-purity benchmarks.

Semantics follow gensim's `KeyedVectors.evaluate_word_analogies` / `evaluate_word_pairs`, so
figures are comparable, but the analogy queries run in batches through
`Vectors.most_similar_batch` instead of one `most_similar` call each. Neighbour purity
scores clustered items (the session corpus of `distw2v.synthetic`) by how many of each
labelled item's nearest neighbours share its cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import Distw2vError
from .vectors.norms import unit_rows

if TYPE_CHECKING:  # vectors/keyed.py calls these evaluators: no import back at run time
    from .vectors import Vectors

METHODS = ("3cosadd", "3cosmul")


class NoPairsError(Distw2vError):
    """A word-similarity file gave no pair to score, so there is no figure: the evaluation
    failed (exit status 1), though the command was well formed."""

    exit_code = 1


@dataclass
class AnalogySection:
    name: str
    correct: int = 0
    total: int = 0  # questions answered: all four words in the restricted vocabulary
    oov: int = 0
    # each question's words as in the file, and True (right), False (wrong) or None (a word
    # out of the vocabulary), in file order: gensim's per-section lists are made from them
    graded: list[tuple[tuple[str, ...], bool | None]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class AnalogyResult:
    sections: list[AnalogySection]
    correct: int
    total: int
    oov: int
    skipped_lines: int
    name: str = "analogies"

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class SimilarityResult:
    name: str
    spearman: float
    pearson: float
    pairs: int
    oov: int
    skipped_lines: int


@dataclass
class PurityResult:
    name: str
    purity: float  # NaN when no labelled item is in the vocabulary
    items: int  # labelled items in the vocabulary, each scored
    missing: int  # labelled items not in the vocabulary
    k: int


Result = AnalogyResult | SimilarityResult | PurityResult


def _lines(path: str | Path) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as src:
            yield from src
    except FileNotFoundError:
        raise Distw2vError(f"The evaluation file {path} does not exist.") from None
    except UnicodeDecodeError:
        raise Distw2vError(f"The evaluation file {path} is not UTF-8 text.") from None


def _vocab_keys(
    vectors: Vectors, limit: int, case_insensitive: bool
) -> tuple[list[str], dict[str, int]]:
    """Lookup keys of the first `limit` words, and key -> id of the key's most frequent word."""
    keys = [w.lower() for w in vectors.words[:limit]] if case_insensitive else vectors.words[:limit]
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    return keys, first


@dataclass
class _Questions:
    section: list[int] = field(default_factory=list)
    graded: list[int] = field(default_factory=list)  # position in its section's `graded`
    ids: list[tuple[int, int, int]] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    exclude: list[list[int]] = field(default_factory=list)


def evaluate_analogies(
    vectors: Vectors,
    path: str | Path,
    restrict_vocab: int = 300_000,
    case_insensitive: bool = True,
    method: str = "3cosadd",
    batch_size: int = 1024,
) -> AnalogyResult:
    """Accuracy on a questions-words file (": section" lines, then "a b c d" lines)."""
    if method not in METHODS:
        raise Distw2vError(f"Unknown analogy method {method!r}; use '3cosadd' or '3cosmul'.")
    if batch_size < 1:
        raise Distw2vError(f"batch_size must be at least 1, not {batch_size}.")
    limit = min(restrict_vocab, len(vectors))
    keys, first = _vocab_keys(vectors, limit, case_insensitive)
    # All ids sharing a key: with case folding a question word may have several case variants,
    # and gensim never predicts any of them.
    variants: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        variants.setdefault(key, []).append(i)

    sections: list[AnalogySection] = []
    questions = _Questions()
    skipped = 0
    for line in _lines(path):
        text = line.strip()
        if not text:
            continue
        if text.startswith(":"):
            sections.append(AnalogySection(text[1:].strip()))
            continue
        raw = text.split()
        words = [w.lower() for w in raw] if case_insensitive else raw
        if len(words) != 4:
            skipped += 1
            continue
        if not sections:  # questions before any header still count, in an unnamed section
            sections.append(AnalogySection("(no section)"))
        section = sections[-1]
        if any(w not in first for w in words):
            section.oov += 1
            section.graded.append((tuple(raw), None))
            continue
        a, b, c, d = words
        section.total += 1
        questions.section.append(len(sections) - 1)
        questions.graded.append(len(section.graded))
        section.graded.append((tuple(raw), False))
        questions.ids.append((first[a], first[b], first[c]))
        questions.expected.append(d)
        questions.exclude.append(variants[a] + variants[b] + variants[c])

    ids = np.asarray(questions.ids, dtype=np.int64).reshape(-1, 3)
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        exclude = questions.exclude[start : start + batch_size]
        ua, ub, uc = (vectors.unit_vectors(batch[:, i]) for i in range(3))
        if method == "3cosadd":
            found, _ = vectors.most_similar_batch(unit_rows(ub + uc - ua), 1, limit, exclude)
        else:
            positive = np.stack([ub, uc], axis=1)
            found, _ = vectors.most_similar_cosmul_batch(positive, ua[:, None], 1, limit, exclude)
        for j, predicted in enumerate(found[:, 0].tolist()):
            q = start + j
            if predicted >= 0 and keys[predicted] == questions.expected[q]:
                section = sections[questions.section[q]]
                section.correct += 1
                graded = questions.graded[q]
                section.graded[graded] = (section.graded[graded][0], True)

    return AnalogyResult(
        sections=sections,
        correct=sum(s.correct for s in sections),
        total=sum(s.total for s in sections),
        oov=sum(s.oov for s in sections),
        skipped_lines=skipped,
        name=Path(path).stem,
    )


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the average of the ranks they span (scipy's 'average')."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.concatenate(([True], xs[1:] != xs[:-1]))
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], len(x))
    average = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = average[np.cumsum(new_group) - 1]
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when fewer than two points or either side is constant."""
    if len(x) < 2:
        return math.nan
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    y = np.asarray(y, dtype=np.float64) - np.mean(y)
    denom = math.sqrt(float(x @ x) * float(y @ y))
    if denom == 0:
        return math.nan
    return max(-1.0, min(1.0, float(x @ y) / denom))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation with average ranks for ties (as scipy.stats.spearmanr)."""
    return pearson(_rankdata(np.asarray(x)), _rankdata(np.asarray(y)))


def correlation_pvalue(r: float, n: int) -> float:
    """Two-sided p-value of a Pearson or Spearman correlation `r` over `n` points, from
    Student's t with n - 2 degrees of freedom (scipy's pearsonr and spearmanr): the
    regularized incomplete beta I_x(a, 1/2) with a = (n - 2) / 2 and x = 1 - r^2."""
    if n < 3 or math.isnan(r):
        return math.nan
    x = 1.0 - min(1.0, r * r)
    a, b = (n - 2) / 2.0, 0.5
    if x in (0.0, 1.0):  # |r| = 1: p = 0; r = 0: p = 1
        return x
    if x > (a + 1) / (a + b + 2):  # the continued fraction converges fast below this point
        return 1.0 - _beta_tail(1.0 - x, b, a)
    return _beta_tail(x, a, b)


def _beta_tail(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction (modified Lentz), for x < (a + 1) / (a + b + 2)."""
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 10_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f


def evaluate_similarity(
    vectors: Vectors,
    path: str | Path,
    case_insensitive: bool = True,
    restrict_vocab: int | None = None,
    *,
    require_pairs: bool = False,
    delimiter: str | None = None,
    dummy4unknown: bool = False,
) -> SimilarityResult:
    """Correlation of cosine similarities with human scores ("w1 w2 score" lines). With no
    pair to score the correlations are NaN, or, with `require_pairs`, NoPairsError says why.
    Fields are split by `delimiter`, or when None by tabs if the line has one, else by any
    whitespace. With `dummy4unknown` (gensim's) a pair with an unknown word counts, with
    model similarity 0."""
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    _, first = _vocab_keys(vectors, limit, case_insensitive)
    left: list[int] = []
    right: list[int] = []
    gold: list[float] = []
    known: list[int] = []  # positions in `gold` of the pairs the model scores
    oov = skipped = 0
    for line in _lines(path):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        # Tabs separate fields when present (entries may then hold spaces); else any whitespace.
        sep = delimiter if delimiter is not None else "\t" if "\t" in text else None
        parts = [p.strip() for p in text.split(sep)] if sep is not None else text.split()
        try:
            w1, w2, raw = parts
            score = float(raw)
        except ValueError:
            skipped += 1
            continue
        if not math.isfinite(score):
            skipped += 1
            continue
        if case_insensitive:
            w1, w2 = w1.lower(), w2.lower()
        if w1 not in first or w2 not in first:
            oov += 1
            if dummy4unknown:
                gold.append(score)
            continue
        known.append(len(gold))
        left.append(first[w1])
        right.append(first[w2])
        gold.append(score)
    if require_pairs and not gold:
        if oov:
            raise NoPairsError(f"None of the {oov} pairs in the similarity file {path} has both "
                               "words in the vocabulary"
                               + (" (compared lower-cased)." if case_insensitive else "."))
        raise NoPairsError(f"The similarity file {path} has no 'word word score' line"
                           + (f" ({skipped} malformed)." if skipped else "."))

    a = unit_rows(vectors.matrix[left]) if left else np.zeros((0, vectors.dim), np.float32)
    b = unit_rows(vectors.matrix[right]) if right else np.zeros((0, vectors.dim), np.float32)
    model = np.zeros(len(gold), dtype=np.float32)  # 0 for dummy4unknown's pairs
    model[known] = np.einsum("ij,ij->i", a, b)
    gold_arr = np.asarray(gold, dtype=np.float64)
    return SimilarityResult(
        name=Path(path).stem,
        spearman=spearman(gold_arr, model),
        pearson=pearson(gold_arr, model),
        pairs=len(gold),
        oov=oov,
        skipped_lines=skipped,
    )


def _read_labels(path: str | Path, case_insensitive: bool) -> dict[str, str]:
    """item -> cluster from "item<TAB>cluster" lines (any whitespace without a tab)."""
    labels: dict[str, str] = {}
    for number, line in enumerate(_lines(path), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p.strip() for p in text.split("\t")] if "\t" in text else text.split()
        if len(parts) != 2 or not all(parts):
            raise Distw2vError(f"Line {number} of the labels file {path} is not "
                               "'item<TAB>cluster'.")
        item, cluster = parts
        item = item.lower() if case_insensitive else item
        if labels.setdefault(item, cluster) != cluster:
            raise Distw2vError(f"The labels file {path} gives {item!r} two clusters "
                               f"({labels[item]!r} and {cluster!r}, line {number}).")
    return labels


def evaluate_purity(
    vectors: Vectors,
    labels_path: str | Path,
    k: int = 10,
    case_insensitive: bool = True,
    batch_size: int = 1024,
) -> PurityResult:
    """Mean, over labelled items in the vocabulary, of the share of their `k` nearest
    neighbours (cosine, among all words but the item itself) that carry the same label."""
    if k < 1:
        raise Distw2vError(f"k must be at least 1, not {k}.")
    if k >= len(vectors):
        raise Distw2vError(f"k ({k}) must be smaller than the vocabulary ({len(vectors)} words).")
    if batch_size < 1:
        raise Distw2vError(f"batch_size must be at least 1, not {batch_size}.")
    labels = _read_labels(labels_path, case_insensitive)
    keys, first = _vocab_keys(vectors, len(vectors), case_insensitive)
    variants: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        variants.setdefault(key, []).append(i)
    # Each word's cluster as an integer (-1: unlabelled), so neighbours compare as arrays.
    cluster_ids = {c: n for n, c in enumerate(sorted(set(labels.values())))}
    word_cluster = np.array([cluster_ids[labels[key]] if key in labels else -1 for key in keys],
                            dtype=np.int64)
    scored = [first[item] for item in labels if item in first]
    shared = 0
    for start in range(0, len(scored), batch_size):
        ids = scored[start : start + batch_size]
        # a case variant of the item is the item itself, not a neighbour
        exclude = [variants[keys[i]] for i in ids]
        found, _ = vectors.most_similar_batch(vectors.unit_vectors(ids), k, None, exclude)
        same = (word_cluster[found] == word_cluster[ids][:, None]) & (found >= 0)
        shared += int(same.sum())
    return PurityResult(
        name=Path(labels_path).stem,
        purity=shared / (k * len(scored)) if scored else math.nan,
        items=len(scored),
        missing=len(labels) - len(scored),
        k=k,
    )


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def format_table(results: list[Result]) -> str:
    """An aligned plain-text report: analogy sections and their totals, similarity sets and
    neighbour purities, in the order given."""
    rows: list[tuple[str, str]] = []
    for result in results:
        if isinstance(result, AnalogyResult):
            rows.append((result.name, ""))
            for s in result.sections:
                rows.append(
                    (f"  {s.name}", f"{100 * s.accuracy:5.1f}%  {s.correct}/{s.total}  oov {s.oov}")
                )
            rows.append(
                (
                    "  total",
                    f"{100 * result.accuracy:5.1f}%  {result.correct}/{result.total}  "
                    f"oov {result.oov}  skipped {result.skipped_lines}",
                )
            )
        elif isinstance(result, PurityResult):
            rows.append(
                (
                    result.name,
                    f"purity@{result.k} {_fmt(result.purity)}  items {result.items}  "
                    f"missing {result.missing}",
                )
            )
        else:
            rows.append(
                (
                    result.name,
                    f"spearman {_fmt(result.spearman)}  pearson {_fmt(result.pearson)}  "
                    f"pairs {result.pairs}  oov {result.oov}  skipped {result.skipped_lines}",
                )
            )
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join(f"{name:<{width}}  {text}".rstrip() for name, text in rows)


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value  # JSON has no NaN


def results_to_json(results: list[Result]) -> dict[str, Any]:
    """A JSON-able summary: {"analogies": [...], "similarity": [...], "purity": [...]}."""
    analogies: list[dict[str, Any]] = []
    similarity: list[dict[str, Any]] = []
    purity: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, AnalogyResult):
            analogies.append(
                {
                    "name": r.name,
                    "accuracy": r.accuracy,
                    "correct": r.correct,
                    "total": r.total,
                    "oov": r.oov,
                    "skipped_lines": r.skipped_lines,
                    "sections": [
                        {
                            "name": s.name,
                            "accuracy": s.accuracy,
                            "correct": s.correct,
                            "total": s.total,
                            "oov": s.oov,
                        }
                        for s in r.sections
                    ],
                }
            )
        elif isinstance(r, PurityResult):
            purity.append(
                {
                    "name": r.name,
                    "purity": _number(r.purity),
                    "items": r.items,
                    "missing": r.missing,
                    "k": r.k,
                }
            )
        else:
            similarity.append(
                {
                    "name": r.name,
                    "spearman": _number(r.spearman),
                    "pearson": _number(r.pearson),
                    "pairs": r.pairs,
                    "oov": r.oov,
                    "skipped_lines": r.skipped_lines,
                }
            )
    return {"analogies": analogies, "similarity": similarity, "purity": purity}
