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

.PHONY: all build test demo demo-train serve venv fmt lint clean-venv device-bundle device-train-bundle

all: build

# The demo: the emoji model shipped in models/ translates the bundled held-out examples
# into all four vendors' styles and writes runs/demo/index.html.
demo: build
	./target/release/stargan demo --out runs/demo
	@echo ">> open runs/demo/index.html"

# The web page on the shipped model: http://127.0.0.1:8080/
serve: build
	./target/release/stargan serve

# Training from scratch on the CPU: a 64-px emoji data set (four vendors' styles = four
# domains) and a small model trained for about five minutes (colour blobs, not emoji yet:
# models/README.md has the command of the shipped model).
DEMO_DATA := data/emoji64
DEMO_RUN := runs/demo-train
DEMO_ITERS ?= 300
DEMO_FLAGS := --img-size 64 --dim-in 16 --max-conv-dim 64 --style-dim 32 --hidden-dim 128 \
	--batch-size 4 --total-iters $(DEMO_ITERS) --ema-beta 0.99 --sample-every 100 --save-every 100 --mean-style-samples 2000 \
	--device cpu

$(STAMP):
	@echo ">> creating $(VENV) with torch==$(TORCH_VERSION) (first run only; ~4.6 GB download)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet torch==$(TORCH_VERSION)
	@# The CUDA headers ProcessGroupNCCL.hpp includes (the torch wheel ships the libraries,
	@# not these), for the NCCL part of our C++ shim; CUDA 13.0 like the wheel.
	$(VENV)/bin/python -m pip install --quiet "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*"
	@touch $@

venv: $(STAMP)

build: $(STAMP)
	$(CARGO) build --release
	@echo ">> built target/release/stargan"

demo-train: build
	@test -d $(DEMO_DATA)/train || STARGAN_CACHE=$(abspath .cache) ./target/release/stargan data emoji --size 64 --out $(DEMO_DATA)
	rm -rf $(DEMO_RUN)
	./target/release/stargan train --data $(DEMO_DATA)/train --val $(DEMO_DATA)/val --out $(DEMO_RUN) $(DEMO_FLAGS)
	@echo ">> open $(DEMO_RUN)/report.html (loss curves and sample grids)"

test: $(STAMP)
	@scripts/ensure-chromium.sh
	$(CARGO) test --no-fail-fast

# Everything the GPU check needs, built here (no build on the GPU machine): the release
# binary, the test binaries, the parity fixtures and scripts/device-check.sh, in .device/.
# On the GPU machine: export LD_LIBRARY_PATH=<torch>/lib; cd .device && ./run.sh OUT_DIR
SHARED ?= ../shared
device-bundle: build
	$(CARGO) test --release --no-run
	rm -rf .device && mkdir -p .device/tests .device/fixtures
	cp target/release/stargan scripts/device-check.sh .device/
	find target/release/deps -maxdepth 1 -type f -executable -name 'cuda-*' -exec cp {} .device/tests/ \;
	cp -r $(SHARED)/fixtures/parity .device/fixtures/
	printf '#!/bin/bash\ncd "$$(dirname "$$0")"\nSTARGAN_FIXTURES=$$PWD/fixtures BIN=$$PWD/stargan TEST_DIR=$$PWD/tests exec ./device-check.sh "$${1:-out}"\n' > .device/run.sh
	chmod +x .device/run.sh
	@echo ">> .device/ is ready: carry it to the GPU machine and run .device/run.sh OUT_DIR"

fmt:
	$(CARGO) fmt --all

lint: $(STAMP)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean-venv:
	rm -rf $(VENV)

# GPU training of the emoji model (models/README.md): the release binary and the 64-px emoji
# set in .device-train/ (about 42 MB, under the device tool's 64 MiB); scripts/device-train.sh
# travels with the working tree. On the GPU machine: export LD_LIBRARY_PATH=<torch>/lib;
# .device-train/run.sh OUT_DIR
device-train-bundle: build
	@test -d $(DEMO_DATA)/train || ./target/release/stargan data emoji --size 64 --out $(DEMO_DATA)
	rm -rf .device-train && mkdir -p .device-train
	cp target/release/stargan .device-train/
	cp -r $(DEMO_DATA) .device-train/data
	printf '#!/bin/bash\nHERE=$$(cd "$$(dirname "$$0")" && pwd)\nBIN=$$HERE/stargan DATA=$$HERE/data exec "$$HERE/../scripts/device-train.sh" "$${1:-out}"\n' > .device-train/run.sh
	chmod +x .device-train/run.sh
	@echo ">> .device-train/ is ready: carry it to the GPU machine and run .device-train/run.sh OUT_DIR"
