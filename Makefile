# bulwark: common tasks. Every target covers every module in the repository
# (the core module and the nested adapter/benchmark modules).

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Every directory holding a go.mod, the core module first.
MODULES     := $(shell find . -name go.mod -not -path './.git/*' -exec dirname {} \; | sort)
DEMO        ?= ./examples/outage
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

.PHONY: all demo test race bench bench-compare lint cover

all: lint test

## demo: run the main example program.
demo:
	$(GO) run $(DEMO)

## test: run every test of every module with the race detector.
test:
	@set -e; for m in $(MODULES); do \
		echo "== go test -race $$m"; \
		(cd $$m && $(GO) test -race -count=1 ./...); \
	done

## race: alias of test (the tests always run with -race).
race: test

## bench: run every benchmark once, with allocations.
bench:
	@set -e; for m in $(MODULES); do \
		(cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...); \
	done

## bench-compare: run the side-by-side benchmarks of bench/ (bulwark against
## gobreaker, failsafe-go and backoff) 6 times, then write benchstat's table,
## libraries side by side, to bench/results.txt and the same medians as the
## Markdown table of docs/performance.md to bench/results.md (raw runs:
## bench/raw.txt; none of the three is committed).
bench-compare:
	@echo "== go test -bench -count 6 ./bench (about 6 minutes)"
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 6 . > raw.txt || { cat raw.txt; exit 1; }
	cd bench && $(GO) run $(BENCHSTAT) -col /lib raw.txt > results.txt
	cd bench && $(GO) run $(BENCHSTAT) -format csv -col /lib raw.txt | $(GO) run ./cmd/perftable > results.md
	@cat bench/results.txt bench/results.md; echo "== wrote bench/results.txt and bench/results.md"

## lint: gofmt, go vet and staticcheck (pinned) over every module.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do \
		echo "== vet + staticcheck $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...); \
	done

## cover: test coverage of the core module, per function.
cover:
	$(GO) test -coverprofile=coverage.out ./...
	$(GO) tool cover -func=coverage.out | tail -n 1
