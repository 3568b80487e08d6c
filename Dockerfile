# One image for every gridlake service (the command picks the role), and a
# MinIO image built from the same pinned module the tests use (MinIO no
# longer publishes community images). docker-compose.yml builds both.

# MINIO_VERSION must equal the Makefile's (TestDeploy_MinIOPinnedLikeTheMakefile).
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cgo is needed for DuckDB (batch recompute and SQL).
RUN CGO_ENABLED=1 go build -trimpath -o /out/gridlake ./cmd/gridlake

FROM golang:1.26-bookworm AS minio-build
ARG MINIO_VERSION
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath github.com/minio/minio@${MINIO_VERSION}

FROM debian:bookworm-slim AS base
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*

# MinIO, run as the same unprivileged user; gridlake is only there for the
# healthcheck (no curl in the image).
FROM base AS minio
RUN mkdir -p /data /etc/minio/certs && chown -R 65532:65532 /data /etc/minio
COPY --from=minio-build /out/minio /usr/local/bin/minio
COPY --from=build /out/gridlake /usr/local/bin/gridlake
ENV HOME=/data
WORKDIR /data
VOLUME /data
USER 65532:65532
EXPOSE 9000
ENTRYPOINT ["minio"]
# The console listens on loopback only: it is not part of the deployment.
CMD ["server", "/data", "--certs-dir", "/etc/minio/certs", "--console-address", "127.0.0.1:9001"]

# gridlake (the default target). Its data directory holds disposable
# working state (DuckDB spill, the lake cache): the lake in MinIO and Kafka
# are the data. It is a volume owned by the runtime user, and the working
# directory, so nothing is written where uid 65532 may not write.
FROM base AS gridlake
RUN mkdir -p /var/lib/gridlake && chown 65532:65532 /var/lib/gridlake
COPY --from=build /out/gridlake /usr/local/bin/gridlake
ENV GRIDLAKE_DATA_DIR=/var/lib/gridlake HOME=/var/lib/gridlake
WORKDIR /var/lib/gridlake
VOLUME /var/lib/gridlake
USER 65532:65532
EXPOSE 8080 5432
ENTRYPOINT ["gridlake"]
