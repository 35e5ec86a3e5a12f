//! The route table: every operation the router serves for this configuration, with its access
//! (free, paid, sign-in, operator), its prices and its schemas, built once from the config. The
//! catalog (`/v1/catalog`), the discovery views (`/discover…`, `/llms.txt`), the OpenAPI
//! document (`/openapi.json`) and the x402 manifest (`/.well-known/x402`) are all generated
//! from it, and a paid route's Bazaar entry is the same [`Discovery`] its 402 carries, so none
//! of them can disagree with another.
//!
//! Adding a route: its path constant in [`crate::routes`], its mount in [`crate::router`], and
//! one [`Operation`] in `operations.rs` (fixed routes) — the table test fails until all three
//! agree.

mod handlers;
mod markdown;
mod openapi;
mod operations;

use serde_json::{json, Value};

pub(crate) use handlers::Docs;
pub(crate) use handlers::{
    get_catalog, get_discover, get_discover_group, get_discover_md, get_llms_txt, get_openapi_json,
    get_openapi_yaml, get_well_known_x402,
};
pub use handlers::{Published, PublishedSlot};
pub use openapi::openapi_document;

use crate::config::{Access as RouteAccess, Cluster, Config};
use crate::paygate::challenge::bazaar_extension;
use crate::priced::Discovery;
use crate::pricing::Tariff;
use crate::services::Services;

/// How an operation is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone, no payment.
    Free,
    /// An x402 payment per call, between `min` and `max` atomic units.
    Paid {
        /// Cheapest call.
        min: u64,
        /// Dearest call.
        max: u64,
    },
    /// A wallet sign-in (SIWX), no payment.
    Siwx,
    /// The operator's bearer token.
    Admin,
    /// The operator's bearer token, or anyone (`[metrics] public = true`).
    AdminOrPublic,
    /// The facilitator's shared secret.
    FacilitatorSecret,
    /// The facilitator proxy's bearer token (`[facilitator_proxy] access = "token"`).
    ProxyToken,
}

impl Access {
    /// The catalog's word for it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Access::Free => "free",
            Access::Paid { .. } => "paid",
            Access::Siwx => "siwx",
            Access::Admin | Access::AdminOrPublic => "operator",
            Access::FacilitatorSecret => "facilitator_secret",
            Access::ProxyToken => "proxy_token",
        }
    }
}

/// A group of operations, as `/discover/{id}` shows it.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// `rpc`, a service id, `gateway`, `operators`.
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) description: String,
    /// Upstream documentation (services).
    pub(crate) docs_url: Option<String>,
}

/// One concrete thing sold (or opened): a resource and its price.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    /// HTTP method.
    pub(crate) method: String,
    /// The public path (concrete for RPC methods, the template for service routes).
    pub(crate) path: String,
    /// Atomic units (0 for free routes).
    pub(crate) amount: u64,
    /// CAIP-2 network the payment is taken on.
    pub(crate) network: &'static str,
    /// What it is.
    pub(crate) description: String,
    /// The Bazaar extension its 402 carries (`info` with input and output, `schema`).
    pub(crate) bazaar: Option<Value>,
}

/// One operation: a method on a path template.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// `GET`, `POST`...
    pub(crate) method: String,
    /// OpenAPI path template (`/v1/x402/solana/{cluster}/rpc`).
    pub(crate) path: String,
    /// The group id.
    pub(crate) group: String,
    pub(crate) operation_id: String,
    pub(crate) summary: String,
    pub(crate) access: Access,
    /// The rest of the OpenAPI operation object: `description`, `parameters`, `requestBody`,
    /// `responses` (the generator adds the id, summary, tags, security and payment info).
    pub(crate) openapi: Value,
    /// Path-level OpenAPI parameters (shared by the operations of a path).
    pub(crate) path_params: Vec<Value>,
    /// What it sells, concretely (the catalog's rows; empty for routes that sell nothing).
    pub(crate) offers: Vec<Offer>,
}

/// What a client needs to pay: the gateway's `payTo` and accepted assets.
#[derive(Debug, Clone)]
pub(crate) struct PaymentTerms {
    pub(crate) enabled: bool,
    pub(crate) pay_to: Option<String>,
    /// (CAIP-2 network, asset, decimals).
    pub(crate) accepts: Vec<(String, String, u8)>,
}

impl PaymentTerms {
    /// The asset and its decimals on `network`.
    pub(crate) fn asset(&self, network: &str) -> Option<(&str, u8)> {
        self.accepts
            .iter()
            .find(|(n, _, _)| n == network)
            .map(|(_, a, d)| (a.as_str(), *d))
    }

    /// `amount` atomic units as a USD decimal (`1000` at 6 decimals = `"0.001"`).
    pub(crate) fn usd(&self, network: &str, amount: u64) -> Option<String> {
        self.asset(network).map(|(_, d)| usd(amount, d))
    }
}

/// `amount` atomic units of a `decimals`-decimal stablecoin, in USD, without trailing zeros.
pub(crate) fn usd(amount: u64, decimals: u8) -> String {
    let scale = 10u128.pow(u32::from(decimals));
    let (int, frac) = (u128::from(amount) / scale, u128::from(amount) % scale);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = decimals as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// The route table of one configuration.
#[derive(Debug, Clone)]
pub struct RouteTable {
    pub(crate) title: String,
    pub(crate) public_base_url: String,
    pub(crate) payment: PaymentTerms,
    pub(crate) groups: Vec<Group>,
    pub(crate) operations: Vec<Operation>,
}

impl RouteTable {
    /// The table for `config` (validated) and its services.
    pub(crate) fn build(config: &Config, services: &Services, tariff: &Tariff) -> Self {
        let payment = PaymentTerms {
            enabled: config.payment.enabled,
            pay_to: config.payment.pay_to.clone(),
            accepts: config
                .payment
                .accepts
                .iter()
                .map(|a| (a.network.clone(), a.asset.clone(), a.decimals))
                .collect(),
        };
        let mut table = Self {
            title: "x402 Solana RPC gateway".into(),
            public_base_url: config
                .server
                .public_base_url
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            payment,
            groups: Vec::new(),
            operations: Vec::new(),
        };
        operations::fixed(&mut table, config, tariff);
        for service in services.iter() {
            operations::service(&mut table, service);
        }
        table
    }

    /// The table for `config` alone (its services built here): what `/openapi.json` serves for
    /// this configuration at its configured SOL/USD (before any oracle reading), for tools and
    /// tests.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let tariff = crate::pricing::Pricing::new(config).tariff();
        Ok(Self::build(
            config,
            &Services::from_config(config)?,
            &tariff,
        ))
    }

    /// Whether payments on `cluster`'s network are taken (its paid routes are served).
    pub(crate) fn sells(&self, cluster: Cluster) -> bool {
        self.payment.enabled && self.payment.asset(cluster.caip2()).is_some()
    }

    /// The group `id`.
    pub(crate) fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The operations of group `id`.
    pub(crate) fn operations_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Operation> {
        self.operations.iter().filter(move |o| o.group == id)
    }

    /// `/v1/catalog`: every operation, and every concrete offer with its price in atomic units
    /// and USD, asset, network, payTo, description and schemas.
    pub(crate) fn catalog(&self) -> Value {
        let routes: Vec<Value> = self
            .operations
            .iter()
            .map(|op| {
                let offers: Vec<Value> = op.offers.iter().map(|o| self.offer_json(op, o)).collect();
                json!({
                    "method": op.method,
                    "path": op.path,
                    "group": op.group,
                    "operationId": op.operation_id,
                    "summary": op.summary,
                    "access": op.access.as_str(),
                    "offers": offers,
                })
            })
            .collect();
        json!({
            "name": self.title,
            "baseUrl": self.public_base_url,
            "x402Version": 2,
            "payment": self.payment_json(),
            "groups": self.groups.iter().map(|g| json!({
                "id": g.id, "title": g.title, "description": g.description, "docsUrl": g.docs_url,
            })).collect::<Vec<_>>(),
            "routes": routes,
            "links": self.links(),
        })
    }

    pub(crate) fn offer_json(&self, op: &Operation, o: &Offer) -> Value {
        let mut v = json!({
            "method": o.method,
            "resource": format!("{}{}", self.public_base_url, o.path),
            "path": o.path,
            "access": op.access.as_str(),
            "description": o.description,
        });
        if o.amount > 0 {
            let (asset, _) = self.payment.asset(o.network).unwrap_or(("", 0));
            v["scheme"] = json!("exact");
            v["network"] = json!(o.network);
            v["asset"] = json!(asset);
            v["payTo"] = json!(self.payment.pay_to);
            v["price"] = json!({
                "atomic": o.amount.to_string(),
                "usd": self.payment.usd(o.network, o.amount),
            });
        }
        if let Some(bazaar) = &o.bazaar {
            v["input"] = bazaar["info"]["input"].clone();
            v["output"] = bazaar["info"]["output"].clone();
            v["inputSchema"] = bazaar["schema"]["properties"]["input"].clone();
        }
        v
    }

    pub(crate) fn payment_json(&self) -> Value {
        json!({
            "enabled": self.payment.enabled,
            "protocol": "x402",
            "scheme": "exact",
            "payTo": self.payment.pay_to,
            "accepts": self.payment.accepts.iter().map(|(network, asset, decimals)| json!({
                "network": network, "asset": asset, "decimals": decimals,
            })).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn links(&self) -> Value {
        let base = &self.public_base_url;
        json!({
            "catalog": format!("{base}{}", crate::routes::CATALOG_ROUTE),
            "discover": format!("{base}{}", crate::routes::DISCOVER_ROUTE),
            "llms": format!("{base}{}", crate::routes::LLMS_TXT_ROUTE),
            "openapi": format!("{base}{}", crate::routes::OPENAPI_JSON_ROUTE),
            "x402": format!("{base}{}", crate::routes::WELL_KNOWN_X402_ROUTE),
        })
    }
}

/// A service route's access in the table's terms.
fn service_access(access: RouteAccess, amount: Option<u64>, paid: bool) -> Access {
    match (access, amount) {
        (RouteAccess::Paid(_), Some(a)) if paid => Access::Paid { min: a, max: a },
        (RouteAccess::Siwx, _) => Access::Siwx,
        _ => Access::Free,
    }
}

/// The Bazaar extension of `discovery`, exactly as a 402 carries it.
fn bazaar(discovery: &Discovery) -> Value {
    bazaar_extension(discovery)
}
