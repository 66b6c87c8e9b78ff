"""distw2v: word2vec for corpora and vocabularies too large for one machine.

    import distw2v
    vectors = distw2v.train("corpus.txt.gz", dim=100, min_count=5)
    vectors.most_similar("king")

`train` and `Word2Vec` (api.py) train with an engine, `Local()` or `Spark(...)`; `Vectors`
loads, saves and queries a model; `evaluate_analogies` and `evaluate_similarity` score it.
The names load on first use, so `import distw2v` (the CLI, every Spark worker) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOMES = {
    "train": "api", "Word2Vec": "api",
    "RunConfig": "config", "SparkConfig": "config", "TrainConfig": "config",
    "VocabConfig": "config",
    "Engine": "engines", "Local": "engines", "Spark": "engines",
    "Distw2vError": "errors",
    "evaluate_analogies": "evaluate", "evaluate_similarity": "evaluate",
    "ProgressEvent": "progress", "Summary": "progress",
    "Vectors": "vectors",
}
__all__ = ["Distw2vError", "Engine", "Local", "ProgressEvent", "RunConfig", "Spark",
           "SparkConfig", "Summary", "TrainConfig", "Vectors", "VocabConfig", "Word2Vec",
           "__version__", "evaluate_analogies", "evaluate_similarity", "train"]

if TYPE_CHECKING:
    from .api import Word2Vec, train
    from .config import RunConfig, SparkConfig, TrainConfig, VocabConfig
    from .engines import Engine, Local, Spark
    from .errors import Distw2vError
    from .evaluate import evaluate_analogies, evaluate_similarity
    from .progress import ProgressEvent, Summary
    from .vectors import Vectors


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'distw2v' has no attribute {name!r}")
    value = getattr(import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value
