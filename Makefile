# The README's two commands: `make lab` (set up, then JupyterLab on the quickstart) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# JupyterLab refuses to run as root unless told; token authentication stays on, bound to localhost.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test llama clean-venv
# llama.cpp, for the GGUF export's gate and the llama.cpp engine: llama-cpp-python builds it from source for
# this CPU (about 6 minutes on 2 cores; not cached, so a build for one CPU never lands on another). Without
# AMX: its AMX matmul crashes on prompts of more than one token (llama.cpp issue 20824).
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE := -DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
LLAMA_CPP_PYTHON := llama-cpp-python==0.3.36

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and exact: the local CPU wheel; any other spec pulls gigabytes of CUDA packages
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 $(ROOT_FLAG) notebooks/00_quickstart.ipynb

llama: setup
	$(PY) -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE)" $(PY) -m pip install --quiet --no-cache-dir \
	  "$(LLAMA_CPP_PYTHON)" || echo "llama-cpp-python did not build: the llama.cpp tests will skip"

test: setup llama
	# the real-browser test (tests/test_browser.py) drives Debian's chromium; install it where apt can
	command -v chromium >/dev/null || (apt-get install -y -q chromium || sudo -n apt-get install -y -q chromium \
	  || (apt-get update -q && apt-get install -y -q chromium) || (sudo -n apt-get update -q && sudo -n apt-get install -y -q chromium)) \
	  || echo "chromium not installed: the browser test will skip"
	# the PostgreSQL tests (tests/test_store_postgres.py, tests/test_worker.py) start Debian's server in a temporary folder
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || (apt-get install -y -q postgresql \
	  || sudo -n apt-get install -y -q postgresql || (apt-get update -q && apt-get install -y -q postgresql) \
	  || (sudo -n apt-get update -q && sudo -n apt-get install -y -q postgresql)) \
	  || echo "postgresql not installed: the PostgreSQL tests will skip"
	$(PY) -m pytest --nbval-lax tests notebooks

clean-venv:
	rm -rf $(VENV)
