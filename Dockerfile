# Multi-stage build: compile in the Rust image, run on a slim Debian with only CA certificates.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Declared bench and example targets must exist for cargo to read the manifest.
COPY benches ./benches
COPY examples ./examples
COPY gateway.example.toml openapi.yaml ./
# The embedded local cluster (LiteSVM) is for tests and the offline demo, not production.
RUN cargo build --release --locked --no-default-features --bin x402-gateway

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 gateway
COPY --from=build /src/target/release/x402-gateway /usr/local/bin/x402-gateway
COPY gateway.example.toml /etc/x402-gateway/gateway.toml
# The demo's payments settle on the embedded cluster, which this build leaves out: the image's
# default config sells calls unpaid. Mount a config with [payment] (pay_to, accepts) and a
# facilitator to charge.
RUN sed -i '/^\[payment\]$/,/^enabled = /s/^enabled = true$/enabled = false/' /etc/x402-gateway/gateway.toml \
    && grep -q '^enabled = false$' /etc/x402-gateway/gateway.toml
USER gateway
ENV GATEWAY_CONFIG=/etc/x402-gateway/gateway.toml \
    GATEWAY_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/x402-gateway"]
CMD ["serve"]
