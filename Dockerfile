# One image for every gridlake service; the command picks the role.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cgo is needed for DuckDB (batch recompute and SQL).
RUN CGO_ENABLED=1 go build -trimpath -o /out/gridlake ./cmd/gridlake

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/gridlake /usr/local/bin/gridlake
USER 65532:65532
ENTRYPOINT ["gridlake"]
