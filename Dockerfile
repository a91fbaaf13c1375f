# prismcache's container image: the binary `make build` makes (static,
# trimmed, versioned — the same command CI runs), on a distroless base with
# CA certificates and nothing else, as a non-root user.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t prismcache .
#   docker run --rm -p 8080:8080 -e PRISMCACHE_REDIS_URL=… -e PRISMCACHE_WEBHOOK_SECRET=… \
#     -e PRISMATIC_REFRESH_TOKEN=… prismcache
#
# Pin the two base images by digest (image@sha256:…) in your own builds.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a change to the code does not fetch them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build VERSION="${VERSION}" && ./bin/prismcache --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/prismcache /usr/local/bin/prismcache
# 65532 is distroless's "nonroot" user.
USER 65532:65532
# 8080: POST /webhooks/prismatic, /healthz, /readyz — the port Prismatic reaches.
# 8090: /metrics, /status and the admin API /v1 — keep it internal.
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/prismcache"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:8090", "--log-format", "json"]
