//! The discovery views for agents: the overview (`/discover`, `/discover.md`, `/llms.txt`) and
//! one group's routes (`/discover/{id}`), as JSON or markdown, both from the route table.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{Access, Group, Operation, RouteTable};

/// How to pay, in steps; shared by the JSON and the markdown views.
const HOW_TO_PAY: [&str; 4] = [
    "Call the route as documented. A paid route answers 402 with a `PAYMENT-REQUIRED` header: base64 of the x402 v2 PaymentRequired JSON, whose `accepts[]` gives the scheme (`exact`), the CAIP-2 `network`, the `asset` (USDC mint), the `amount` in atomic units, `payTo` and `extra.feePayer`. The JSON body carries the same terms in the x402 v1 shape.",
    "Build the x402 `exact` Solana payment: a transaction (fee payer = `extra.feePayer`) with compute-budget instructions and one `TransferChecked` of exactly `amount` from your USDC account to `payTo`'s, signed by your wallet; optionally one memo.",
    "Send the same request again with header `PAYMENT-SIGNATURE`: base64 of `{x402Version: 2, accepted: <the accepts entry>, payload: {transaction: <base64 transaction>}}` (v1 clients: `X-PAYMENT`). Unmodified x402 clients do all of this: `@x402/fetch`, `@x402/axios`, Python `x402`.",
    "The answer is 200 with a `PAYMENT-RESPONSE` receipt (the settlement's transaction). You are charged only when the upstream succeeded; a failed call releases the payment for reuse. Routes marked `siwx` need a wallet sign-in instead (402 with `accepts: []` and a `sign-in-with-x` challenge: sign it, send `SIGN-IN-WITH-X`).",
];

impl RouteTable {
    /// The cheapest price in a group, in USD, when it sells anything.
    fn cheapest_usd(&self, group: &str) -> Option<String> {
        self.operations_of(group)
            .flat_map(|op| op.offers.iter().map(move |o| (op, o)))
            .filter(|(op, o)| matches!(op.access, Access::Paid { .. }) && o.amount > 0)
            .min_by_key(|(_, o)| o.amount)
            .and_then(|(_, o)| self.payment.usd(o.network, o.amount))
    }

    /// `/discover` as JSON.
    pub(crate) fn overview_json(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                json!({
                    "id": g.id,
                    "title": g.title,
                    "description": g.description,
                    "docsUrl": g.docs_url,
                    "routes": self.operations_of(&g.id).count(),
                    "priceFromUsd": self.cheapest_usd(&g.id),
                    "discover": format!("{}/discover/{}", self.public_base_url, g.id),
                })
            })
            .collect();
        json!({
            "name": self.title,
            "baseUrl": self.public_base_url,
            "description": "Solana JSON-RPC and DAS calls, and HTTP APIs, sold per call over x402 on Solana (USDC). Every route, its price and how to pay are below and in the catalog.",
            "howToPay": HOW_TO_PAY,
            "payment": self.payment_json(),
            "groups": groups,
            "links": self.links(),
        })
    }

    /// `/discover/{id}` (or `all`) as JSON.
    pub(crate) fn group_json(&self, groups: &[&Group]) -> Value {
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                let routes: Vec<Value> = self
                    .operations_of(&g.id)
                    .map(|op| self.operation_json(op))
                    .collect();
                json!({
                    "id": g.id, "title": g.title, "description": g.description,
                    "docsUrl": g.docs_url, "routes": routes,
                })
            })
            .collect();
        json!({"baseUrl": self.public_base_url, "payment": self.payment_json(), "groups": groups})
    }

    fn operation_json(&self, op: &Operation) -> Value {
        let mut v = json!({
            "method": op.method,
            "path": op.path,
            "summary": op.summary,
            "access": op.access.as_str(),
            "offers": op.offers.iter().map(|o| self.offer_json(op, o)).collect::<Vec<_>>(),
        });
        if let Some(description) = op.openapi["description"].as_str() {
            v["description"] = json!(description);
        }
        v
    }

    /// `/discover.md` and `/llms.txt`: the llms.txt-style overview.
    pub(crate) fn overview_markdown(&self) -> String {
        let base = &self.public_base_url;
        let mut md = String::new();
        let _ = writeln!(md, "# {}\n", self.title);
        let _ = writeln!(
            md,
            "> Solana JSON-RPC and DAS calls, and HTTP APIs, sold per call over x402 on Solana \
             (USDC). Base URL: {base}. Every route, its price and how to pay are below; the \
             machine-readable forms are [the catalog]({base}/v1/catalog) and \
             [the OpenAPI document]({base}/openapi.json).\n"
        );
        let _ = writeln!(md, "## How to pay\n");
        for (i, step) in HOW_TO_PAY.iter().enumerate() {
            let _ = writeln!(md, "{}. {step}", i + 1);
        }
        md.push('\n');
        if self.payment.enabled {
            let pay_to = self.payment.pay_to.as_deref().unwrap_or("(see the 402)");
            for (network, asset, decimals) in &self.payment.accepts {
                let _ = writeln!(
                    md,
                    "Accepted: `exact` on `{network}`, asset `{asset}` ({decimals} decimals), payTo `{pay_to}`."
                );
            }
        } else {
            md.push_str("Payments are off on this gateway: paid routes are served without one.\n");
        }
        let _ = writeln!(md, "\n## Services\n");
        for g in &self.groups {
            let price = self
                .cheapest_usd(&g.id)
                .map(|p| format!(", from ${p} per call"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- [{}]({base}/discover/{}.md): {} ({} routes{price})",
                g.title,
                g.id,
                g.description,
                self.operations_of(&g.id).count()
            );
        }
        let _ = writeln!(md, "\n## Documents\n");
        let _ = writeln!(md, "- [All routes with prices]({base}/discover/all.md)");
        let _ = writeln!(md, "- [Catalog (JSON)]({base}/v1/catalog)");
        let _ = writeln!(md, "- [OpenAPI discovery]({base}/openapi.json)");
        let _ = writeln!(md, "- [x402 manifest]({base}/.well-known/x402)");
        md
    }

    /// `/discover/{id}.md`.
    pub(crate) fn group_markdown(&self, groups: &[&Group]) -> String {
        let base = &self.public_base_url;
        let mut md = String::new();
        for g in groups {
            let _ = writeln!(md, "# {}\n", g.title);
            if !g.description.is_empty() {
                let _ = writeln!(md, "{}\n", g.description);
            }
            if let Some(url) = &g.docs_url {
                let _ = writeln!(md, "Upstream docs: {url}\n");
            }
            for op in self.operations_of(&g.id) {
                let _ = writeln!(md, "## {} {}{}\n", op.method, base, op.path);
                let _ = writeln!(md, "{}\n", op.summary);
                let access = match op.access {
                    Access::Paid { min, max } => {
                        let network = op.offers.first().map(|o| o.network).unwrap_or_default();
                        let price = |a| {
                            self.payment
                                .usd(network, a)
                                .unwrap_or_else(|| a.to_string())
                        };
                        if min == max {
                            format!("paid, ${} per call ({min} atomic units)", price(min))
                        } else {
                            format!(
                                "paid, ${} to ${} per call, by method",
                                price(min),
                                price(max)
                            )
                        }
                    }
                    Access::Siwx => "wallet sign-in (SIWX), no payment".into(),
                    Access::Free => "free".into(),
                    Access::Admin | Access::AdminOrPublic => "operator (bearer token)".into(),
                    Access::FacilitatorSecret => "trusted callers (x-facilitator-secret)".into(),
                    Access::ProxyToken => "the facilitator proxy's bearer token".into(),
                };
                let _ = writeln!(md, "- Access: {access}");
                if let Some(description) = op.openapi["description"].as_str() {
                    let _ = writeln!(md, "- {description}");
                }
                if let Some(input) = op.offers.first().and_then(|o| o.bazaar.as_ref()) {
                    let _ = writeln!(
                        md,
                        "- Input: `{}`",
                        serde_json::to_string(&input["info"]["input"]).unwrap_or_default()
                    );
                }
                if op.offers.len() > 1 {
                    let _ = writeln!(
                        md,
                        "\n| Resource | Price (USD) | Atomic |\n| --- | --- | --- |"
                    );
                    for o in &op.offers {
                        let usd = self.payment.usd(o.network, o.amount).unwrap_or_default();
                        let _ =
                            writeln!(md, "| `{} {}` | {usd} | {} |", o.method, o.path, o.amount);
                    }
                }
                md.push('\n');
            }
        }
        md
    }
}
