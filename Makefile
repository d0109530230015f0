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
# external-dns's own code checks the host-by-host DNS cutover
# (fn/externaldns). external-dns v0.23.0 needs Go 1.27, so the check is a Go
# module of its own, built with that toolchain: the go command fetches it
# through the module proxy once (GOTOOLCHAIN, into the module cache), and
# its compiled packages land in the same build cache as the project's. The
# test binary is kept in bin/tools under the versions and a digest of the
# module's files: a warm make test runs it without building.
EXTERNALDNS_VERSION := v0.23.0
EXTERNALDNS_GO      := go1.27.3
EXTERNALDNS_DIR     := fn/externaldns
EXTERNALDNS_KEY     := $(shell cd $(EXTERNALDNS_DIR) && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
EXTERNALDNS_TEST    := $(TOOLS)/externaldns-$(EXTERNALDNS_VERSION)-$(EXTERNALDNS_GO)-$(EXTERNALDNS_KEY).test
# A local image's name needs a registry part: kpt and kustomize would
# otherwise look for istio-gitops:dev on a public registry.
IMAGE     ?= localhost/istio-gitops:dev
# The container engine: podman where installed (hack/podman.sh installs
# it), else docker.
ENGINE    ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
IMAGE_DIR := out/image
# The image's size limit, in bytes.
IMAGE_MAX := 25000000
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
# after istioctl, and 1.30 after 1.31, one at a time on small machines:
# about 4 and 5 CPU-minutes so.
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
test: build tools ## Run every test, end-to-end, API server and Argo CD ones included (kpt tests skip where kpt is absent)
	KUSTOMIZE=$(KUSTOMIZE) ISTIOCTL=$(ISTIOCTL) ISTIO_GITOPS=$(CURDIR)/$(BIN) ISTIO_GITOPS_VERSION=$(VERSION) ETCD=$(ETCD) KUBE_APISERVER=$(KUBE_APISERVER) PILOT_DISCOVERY_DIR=$(TOOLS) $(GO) test -count=1 -timeout 30m ./...
	# 10,000 Namespaces: migrate must cost at most 1.5 times a bare kyaml read and write.
	$(GO) test -count=1 -run TestBudget10k ./internal/migrate/ -budget
	# 120 MB of istioctl output: a run must peak under 4 times its input.
	ISTIO_GITOPS=$(CURDIR)/$(BIN) $(GO) test -count=1 -run TestMemoryBudget ./fn/e2e/ -memory
	$(MAKE) --no-print-directory test-externaldns
	$(MAKE) --no-print-directory argocd-test

$(EXTERNALDNS_TEST):
	cd $(EXTERNALDNS_DIR) && GOTOOLCHAIN=$(EXTERNALDNS_GO) $(GO) test -c -o $@ .

.PHONY: test-externaldns
test-externaldns: $(EXTERNALDNS_TEST) ## Run external-dns's own code over the DNS cutover story (fn/externaldns, Go 1.27)
	cd $(EXTERNALDNS_DIR) && $(EXTERNALDNS_TEST) -test.count=1

.PHONY: test-reverts
test-reverts: ## Revert six committed upgrade steps in each of their 720 orders with the real git (each step from each set of steps left once: 192 reverts; CI runs it)
	ISTIO_GITOPS_REVERTS=all $(GO) test -count=1 -timeout 60m -run '^TestRevertOrders$$' -v ./internal/pipeline/

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
	@out=$$(gofmt -l fn internal test); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
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
	# fleet status over 50 clusters and 5,000 commits: at most 2 s, linear in clusters.
	$(GO) test -count=1 -run TestFleetStatusBudget -v ./internal/fleet/ -budget | grep -E 'bench_test|ok|FAIL'
	$(GO) test -run '^$$' -bench FleetStatus -benchtime 3x -benchmem ./internal/fleet/

# The Argo CD tests (test/argocd) are a Go module of their own: Argo CD
# v3.2.12 pins the Kubernetes libraries to v0.34. Their test binary takes
# about 11 minutes to build cold on 2 cores, so it is kept in bin/tools
# under a name keyed by the module's go.mod, go.sum and sources, and built
# again only when one of them changes. The control plane is the main
# module's (fn/apiserver/controlplane).
ARGOCD_DIR   := test/argocd
ARGOCD_KEY    = $(shell cat $(ARGOCD_DIR)/go.mod $(ARGOCD_DIR)/go.sum $(ARGOCD_DIR)/*.go | sha256sum | cut -c1-16)
ARGOCD_TEST   = $(TOOLS)/argocd-test-$(ARGOCD_KEY)
CONTROLPLANE := bin/controlplane

.PHONY: argocd-test
argocd-test: build tools ## Sync the Argo CD story with Argo CD's own code against kube-apiserver (test/argocd; its test binary is cached in bin/tools)
	@if [ -x $(ARGOCD_TEST) ]; then echo "$(ARGOCD_TEST): cached"; else \
		echo "building $(ARGOCD_TEST) (about 11 minutes cold)"; \
		cd $(ARGOCD_DIR) && GOWORK=off $(GO) vet . && GOWORK=off $(GO) test -c -o $(ARGOCD_TEST).tmp . && mv $(ARGOCD_TEST).tmp $(ARGOCD_TEST); fi
	CGO_ENABLED=0 $(GO) build -o $(CONTROLPLANE) ./fn/apiserver/controlplane
	cd $(ARGOCD_DIR) && KUSTOMIZE=$(KUSTOMIZE) ISTIO_GITOPS=$(CURDIR)/$(BIN) ETCD=$(ETCD) KUBE_APISERVER=$(KUBE_APISERVER) \
		$(CURDIR)/$(CONTROLPLANE) run -- $(ARGOCD_TEST) -test.v -test.timeout 30m

.PHONY: image
image: ## Build the container image IMAGE offline, FROM scratch, from a static binary (podman or docker)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(IMAGE_DIR)/istio-gitops $(MAIN)
	hack/image-rootfs.sh $(IMAGE_DIR)/rootfs $(IMAGE_DIR)/istio-gitops LICENSE
	$(ENGINE) build --build-arg VERSION=$(VERSION) -f image/Containerfile -t $(IMAGE) $(IMAGE_DIR)
	@size=$$($(ENGINE) image inspect --format '{{.Size}}' $(IMAGE)); \
		echo "$(IMAGE): $$size bytes"; \
		if [ "$$size" -gt $(IMAGE_MAX) ]; then echo "image larger than $(IMAGE_MAX) bytes"; exit 1; fi

.PHONY: clean
clean: ## Remove build output
	rm -rf bin out
