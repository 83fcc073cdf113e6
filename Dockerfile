# syntax=docker/dockerfile:1
# One image, six binaries: eye-api, eye-worker, eye-fetcher, eye-exporter, eye-dispatcher, eye-migrate.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && cp target/release/eye-api target/release/eye-worker target/release/eye-fetcher target/release/eye-exporter target/release/eye-dispatcher target/release/eye-migrate /out/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 eye
COPY --from=build /out/ /usr/local/bin/
USER eye
ENV EYE_HTTP_ADDR=0.0.0.0:8000 \
    EYE_LOG_FORMAT=json
EXPOSE 8000
CMD ["eye-api", "serve"]
