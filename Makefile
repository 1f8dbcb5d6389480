# red — see README.md. `make run` starts a demo server, `make test` runs every test.
GO      ?= go
BIN     := bin/red
PKGS    := ./...
ARGS    ?=

.PHONY: all build run test unit postman postman-demo bench lint fmt clean profiles

all: build

build:
	$(GO) build -o $(BIN) ./cmd/red

# Runs red with the embedded store and the demo tenant (created on first use); more flags of
# red demo in ARGS, e.g. make run ARGS='--port 29300'.
run:
	@echo "building $(BIN) (the first build takes a minute or two) …"
	@$(GO) build -o $(BIN) ./cmd/red
	$(BIN) demo $(ARGS)

# Every test: vet, unit + PostgreSQL + end-to-end tests, then the Postman collection with newman.
test: unit postman

unit:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 15m $(PKGS)

postman: build postman/node_modules/.bin/newman
	bash postman/run.sh $(BIN)

# The collection as a vendor tries it: red on 127.0.0.1:29221 set up for it (a fresh tenant
# "postman"), the collection via newman, then red keeps running for the Postman app until Ctrl-C.
postman-demo: build postman/node_modules/.bin/newman
	bash postman/run.sh --keep $(BIN)

postman/node_modules/.bin/newman: postman/package.json postman/package-lock.json
	cd postman && npm ci --no-audit --no-fund
	touch $@

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m $(PKGS)

# Measures red under load as issue #12 tabulates it: red started on a free loopback port with a
# fresh tenant, seeded with LOAD_PATIENTS Patientenakten, then read, identifier-search and create
# phases of LOAD_SECONDS at 1 and 8 keep-alive connections of wrk (installed from Debian when
# missing), three times each; medians, p50/p99, errors and red's peak RSS as a Markdown table,
# also in bin/load-report.md. STORE=sqlite or STORE=postgres runs one store (PostgreSQL: a
# throwaway database on RED_TEST_DATABASE_URL or 127.0.0.1:5432); more flags of tools/redload in
# LOAD_ARGS (-driver go: redload's own Go clients instead of wrk).
STORE         ?= both
LOAD_SECONDS  ?= 20
LOAD_PATIENTS ?= 10000
LOAD_ARGS     ?=
.PHONY: load ceiling wrk
load: build wrk
	$(GO) run ./tools/redload -red $(BIN) -store $(STORE) -seconds $(LOAD_SECONDS) -patients $(LOAD_PATIENTS) -out bin/load-report.md $(LOAD_ARGS)

# What the machine does without red's work, under the same load (also in make load with
# LOAD_ARGS=-ceilings): static answers to the read phase (any Go HTTP server's rate and p99), and
# each store alone committing what the create phase writes (red without HTTP, XML, validation
# and sealing); the table in bin/ceiling-report.md.
ceiling: wrk
	$(GO) run ./tools/redload -store none -ceilings -seconds $(LOAD_SECONDS) -patients $(LOAD_PATIENTS) -out bin/ceiling-report.md $(LOAD_ARGS)

wrk:
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is missing; installing Debian's wrk (apt-get install wrk) …"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk; }

# Runs every Fuzz target of the module, each on its own for FUZZTIME; stops at the first
# failure (the failing input lands in the package's testdata/fuzz). Targets are found with
# go test -list in each package with test files, so new ones are picked up by themselves.
FUZZTIME ?= 10s
.PHONY: fuzz
fuzz:
	@set -e; \
	for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(PKGS)); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg); \
		for target in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Regenerates fhir/profile/tables_gen.go from the published FHIR definitions (StructureDefinitions,
# ValueSets, CodeSystems in XML), e.g. the dependencies folder of the KBV AWS validation package:
# make profiles DEFS=path/to/dependencies (several folders: DEFS='dir1 dir2').
profiles:
	@test -n "$(DEFS)" || { echo 'usage: make profiles DEFS=folder-of-definitions'; exit 2; }
	$(GO) run ./fhir/profile/gen $(foreach d,$(DEFS),-defs $(d)) -out fhir/profile/tables_gen.go
	gofmt -l fhir/profile/tables_gen.go | (! grep .) || gofmt -w fhir/profile/tables_gen.go

clean:
	rm -rf bin postman/node_modules
