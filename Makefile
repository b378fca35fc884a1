# chwatch: see README.md. Every shipped binary is CGO_ENABLED=0 (static).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/chwatch/chwatch/app.Version=$(VERSION) -X github.com/chwatch/chwatch/app.Commit=$(COMMIT)
GO      ?= go
DEMO_DB ?= demo/chwatch.db

.PHONY: build test test-race test-litestream test-nats lint cross test-arm64 demo bench bench-status bench-e2e soak fuzz schema clean

build: ## the chwatch binary for this machine
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o chwatch .

test: ## the whole suite (unit, end to end, crash test with random SIGKILLs)
	$(GO) test -shuffle=on -count=1 ./...

test-race: ## the suite under the race detector (needs cgo and gcc)
	CGO_ENABLED=1 $(GO) test -race -short -count=1 ./...

test-nats: ## the change feed against a real nats-server: SIGKILL mid-delivery, restart, every change once in the stream (installs nats-server v2.15.2 with go install)
	scripts/test-nats

test-litestream: ## chwatch beside Litestream: replicate, SIGKILL, restore, resume (installs litestream v0.5 with go install)
	scripts/test-litestream

lint: ## gofmt, go vet, and go.mod/go.sum as `go mod tidy` leaves them
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy and commit the result"; exit 1; }

cross: ## static builds for linux/amd64, linux/arm64 and linux/arm (GOARM=7) in dist/, each with a sha256 file
	@mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/chwatch-linux-amd64 .
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/chwatch-linux-arm64 .
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/chwatch-linux-armv7 .
	cd dist && for f in chwatch-linux-amd64 chwatch-linux-arm64 chwatch-linux-armv7; do sha256sum $$f > $$f.sha256; done

test-arm64: ## the suite cross-compiled for arm64 and run under qemu-aarch64-static (-short; no child processes)
	scripts/test-arm64

demo: build ## run the main job on the built-in simulator into demo/chwatch.db (Ctrl-C stops it)
	@mkdir -p $(dir $(DEMO_DB))
	@echo "chwatch demo: simulated Companies House, database $(DEMO_DB)."
	@echo "In another terminal: ./chwatch --db $(DEMO_DB) status    (Ctrl-C here stops the demo)"
	./chwatch --db $(DEMO_DB) run --sim

bench: ## benchmarks, each printing a ratio against a baseline measured in the same run (about 30 minutes)
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./... | tee bench.out
	scripts/bench-e2e | tee -a bench.out
	scripts/bench-import | tee -a bench.out
	scripts/bench-export | tee -a bench.out
	scripts/bench-budget | tee -a bench.out

bench-status: ## status on 5M companies, 10M events, 1M queued jobs beside a writer: median ms, ratio to 100 ms (first run builds the database, about 3 minutes, cached in $$TMPDIR/chwatch-bench-status)
	$(GO) test -run '^$$' -bench BenchmarkStatus -benchtime 1x -count 1 -timeout 60m ./status/

soak: ## the crash test, 100 random SIGKILLs
	CHWATCHTEST_CRASH_KILLS=100 $(GO) test -count=1 -run TestCrashRecovery -timeout 30m -v ./app/

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	scripts/fuzz $(or $(FUZZTIME),30s)

schema: ## rewrite schema.sql from the migrations
	$(GO) test ./db -run TestSchemaFile -update

clean:
	rm -rf chwatch dist demo bench.out
