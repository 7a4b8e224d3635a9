# previewd — the two commands: `make start` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PREVIEWD_DATA_DIR ?= $(CURDIR)/data

.PHONY: help setup start test lint typecheck unit bench

help:
	@echo "make start   set up whatever is missing, then run previewd serve in the foreground"
	@echo "make test    the same set-up, then lint, typecheck and every test"
	@echo "make setup   the set-up alone (npm deps, build, Docker engine, runtime images)"

setup:
	@./scripts/setup.sh

start: setup
	node bin/previewd.js serve

lint:
	npx biome check .

typecheck:
	npx tsc -p tsconfig.json --noEmit
	npx tsc -p dashboard/tsconfig.json

test: setup lint typecheck
	@./scripts/ensure-test-tools.sh
	npx vitest run

bench: setup
	node --import tsx bench/lifecycle.ts
