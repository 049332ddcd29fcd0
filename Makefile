# The two commands a new user needs on a fresh Debian/Ubuntu machine:
#   make demo   - install what is missing, run the demo scenario, print where the results are
#   make test   - install what is missing, run the test suite
# `make help` lists the rest.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
BENCH   := $(VENV)/bin/bench
STAMP   := $(VENV)/.installed-stamp
FLEET   := $(VENV)/.fleet-stamp

.PHONY: help demo test test-unit host venv clean

help:
	@echo "make demo       install what is missing, then the narrated classroom demo (about 3.5 minutes)"
	@echo "make test       install what is missing (system packages, dockerd, the venv), then every test:"
	@echo "                unit and integration, real Docker and real QEMU (what CI runs; minutes)"
	@echo "make test-unit  the inner loop while you change code: tests/unit only, no engine, no VM,"
	@echo "                no real load; run make test before you push"
	@echo "make host       the system packages and a running dockerd only"
	@echo "make venv       the Python environment only (.venv)"
	@echo "make clean      remove containers and VMs that a killed run left behind"

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 is missing: apt-get install python3 python3-venv"; exit 1; }
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# The extra for several machines (Ansible): the tests need it, `make demo` does not.
$(FLEET): $(STAMP)
	$(PYTHON) -m pip install --quiet -e '.[test,fleet]'
	@touch $(FLEET)

# System pieces (docker.io, qemu-system-x86, wrk, busybox-static) and a running dockerd.
host:
	@bash scripts/host-setup.sh

demo: host venv
	$(BENCH) demo

test: $(FLEET)
	@LAYERBENCH_TEST_TOOLS=1 bash scripts/host-setup.sh
	$(PYTHON) -m pytest -q --durations=30

test-unit: $(FLEET)
	$(PYTHON) -m pytest -q tests/unit

clean:
	-$(BENCH) clean
