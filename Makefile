# Two entry points: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SHARED_EVAL := ../shared/data/eval
DEMO_MODEL := build/demo-model
# The bundled analogy set is ours; the public benchmarks are used when they are beside the repo.
DEMO_EVAL := --analogies data/eval/demo-analogies.txt \
	$(if $(wildcard $(SHARED_EVAL)/questions-words.txt),--analogies $(SHARED_EVAL)/questions-words.txt) \
	$(if $(wildcard $(SHARED_EVAL)/wordsim353.tsv),--similarity $(SHARED_EVAL)/wordsim353.tsv) \
	$(if $(wildcard $(SHARED_EVAL)/simlex999.txt),--similarity $(SHARED_EVAL)/simlex999.txt)

.PHONY: demo test test-fast lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/distw2v train data/us-presidential-addresses.txt.gz --out $(DEMO_MODEL) --overwrite \
		--lowercase --strip-punctuation --min-count 3 --epochs 10
	$(BIN)/distw2v similar $(DEMO_MODEL) war freedom economy --topn 8
	$(BIN)/distw2v analogy $(DEMO_MODEL) men women man
	$(BIN)/distw2v eval $(DEMO_MODEL) $(DEMO_EVAL) --json build/demo-eval.json
	@echo "Note: on a corpus of half a million words these figures are far below what a large"\
		"corpus (a billion words) gives; they are a smoke test that training works, not a"\
		"claim about quality."

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

test: lint
	$(BIN)/pytest

# The quick tier: no Spark, no training service, nothing slow (under a minute).
test-fast: $(STAMP)
	$(BIN)/pytest -m "not spark and not service and not slow"

clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache .ruff_cache
