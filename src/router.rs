//! Every route, in one place. The paths themselves are constants in [`crate::routes`] (listed
//! once in [`crate::routes::ROUTES`]); the OpenAPI sync test checks that `openapi.yaml` documents exactly these.

use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use std::sync::Arc;

use crate::app::AppState;
use crate::facilitator::http::facilitator_routes;
use crate::facilitator::Facilitator;
use crate::routes::{
    HEALTHZ_ROUTE, METHOD_ROUTE, OPENAPI_ROUTE, READYZ_ROUTE, STANDARD_ROUTE, STATUS_ROUTE,
    TOKENS_ROUTE,
};
use crate::{admin, authgate, error, health, openapi, paygate, proxy, ratelimit, tokens, usage};

/// Builds the router with its state (the global layers are added by [`crate::stack`]).
pub fn router(app: AppState) -> Router {
    // RPC routes: parsing runs as a route layer so that payment, replay and rate-limit layers
    // can be added between it (outermost) and the forwarding handler without touching either.
    let rpc_routes = Router::new()
        .route(
            METHOD_ROUTE,
            post(proxy::forward).get(proxy::describe_method),
        )
        .route(STANDARD_ROUTE, post(proxy::forward))
        // Inner: the paid part (a pass-through when payments are off).
        .route_layer(from_fn_with_state(app.clone(), paygate::paygate))
        // Unpaid requests per client IP, and the provider budget when payments are off (paid
        // requests pass: the paygate checks payer and provider in its reservation).
        .route_layer(from_fn_with_state(app.clone(), ratelimit::rate_limit))
        // Counts every answer given below (challenges, 429s, paid, failures) per day.
        .route_layer(from_fn_with_state(app.clone(), usage::record_usage))
        // Outer: parse and validate once; nothing unpriceable reaches the paygate.
        .route_layer(from_fn_with_state(app.clone(), proxy::parse_rpc_request));

    let free: [(&str, MethodRouter<AppState>); 4] = [
        (HEALTHZ_ROUTE, get(health::get_healthz)),
        (READYZ_ROUTE, get(health::get_readyz)),
        (STATUS_ROUTE, get(health::get_status)),
        (OPENAPI_ROUTE, get(openapi::get_openapi)),
    ];
    let mut router = Router::new();
    for (path, route) in free {
        router = router.route(path, route);
    }
    // The facilitator's endpoints are for trusted callers: mounted only with a facilitator and
    // a shared secret (the routes check it in constant time and answer 401 without it).
    if let (Some(facilitator), Some(secret)) = (&app.facilitator, &app.config.facilitator_secret) {
        let facilitator: Arc<dyn Facilitator> = facilitator.clone();
        router = router.merge(facilitator_routes(facilitator, secret.clone()).with_state(()));
    }
    // Auth-only routes: a wallet sign-in instead of a payment. Without `[tokens]` the path is
    // still served, with a 404 that says why, so the documented route never just vanishes.
    let tokens_routes = match &app.config.tokens {
        Some(config) => authgate::require(
            Router::new().route(
                TOKENS_ROUTE,
                get(tokens::forward_tokens).post(tokens::forward_tokens),
            ),
            config.auth,
            app.siwx.clone(),
        ),
        None => Router::new().route(
            TOKENS_ROUTE,
            get(tokens::not_configured).post(tokens::not_configured),
        ),
    };
    // Operator routes: /admin/usage and /metrics behind ADMIN_TOKEN (not mounted without one;
    // `[metrics] public = true` serves /metrics to anyone).
    router = router.merge(admin::routes(&app));
    router
        .merge(rpc_routes)
        .merge(tokens_routes)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(app)
}
