# istio-gitops: a KRM function that keeps an Istio mesh in Git.
GO        ?= go
BIN       := bin/istio-gitops
MAIN      := ./fn/istio-gitops
# The version stamped into the binary (`istio-gitops version`), the image
# and the release; without it, the binary reports its module version.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/istio-gitops/istio-gitops/internal/version.Version=$(VERSION)
RELEASE   := out/release
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
TOOLS     := $(CURDIR)/bin/tools
# kustomize v5.8.2 is the release built on kyaml/api v0.21.2, the newest
# that builds with Go 1.26.
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE := $(TOOLS)/kustomize
# istioctl built from Istio's Go module, whose release tags are not Go
# module versions: the pseudo-versions of the 1.31 and 1.30 lines the
# fixtures in testdata/istioctl were made with. The build stamps the release
# version (`istioctl version` prints "unknown" without it); that does not
# change the manifests. bin/tools/istioctl is the 1.31 one, for the
# generate tests.
ISTIO_MODULE     := istio.io/istio
ISTIO_1_31       := v0.0.0-20260827124520-eed52ebb66ad
ISTIO_1_31_TAG   := 1.31.0
ISTIO_1_30       := v0.0.0-20260423205519-b01690e6db7d
ISTIO_1_30_TAG   := 1.30.2
ISTIOCTL         := $(TOOLS)/istioctl
# istiod (pilot-discovery) of both lines, at the same pseudo-versions, for
# the tests that run the real control plane (fn/apiserver): the tests pick
# pilot-discovery-<tag> by the image tag of the tree's istiod Deployment.
PILOT_DISCOVERY_1_31 := $(TOOLS)/pilot-discovery-$(ISTIO_1_31_TAG)
PILOT_DISCOVERY_1_30 := $(TOOLS)/pilot-discovery-$(ISTIO_1_30_TAG)
# Helm renders the testdata/helm fixtures. Stamped as helm's own Makefile
# does, so that it reports v3.22.0 and defaults to the same Kubernetes
# version (1.37, from its client-go) as the released binary.
HELM_VERSION     := v3.22.0
HELM_KUBE_MINOR  := 37
HELM             := $(TOOLS)/helm
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
build: ## Build the static binary bin/istio-gitops, version-stamped
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) $(MAIN)

.PHONY: install
install: ## Install istio-gitops, version-stamped, into GOBIN (default: GOPATH/bin)
	CGO_ENABLED=0 $(GO) install -trimpath -ldflags "$(LDFLAGS)" $(MAIN)

.PHONY: release
release: ## Build static binaries for linux/darwin x amd64/arm64 and SHA256SUMS into out/release
	rm -rf $(RELEASE) && mkdir -p $(RELEASE)
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "istio-gitops $(VERSION) $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" \
			-o $(RELEASE)/istio-gitops-$$os-$$arch $(MAIN) || exit 1; \
	done
	cd $(RELEASE) && if command -v sha256sum >/dev/null; then sha256sum istio-gitops-* > SHA256SUMS; \
		else shasum -a 256 istio-gitops-* > SHA256SUMS; fi
	@cat $(RELEASE)/SHA256SUMS

$(KUSTOMIZE):
	GOBIN=$(TOOLS) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# go install names every build after its command: each goes through its
# own GOBIN. $(1) is the command's package under istio.io/istio, $(2) the
# pseudo-version, $(3) the release version it is stamped with, $(4) more
# environment for go. A cold build of istioctl costs about 10 CPU-minutes;
# each is built once, then reused.
define istio-build
	rm -rf $@.gobin
	$(4) GOBIN=$@.gobin CGO_ENABLED=0 $(GO) install -ldflags "-X istio.io/istio/pkg/version.buildVersion=$(3)" $(ISTIO_MODULE)/$(1)@$(2)
	mv $@.gobin/$(notdir $(1)) $@ && rmdir $@.gobin
endef

$(TOOLS)/istioctl-$(ISTIO_1_31_TAG):
	$(call istio-build,istioctl/cmd/istioctl,$(ISTIO_1_31),$(ISTIO_1_31_TAG))

# Some of the 1.30 line's dependencies (istio.io/client-go and others at
# pseudo-versions) are not in the Go checksum database.
$(TOOLS)/istioctl-$(ISTIO_1_30_TAG):
	$(call istio-build,istioctl/cmd/istioctl,$(ISTIO_1_30),$(ISTIO_1_30_TAG),GOSUMDB=off)

$(ISTIOCTL): | $(TOOLS)/istioctl-$(ISTIO_1_31_TAG)
	ln -f $(TOOLS)/istioctl-$(ISTIO_1_31_TAG) $@

# istiod of each revision of the story, built like istioctl (CGO_ENABLED=0,
# no -trimpath) so that 1.31's shares istioctl's build cache: it is built
# after istioctl, and 1.30 after 1.31, one at a time on small machines.
$(PILOT_DISCOVERY_1_31): | $(ISTIOCTL)
	$(call istio-build,pilot/cmd/pilot-discovery,$(ISTIO_1_31),$(ISTIO_1_31_TAG))

$(PILOT_DISCOVERY_1_30): | $(PILOT_DISCOVERY_1_31)
	$(call istio-build,pilot/cmd/pilot-discovery,$(ISTIO_1_30),$(ISTIO_1_30_TAG),GOSUMDB=off)

$(HELM):
	GOBIN=$(TOOLS) CGO_ENABLED=0 $(GO) install -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_MINOR) \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_MINOR)" \
		helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# Versioned file names: each is built once per version (kube-apiserver
# takes about 10 minutes on 2 cores), then reused.
$(ETCD):
	hack/control-plane.sh etcd $(ETCD_VERSION) $@

$(KUBE_APISERVER):
	hack/control-plane.sh kube-apiserver $(KUBE_VERSION) $@

# The unversioned links let a plain `go test ./fn/apiserver` find them.
.PHONY: tools
tools: $(KUSTOMIZE) $(ETCD) $(KUBE_APISERVER) $(ISTIOCTL) $(PILOT_DISCOVERY_1_31) $(PILOT_DISCOVERY_1_30) ## Install the pinned tools the tests drive (kustomize, etcd, kube-apiserver, istioctl, pilot-discovery 1.31 and 1.30) into bin/tools
	ln -sfn $(notdir $(ETCD)) $(TOOLS)/etcd
	ln -sfn $(notdir $(KUBE_APISERVER)) $(TOOLS)/kube-apiserver

.PHONY: istioctl
istioctl: $(ISTIOCTL) ## Build istioctl 1.31 from Istio's Go module into bin/tools (the generate tests run it)

.PHONY: istiod
istiod: $(PILOT_DISCOVERY_1_31) $(PILOT_DISCOVERY_1_30) ## Build pilot-discovery 1.31 and 1.30 from Istio's Go module into bin/tools (the istiod tests run them)

.PHONY: helm
helm: $(HELM) ## Install helm into bin/tools (for re-rendering testdata/helm)

.PHONY: fixtures
fixtures: $(TOOLS)/istioctl-$(ISTIO_1_30_TAG) $(TOOLS)/istioctl-$(ISTIO_1_31_TAG) $(HELM) ## Re-render testdata/istioctl and testdata/helm (builds istioctl 1.30 and 1.31, helm)
	testdata/istioctl/render.sh $(TOOLS)/istioctl-$(ISTIO_1_30_TAG) $(TOOLS)/istioctl-$(ISTIO_1_31_TAG)
	testdata/helm/render.sh $(HELM)

.PHONY: test
test: build tools ## Run every test, end-to-end and API server ones included (kpt tests skip where kpt is absent)
	KUSTOMIZE=$(KUSTOMIZE) ISTIOCTL=$(ISTIOCTL) ISTIO_GITOPS=$(CURDIR)/$(BIN) ISTIO_GITOPS_VERSION=$(VERSION) ETCD=$(ETCD) KUBE_APISERVER=$(KUBE_APISERVER) PILOT_DISCOVERY_DIR=$(TOOLS) $(GO) test -count=1 ./...
	# 10,000 Namespaces: migrate must cost at most 1.5 times a bare kyaml read and write.
	$(GO) test -count=1 -run TestBudget10k ./internal/migrate/ -budget
	# 120 MB of istioctl output: a run must peak under 4 times its input.
	ISTIO_GITOPS=$(CURDIR)/$(BIN) $(GO) test -count=1 -run TestMemoryBudget ./fn/e2e/ -memory

# Each fuzz test, as package:name. `make test` runs their seeds (testdata/fuzz
# and the f.Add calls) as plain tests; `make fuzz` fuzzes each in turn.
FUZZTIME ?= 30s
# Go minimizes each new interesting input for up to 60s by default: the
# whole FUZZTIME of the slow whole-run fuzz test (a tenth of a second an
# input) would go to minimizing.
FUZZMINIMIZETIME ?= 3s
FUZZ_TESTS := \
	./internal/config:FuzzLoad \
	./internal/migrate:FuzzLoad \
	./internal/layout:FuzzObjectFile \
	./internal/patch:FuzzGitPatch \
	./internal/patch:FuzzGitPatchObject \
	./internal/disk:FuzzDecode \
	./internal/disk:FuzzRead \
	./internal/object:FuzzCheckShape \
	./internal/pipeline:FuzzRun

.PHONY: fuzz
fuzz: ## Fuzz each fuzz test for FUZZTIME (default 30s), one at a time; a failing input lands in the package's testdata/fuzz
	@failed=; for t in $(FUZZ_TESTS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg || failed="$$failed $$pkg:$$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

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
	BENCH=1 KUSTOMIZE=$(KUSTOMIZE) $(GO) test -count=1 -run TestSpeed -v ./fn/e2e/ | grep -E 'speed_test|ok|FAIL'
	$(GO) test -run '^$$' -bench . -benchmem ./internal/pipeline/
	$(GO) test -count=1 -run TestBudget10k -v ./internal/migrate/ -budget | grep -E 'ratio|ok|FAIL'
	$(GO) test -run '^$$' -bench 10k -benchtime 3x -benchmem ./internal/migrate/

.PHONY: image
image: ## Build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: clean
clean: ## Remove build output
	rm -rf bin out
