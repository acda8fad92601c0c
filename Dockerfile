# syntax=docker/dockerfile:1
#
# herald's container images, built from the repository root:
#
#   docker build -t herald .                          # the gateway (default target)
#   docker build --target plugins -t herald-plugins . # the shipped plugins
#
# The gateway image runs as UID 65532 with nothing writable but its volumes
# (see deploy/README.md, "Security posture"). The plugin image only carries
# the shipped .wasm files and a shell to copy them: the Helm chart runs it as
# an init container that fills the plugin emptyDir.

ARG RUST_VERSION=1.95

# === build: herald (release) and the shipped plugins (wasm32-wasip2) ===
# bookworm, so the binary links against the same glibc as the final image.
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip2
# Every workspace member must be present for cargo to load the workspace,
# test crates included; .dockerignore keeps target/ and .git out.
COPY . .
# Cache mounts keep the registry and incremental artefacts between builds;
# the results are copied out of the cached target dir into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p herald \
 && cargo build --locked --target wasm32-wasip2 --profile plugin \
      -p diff -p filter -p label-filter -p noise -p prune -p route \
 && mkdir -p /out/plugins /out/empty \
 && cp target/release/herald /out/herald \
 && cp target/wasm32-wasip2/plugin/diff.wasm \
       target/wasm32-wasip2/plugin/filter.wasm \
       target/wasm32-wasip2/plugin/label_filter.wasm \
       target/wasm32-wasip2/plugin/noise.wasm \
       target/wasm32-wasip2/plugin/prune.wasm \
       target/wasm32-wasip2/plugin/route.wasm \
       /out/plugins/

# === plugins: the shipped .wasm files for the chart's init container ===
# busybox (about 1.5 MB) for `sh` and `cp`; the files are world-readable and
# the image runs as the same non-root UID as herald.
FROM busybox:1.37-musl AS plugins
COPY --from=build --chmod=0444 /out/plugins/ /plugins/
USER 65532:65532
CMD ["sh", "-c", "cp /plugins/*.wasm /shared/"]

# === herald: the gateway (default target) ===
# distroless/cc: glibc, libgcc_s, CA certificates and tzdata, nothing else (no
# shell, no package manager), about 25 MB. herald links glibc dynamically
# (ldd: libc, libm, libgcc_s), which rules out distroless/static and scratch
# without a musl build, and musl's allocator is slow for herald's
# parse-heavy work (DESIGN.md, performance notes).
FROM gcr.io/distroless/cc-debian12:nonroot AS herald
COPY --from=build --chmod=0555 /out/herald /usr/local/bin/herald
# Numeric, so runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# The only writable paths: plugin cache and state dir, owned by herald's UID
# so that `docker run` works too. Mount volumes there when the root
# filesystem is read-only (the chart and manifests do).
COPY --from=build --chown=65532:65532 /out/empty/ /var/cache/herald/
COPY --from=build --chown=65532:65532 /out/empty/ /var/lib/herald/
VOLUME ["/var/cache/herald", "/var/lib/herald"]
# Query API, /metrics, /healthz and /readyz (the config's api.listen).
EXPOSE 8080
ENV HERALD_LOG=info \
    HERALD_LOG_FORMAT=json
ENTRYPOINT ["herald"]
CMD ["run", "--config", "/etc/herald/config.yaml"]
