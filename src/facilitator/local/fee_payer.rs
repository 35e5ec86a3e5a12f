//! The fee payers' SOL: what settlements spend on fees (a counter, from the fee arithmetic of
//! each landed transaction) and what is left (a gauge, polled in the background, never on the
//! request path, with a warning below `[facilitator] low_balance_lamports`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use solana_address::Address;

use super::Inner;
use crate::svm::VerifiedPayment;

/// Base fee per signature (mainnet's and every cluster's default fee rate).
pub(crate) const LAMPORTS_PER_SIGNATURE: u64 = 5_000;

/// Counter: lamports our fee payers paid for settlements.
pub(crate) const FEES_TOTAL: &str = "x402_fee_payer_fees_lamports_total";
/// Gauge: lamports each fee payer holds, as last polled.
pub(crate) const BALANCE: &str = "x402_fee_payer_balance_lamports";

/// The fee a landed transaction cost its fee payer: 5000 lamports per signature plus the
/// prioritization fee it asked for (compute-unit price × limit, µlamports, rounded up).
pub(crate) fn transaction_fee(signatures: usize, unit_limit: u32, unit_price: u64) -> u64 {
    let priority = (u128::from(unit_price) * u128::from(unit_limit)).div_ceil(1_000_000);
    (signatures as u64)
        .saturating_mul(LAMPORTS_PER_SIGNATURE)
        .saturating_add(u64::try_from(priority).unwrap_or(u64::MAX))
}

/// Counts the fee of a settlement that landed (with or without an error: both pay it).
pub(crate) fn count_fee(network: &str, signatures: usize, payment: &VerifiedPayment) {
    metrics::counter!(
        FEES_TOTAL,
        "fee_payer" => payment.fee_payer.to_string(),
        "network" => network.to_owned()
    )
    .increment(transaction_fee(
        signatures,
        payment.compute_unit_limit,
        payment.compute_unit_price,
    ));
}

/// One fee payer's balance on one network, as polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeePayerBalance {
    /// The fee payer.
    pub fee_payer: Address,
    /// CAIP-2 network.
    pub network: String,
    /// Lamports held.
    pub lamports: u64,
    /// Below the configured threshold (a warning was logged).
    pub low: bool,
}

impl Inner {
    /// Reads every fee payer's balance on every network, sets the gauge and warns about low
    /// ones. A network whose RPC fails is logged and left out.
    pub(crate) async fn poll_balances(&self) -> Vec<FeePayerBalance> {
        let mut out = Vec::new();
        for net in &self.networks {
            for fee_payer in self.keys.pubkeys() {
                let lamports = match net.rpc.get_balance(&fee_payer).await {
                    Ok(lamports) => lamports,
                    Err(e) => {
                        tracing::warn!(%fee_payer, network = %net.network, error = %e, "fee-payer balance not read");
                        continue;
                    }
                };
                metrics::gauge!(
                    BALANCE,
                    "fee_payer" => fee_payer.to_string(),
                    "network" => net.network.clone()
                )
                .set(lamports as f64);
                let low = lamports < self.settings.low_balance_lamports;
                if low {
                    tracing::warn!(
                        %fee_payer,
                        network = %net.network,
                        lamports,
                        threshold = self.settings.low_balance_lamports,
                        "fee payer balance is low: fund it, or settlements will fail"
                    );
                }
                out.push(FeePayerBalance {
                    fee_payer,
                    network: net.network.clone(),
                    lamports,
                    low,
                });
            }
        }
        out
    }
}

/// Polls the balances every `every` (the first poll at once) while the facilitator lives.
pub(crate) fn spawn_poller(inner: Weak<Inner>, every: Duration) {
    tokio::spawn(async move {
        loop {
            let Some(inner) = inner.upgrade() else { return };
            inner.poll_balances().await;
            drop::<Arc<Inner>>(inner);
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_is_the_signatures_plus_the_priority_fee_rounded_up() {
        // 2 signatures × 5000 + ceil(20 000 × 1 / 1e6) = 10 000 + 1.
        assert_eq!(transaction_fee(2, 20_000, 1), 10_001);
        // + 20 000 × 50 000 / 1e6 = 1000 exactly.
        assert_eq!(transaction_fee(2, 20_000, 50_000), 11_000);
        assert_eq!(transaction_fee(1, 20_000, 0), 5_000);
        assert_eq!(transaction_fee(1, u32::MAX, u64::MAX), u64::MAX);
    }
}
