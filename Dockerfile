# syntax=docker/dockerfile:1
# Multi-stage build of the `rendition` program on Debian bookworm.
# Not built in this repository's CI (no Docker engine there): reviewed by hand.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not refetch them.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
RUN mkdir -p src workers/rendition \
 && echo "" > src/lib.rs \
 && echo "fn main() {}" > workers/rendition/main.rs \
 && cargo build --release --locked --bin rendition \
 && rm -rf src workers
COPY src src
COPY workers workers
RUN touch src/lib.rs workers/rendition/main.rs \
 && cargo build --release --locked --bin rendition

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin rendition
WORKDIR /app
COPY --from=build /src/target/release/rendition /usr/local/bin/rendition
COPY fixtures/policy.yaml fixtures/policy.yaml
COPY fixtures/jobs fixtures/jobs
COPY schema schema
USER rendition
ENV RENDITION_POLICY=/app/fixtures/policy.yaml
ENTRYPOINT ["rendition"]
CMD ["policy", "check", "/app/fixtures/policy.yaml"]
