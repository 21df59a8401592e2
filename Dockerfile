# The gateway's container image: `docker build -t kyc-gateway .` (docs/deploy.md).
# Build stage: the toolchain of Cargo.toml's rust-version; runtime stage: distroless glibc, non-root, the binary only.

FROM rust:1.89-bookworm AS builder
WORKDIR /build

# Dependencies first, against a stub crate with the real manifest and lock file: this layer is rebuilt only when
# Cargo.toml or Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin kyc-gateway \
    && rm -rf src

# The crate itself (src/ holds everything the binary embeds: migrations, the GraphiQL assets). Cargo rebuilds by
# modification time, so the real sources are touched to count as newer than the stub.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin kyc-gateway

# glibc, libgcc, CA certificates and a `nonroot` user (65532); no shell, no package manager
# (https://github.com/GoogleContainerTools/distroless). TLS (rustls) and SQLite are compiled into the binary.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /build/target/release/kyc-gateway /kyc-gateway
USER 65532:65532
# 8080: the API; 9090: /metrics when KYC_GATEWAY_METRICS_LISTEN is set (k8s/base/deployment.yaml sets both).
EXPOSE 8080 9090
ENTRYPOINT ["/kyc-gateway"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
