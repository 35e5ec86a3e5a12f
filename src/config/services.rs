//! `[[services]]`: any HTTP API sold (or opened, or put behind a wallet sign-in) route by route,
//! mounted at `{server.services_base_path}/{id}/…`.
//!
//! A route is written `"METHOD /pattern" = access`, where the pattern's parameters are `:name`
//! or `{name}` and a last segment `*name` or `{*name}` takes the rest of the path, and the access
//! is a price (a USD string such as `"0.01"`, or an integer of atomic units), `"free"`,
//! `"siwx"`, or a table with `price` (or `access`), `description`, `input_schema`,
//! `output_schema` and `forward_headers`. Everything is parsed once here into [`ServiceRoute`]s.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::{Cluster, ConfigError, EnvSource, Secret};

/// One service as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Path segment the service is mounted under, and its name in discovery.
    pub id: String,
    /// Where it is mounted instead of `{server.services_base_path}/{id}`: an absolute path of
    /// plain segments (`/v1/x402/tokens`, what the `[tokens]` shorthand uses).
    #[serde(default)]
    pub mount: Option<String>,
    /// The upstream API; a route's path is appended to it (never leaving it).
    pub base_url: Url,
    /// Human title (discovery, OpenAPI tag).
    pub title: String,
    /// What the service does, for agents reading the catalog.
    #[serde(default)]
    pub description: String,
    /// The upstream's own documentation.
    #[serde(default)]
    pub docs_url: Option<Url>,
    /// The cluster whose payments buy the paid routes; default: the network of the first
    /// `[[payment.accepts]]` entry.
    #[serde(default)]
    pub cluster: Option<Cluster>,
    /// How the gateway authenticates to the upstream (values from the environment only).
    #[serde(default)]
    pub credentials: CredentialsConfig,
    /// Client headers passed on to the upstream on every route (by name; none by default).
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// TCP + TLS connect timeout.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Whole exchange timeout (a streamed free answer included).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest answer relayed; a bigger one is a 502 (or, streamed, cut off).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// `"METHOD /pattern"` → access; see the module documentation.
    pub routes: BTreeMap<String, RouteValue>,
    /// The credentials' values, read from the environment while loading.
    #[serde(skip)]
    pub secrets: Vec<Credential>,
}

/// `[services.credentials]`: each names an environment variable, never a value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// `Authorization: Bearer <value of this variable>`.
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// Header name → variable holding its value (`{ "x-api-key" = "WEATHER_KEY" }`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A query parameter carrying the key (a client's parameter of the same name is dropped).
    #[serde(default)]
    pub query: Option<QueryCredential>,
    /// `Authorization: Basic` with a username and a password from the environment.
    #[serde(default)]
    pub basic: Option<BasicCredential>,
}

/// `query = { name = "appid", env = "WEATHER_APPID" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryCredential {
    /// The parameter name.
    pub name: String,
    /// The variable holding its value.
    pub env: String,
}

/// `basic = { username = "gateway", password_env = "WEATHER_PASSWORD" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    /// The username (not a secret).
    pub username: String,
    /// The variable holding the password.
    pub password_env: String,
}

/// A credential as put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A request header (lowercase name).
    Header(String, Secret),
    /// A query parameter.
    Query(String, Secret),
}

/// A route's access as written: a string (`"free"`, `"siwx"` or a USD price), an integer
/// (atomic units) or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RouteValue {
    /// Atomic units of the accepted asset.
    Atomic(u64),
    /// `"free"`, `"siwx"`, or a USD price.
    Text(String),
    /// The long form.
    Detailed(RouteTable),
}

/// The long form of a route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    /// A price (USD string or atomic integer): the route is paid.
    #[serde(default)]
    pub price: Option<PriceValue>,
    /// `"free"` or `"siwx"` (without `price`).
    #[serde(default)]
    pub access: Option<String>,
    /// What the route does.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the request (query parameters for GET, the JSON body otherwise).
    #[serde(default)]
    pub input_schema: Option<toml::Value>,
    /// JSON Schema of the answer.
    #[serde(default)]
    pub output_schema: Option<toml::Value>,
    /// Client headers passed on for this route, besides the service's.
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

/// A price as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PriceValue {
    /// Atomic units.
    Atomic(u64),
    /// USD (`"0.01"`, `"$0.01"`).
    Usd(String),
}

/// A price, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Price {
    /// Atomic units of the accepted asset.
    Atomic(u64),
    /// USD as an integer count of 10^-`scale` dollars (`"0.01"` = 1 at scale 2).
    Usd {
        /// The digits without the point.
        units: u64,
        /// How many of them were after the point.
        scale: u32,
    },
}

impl Price {
    /// Atomic units of an asset with `decimals` decimals (a USD stablecoin: 1 token = $1).
    pub fn atomic(self, decimals: u8) -> Result<u64, String> {
        match self {
            Price::Atomic(a) => Ok(a),
            Price::Usd { units, scale } => {
                let decimals = u32::from(decimals);
                if scale > decimals {
                    return Err(format!("has {scale} decimals; the asset has {decimals}"));
                }
                10u64
                    .checked_pow(decimals - scale)
                    .and_then(|m| units.checked_mul(m))
                    .ok_or_else(|| "is too large".to_string())
            }
        }
    }

    fn parse_usd(text: &str) -> Option<Price> {
        let text = text.trim().trim_start_matches('$');
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) || frac.len() > 18 {
            return None;
        }
        let units: u64 = format!("{int}{frac}").parse().ok()?;
        Some(Price::Usd {
            units,
            scale: frac.len() as u32,
        })
    }
}

/// How a route is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open to anyone; the answer streams.
    Free,
    /// A wallet sign-in, no payment.
    Siwx,
    /// Paid per call through the x402 payment pipeline.
    Paid(Price),
}

/// One route, parsed.
#[derive(Debug, Clone)]
pub struct ServiceRoute {
    /// HTTP method.
    pub method: http::Method,
    /// The pattern in the router's syntax (`/v1/items/{id}`, `/{*path}`).
    pub pattern: String,
    /// Access.
    pub access: Access,
    /// Description, for discovery.
    pub description: Option<String>,
    /// JSON Schema of the input, for discovery.
    pub input_schema: Option<Value>,
    /// JSON Schema of the output, for discovery.
    pub output_schema: Option<Value>,
    /// Client headers passed on (lowercase), the service's and the route's.
    pub forward_headers: Vec<String>,
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_response_bytes() -> usize {
    8 * 1024 * 1024
}

/// Headers the gateway sets itself or that describe the connection: never forwarded.
const UNFORWARDABLE: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "payment-signature",
    "x-payment",
    "sign-in-with-x",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

impl ServiceConfig {
    /// Reads the credentials' variables; a named variable that is not set is an error.
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource, at: &str) -> Result<(), ConfigError> {
        let var = |field: String, name: &str| {
            env.var(name)
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        format!("{at}.credentials.{field}"),
                        format!("service {:?} needs {name}, which is not set", self.id),
                    )
                })
        };
        let c = &self.credentials;
        let mut secrets = Vec::new();
        if let Some(name) = &c.bearer_env {
            let token = var("bearer_env".into(), name)?;
            secrets.push(Credential::Header(
                "authorization".into(),
                Secret::new(format!("Bearer {}", token.expose())),
            ));
        }
        if let Some(basic) = &c.basic {
            let password = var("basic.password_env".into(), &basic.password_env)?;
            let pair = format!("{}:{}", basic.username, password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            secrets.push(Credential::Header(
                "authorization".into(),
                Secret::new(format!("Basic {encoded}")),
            ));
        }
        for (header, name) in &c.headers {
            let value = var(format!("headers.{header}"), name)?;
            secrets.push(Credential::Header(header.to_ascii_lowercase(), value));
        }
        if let Some(query) = &c.query {
            let value = var("query.env".into(), &query.env)?;
            secrets.push(Credential::Query(query.name.clone(), value));
        }
        self.secrets = secrets;
        Ok(())
    }

    /// One-line problems, naming the field (relative: `id`, `routes."GET /x"`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.is_empty()
            || self.id.len() > 32
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::invalid(
                "id",
                format!(
                    "{:?} must be 1-32 lowercase letters, digits, '-' or '_'",
                    self.id
                ),
            ));
        }
        super::sections::base_url("base_url", &self.base_url)?;
        if let Some(mount) = &self.mount {
            check_mount(mount).map_err(|m| ConfigError::invalid("mount", m))?;
        }
        if self.title.trim().is_empty() {
            return Err(ConfigError::invalid("title", "must not be empty"));
        }
        for (field, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("timeout_ms", self.timeout_ms),
            ("max_response_bytes", self.max_response_bytes as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(field, "must be greater than 0"));
            }
        }
        let c = &self.credentials;
        if c.bearer_env.is_some() && c.basic.is_some() {
            return Err(ConfigError::invalid(
                "credentials",
                "bearer_env and basic both set Authorization; choose one",
            ));
        }
        for header in c.headers.keys() {
            let lower = header.to_ascii_lowercase();
            if http::HeaderName::from_bytes(lower.as_bytes()).is_err()
                || ["host", "content-length", "transfer-encoding", "connection"]
                    .contains(&lower.as_str())
            {
                return Err(ConfigError::invalid(
                    format!("credentials.headers.{header}"),
                    "not a header the gateway can set",
                ));
            }
            if lower == "authorization" && (c.bearer_env.is_some() || c.basic.is_some()) {
                return Err(ConfigError::invalid(
                    format!("credentials.headers.{header}"),
                    "Authorization is already set by bearer_env or basic",
                ));
            }
        }
        if let Some(q) = &c.query {
            if q.name.is_empty() {
                return Err(ConfigError::invalid("credentials.query.name", "empty"));
            }
        }
        check_forward_headers("forward_headers", &self.forward_headers, c)?;
        if self.routes.is_empty() {
            return Err(ConfigError::invalid(
                "routes",
                "at least one route is required",
            ));
        }
        self.parsed_routes().map(drop)
    }

    /// The routes, parsed and checked (the same function at load and at build).
    pub fn parsed_routes(&self) -> Result<Vec<ServiceRoute>, ConfigError> {
        let mut routes = Vec::with_capacity(self.routes.len());
        let mut seen = std::collections::HashSet::new();
        for (key, value) in &self.routes {
            let field = format!("routes.{key:?}");
            let bad = |message: String| ConfigError::invalid(field.clone(), message);
            let (method, path) = key
                .split_once(' ')
                .ok_or_else(|| bad("must be \"METHOD /pattern\"".into()))?;
            let method = match method {
                "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => {
                    http::Method::from_bytes(method.as_bytes()).map_err(|e| bad(e.to_string()))?
                }
                other => {
                    return Err(bad(format!(
                        "method {other:?} is not one of GET, POST, PUT, PATCH, DELETE"
                    )))
                }
            };
            let pattern = parse_pattern(path.trim()).map_err(bad)?;
            if !seen.insert((method.clone(), shape(&pattern))) {
                return Err(bad("another route has the same method and shape".into()));
            }
            let table = match value {
                RouteValue::Atomic(a) => RouteTable {
                    price: Some(PriceValue::Atomic(*a)),
                    ..RouteTable::default()
                },
                RouteValue::Text(t) if t == "free" || t == "siwx" => RouteTable {
                    access: Some(t.clone()),
                    ..RouteTable::default()
                },
                RouteValue::Text(t) => RouteTable {
                    price: Some(PriceValue::Usd(t.clone())),
                    ..RouteTable::default()
                },
                RouteValue::Detailed(table) => table.clone(),
            };
            let access = match (&table.price, table.access.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "set price (paid) or access (free, siwx), not both".into()
                    ))
                }
                (Some(PriceValue::Atomic(a)), None) => Access::Paid(Price::Atomic(*a)),
                (Some(PriceValue::Usd(text)), None) => {
                    Access::Paid(Price::parse_usd(text).ok_or_else(|| {
                        bad(format!(
                            "{text:?} is not \"free\", \"siwx\" or a USD price such as \"0.01\""
                        ))
                    })?)
                }
                (None, Some("free")) => Access::Free,
                (None, Some("siwx")) => Access::Siwx,
                (None, other) => {
                    return Err(bad(format!(
                        "access {other:?}: expected a price, \"free\" or \"siwx\""
                    )))
                }
            };
            if matches!(
                access,
                Access::Paid(Price::Atomic(0) | Price::Usd { units: 0, .. })
            ) {
                return Err(bad("a price of 0: write \"free\"".into()));
            }
            check_forward_headers(
                &format!("{field}.forward_headers"),
                &table.forward_headers,
                &self.credentials,
            )?;
            let mut forward_headers: Vec<String> = self
                .forward_headers
                .iter()
                .chain(&table.forward_headers)
                .map(|h| h.to_ascii_lowercase())
                .collect();
            forward_headers.sort();
            forward_headers.dedup();
            let schema =
                |v: &Option<toml::Value>, name: &str| -> Result<Option<Value>, ConfigError> {
                    match v {
                        None => Ok(None),
                        Some(v @ toml::Value::Table(_)) => serde_json::to_value(v)
                            .map(Some)
                            .map_err(|e| bad(format!("{name}: {e}"))),
                        Some(_) => Err(bad(format!("{name} must be a table (a JSON Schema)"))),
                    }
                };
            routes.push(ServiceRoute {
                method,
                pattern,
                access,
                description: table.description.clone(),
                input_schema: schema(&table.input_schema, "input_schema")?,
                output_schema: schema(&table.output_schema, "output_schema")?,
                forward_headers,
            });
        }
        Ok(routes)
    }

    /// Whether the upstream is called with a credential of the operator's.
    pub fn has_credentials(&self) -> bool {
        let c = &self.credentials;
        c.bearer_env.is_some() || c.basic.is_some() || !c.headers.is_empty() || c.query.is_some()
    }
}

/// A mount: `/` then plain, non-empty segments, no trailing `/`.
fn check_mount(mount: &str) -> Result<(), String> {
    let Some(segments) = mount.strip_prefix('/') else {
        return Err(format!("{mount:?} must start with '/'"));
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    if segments.is_empty()
        || segments
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || !s.bytes().all(plain))
    {
        return Err(format!(
            "{mount:?} must be '/'-separated names of letters, digits, '-', '.', '_' or '~' \
             (not '/', no trailing '/')"
        ));
    }
    Ok(())
}

fn check_forward_headers(
    field: &str,
    headers: &[String],
    credentials: &CredentialsConfig,
) -> Result<(), ConfigError> {
    for h in headers {
        let lower = h.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err()
            || UNFORWARDABLE.contains(&lower.as_str())
            || credentials
                .headers
                .keys()
                .any(|c| c.eq_ignore_ascii_case(&lower))
        {
            return Err(ConfigError::invalid(
                field,
                format!("{h:?} cannot be forwarded (a hop, payment, sign-in or credential header)"),
            ));
        }
    }
    Ok(())
}

/// `/v1/items/:id` or `/v1/items/{id}` → `/v1/items/{id}`; a last `*rest` or `{*rest}` → `{*rest}`.
fn parse_pattern(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("pattern {path:?} must start with '/'"));
    }
    if path == "/" {
        return Ok("/".into());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut out = String::new();
    let mut names = std::collections::HashSet::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let (name, catch_all) = if let Some(n) = segment.strip_prefix(':') {
            (Some(n), false)
        } else if let Some(n) = segment.strip_prefix('*') {
            (Some(n), true)
        } else if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            match inner.strip_prefix('*') {
                Some(n) => (Some(n), true),
                None => (Some(inner), false),
            }
        } else {
            (None, false)
        };
        out.push('/');
        match name {
            Some(n) => {
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!(
                        "parameter {segment:?} needs a name of letters, digits or '_'"
                    ));
                }
                if !names.insert(n) {
                    return Err(format!("parameter {n:?} appears twice"));
                }
                if catch_all && !last {
                    return Err(format!("{segment:?}: a catch-all must be the last segment"));
                }
                out.push_str(&if catch_all {
                    format!("{{*{n}}}")
                } else {
                    format!("{{{n}}}")
                });
            }
            None => {
                let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
                if segment.is_empty()
                    || *segment == "."
                    || *segment == ".."
                    || !segment.bytes().all(plain)
                {
                    return Err(format!(
                        "segment {segment:?} must be a name of letters, digits, '-', '.', '_' or '~'"
                    ));
                }
                out.push_str(segment);
            }
        }
    }
    Ok(out)
}

/// The pattern with parameter names erased: two routes of one shape would be ambiguous.
fn shape(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|s| match s {
            s if s.starts_with("{*") => "{*}",
            s if s.starts_with('{') => "{}",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_take_both_parameter_spellings() {
        assert_eq!(parse_pattern("/v1/items/:id").unwrap(), "/v1/items/{id}");
        assert_eq!(parse_pattern("/v1/items/{id}").unwrap(), "/v1/items/{id}");
        assert_eq!(parse_pattern("/files/*path").unwrap(), "/files/{*path}");
        assert_eq!(parse_pattern("/{*path}").unwrap(), "/{*path}");
        for bad in ["", "/", "v1", "/v1/", "/a//b", "/a/../b", "/a/{x}"] {
            assert!(check_mount(bad).is_err(), "{bad}");
        }
        assert_eq!(check_mount("/v1/x402/tokens"), Ok(()));
        for bad in [
            "v1", "/a/../b", "/a//b", "/a/*x/b", "/a/:", "/a/:x/:x", "/a b",
        ] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usd_prices_become_atomic_units_of_the_asset() {
        let p = Price::parse_usd("0.01").unwrap();
        assert_eq!(p.atomic(6), Ok(10_000));
        assert_eq!(Price::parse_usd("$1").unwrap().atomic(6), Ok(1_000_000));
        assert_eq!(Price::parse_usd(".5").unwrap().atomic(2), Ok(50));
        assert!(Price::parse_usd("0.0000001").unwrap().atomic(6).is_err());
        for bad in ["", ".", "1.2.3", "-1", "abc", "1e3"] {
            assert!(Price::parse_usd(bad).is_none(), "{bad}");
        }
    }
}
