# Multi-stage build: compile in the Rust image, run on a slim Debian with only CA certificates.
# The base images are build arguments so the same file can be built on locally made bases
# (docs/deploy.md says how it was tested without a registry).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# The stage (or image) the binary is copied from: the `build` stage below, or an image holding
# /usr/local/bin/x402-gateway built elsewhere.
ARG BINARY_FROM=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Dependencies are downloaded in their own layer, which only a lockfile change invalidates.
# (`cargo fetch` reads the manifest, so the declared bench and example targets must exist.)
COPY benches ./benches
COPY examples ./examples
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo fetch --locked && rm -rf src
COPY src ./src
# The ledger's schema is embedded at compile time (sqlx::migrate!); build.rs rebuilds on change.
COPY build.rs ./
COPY migrations ./migrations
COPY gateway.example.toml ./
# Compiled dependencies persist across builds in BuildKit cache mounts, so a source change
# rebuilds the crate only. The embedded local cluster (LiteSVM) is for tests and the offline
# demo, not production: --no-default-features leaves it out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin x402-gateway \
    && install -D target/release/x402-gateway /usr/local/bin/x402-gateway

FROM ${BINARY_FROM} AS binary

FROM ${RUNTIME_IMAGE} AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 gateway
COPY --from=binary /usr/local/bin/x402-gateway /usr/local/bin/x402-gateway
# The production config: payments on (mainnet USDC), the in-process facilitator paying fees
# from FEE_PAYER_KEY, Redis from REDIS_URL, payTo from PAY_TO, the public URL from
# PUBLIC_BASE_URL. A missing one stops the start with one line naming it (exit 64). Mount
# another file over it (or set GATEWAY_CONFIG) to change anything else.
COPY gateway.mainnet.example.toml /etc/x402-gateway/gateway.toml
USER gateway
ENV GATEWAY_CONFIG=/etc/x402-gateway/gateway.toml \
    GATEWAY_LISTEN=0.0.0.0:8080
EXPOSE 8080
# The runtime image has no curl: the binary probes its own /healthz (exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/x402-gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/x402-gateway"]
CMD ["serve"]
