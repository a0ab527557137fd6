# cdpload: `make demo` runs a load end to end against the bundled emulator; `make test`
# runs every check. `make help` lists the targets.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin

IMAGE   ?= cdpload:$(VERSION)
# The image's org.opencontainers.image.source label; default: the clone's origin.
SOURCE  ?=
export SOURCE

.PHONY: help build demo test soak check bench bench-quick fuzz image image-test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build bin/cdpload and bin/cdpemu
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/cdpload ./cmd/cdpload
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/cdpemu ./cmd/cdpemu

demo: build ## load the examples into a local emulator and show the result
	bash scripts/demo.sh

check: ## gofmt and go vet
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet -race ./... # -race: the tests below reuse its compile of every package

test: check ## gofmt, go vet and every test under the race detector
	$(GO) test -race -count=1 -timeout 15m ./...

soak: check ## the full crash, outage and fault suites (200,000-row kills, a 60 s storm)
	CDPLOAD_SOAK=1 $(GO) test -race -count=1 -timeout 60m ./cmd/cdpload/

bench: ## per-row benchmarks, then cdpbench: loader vs a bare client on 100k and 2M rows (about 40 minutes)
	$(GO) test -run '^$$' -bench . -benchmem ./source/ ./loader/... ./sink/
	$(GO) run ./cmd/cdpbench --out bench.json

bench-quick: ## cdpbench on 20,000 rows, 8 and 32 workers, one pair each (about two minutes)
	$(GO) run ./cmd/cdpbench --rows 20000 --workers 8,32 --repeat 1 --limit-seconds 15 --shard-seconds 5

image: build ## build the container image $(IMAGE) with docker, or buildah without a daemon
	bash scripts/image.sh build $(IMAGE) $(VERSION)

image-test: build ## build the image, run `cdpload version` and a real load from inside it
	bash scripts/image.sh test $(IMAGE) $(VERSION)

FUZZTIME ?= 30s
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzCSV$$' -fuzztime $(FUZZTIME) ./source/
	$(GO) test -run '^$$' -fuzz '^FuzzJSONL$$' -fuzztime $(FUZZTIME) ./source/
	$(GO) test -run '^$$' -fuzz '^FuzzCoerce$$' -fuzztime $(FUZZTIME) ./loader/mapper/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendString$$' -fuzztime $(FUZZTIME) ./loader/mapper/

clean: ## remove built binaries and demo state
	rm -rf $(BIN) .demo
