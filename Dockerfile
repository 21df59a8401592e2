# The gateway's container image (docs/deploy.md):
#   docker build -t kyc-gateway .                                      production: no sandbox in the binary
#   docker build --build-arg FEATURES=sandbox -t kyc-gateway:sandbox .  with the sandbox providers, as `cargo run`
# Build stage: the toolchain of Cargo.toml's rust-version; runtime stage: distroless glibc, non-root, the binary only.

FROM rust:1.89-bookworm AS builder
WORKDIR /build
# Cargo features of the binary beyond none: `sandbox` for a sandbox image, never for production.
ARG FEATURES=""

# Dependencies first, against stub crates with the real manifests and lock file: this layer is rebuilt only when a
# manifest or Cargo.lock changes, not on every source edit.
COPY Cargo.toml Cargo.lock ./
# The allocator's options, read when jemalloc is built (.cargo/config.toml).
COPY .cargo ./.cargo
COPY crates/kyc-vocabulary/Cargo.toml crates/kyc-vocabulary/
COPY crates/kyc-sandbox/Cargo.toml crates/kyc-sandbox/
COPY crates/kyc-bench/Cargo.toml crates/kyc-bench/
RUN for crate in kyc-vocabulary kyc-sandbox; do mkdir -p crates/$crate/src && touch crates/$crate/src/lib.rs; done \
    && mkdir -p crates/kyc-bench/src src && echo 'fn main() {}' > crates/kyc-bench/src/main.rs \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked -p kyc-gateway --no-default-features --features "$FEATURES" \
    && rm -rf src crates/*/src

# The sources (src/ and crates/ hold everything the binary embeds but the migrations). Cargo rebuilds by
# modification time, so the real sources are touched to count as newer than the stubs.
COPY crates ./crates
COPY migrations ./migrations
COPY src ./src
RUN find src crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p kyc-gateway --no-default-features --features "$FEATURES"

# glibc, libgcc, CA certificates and a `nonroot` user (65532); no shell, no package manager
# (https://github.com/GoogleContainerTools/distroless). TLS (rustls) and SQLite are compiled into the binary.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /build/target/release/kyc-gateway /kyc-gateway
USER 65532:65532
# 8080: the API; 9090: /metrics, on a listener of its own (production mode's default is loopback, unreachable from
# outside a container, so the image listens on every interface; k8s/base/deployment.yaml sets the same).
ENV KYC_GATEWAY_METRICS_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
ENTRYPOINT ["/kyc-gateway"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
