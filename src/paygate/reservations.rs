//! One payment buys one answer: an in-process claim on SHA-256 of the transaction message,
//! taken before the upstream call. (The shared Redis store replaces this for several instances.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Where a payment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Reserved by a request in flight.
    InFlight,
    /// Settled: its answer was delivered.
    Settled,
    /// Settlement outcome unknown (broadcast, not confirmed).
    Pending,
}

/// Claims keyed by message hash, each with an expiry.
#[derive(Debug, Default)]
pub struct Reservations {
    claims: Mutex<HashMap<[u8; 32], (Claim, Instant)>>,
}

/// How long each state is kept.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(120);
const FINAL_TTL: Duration = Duration::from_secs(24 * 3600);

impl Reservations {
    /// Reserves `key`; returns the existing claim if there is one.
    pub fn reserve(&self, key: [u8; 32]) -> Result<(), Claim> {
        let now = Instant::now();
        let mut claims = self.claims.lock();
        if claims.len() > 4096 {
            claims.retain(|_, (_, expires)| *expires > now);
        }
        match claims.get(&key) {
            Some((claim, expires)) if *expires > now => Err(claim.clone()),
            _ => {
                claims.insert(key, (Claim::InFlight, now + IN_FLIGHT_TTL));
                Ok(())
            }
        }
    }

    /// Nothing was charged: the payment may be used again.
    pub fn release(&self, key: &[u8; 32]) {
        self.claims.lock().remove(key);
    }

    /// Records a final or pending state for 24 h.
    pub fn mark(&self, key: [u8; 32], claim: Claim) {
        self.claims
            .lock()
            .insert(key, (claim, Instant::now() + FINAL_TTL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_lifecycle() {
        let r = Reservations::default();
        assert_eq!(r.reserve([1; 32]), Ok(()));
        assert_eq!(r.reserve([1; 32]), Err(Claim::InFlight));
        r.release(&[1; 32]);
        assert_eq!(r.reserve([1; 32]), Ok(()));
        r.mark([1; 32], Claim::Settled);
        assert_eq!(r.reserve([1; 32]), Err(Claim::Settled));
        assert_eq!(r.reserve([2; 32]), Ok(()));
    }
}
