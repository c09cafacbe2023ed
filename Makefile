# The two commands of README.md: `make demo` runs the main job on a built-in
# sample; `make test` runs every test (real Redis servers, containers).
GO ?= go
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1

.PHONY: build demo test bench deps
build:
	$(GO) build -o bin/redisplit .

deps:
	scripts/deps.sh

demo: deps build
	scripts/demo.sh

test: deps
	$(GO) test -count=1 -timeout 60m ./...

bench: deps build
	$(GO) run ./bench $(BENCH_ARGS)
