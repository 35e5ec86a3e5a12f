//! `[metrics]`: who may read `/metrics`.

use serde::Deserialize;

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `true`: `/metrics` answers without the admin token (scraped on a private network).
    /// `false` (default): it needs `Authorization: Bearer <ADMIN_TOKEN>`, and is not served
    /// at all without `ADMIN_TOKEN`.
    pub public: bool,
}
