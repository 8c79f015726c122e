# Two entry points for a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEMO    ?= demo-out

export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

.PHONY: setup demo test test-fast lint wheel clean

$(STAMP): pyproject.toml
	# bubblewrap (kernel sandbox), chromium + chromedriver (HTML report test) and a CJK font
	# (Chinese reports render as boxes without one), where apt is usable
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		missing=""; \
		command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
		command -v chromium >/dev/null || missing="$$missing chromium"; \
		command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
		fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
		if [ -n "$$missing" ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	else echo "note: not root or no apt-get; install bubblewrap, chromium, chromium-driver and a CJK font yourself"; fi
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch from disk; an unpinned torch would pull GBs of CUDA wheels
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/grader demo --out $(DEMO)

# Two workers, one file each at a time (module fixtures stay warm): 10.4 min against 18 min serial on 2 cores.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The tests that start no kernel: 729 of 936, 31 s on these 2 cores (measured twice). Tests that start one
# are marked `kernel`; under this selection tests/conftest.py fails any unmarked test that starts one.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not kernel"

# ruff (rules and why in pyproject.toml) on the whole tree we write, mypy --strict on the grader side.
lint: $(STAMP)
	$(BIN)/ruff check grader tests bench
	$(BIN)/mypy

# The student-safe wheel (no reference/, golden vectors instead), from the tracked files only.
wheel: $(STAMP)
	$(BIN)/python -c "from pathlib import Path; from grader.distribution.student_repo import build_wheel; print(build_wheel(Path('dist')))"

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache dist
