//! Every path the gateway serves, in one leaf module: the router mounts these constants, the
//! metrics layer labels by them and the OpenAPI sync test compares `openapi.yaml` to [`ROUTES`].
//! It imports nothing, so anything may read it without pulling in the router.

/// Liveness.
pub const HEALTHZ_ROUTE: &str = "/healthz";
/// Readiness (store and providers).
pub const READYZ_ROUTE: &str = "/readyz";
/// What this instance serves and sells.
pub const STATUS_ROUTE: &str = "/status";
/// The OpenAPI contract.
pub const OPENAPI_ROUTE: &str = "/openapi.yaml";

/// Per-method route: the gateway builds the JSON-RPC envelope from `{"params": ...}`.
pub const METHOD_ROUTE: &str = "/v1/x402/solana/{cluster}/{provider}/{surface}/{method}";
/// Standard JSON-RPC 2.0 endpoint (single or batch) for unmodified Solana clients.
pub const STANDARD_ROUTE: &str = "/v1/x402/solana/{cluster}/rpc";
/// The Tokens API behind wallet sign-in (auth-only, no payment).
pub const TOKENS_ROUTE: &str = "/v1/x402/tokens/{*path}";

/// Buy a credit pack (an x402 `exact` paid route).
pub const CREDITS_TOPUP_ROUTE: &str = "/v1/credits/topup";
/// Exchange a wallet sign-in for a credits session token.
pub const CREDITS_SESSION_ROUTE: &str = "/v1/credits/session";
/// The session's wallet balance.
pub const CREDITS_BALANCE_ROUTE: &str = "/v1/credits/balance";
/// Credit balances and movements (behind `ADMIN_TOKEN`).
pub const ADMIN_CREDITS_ROUTE: &str = "/admin/credits";
/// One wallet's credit movements (behind `ADMIN_TOKEN`).
pub const ADMIN_CREDITS_WALLET_ROUTE: &str = "/admin/credits/{wallet}";

/// The in-process facilitator's `/supported` (behind `FACILITATOR_SECRET`).
pub const FACILITATOR_SUPPORTED_ROUTE: &str = "/api/internal/facilitator/supported";
/// The in-process facilitator's `/verify`.
pub const FACILITATOR_VERIFY_ROUTE: &str = "/api/internal/facilitator/verify";
/// The in-process facilitator's `/settle`.
pub const FACILITATOR_SETTLE_ROUTE: &str = "/api/internal/facilitator/settle";

/// The usage report (behind `ADMIN_TOKEN`).
pub const USAGE_ROUTE: &str = "/admin/usage";
/// Payments from the ledger, filtered and paged (behind `ADMIN_TOKEN`).
pub const ADMIN_PAYMENTS_ROUTE: &str = "/admin/payments";
/// One payment with its events (behind `ADMIN_TOKEN`).
pub const ADMIN_PAYMENT_ROUTE: &str = "/admin/payments/{key}";
/// A payer's statement (behind `ADMIN_TOKEN`).
pub const ADMIN_STATEMENT_ROUTE: &str = "/admin/payers/{payer}/statement";
/// Settled revenue per day and route (behind `ADMIN_TOKEN`).
pub const ADMIN_REVENUE_ROUTE: &str = "/admin/revenue";
/// Prometheus text exposition (behind `ADMIN_TOKEN` unless `[metrics] public = true`).
pub const METRICS_ROUTE: &str = "/metrics";

/// Every path the router serves (the facilitator and admin ones only when configured).
pub const ROUTES: &[&str] = &[
    HEALTHZ_ROUTE,
    READYZ_ROUTE,
    STATUS_ROUTE,
    OPENAPI_ROUTE,
    METHOD_ROUTE,
    STANDARD_ROUTE,
    TOKENS_ROUTE,
    CREDITS_TOPUP_ROUTE,
    CREDITS_SESSION_ROUTE,
    CREDITS_BALANCE_ROUTE,
    FACILITATOR_SUPPORTED_ROUTE,
    FACILITATOR_VERIFY_ROUTE,
    FACILITATOR_SETTLE_ROUTE,
    USAGE_ROUTE,
    ADMIN_PAYMENTS_ROUTE,
    ADMIN_PAYMENT_ROUTE,
    ADMIN_STATEMENT_ROUTE,
    ADMIN_REVENUE_ROUTE,
    ADMIN_CREDITS_ROUTE,
    ADMIN_CREDITS_WALLET_ROUTE,
    METRICS_ROUTE,
];
