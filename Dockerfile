# syntax=docker/dockerfile:1
# Multi-stage build of the `rendition` program on Debian bookworm.
# Not built in this repository's CI (no Docker engine there): reviewed by hand.

FROM rust:1-bookworm AS build
# libjpeg-turbo 3 is built from source (cmake, nasm); Little CMS comes from Debian.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake nasm pkg-config liblcms2-dev \
 && rm -rf /var/lib/apt/lists/*
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
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblcms2-2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin rendition
WORKDIR /app
COPY --from=build /src/target/release/rendition /usr/local/bin/rendition
COPY fixtures/policy.yaml fixtures/policy.yaml
COPY fixtures/jobs fixtures/jobs
COPY fixtures/demo fixtures/demo
COPY fixtures/originals fixtures/originals
COPY schema schema
USER rendition
ENV RENDITION_POLICY=/app/fixtures/policy.yaml \
    RENDITION_STORE=fs:/app/data
EXPOSE 8080
ENTRYPOINT ["rendition"]
CMD ["policy", "check", "/app/fixtures/policy.yaml"]
