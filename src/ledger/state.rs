//! A payment's state in the ledger, stored as its snake_case name.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where a payment stands. Money moves only between `settle_submitted` and `settled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Claimed by a request (the store claim is held).
    Claimed,
    /// The facilitator accepted the payment.
    Verified,
    /// The upstream answered with success; settlement comes next.
    UpstreamOk,
    /// The upstream failed: nothing charged, the payment may be used again.
    UpstreamFailed,
    /// The kept answer and the settle request are recorded and the settlement is (being) sent.
    SettleSubmitted,
    /// Final: the transfer landed.
    Settled,
    /// Final: the transaction's blockhash expired without it landing; nothing charged.
    Expired,
    /// Final: refused (verify or settle) or abandoned before settlement; nothing charged.
    Failed,
}

impl PaymentState {
    /// Every state, in order.
    pub const ALL: [Self; 8] = [
        Self::Claimed,
        Self::Verified,
        Self::UpstreamOk,
        Self::UpstreamFailed,
        Self::SettleSubmitted,
        Self::Settled,
        Self::Expired,
        Self::Failed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Verified => "verified",
            Self::UpstreamOk => "upstream_ok",
            Self::UpstreamFailed => "upstream_failed",
            Self::SettleSubmitted => "settle_submitted",
            Self::Settled => "settled",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// No further transition (upstream_failed counts: nothing was charged and nothing follows
    /// unless the client pays with the same transaction again, which starts a new attempt).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Settled | Self::Expired | Self::Failed | Self::UpstreamFailed
        )
    }
}

impl fmt::Display for PaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown payment state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in PaymentState::ALL {
            assert_eq!(state.as_str().parse::<PaymentState>(), Ok(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state.as_str())
            );
        }
        assert!("paid".parse::<PaymentState>().is_err());
    }
}
