# Entry points for people and CI. Each target bootstraps a fresh Debian machine:
# system packages (as root), a .venv, and an editable install of nfv whose
# Cython modules are rebuilt whenever their sources change.
#
#   make test      run the test suite
#   make demo      check the example configs and print one flattened graph
#   make clean     remove build artefacts (keeps .venv)
#   make distclean also remove .venv

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

# Debian packages the project uses at run time or in tests:
#   qemu-system-x86  boots the unikernel (QEMU microvm)
#   iproute2         ip netns / veth / tap for the host backends' tests
#   iputils-ping     a real ping through the router unikernel (live test)
#   gcc, binutils    compile the Cython modules and the unikernel runtime; ld, nm, objdump
APT_PACKAGES := qemu-system-x86 iproute2 iputils-ping ethtool gcc binutils

# The install is redone when the packaging changes; the Cython modules are
# rebuilt in place (1-2 s, not pip's 10+) when only their sources change.
STAMP := $(VENV)/.nfv-installed
EXT_STAMP := $(VENV)/.nfv-extensions
CYTHON_SOURCES := $(shell find dataplane -name '*.pyx' -o -name '*.pxd' -o -name '*.h' 2>/dev/null)

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: test demo clean distclean sysdeps

test: $(EXT_STAMP)
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS) tests

demo: $(EXT_STAMP)
	$(VENV)/bin/nfv check configs/*.click
	$(VENV)/bin/nfv graph configs/firewall.click --format click
	$(PY) -m nfv.demo

# Install missing Debian packages, with one apt-get update first, and only when
# something is missing. A Debian-packaged python3 also needs python3-venv to
# make a venv and python3-dev for Python.h. Not root: warn and carry on, the
# tests that need a missing tool skip or fail on their own.
sysdeps:
	@if ! command -v dpkg-query >/dev/null; then \
	  echo "warning: not a Debian system; make sure these are installed: $(APT_PACKAGES)" >&2; \
	  exit 0; \
	fi; \
	wanted="$(APT_PACKAGES)"; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || wanted="$$wanted python3-venv"; \
	$(PYTHON) -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
	  2>/dev/null || wanted="$$wanted python3-dev"; \
	missing=""; \
	for p in $$wanted; do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "warning: missing Debian packages:$$missing (not root, not installing; try: sudo apt-get install$$missing)" >&2; \
	  exit 0; \
	fi; \
	echo "installing Debian packages:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && \
	apt-get install -y -qq --no-install-recommends $$missing >/dev/null

$(PY): | sysdeps
	$(PYTHON) -m venv $(VENV)

# pip builds in an isolated env (Cython, numpy from pyproject.toml), as on a
# fresh machine; the stamp records that the install matches its inputs.
$(STAMP): setup.py pyproject.toml | $(PY) sysdeps
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Cython and numpy are in the venv too (install_requires), so a changed .pyx,
# .pxd or header is recompiled in place, beside its source, where the editable
# install imports it from.
$(EXT_STAMP): $(STAMP) $(CYTHON_SOURCES)
	$(PY) setup.py -q build_ext --inplace
	@touch $@

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis $(STAMP) $(EXT_STAMP)
	rm -f dataplane/*.so
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
