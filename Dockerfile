# The KRM function image: reads a ResourceList on stdin, writes one on stdout.
# `make image` passes the version `make build` stamps.
FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY fn ./fn
COPY internal ./internal
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X github.com/istio-gitops/istio-gitops/internal/version.Version=${VERSION}" \
    -o /out/istio-gitops ./fn/istio-gitops

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title=istio-gitops \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.source=https://github.com/istio-gitops/istio-gitops
COPY LICENSE /LICENSE
COPY --from=build /out/istio-gitops /usr/local/bin/istio-gitops
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/istio-gitops"]
