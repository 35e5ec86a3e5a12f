//! A facilitator request's terms ([`crate::x402::exact::normalize`], shared with the paygate)
//! plus what only this facilitator can check without RPC: the network is served and the fee
//! payer is one of its keys.

use super::reasons::*;
use super::Rejection;
use crate::facilitator::keys::FeePayerKeys;
use crate::svm::VerifyError;
use crate::x402::exact::{normalize, ExactTerms, TermsError};
use crate::x402::FacilitatorRequest;

/// A payment request in one shape for both protocol versions.
pub(crate) type Payment = ExactTerms;

impl From<TermsError> for Rejection {
    fn from(e: TermsError) -> Self {
        Rejection::new(e.reason, e.message)
    }
}

/// Reads and checks `req`. `served` says whether a CAIP-2 network is configured.
pub(crate) fn parse(
    req: &FacilitatorRequest,
    keys: &FeePayerKeys,
    served: impl Fn(&str) -> bool,
) -> Result<Payment, Rejection> {
    let payment = normalize(req)?;
    if !served(&payment.network) {
        return Err(Rejection::new(
            INVALID_NETWORK,
            format!(
                "network {} is not served by this facilitator",
                payment.network
            ),
        ));
    }
    if keys.get(&payment.requirements.fee_payer).is_none() {
        return Err(VerifyError::FeePayerNotManaged(payment.requirements.fee_payer).into());
    }
    Ok(payment)
}
