# tally: the two commands are `make up` and `make test`. The work is done by the scripts
# in tests/harness/ (deps.sh, pg.sh, daemon.sh, dev.sh, test.sh); this file only names it.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
JOBS ?= 2
HARNESS := tests/harness
# sub-makes (cmake --build) need not announce their directories
MAKEFLAGS += --no-print-directory

.DEFAULT_GOAL := help
.PHONY: help deps build debug asan up down test clean format

help:
	@echo "make up       install what is missing, build (release), start PostgreSQL in .run/,"
	@echo "              migrate, start the three daemons, print addresses and a dev token"
	@echo "make down     stop what make up started"
	@echo "make test     deps, debug + asan builds, ctest on both against a throwaway cluster"
	@echo "make build    release build (build/release);  make debug / make asan: other presets"
	@echo "make deps     install missing Debian packages and the Node test dependencies"
	@echo "make format   clang-format -i on our C sources;  make clean: remove build/"

deps:
	@$(HARNESS)/deps.sh

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j$(JOBS)

debug: deps
	cmake --preset debug >/dev/null
	cmake --build --preset debug -j$(JOBS)

asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS)

up: build
	@$(HARNESS)/dev.sh up

down:
	@$(HARNESS)/dev.sh down

test:
	@JOBS=$(JOBS) $(HARNESS)/test.sh

# Generated code lives in build/ and is never formatted.
format:
	find proto server projector clients tests -name '*.[ch]' -not -path '*/node_modules/*' \
	    -print0 | xargs -0 -r clang-format -i

clean:
	rm -rf build
