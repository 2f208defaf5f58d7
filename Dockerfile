# syntax=docker/dockerfile:1
#
# Observer's container image, in three stages:
#   assets   Node 20 builds the replay pages (replay-player/dist) and the
#            browser SDK (sdk/dist) with scripts/build-assets;
#   build    Rust 1.95 compiles `observer` (release), and server/build.rs
#            embeds those assets into the binary;
#   runtime  distroless/cc (glibc, CA certificates, no shell): the binary
#            alone, running as the image's non-root user (65532).
# Configured by environment variables only (OBSERVER_*, AWS_*; see
# docs/configuration.md). Build: `docker build -t observer .`
#
# The builder and the runtime share Debian 12 (bookworm), so the binary's
# glibc matches.

FROM node:20.20.2-bookworm-slim AS assets
WORKDIR /src
# The lockfiles first, so `npm ci` is cached until they change.
COPY sdk/package.json sdk/package-lock.json sdk/
COPY replay-player/package.json replay-player/package-lock.json replay-player/
RUN cd sdk && npm ci --no-audit --no-fund --loglevel=error \
 && cd ../replay-player && npm ci --no-audit --no-fund --loglevel=error
COPY scripts/build-assets scripts/
COPY sdk/tsconfig.json sdk/
COPY sdk/scripts sdk/scripts
COPY sdk/src sdk/src
COPY replay-player/build.mjs replay-player/tsconfig.json replay-player/
COPY replay-player/src replay-player/src
RUN scripts/build-assets

FROM rust:1.95-slim-bookworm AS build
# make: jemalloc's build (tikv-jemalloc-sys). The C compiler is in the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY server/Cargo.toml server/build.rs server/
COPY server/src server/src
COPY server/benches server/benches
COPY server/vendor server/vendor
COPY --from=assets /src/replay-player/dist replay-player/dist
COPY --from=assets /src/sdk/dist sdk/dist
# The registry and target directories are BuildKit caches: a rebuild after a
# source change recompiles only the observer crate.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p observer --bin observer \
 && install -D -m 0755 target/release/observer /out/observer \
 && install -d /out/data

# distroless publishes no version tags: pinned by digest. Refresh with
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime
COPY --from=build /out/observer /usr/local/bin/observer
# Replays (without S3) and the generated viewer token / share secret. A named
# volume mounted here starts with this directory's owner (65532).
COPY --from=build --chown=65532:65532 /out/data /data
ENV OBSERVER_LISTEN=0.0.0.0:8006 \
    OBSERVER_DATA_DIR=/data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8006
# No curl in the image: the binary asks its own /readyz (`observer healthcheck`,
# exit 0 on 2xx). /readyz is 503 while the disk spool is nearly full or the
# local store fails; Loki or S3 down is 200 "degraded" (the spool keeps data).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/observer", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/observer"]
