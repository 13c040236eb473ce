# Set-up and entry points. The first run creates a project-local virtualenv with the
# PyPI build of PyTorch 2.11.0 (CUDA-enabled, ~4.6 GB); libtorch is taken from it, and
# later runs reuse it.

SHELL := /bin/bash
TORCH_VERSION := 2.11.0
VENV := $(abspath .venv)
PYTHON ?= python3
STAMP := $(VENV)/.torch-$(TORCH_VERSION)

# torch-sys finds libtorch through the active virtualenv's python.
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1

CARGO ?= cargo

.PHONY: all build test demo venv fmt lint clean-venv

all: build

$(STAMP):
	@echo ">> creating $(VENV) with torch==$(TORCH_VERSION) (first run only; ~4.6 GB download)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet torch==$(TORCH_VERSION)
	@touch $@

venv: $(STAMP)

build: $(STAMP)
	$(CARGO) build --release
	@echo ">> built target/release/stargan"

test: $(STAMP)
	$(CARGO) test --no-fail-fast

fmt:
	$(CARGO) fmt --all

lint: $(STAMP)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean-venv:
	rm -rf $(VENV)
