//! `[usage]`: how usage counters are flushed to the store and kept.

use serde::Deserialize;

use super::ConfigError;

/// `[usage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// How often the in-process counters are written to the store.
    pub flush_interval_ms: u64,
    /// How long a day's counters are kept after their last update.
    pub retention_days: u64,
    /// Most distinct counters held in process while the store cannot be written.
    pub max_unflushed: usize,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            flush_interval_ms: 10_000,
            retention_days: 90,
            max_unflushed: 100_000,
        }
    }
}

impl UsageConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: &str| ConfigError::Invalid {
            field: format!("usage.{field}"),
            message: message.into(),
        };
        if self.flush_interval_ms == 0 {
            return Err(invalid("flush_interval_ms", "must be positive"));
        }
        if !(1..=3660).contains(&self.retention_days) {
            return Err(invalid("retention_days", "must be between 1 and 3660"));
        }
        if self.max_unflushed == 0 {
            return Err(invalid("max_unflushed", "must be positive"));
        }
        Ok(())
    }
}
