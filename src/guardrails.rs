//! Parameter checks made before any upstream call, so a client can neither make us pay for an
//! unbounded scan nor be charged for a call that was doomed. Each violation names the field and
//! becomes a JSON-RPC `-32602`.

use serde_json::Value;

use crate::config::{GuardrailsConfig, Surface};
use crate::jsonrpc::{codes, ErrorObject};

/// A refused parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid params: {field}: {message}")]
pub(crate) struct Violation {
    /// Where in `params` (e.g. `params[1].filters`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Violation {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The `-32602` error object, with the field in `data`.
    pub(crate) fn to_error_object(&self) -> ErrorObject {
        ErrorObject::new(codes::INVALID_PARAMS, self.to_string())
            .with_data(serde_json::json!({ "field": self.field }))
    }
}

/// Checks `params` of `method` on `surface` against the configured limits.
pub(crate) fn check(
    surface: Surface,
    method: &str,
    params: Option<&Value>,
    limits: &GuardrailsConfig,
) -> Result<(), Violation> {
    match (surface, params) {
        (_, None) => {}
        (Surface::Rpc, Some(Value::Array(_))) | (Surface::Das, Some(Value::Object(_))) => {}
        (Surface::Rpc, Some(_)) => {
            return Err(Violation::new("params", "must be an array for RPC methods"))
        }
        (Surface::Das, Some(_)) => {
            return Err(Violation::new(
                "params",
                "must be an object for DAS methods",
            ))
        }
    }
    match surface {
        Surface::Rpc => check_rpc(
            method,
            params
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            limits,
        ),
        Surface::Das => check_das(params.and_then(Value::as_object), limits),
    }
}

fn check_rpc(method: &str, params: &[Value], limits: &GuardrailsConfig) -> Result<(), Violation> {
    match method {
        "getProgramAccounts" => check_program_accounts(params, limits),
        "getAccountInfo" => check_data_slice(
            params.get(1),
            "params[1]",
            limits.account_max_data_slice,
            false,
        ),
        "getMultipleAccounts" => {
            max_len(params.first(), "params[0]", limits.max_multiple_accounts)?;
            check_data_slice(
                params.get(1),
                "params[1]",
                limits.account_max_data_slice,
                false,
            )
        }
        "getSignatureStatuses" => {
            max_len(params.first(), "params[0]", limits.max_signature_statuses)
        }
        "getSignaturesForAddress" => max_number(
            config_field(params.get(1), "limit"),
            "params[1].limit",
            limits.max_signatures_limit,
        ),
        "getTransactionsForAddress" => {
            if let Some(Value::Object(config)) = params.get(1) {
                if let Some(key) = config
                    .keys()
                    .find(|k| !limits.transactions_for_address_keys.contains(k))
                {
                    return Err(Violation::new(
                        format!("params[1].{key}"),
                        "is not an accepted option",
                    ));
                }
            }
            max_number(
                config_field(params.get(1), "limit"),
                "params[1].limit",
                limits.max_signatures_limit,
            )
        }
        _ => Ok(()),
    }
}

fn check_program_accounts(params: &[Value], limits: &GuardrailsConfig) -> Result<(), Violation> {
    let Some(Value::Object(config)) = params.get(1) else {
        return Err(Violation::new(
            "params[1]",
            "getProgramAccounts needs a config object with filters and dataSlice",
        ));
    };
    let filters = match config.get("filters") {
        Some(Value::Array(f)) if (1..=limits.gpa_max_filters).contains(&f.len()) => f,
        _ => {
            return Err(Violation::new(
                "params[1].filters",
                format!(
                    "getProgramAccounts needs 1 to {} filters",
                    limits.gpa_max_filters
                ),
            ))
        }
    };
    for (i, filter) in filters.iter().enumerate() {
        let at = format!("params[1].filters[{i}]");
        let Some(filter) = filter.as_object().filter(|f| f.len() == 1) else {
            return Err(Violation::new(
                at,
                "must be {\"dataSize\": n} or {\"memcmp\": {...}}",
            ));
        };
        if let Some(size) = filter.get("dataSize") {
            if size.as_u64().is_none() {
                return Err(Violation::new(
                    format!("{at}.dataSize"),
                    "must be a non-negative integer",
                ));
            }
        } else if let Some(memcmp) = filter.get("memcmp") {
            let bytes = memcmp.get("bytes").and_then(Value::as_str);
            match bytes {
                Some(b) if b.len() <= limits.gpa_max_memcmp_bytes => {}
                Some(_) => {
                    return Err(Violation::new(
                        format!("{at}.memcmp.bytes"),
                        format!("longer than {} characters", limits.gpa_max_memcmp_bytes),
                    ))
                }
                None => {
                    return Err(Violation::new(
                        format!("{at}.memcmp.bytes"),
                        "must be a string",
                    ))
                }
            }
            if memcmp.get("offset").and_then(Value::as_u64).is_none() {
                return Err(Violation::new(
                    format!("{at}.memcmp.offset"),
                    "must be a non-negative integer",
                ));
            }
        } else {
            return Err(Violation::new(
                at,
                "must be {\"dataSize\": n} or {\"memcmp\": {...}}",
            ));
        }
    }
    check_data_slice(params.get(1), "params[1]", limits.gpa_max_data_slice, true)
}

fn check_data_slice(
    config: Option<&Value>,
    at: &str,
    max: u64,
    required: bool,
) -> Result<(), Violation> {
    let field = format!("{at}.dataSlice");
    match config.and_then(|c| c.get("dataSlice")) {
        None if required => Err(Violation::new(
            field,
            format!("is required, with a length of at most {max}"),
        )),
        None => Ok(()),
        Some(slice) => {
            if slice.get("offset").and_then(Value::as_u64).is_none() {
                return Err(Violation::new(
                    format!("{field}.offset"),
                    "must be a non-negative integer",
                ));
            }
            match slice.get("length").and_then(Value::as_u64) {
                Some(len) if len <= max => Ok(()),
                Some(_) => Err(Violation::new(
                    format!("{field}.length"),
                    format!("must be at most {max}"),
                )),
                None => Err(Violation::new(
                    format!("{field}.length"),
                    "must be a non-negative integer",
                )),
            }
        }
    }
}

fn check_das(
    params: Option<&serde_json::Map<String, Value>>,
    limits: &GuardrailsConfig,
) -> Result<(), Violation> {
    let Some(params) = params else { return Ok(()) };
    max_number(params.get("limit"), "params.limit", limits.das_max_limit)?;
    if let Some(page) = params.get("page") {
        match page.as_u64() {
            Some(p) if (1..=limits.das_max_page).contains(&p) => {}
            _ => {
                return Err(Violation::new(
                    "params.page",
                    format!("must be between 1 and {}", limits.das_max_page),
                ))
            }
        }
    }
    max_len(params.get("ids"), "params.ids", limits.das_max_ids)
}

fn config_field<'a>(config: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    config.and_then(|c| c.get(key))
}

fn max_number(value: Option<&Value>, field: &str, max: u64) -> Result<(), Violation> {
    match value.map(Value::as_u64) {
        None => Ok(()),
        Some(Some(n)) if n <= max => Ok(()),
        Some(Some(_)) => Err(Violation::new(field, format!("must be at most {max}"))),
        Some(None) => Err(Violation::new(field, "must be a non-negative integer")),
    }
}

fn max_len(value: Option<&Value>, field: &str, max: usize) -> Result<(), Violation> {
    match value {
        None => Ok(()),
        Some(Value::Array(items)) if items.len() <= max => Ok(()),
        Some(Value::Array(_)) => Err(Violation::new(field, format!("at most {max} entries"))),
        Some(_) => Err(Violation::new(field, "must be an array")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rpc(method: &str, params: Value) -> Result<(), Violation> {
        check(
            Surface::Rpc,
            method,
            Some(&params),
            &GuardrailsConfig::default(),
        )
    }

    fn field(r: Result<(), Violation>) -> String {
        r.expect_err("should be refused").field
    }

    #[test]
    fn program_accounts_needs_filters_and_bounded_slice() {
        let ok = json!(["Prog", {"filters": [{"dataSize": 165}, {"memcmp": {"offset": 32, "bytes": "abc"}}], "dataSlice": {"offset": 0, "length": 64}}]);
        assert_eq!(rpc("getProgramAccounts", ok), Ok(()));
        assert_eq!(
            field(rpc("getProgramAccounts", json!(["Prog"]))),
            "params[1]"
        );
        assert_eq!(
            field(rpc(
                "getProgramAccounts",
                json!(["Prog", {"dataSlice": {"offset": 0, "length": 1}}])
            )),
            "params[1].filters"
        );
        assert_eq!(
            field(rpc(
                "getProgramAccounts",
                json!(["Prog", {"filters": [], "dataSlice": {"offset": 0, "length": 1}}])
            )),
            "params[1].filters"
        );
        assert_eq!(
            field(rpc(
                "getProgramAccounts",
                json!(["Prog", {"filters": [{"dataSize": 1}]}])
            )),
            "params[1].dataSlice"
        );
        assert_eq!(
            field(rpc(
                "getProgramAccounts",
                json!(["Prog", {"filters": [{"dataSize": 1}], "dataSlice": {"offset": 0, "length": 257}}])
            )),
            "params[1].dataSlice.length"
        );
        let long = "x".repeat(129);
        assert_eq!(
            field(rpc(
                "getProgramAccounts",
                json!(["Prog", {"filters": [{"memcmp": {"offset": 0, "bytes": long}}], "dataSlice": {"offset": 0, "length": 1}}])
            )),
            "params[1].filters[0].memcmp.bytes"
        );
        assert_eq!(
            field(rpc(
                "getProgramAccounts",
                json!(["Prog", {"filters": [{"owner": 1}], "dataSlice": {"offset": 0, "length": 1}}])
            )),
            "params[1].filters[0]"
        );
    }

    #[test]
    fn account_reads_are_bounded() {
        assert_eq!(
            rpc("getAccountInfo", json!(["A", {"encoding": "base64"}])),
            Ok(())
        );
        assert_eq!(
            field(rpc(
                "getAccountInfo",
                json!(["A", {"dataSlice": {"offset": 0, "length": 5000}}])
            )),
            "params[1].dataSlice.length"
        );
        let keys: Vec<_> = (0..101).map(|i| i.to_string()).collect();
        assert_eq!(
            field(rpc("getMultipleAccounts", json!([keys]))),
            "params[0]"
        );
        assert_eq!(
            field(rpc(
                "getSignaturesForAddress",
                json!(["A", {"limit": 5000}])
            )),
            "params[1].limit"
        );
        assert_eq!(
            field(rpc(
                "getTransactionsForAddress",
                json!(["A", {"evil": true}])
            )),
            "params[1].evil"
        );
    }

    #[test]
    fn das_paging_is_bounded() {
        let das = |p: Value| {
            check(
                Surface::Das,
                "getAssetsByOwner",
                Some(&p),
                &GuardrailsConfig::default(),
            )
        };
        assert_eq!(
            das(json!({"ownerAddress": "A", "limit": 100, "page": 1})),
            Ok(())
        );
        assert_eq!(
            field(das(json!({"ownerAddress": "A", "limit": 101}))),
            "params.limit"
        );
        assert_eq!(
            field(das(json!({"ownerAddress": "A", "page": 0}))),
            "params.page"
        );
        assert_eq!(
            field(das(json!({"ownerAddress": "A", "limit": -1}))),
            "params.limit"
        );
    }

    #[test]
    fn params_shape_follows_the_surface() {
        assert_eq!(field(rpc("getBalance", json!({"a": 1}))), "params");
        assert_eq!(
            field(check(
                Surface::Das,
                "getAsset",
                Some(&json!(["x"])),
                &GuardrailsConfig::default()
            )),
            "params"
        );
    }
}
