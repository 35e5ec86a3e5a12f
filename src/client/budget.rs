//! Spend caps: one call's price (`--max-amount`, `--per-call-max`) and a running total
//! (`--max-spend`) shared by concurrent calls.
//!
//! A payment's amount is *reserved* before it is signed, so concurrent calls cannot together
//! pass the cap, then either *committed* (the server says it settled, or the outcome is unknown:
//! counted, to stay under the cap for sure) or *released* (the server says nothing was charged).

use parking_lot::Mutex;

use super::error::ClientError;

/// The caps of one run.
#[derive(Debug, Default)]
pub struct Budget {
    per_call_max: Option<u64>,
    total_max: Option<u64>,
    state: Mutex<Spent>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    committed: u64,
    reserved: u64,
}

/// A reserved amount; dropping it without [`Reservation::commit`] releases it.
#[derive(Debug)]
#[must_use = "a reservation is released when dropped"]
pub struct Reservation<'a> {
    budget: &'a Budget,
    amount: u64,
    done: bool,
}

impl Budget {
    /// No call above `per_call_max`, no more than `total_max` in all (each `None`: no cap).
    pub fn new(per_call_max: Option<u64>, total_max: Option<u64>) -> Self {
        Self {
            per_call_max,
            total_max,
            state: Mutex::new(Spent::default()),
        }
    }

    /// Reserves `amount`, or says which cap it would pass.
    pub fn reserve(&self, amount: u64) -> Result<Reservation<'_>, ClientError> {
        if let Some(cap) = self.per_call_max.filter(|cap| amount > *cap) {
            return Err(ClientError::OverCap { amount, cap });
        }
        let mut state = self.state.lock();
        let in_use = state.committed.saturating_add(state.reserved);
        if let Some(cap) = self.total_max {
            if in_use.saturating_add(amount) > cap {
                return Err(ClientError::SpendCap {
                    spent: in_use,
                    cap,
                    amount,
                });
            }
        }
        state.reserved = state.reserved.saturating_add(amount);
        Ok(Reservation {
            budget: self,
            amount,
            done: false,
        })
    }

    /// Atomic units settled (or possibly settled) so far.
    pub fn spent(&self) -> u64 {
        self.state.lock().committed
    }

    /// The total cap, if any.
    pub fn total_max(&self) -> Option<u64> {
        self.total_max
    }
}

impl Reservation<'_> {
    /// The amount counts as spent.
    pub fn commit(mut self) -> u64 {
        let mut state = self.budget.state.lock();
        state.reserved = state.reserved.saturating_sub(self.amount);
        state.committed = state.committed.saturating_add(self.amount);
        self.done = true;
        state.committed
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.budget.state.lock();
            state.reserved = state.reserved.saturating_sub(self.amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_until_released_and_commits_for_good() {
        let budget = Budget::new(Some(600), Some(1000));
        assert!(matches!(
            budget.reserve(601),
            Err(ClientError::OverCap {
                amount: 601,
                cap: 600
            })
        ));
        let a = budget.reserve(500).unwrap();
        let b = budget.reserve(500).unwrap();
        assert!(matches!(
            budget.reserve(1),
            Err(ClientError::SpendCap {
                spent: 1000,
                cap: 1000,
                amount: 1
            })
        ));
        drop(b); // nothing was charged
        assert_eq!(a.commit(), 500);
        assert_eq!(budget.spent(), 500);
        let c = budget.reserve(500).unwrap();
        assert_eq!(c.commit(), 1000);
        assert!(budget.reserve(1).is_err());
    }

    #[test]
    fn no_caps_no_refusals() {
        let budget = Budget::default();
        assert_eq!(budget.reserve(u64::MAX).unwrap().commit(), u64::MAX);
        assert!(
            budget.reserve(u64::MAX).is_ok(),
            "saturates instead of overflowing"
        );
    }
}
