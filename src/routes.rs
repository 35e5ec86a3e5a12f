//! Every path the gateway serves, in one leaf module: the router mounts these constants, the
//! metrics layer labels by them and the route-table test compares the generated OpenAPI to [`ROUTES`].
//! It imports nothing, so anything may read it without pulling in the router.

/// Liveness.
pub const HEALTHZ_ROUTE: &str = "/healthz";
/// Readiness (store and providers).
pub const READYZ_ROUTE: &str = "/readyz";
/// What this instance serves and sells.
pub const STATUS_ROUTE: &str = "/status";
/// The OpenAPI contract (the same document as [`OPENAPI_JSON_ROUTE`]: JSON is YAML).
pub const OPENAPI_ROUTE: &str = "/openapi.yaml";
/// The OpenAPI 3.1 contract generated from the route table.
pub const OPENAPI_JSON_ROUTE: &str = "/openapi.json";
/// The same, where discovery crawlers look.
pub const WELL_KNOWN_OPENAPI_ROUTE: &str = "/.well-known/openapi.json";
/// The x402 discovery manifest (resources and their offers).
pub const WELL_KNOWN_X402_ROUTE: &str = "/.well-known/x402";
/// Every route with its access, price and schemas, as JSON.
pub const CATALOG_ROUTE: &str = "/v1/catalog";
/// The overview for agents (JSON, or markdown for AI and terminal clients).
pub const DISCOVER_ROUTE: &str = "/discover";
/// The overview as markdown.
pub const DISCOVER_MD_ROUTE: &str = "/discover.md";
/// One group of routes (`rpc`, a service id, `operations`), `all`, or either with `.md`.
pub const DISCOVER_GROUP_ROUTE: &str = "/discover/{id}";
/// The llms.txt overview.
pub const LLMS_TXT_ROUTE: &str = "/llms.txt";

/// Per-method route: the gateway builds the JSON-RPC envelope from `{"params": ...}`.
pub const METHOD_ROUTE: &str = "/v1/x402/solana/{cluster}/{provider}/{surface}/{method}";
/// Standard JSON-RPC 2.0 endpoint (single or batch) for unmodified Solana clients.
pub const STANDARD_ROUTE: &str = "/v1/x402/solana/{cluster}/rpc";
/// The Tokens API behind wallet sign-in (auth-only, no payment): the mount of the `[tokens]`
/// shorthand's service (`[[services]]` with `mount = "/v1/x402/tokens"`), and without one a 404
/// `tokens_not_configured`. Not in [`ROUTES`]: what is served there depends on the config.
pub const TOKENS_ROUTE: &str = "/v1/x402/tokens/{*path}";
/// The shape every `[[services]]` mount takes (`{services_base_path}/{id}/{*path}`), for the
/// metrics label of a paid service route; the concrete mounts depend on the config.
pub const SERVICE_ROUTE: &str = "/{service}/{*path}";

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

/// Every provider with its health (no URLs, no keys).
pub const PROVIDERS_ROUTE: &str = "/providers";
/// Registers a provider at run time (behind `ADMIN_TOKEN`).
pub const PROVIDERS_REGISTER_ROUTE: &str = "/providers/register";
/// Removes a provider registered at run time (behind `ADMIN_TOKEN`).
pub const PROVIDER_ROUTE: &str = "/providers/{name}";
/// The routing decision the standard endpoint would make.
pub const ROUTE_DECISION_ROUTE: &str = "/route";

/// The facilitator proxy's `/supported` (`[facilitator_proxy]`, off by default).
pub const PROXY_SUPPORTED_ROUTE: &str = "/facilitator/supported";
/// The facilitator proxy's `/verify`.
pub const PROXY_VERIFY_ROUTE: &str = "/facilitator/verify";
/// The facilitator proxy's `/settle`.
pub const PROXY_SETTLE_ROUTE: &str = "/facilitator/settle";
/// The facilitator proxy's health: 200 when a target is healthy.
pub const PROXY_HEALTH_ROUTE: &str = "/facilitator/health";
/// The facilitator proxy's targets in detail.
pub const PROXY_STATUS_ROUTE: &str = "/facilitator/status";

/// The usage report (behind `ADMIN_TOKEN`).
pub const USAGE_ROUTE: &str = "/admin/usage";
/// The chain audit's findings (behind `ADMIN_TOKEN`).
pub const ADMIN_AUDIT_ROUTE: &str = "/admin/audit";
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
    OPENAPI_JSON_ROUTE,
    WELL_KNOWN_OPENAPI_ROUTE,
    WELL_KNOWN_X402_ROUTE,
    CATALOG_ROUTE,
    DISCOVER_ROUTE,
    DISCOVER_MD_ROUTE,
    DISCOVER_GROUP_ROUTE,
    LLMS_TXT_ROUTE,
    METHOD_ROUTE,
    STANDARD_ROUTE,
    FACILITATOR_SUPPORTED_ROUTE,
    FACILITATOR_VERIFY_ROUTE,
    FACILITATOR_SETTLE_ROUTE,
    USAGE_ROUTE,
    ADMIN_PAYMENTS_ROUTE,
    ADMIN_PAYMENT_ROUTE,
    ADMIN_STATEMENT_ROUTE,
    ADMIN_REVENUE_ROUTE,
    ADMIN_AUDIT_ROUTE,
    METRICS_ROUTE,
    PROVIDERS_ROUTE,
    PROVIDERS_REGISTER_ROUTE,
    PROVIDER_ROUTE,
    ROUTE_DECISION_ROUTE,
    PROXY_SUPPORTED_ROUTE,
    PROXY_VERIFY_ROUTE,
    PROXY_SETTLE_ROUTE,
    PROXY_HEALTH_ROUTE,
    PROXY_STATUS_ROUTE,
];

/// The prepaid-credit routes, served (and documented) only with `[credits] enabled`.
pub const CREDITS_ROUTES: &[&str] = &[
    CREDITS_TOPUP_ROUTE,
    CREDITS_SESSION_ROUTE,
    CREDITS_BALANCE_ROUTE,
    ADMIN_CREDITS_ROUTE,
    ADMIN_CREDITS_WALLET_ROUTE,
];
