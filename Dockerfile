# syntax=docker/dockerfile:1
# Multi-stage build of the `rendition` program on Debian bookworm.
# CI has no Docker engine, so scripts/check-image checks this file without
# one: it reads the runtime stage's packages, COPYs, ENV, USER and RUN lines
# from here, builds that root filesystem with mmdebstrap (bookworm minbase)
# and, in it with chroot as the rendition user, runs `rendition --version`,
# `ldd` (no library missing), the demo render (3 jobs done into
# RENDITION_STORE), a video proxy and poster, `policy check`, and the worker
# (HEALTHCHECK passes, SIGTERM exits 0). Of the build stage it replays the
# dependency stub (cargo accepts the manifest; the targets it builds exist)
# and checks that every file the sources include at compile time is COPYed
# in. It does not run this build stage's compile itself.

FROM rust:1-bookworm AS build
# libjpeg-turbo 3 is built from source (cmake, nasm); Little CMS comes from
# Debian; cmake also builds aws-lc for the S3 client's TLS. ffmpeg-next links
# Debian's FFmpeg 5.1 (bindgen needs clang); libheif (HEIC/AVIF) and libtiff
# come from Debian too.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake nasm pkg-config liblcms2-dev \
      libheif-dev libtiff-dev \
      clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
      libavfilter-dev libavdevice-dev libswresample-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a source change does not refetch them.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
RUN mkdir -p src workers/rendition workers/engine workers/video-engine \
 && echo "" > src/lib.rs \
 && echo "fn main() {}" > workers/rendition/main.rs \
 && echo "fn main() {}" > workers/engine/main.rs \
 && echo "fn main() {}" > workers/video-engine/main.rs \
 && cargo build --release --locked --bin rendition --bin rendition-engine --bin rendition-video-engine \
 && rm -rf src workers
# src/fuzzing.rs embeds the fixture policy (include_str!).
COPY fixtures/policy.yaml fixtures/policy.yaml
COPY src src
COPY workers workers
RUN touch src/lib.rs workers/rendition/main.rs workers/engine/main.rs workers/video-engine/main.rs \
 && cargo build --release --locked --bin rendition --bin rendition-engine --bin rendition-video-engine

FROM debian:bookworm-slim
# What the binaries link (`ldd`, checked by scripts/check-image): FFmpeg's
# codec, format, filter, scaling and resampling libraries (the video engine
# alone), Little CMS, libheif
# (with its HEVC and AV1 codecs) and libtiff; libjpeg-turbo, libwebp, OpenJPEG and
# aws-lc are linked in statically. No libavdevice (ffmpeg-next's `device`
# feature is off).
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblcms2-2 ca-certificates libheif1 libtiff6 poppler-utils imagemagick dcraw \
      libavcodec59 libavformat59 libavutil57 libswscale6 libavfilter8 libswresample4 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin rendition
WORKDIR /app
COPY --from=build /src/target/release/rendition /usr/local/bin/rendition
# The engine processes the worker starts for image jobs (no FFmpeg linked)
# and for posters and proxies (FFmpeg).
COPY --from=build /src/target/release/rendition-engine /usr/local/bin/rendition-engine
COPY --from=build /src/target/release/rendition-video-engine /usr/local/bin/rendition-video-engine
COPY fixtures/policy.yaml fixtures/policy.yaml
COPY fixtures/jobs fixtures/jobs
COPY fixtures/demo fixtures/demo
COPY fixtures/originals fixtures/originals
COPY schema schema
RUN mkdir -p /app/data && chown rendition /app/data
USER rendition
# The worker by default: give it RENDITION_POLICY (a mounted file or
# s3://bucket/key; there is no default: a worker without a policy stops),
# RENDITION_AMQP_URL, RENDITION_STORE=s3 and the S3 settings (see the
# README). The fixtures are there for the demo render only. Health and metrics on 9464; SIGTERM
# (docker stop) drains the jobs in flight, so allow it the drain timeout:
# `docker stop -t 40`.
ENV RENDITION_STORE=fs:/app/data \
    RENDITION_HTTP_ADDR=0.0.0.0:9464 \
    RENDITION_LOG_FORMAT=json
EXPOSE 9464 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["rendition"]
CMD ["worker"]
