# istio-gitops: a KRM function that keeps an Istio mesh in Git.
GO        ?= go
BIN       := bin/istio-gitops
TOOLS     := $(CURDIR)/bin/tools
# kustomize v5.8.2 is the release built on kyaml/api v0.21.2, the newest
# that builds with Go 1.26.
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE := $(TOOLS)/kustomize
# The control plane the API server tests (fn/apiserver) start, built from
# Go modules by hack/control-plane.sh; kube-apiserver v1.37.2 is the newest
# that builds with Go 1.26.
ETCD_VERSION   := v3.6.13
KUBE_VERSION   := v1.37.2
ETCD           := $(TOOLS)/etcd-$(ETCD_VERSION)
KUBE_APISERVER := $(TOOLS)/kube-apiserver-$(KUBE_VERSION)
IMAGE     ?= istio-gitops:dev
DEMO      := out/demo

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the static binary bin/istio-gitops
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./fn

$(KUSTOMIZE):
	GOBIN=$(TOOLS) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# Versioned file names: each is built once per version (kube-apiserver
# takes about 10 minutes on 2 cores), then reused.
$(ETCD):
	hack/control-plane.sh etcd $(ETCD_VERSION) $@

$(KUBE_APISERVER):
	hack/control-plane.sh kube-apiserver $(KUBE_VERSION) $@

# The unversioned links let a plain `go test ./fn/apiserver` find them.
.PHONY: tools
tools: $(KUSTOMIZE) $(ETCD) $(KUBE_APISERVER) ## Install the pinned tools the tests drive (kustomize, etcd, kube-apiserver) into bin/tools
	ln -sfn $(notdir $(ETCD)) $(TOOLS)/etcd
	ln -sfn $(notdir $(KUBE_APISERVER)) $(TOOLS)/kube-apiserver

.PHONY: test
test: build tools ## Run every test, end-to-end and API server ones included (kpt tests skip where kpt is absent)
	KUSTOMIZE=$(KUSTOMIZE) ISTIO_GITOPS=$(CURDIR)/$(BIN) ETCD=$(ETCD) KUBE_APISERVER=$(KUBE_APISERVER) $(GO) test -count=1 ./...
	# 10,000 Namespaces: migrate must cost at most 1.5 times a bare kyaml read and write.
	$(GO) test -count=1 -run TestBudget10k ./internal/migrate/ -budget

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l fn internal); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: demo
demo: build ## Write a mesh tree from examples/ into out/demo: bootstrap 1-30, then add 1-31
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "== bootstrap: revision 1-30 (examples/bootstrap)"
	cp -R examples/bootstrap/. $(DEMO)/
	$(BIN) run $(DEMO)
	@echo; echo "== upgrade: add revision 1-31 as a canary (examples/upgrade)"
	cp -R examples/upgrade/. $(DEMO)/
	$(BIN) run $(DEMO)
	@echo; $(BIN) status $(DEMO)
	@echo; echo "Tree written to $(DEMO) ($$(find $(DEMO) -type f | wc -l) files). Deploy it with: kustomize build $(DEMO)"

.PHONY: bench
bench: build tools ## Time adding a revision against kustomize build of the result; Go benchmarks
	BENCH=1 KUSTOMIZE=$(KUSTOMIZE) $(GO) test -count=1 -run TestSpeed -v ./fn/ | grep -E 'speed_test|ok|FAIL'
	$(GO) test -run '^$$' -bench . -benchmem ./internal/pipeline/
	$(GO) test -count=1 -run TestBudget10k -v ./internal/migrate/ -budget | grep -E 'ratio|ok|FAIL'
	$(GO) test -run '^$$' -bench 10k -benchtime 3x -benchmem ./internal/migrate/

.PHONY: image
image: ## Build the container image (needs a Docker engine)
	docker build -t $(IMAGE) .

.PHONY: clean
clean: ## Remove build output
	rm -rf bin out
