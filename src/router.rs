//! Every route, in one place. The paths themselves are constants in [`crate::routes`] (listed
//! once in [`crate::routes::ROUTES`]); the route table ([`crate::catalog`]) describes each
//! operation mounted here, and a test checks that the two agree.

use axum::middleware::from_fn_with_state;
use axum::routing::{any, delete, get, post, MethodRouter};
use axum::Router;

use std::sync::Arc;

use crate::app::{App, AppState};
use crate::config::TOKENS_MOUNT;
use crate::facilitator::http::facilitator_routes;
use crate::facilitator::Facilitator;
use crate::ratelimit::LimitGate;
use crate::routes::{
    CATALOG_ROUTE, CREDITS_BALANCE_ROUTE, CREDITS_SESSION_ROUTE, CREDITS_TOPUP_ROUTE,
    DISCOVER_GROUP_ROUTE, DISCOVER_MD_ROUTE, DISCOVER_ROUTE, HEALTHZ_ROUTE, LLMS_TXT_ROUTE,
    METHOD_ROUTE, OPENAPI_JSON_ROUTE, OPENAPI_ROUTE, PROVIDERS_REGISTER_ROUTE, PROVIDERS_ROUTE,
    PROVIDER_ROUTE, READYZ_ROUTE, ROUTE_DECISION_ROUTE, STANDARD_ROUTE, STATUS_ROUTE, TOKENS_ROUTE,
    WELL_KNOWN_OPENAPI_ROUTE, WELL_KNOWN_X402_ROUTE,
};
use crate::routing::api::{self as routing_api, RoutingApi};
use crate::{
    admin, authgate, catalog, credits, error, health, paygate, proxy, ratelimit, services,
};

/// Builds the router with its state (the global layers are added by [`crate::stack`]).
pub(crate) fn router(app: AppState) -> Router {
    let rpc_routes = rpc_routes(&app);

    let free: [(&str, MethodRouter<AppState>); 12] = [
        (HEALTHZ_ROUTE, get(health::get_healthz)),
        (READYZ_ROUTE, get(health::get_readyz)),
        (STATUS_ROUTE, get(health::get_status)),
        (OPENAPI_ROUTE, get(catalog::get_openapi_yaml)),
        (OPENAPI_JSON_ROUTE, get(catalog::get_openapi_json)),
        (WELL_KNOWN_OPENAPI_ROUTE, get(catalog::get_openapi_json)),
        (WELL_KNOWN_X402_ROUTE, get(catalog::get_well_known_x402)),
        (CATALOG_ROUTE, get(catalog::get_catalog)),
        (DISCOVER_ROUTE, get(catalog::get_discover)),
        (DISCOVER_MD_ROUTE, get(catalog::get_discover_md)),
        (DISCOVER_GROUP_ROUTE, get(catalog::get_discover_group)),
        (LLMS_TXT_ROUTE, get(catalog::get_llms_txt)),
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
    // The facilitator proxy (off by default), behind its own access rule.
    if let Some(proxy) = &app.facilitator_proxy {
        router = router.merge(
            crate::facilitator::proxy::routes(
                proxy.clone(),
                app.config.facilitator_proxy.access,
                app.config.facilitator_proxy_token.as_ref(),
            )
            .with_state(()),
        );
    }
    // The Tokens API is a configured service (`[tokens]` is its shorthand); without one mounted
    // at its path the path is still served, with a 404 that says why, so the documented route
    // never just vanishes.
    if !app.services.mounted_at(TOKENS_MOUNT) {
        router = router.route(
            TOKENS_ROUTE,
            get(services::tokens_not_configured).post(services::tokens_not_configured),
        );
    }
    router = router.merge(credit_routes(&app));
    // Configured services: each mount gets its own layer state (the service, the paygate, the
    // sign-in gate); the layer finds the route (404 without one) before anything else.
    for service in app.services.iter() {
        let state = services::ServiceState {
            service: service.clone(),
            paygate: app.paygate.clone(),
            siwx: app.siwx.clone(),
            public_base_url: app.config.server.public_base_url.clone(),
        };
        let mount = Router::new()
            .route(&service.mount, any(services::forward))
            .route(
                &format!("{}/{{*path}}", service.mount),
                any(services::forward),
            )
            .route_layer(from_fn_with_state(state, services::service_gate));
        router = router.merge(mount);
    }
    // Operator routes: /admin/usage and /metrics behind ADMIN_TOKEN (not mounted without one;
    // `[metrics] public = true` serves /metrics to anyone).
    router = router.merge(admin::routes(&app));
    router = router.merge(registry_routes(&app));
    router
        .merge(rpc_routes)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(app)
}

/// The provider registry and the routing decision: reads are open (no URLs, no keys in them),
/// changes need the admin token and are not mounted without one.
fn registry_routes(app: &App) -> Router<AppState> {
    let api = RoutingApi {
        registry: app.registry.clone(),
        routing: app.config.routing.clone(),
        pricing: app.pricing.clone(),
    };
    let mut routes = Router::new()
        .route(PROVIDERS_ROUTE, get(routing_api::get_providers))
        .route(ROUTE_DECISION_ROUTE, post(routing_api::route));
    if let Some(token) = app.config.admin_token.as_ref().filter(|t| !t.is_empty()) {
        let protected = Router::new()
            .route(PROVIDERS_REGISTER_ROUTE, post(routing_api::register))
            .route(PROVIDER_ROUTE, delete(routing_api::remove))
            .route_layer(from_fn_with_state(
                admin::AdminToken::new(token),
                admin::require_admin,
            ));
        routes = routes.merge(protected);
    }
    routes.with_state(api)
}

/// The RPC routes. Each request meets, outermost first:
/// 1. its route's parser (one per route): nothing unparsed or unpriced goes further;
/// 2. either the paygate (payments on: the per-IP challenge limit, the payment, the payer and
///    provider limits in its claim) or the free-route limits (payments off: per IP and the
///    provider budget), decided here once, not inside the layers;
/// 3. the forwarding handler.
fn rpc_routes(app: &App) -> Router<AppState> {
    let rpc = app.rpc.clone();
    let method = Router::new().route(
        METHOD_ROUTE,
        post(proxy::forward).get(proxy::describe_method),
    );
    let standard = Router::new().route(STANDARD_ROUTE, post(proxy::forward));
    let method =
        gated(app, method).route_layer(from_fn_with_state(rpc.clone(), proxy::parse_method_route));
    let standard = gated(app, standard)
        .route_layer(from_fn_with_state(rpc.clone(), proxy::parse_standard_route));
    method.merge(standard).with_state(rpc)
}

/// Prepaid credits (only with `[credits] enabled`): the top-up (parsed and priced, then sold
/// by the paygate like any paid route), the session (behind the wallet sign-in) and the
/// balance.
fn credit_routes(app: &App) -> Router<AppState> {
    let (Some(credits), Some(gate)) = (&app.credits, &app.paygate) else {
        return Router::new();
    };
    let topup = Router::new()
        .route(CREDITS_TOPUP_ROUTE, post(credits::topup))
        .route_layer(from_fn_with_state(gate.clone(), paygate::paygate))
        .route_layer(from_fn_with_state(credits.clone(), credits::parse_topup));
    let signed_in = from_fn_with_state(app.siwx.clone(), authgate::require_siwx);
    let session = Router::new()
        .route(
            CREDITS_SESSION_ROUTE,
            post(credits::issue_session)
                .layer(signed_in)
                .delete(credits::revoke_session),
        )
        .route(CREDITS_BALANCE_ROUTE, get(credits::balance));
    topup.merge(session).with_state(credits.clone())
}

/// Step 2 above: the layer between parsing and the handler.
fn gated<S: Clone + Send + Sync + 'static>(app: &App, routes: Router<S>) -> Router<S> {
    if let Some(gate) = &app.paygate {
        return routes.route_layer(from_fn_with_state(gate.clone(), paygate::paygate));
    }
    if app.limits.enabled() {
        let gate = LimitGate {
            limits: app.limits.clone(),
            store: app.store.clone(),
        };
        return routes.route_layer(from_fn_with_state(gate, ratelimit::rate_limit));
    }
    routes
}
