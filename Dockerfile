# The KRM function image: reads a ResourceList on stdin, writes one on stdout.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY fn ./fn
COPY internal ./internal
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/istio-gitops ./fn

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/istio-gitops /usr/local/bin/istio-gitops
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/istio-gitops"]
