# The KRM function image, built from source where a registry serves
# golang:1.26 (`docker build --build-arg VERSION=v0.1.0 .`). `make image`
# builds the same image offline from the host-built binary
# (image/Containerfile); everything from FROM scratch down is the same in
# both (a test checks), and both lay out the root file system with
# hack/image-rootfs.sh.
FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY fn ./fn
COPY internal ./internal
COPY hack/image-rootfs.sh LICENSE ./
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X github.com/istio-gitops/istio-gitops/internal/version.Version=${VERSION}" \
    -o /out/istio-gitops ./fn/istio-gitops \
 && ./image-rootfs.sh /rootfs /out/istio-gitops LICENSE

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title=istio-gitops \
      org.opencontainers.image.description="A KRM function that keeps an Istio mesh in Git" \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.source=https://github.com/istio-gitops/istio-gitops
COPY --from=build /rootfs/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/istio-gitops"]
