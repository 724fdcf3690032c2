# Keel — the two commands a fresh machine needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/keel-cloud/keel/internal/version.Version=$(VERSION)
DATA ?= keel-data

.PHONY: all build run deps test test-short vet bench clean conformance conformance-smoke \
	images deploy-up deploy-down deploy-test chaos chaos-short

all: build

## build: static binaries in bin/ (no cgo: they run FROM scratch)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## run: an all-in-one cloud on 127.0.0.1:8774 (one controller with an embedded libvirt agent; installs
## libvirt and QEMU when missing, uploads a tiny test image), data in ./keel-data
run: build deps
	DATA=$(DATA) scripts/run-all-in-one.sh

## deps: what the tests need beyond Go, from Debian's packages (idempotent):
## the openstack CLI (python3-openstackclient), wrk (benchmarks), iptables (the chaos suite's
## partitions), and libvirt with QEMU (scripts/install-libvirt.sh, which also starts libvirtd
## when it is not running)
DEBS := python3-openstackclient wrk iptables
deps:
	@scripts/install-libvirt.sh
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi

## vet: gofmt and go vet
vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

## test: everything CI runs: vet, unit and in-process cluster tests (race detector), e2e over the built binaries
test: deps vet
	$(GO) test -race -count=1 -timeout 15m ./...

## test-short: the quick subset (no e2e processes)
test-short:
	$(GO) test -short -count=1 ./...

## bench: every benchmark (Go micro-benchmarks, in-process clusters, keel-bench on real processes,
## memory, snapshots, detection), then the generated part of BENCHMARKS.md rewritten (scripts/bench.sh)
bench: deps
	scripts/bench.sh

clean:
	rm -rf $(BIN)

## conformance: OpenStack Tempest (compute, identity v3, image v2) against a 3-controller cluster; rewrites conformance/RESULTS.md
conformance:
	conformance/run.sh full

## conformance-smoke: Tempest's smoke tests (a few minutes); fails on failures not in conformance/expected-failures.txt
conformance-smoke:
	conformance/run.sh smoke

# The compose command: the `docker compose` plugin when it exists, else docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo docker-compose)
DEPLOY_COMPOSE = $(COMPOSE) -p keel -f deploy/docker-compose.yml
KEEL_IMAGE_TAG ?= dev

## images: container images keel/keel-controller, keel/keel-agent, keel/keelctl (FROM scratch around static
## binaries) and keel/haproxy (Debian's haproxy, installed when missing), tag $(KEEL_IMAGE_TAG); pulls nothing
images:
	KEEL_IMAGE_TAG=$(KEEL_IMAGE_TAG) VERSION=$(VERSION) GO=$(GO) deploy/build-images.sh

## deploy-up: the compose cloud (deploy/docker-compose.yml, project "keel"): 3 controllers behind haproxy on
## 127.0.0.1:8774, 2 fake compute hosts; builds the images, makes deploy/secrets/ once (see deploy/README.md)
deploy-up: images
	deploy/secrets.sh
	KEEL_IMAGE_TAG=$(KEEL_IMAGE_TAG) $(DEPLOY_COMPOSE) up -d
	@echo "Keel is starting behind haproxy on http://127.0.0.1:$${KEEL_DEPLOY_PORT:-8774}. Then:"
	@echo "  export KEEL_URL=http://127.0.0.1:$${KEEL_DEPLOY_PORT:-8774} KEEL_CLUSTER_KEY_FILE=deploy/secrets/cluster.key"
	@echo "  bin/keelctl cluster status     # bin/ from make build; deploy/README.md runs it from its image too"
	@echo "  eval \"\$$(KEEL_ADMIN_PASSWORD_FILE=deploy/secrets/admin-password bin/keelctl openrc)\""

## deploy-down: stop and remove the compose cloud's containers and network (data volumes kept;
## `$(DEPLOY_COMPOSE) down -v` removes them too)
deploy-down:
	KEEL_IMAGE_TAG=$(KEEL_IMAGE_TAG) $(DEPLOY_COMPOSE) down

## deploy-test: builds the images, starts the compose cloud as a throwaway project, boots a server through
## haproxy, kills the Raft leader, boots another, removes everything (deploy/test.sh; about a minute)
deploy-test:
	KEEL_IMAGE_TAG=$(KEEL_IMAGE_TAG) VERSION=$(VERSION) GO=$(GO) deploy/test.sh

## chaos: the failover suite (e2e/chaos): builds the images, starts the compose cloud as a throwaway project, and runs
## 10 trials of each fault scenario under a concurrent workload through haproxy, then the broken-build test; every
## trial checked (linearizability, lost/duplicate creates, quota, hosts, same state); rewrites e2e/chaos/RESULTS.md
chaos:
	KEEL_CHAOS=1 KEEL_CHAOS_TRIALS=$${KEEL_CHAOS_TRIALS:-10} KEEL_CHAOS_RESULTS=$(CURDIR)/e2e/chaos/RESULTS.md \
	  KEEL_IMAGE_TAG=$(KEEL_IMAGE_TAG) VERSION=$(VERSION) GO=$(GO) \
	  $(GO) test -count=1 -timeout 150m -v -run 'TestChaos' ./e2e/chaos

## chaos-short: one trial of each scenario and the broken-build test (about 6 minutes, image build included); results printed, RESULTS.md kept
chaos-short:
	KEEL_CHAOS=1 KEEL_CHAOS_TRIALS=1 KEEL_IMAGE_TAG=$(KEEL_IMAGE_TAG) VERSION=$(VERSION) GO=$(GO) \
	  $(GO) test -count=1 -timeout 30m -v -run 'TestChaos' ./e2e/chaos
