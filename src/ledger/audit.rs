//! What the chain audit reads and writes: settled payments not yet checked, which signatures
//! the ledger knows, the findings (one row per kind and signature), and how far each payTo
//! token account's history has been read. The audit itself is `crate::audit`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::state::PaymentState;
use super::{now_ms, text, Ledger, LedgerError, LedgerResult};

/// What the audit found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A settled payment's transaction is on chain but still not finalized long after it
    /// settled (it may have landed on a fork that died).
    NotFinalized,
    /// A settled payment's transaction did not move the recorded amount of the recorded asset
    /// into payTo's token account (or landed with an error).
    AmountMismatch,
    /// The chain does not know a settled payment's transaction.
    MissingOnChain,
    /// A settled payment has no transaction signature to check.
    NoSignature,
    /// A transfer into payTo's token account that no settled payment records.
    UnknownTransfer,
}

impl FindingKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::NotFinalized,
        Self::AmountMismatch,
        Self::MissingOnChain,
        Self::NoSignature,
        Self::UnknownTransfer,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFinalized => "not_finalized",
            Self::AmountMismatch => "amount_mismatch",
            Self::MissingOnChain => "missing_on_chain",
            Self::NoSignature => "no_signature",
            Self::UnknownTransfer => "unknown_transfer",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FindingKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown finding kind {s:?}"))
    }
}

impl<'de> Deserialize<'de> for FindingKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The transaction (for `no_signature`, the payment key: there is no transaction).
    pub signature: String,
    /// The ledger row concerned, when there is one.
    pub payment_key: Option<String>,
    /// Atomic units the chain shows moved into payTo's token account, when read.
    pub amount: Option<i64>,
    /// What was expected and what was found.
    pub detail: String,
    /// When it was first found (Unix ms).
    pub found_ms: i64,
}

/// A settled payment as the audit checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledPayment {
    /// Hex payment key.
    pub payment_key: String,
    /// The settlement's transaction.
    pub signature: Option<String>,
    /// Our wallet.
    pub pay_to: String,
    /// The mint.
    pub asset: String,
    /// CAIP-2 network.
    pub network: String,
    /// Atomic units.
    pub amount: u64,
    /// When it settled (Unix ms).
    pub final_ms: i64,
}

/// How far one token account's history has been read (see the migration's comment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditCursor {
    /// Newest signature of the last complete walk: the next walk stops above it.
    pub until_sig: Option<String>,
    /// Newest signature of the walk in progress.
    pub top_sig: Option<String>,
    /// Where the walk in progress stopped (it resumes below it).
    pub before_sig: Option<String>,
}

/// A ledger row that names a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSignature {
    /// The transaction.
    pub signature: String,
    /// Hex payment key.
    pub payment_key: String,
    /// Where that payment stands.
    pub state: PaymentState,
}

/// Which findings to list, newest first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingFilter {
    /// Only this kind.
    pub kind: Option<FindingKind>,
    /// Page size (default 100, at most [`super::MAX_PAGE`]).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

/// `$first, $first+1, …` for `n` values (an `IN (…)` list; every placeholder in ascending
/// order of first use, as SQLite numbers them).
/// A page of [`Ledger::unaudited_settled`]. SQLite's planner (no statistics) took
/// `payments_state` for `state = 'settled'` and read every settled payment's row, then sorted,
/// for each page: a pass over n payments read n²/page rows (116 ms a page at 74k payments;
/// the first pass after a start, over the whole history, held the gateway's core for
/// minutes, bench/paid.sh). The partial index holds exactly the unaudited ones, in page order.
fn unaudited_sql(backend: super::Backend) -> String {
    let index = match backend {
        super::Backend::Sqlite => "INDEXED BY payments_unaudited",
        super::Backend::Postgres => "",
    };
    format!(
        "SELECT payment_key, signature, pay_to, asset, network, amount, final_ms \
         FROM payments {index} WHERE state = 'settled' AND audited_ms IS NULL \
         AND (final_ms > $1 OR (final_ms = $1 AND payment_key > $2)) \
         ORDER BY final_ms, payment_key LIMIT $3"
    )
}

fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Ledger {
    /// Takes the periodic job `name` when its last run started more than `every` ago (on any
    /// instance): `true` means this instance runs it now. Unlike [`Ledger::lease`] the holder
    /// cannot renew early, so the job runs once per `every` across instances and restarts.
    pub async fn take_due(&self, name: &str, every: std::time::Duration) -> LedgerResult<bool> {
        let now = now_ms();
        let done = self
            .bounded(
                sqlx::query(
                    "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
                     until_ms = excluded.until_ms WHERE leases.until_ms <= $4",
                )
                .bind(name)
                .bind(&self.instance)
                .bind(now.saturating_add(every.as_millis() as i64))
                .bind(now)
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Settled payments not yet audited, oldest settlement first, after the keyset position
    /// `after` (`final_ms`, `payment_key`) when given.
    pub async fn unaudited_settled(
        &self,
        after: Option<(i64, &str)>,
        max: usize,
    ) -> LedgerResult<Vec<SettledPayment>> {
        let (after_ms, after_key) = after.unwrap_or((i64::MIN, ""));
        let sql = unaudited_sql(self.backend);
        let rows = self
            .bounded(
                sqlx::query(&sql)
                    .bind(after_ms)
                    .bind(after_key)
                    .bind(max as i64)
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let amount: i64 = row.try_get("amount")?;
                Ok(SettledPayment {
                    payment_key: row.try_get("payment_key")?,
                    signature: text(row, "signature")?,
                    pay_to: row.try_get("pay_to")?,
                    asset: row.try_get("asset")?,
                    network: row.try_get("network")?,
                    amount: amount.max(0) as u64,
                    final_ms: row.try_get::<Option<i64>, _>("final_ms")?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// Marks payments as audited now.
    pub async fn mark_audited(&self, keys: &[String]) -> LedgerResult<()> {
        for chunk in keys.chunks(100) {
            let sql = format!(
                "UPDATE payments SET audited_ms = $1 WHERE payment_key IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(now_ms());
            for key in chunk {
                query = query.bind(key.as_str());
            }
            self.bounded(query.execute(&self.pool)).await?;
        }
        Ok(())
    }

    /// The ledger rows that name any of `signatures`.
    pub async fn known_signatures(&self, signatures: &[&str]) -> LedgerResult<Vec<KnownSignature>> {
        let mut known = Vec::new();
        for chunk in signatures.chunks(100) {
            let sql = format!(
                "SELECT signature, payment_key, state FROM payments WHERE signature IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for sig in chunk {
                query = query.bind(*sig);
            }
            for row in self.bounded(query.fetch_all(&self.pool)).await? {
                let state: String = row.try_get("state")?;
                known.push(KnownSignature {
                    signature: row.try_get("signature")?,
                    payment_key: row.try_get("payment_key")?,
                    state: state.parse().map_err(LedgerError::Corrupt)?,
                });
            }
        }
        Ok(known)
    }

    /// Records a finding; `false` when the same kind was already recorded for that signature.
    pub async fn record_finding(&self, finding: &Finding) -> LedgerResult<bool> {
        let done = self
            .bounded(
                sqlx::query(
                    "INSERT INTO audit_findings (kind, signature, payment_key, amount, detail, \
                     found_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (kind, signature) DO NOTHING",
                )
                .bind(finding.kind.as_str())
                .bind(&finding.signature)
                .bind(finding.payment_key.as_deref())
                .bind(finding.amount)
                .bind(&finding.detail)
                .bind(finding.found_ms)
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Findings matching `filter`, newest first.
    pub async fn findings(&self, filter: &FindingFilter) -> LedgerResult<Vec<Finding>> {
        let limit = filter.limit.unwrap_or(100).clamp(1, super::MAX_PAGE);
        let base = "SELECT kind, signature, payment_key, amount, detail, found_ms \
                    FROM audit_findings";
        let order = "ORDER BY found_ms DESC, kind, signature";
        let rows = match filter.kind {
            Some(kind) => {
                let sql = format!("{base} WHERE kind = $1 {order} LIMIT $2 OFFSET $3");
                self.bounded(
                    sqlx::query(&sql)
                        .bind(kind.as_str())
                        .bind(i64::from(limit))
                        .bind(i64::from(filter.offset.unwrap_or(0)))
                        .fetch_all(&self.pool),
                )
                .await?
            }
            None => {
                let sql = format!("{base} {order} LIMIT $1 OFFSET $2");
                self.bounded(
                    sqlx::query(&sql)
                        .bind(i64::from(limit))
                        .bind(i64::from(filter.offset.unwrap_or(0)))
                        .fetch_all(&self.pool),
                )
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(Finding {
                    kind: kind.parse().map_err(LedgerError::Corrupt)?,
                    signature: row.try_get("signature")?,
                    payment_key: text(row, "payment_key")?,
                    amount: row.try_get("amount")?,
                    detail: row.try_get("detail")?,
                    found_ms: row.try_get("found_ms")?,
                })
            })
            .collect()
    }

    /// How many findings of each kind are recorded (kinds without any are left out).
    pub async fn finding_counts(&self) -> LedgerResult<Vec<(FindingKind, i64)>> {
        let rows = self
            .bounded(
                sqlx::query("SELECT kind, COUNT(*) AS n FROM audit_findings GROUP BY kind")
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok((
                    kind.parse().map_err(LedgerError::Corrupt)?,
                    row.try_get("n")?,
                ))
            })
            .collect()
    }

    /// How far `account`'s history on `network` has been read.
    pub async fn audit_cursor(&self, network: &str, account: &str) -> LedgerResult<AuditCursor> {
        let row = self
            .bounded(
                sqlx::query(
                    "SELECT until_sig, top_sig, before_sig FROM audit_cursors \
                     WHERE network = $1 AND account = $2",
                )
                .bind(network)
                .bind(account)
                .fetch_optional(&self.pool),
            )
            .await?;
        match row {
            None => Ok(AuditCursor::default()),
            Some(row) => Ok(AuditCursor {
                until_sig: text(&row, "until_sig")?,
                top_sig: text(&row, "top_sig")?,
                before_sig: text(&row, "before_sig")?,
            }),
        }
    }

    /// Saves how far `account`'s history on `network` has been read.
    pub async fn save_audit_cursor(
        &self,
        network: &str,
        account: &str,
        cursor: &AuditCursor,
    ) -> LedgerResult<()> {
        self.bounded(
            sqlx::query(
                "INSERT INTO audit_cursors (network, account, until_sig, top_sig, before_sig, \
                 updated_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (network, account) DO UPDATE SET until_sig = excluded.until_sig, \
                 top_sig = excluded.top_sig, before_sig = excluded.before_sig, \
                 updated_ms = excluded.updated_ms",
            )
            .bind(network)
            .bind(account)
            .bind(cursor.until_sig.as_deref())
            .bind(cursor.top_sig.as_deref())
            .bind(cursor.before_sig.as_deref())
            .bind(now_ms())
            .execute(&self.pool),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in FindingKind::ALL {
            assert_eq!(kind.as_str().parse::<FindingKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
        assert!("wrong".parse::<FindingKind>().is_err());
    }

    #[test]
    fn placeholders_count_up_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 1), "$1");
    }

    /// The audit's pages read the unaudited rows through their partial index (no walk of
    /// every settled row, no sort), and still page through all of them in order.
    #[tokio::test]
    async fn unaudited_pages_come_from_the_partial_index_on_sqlite() {
        let (_dir, ledger) = super::super::temp_sqlite().await;
        for i in 0..300i64 {
            let state = if i % 3 == 0 { "failed" } else { "settled" };
            sqlx::query(
                "INSERT INTO payments (payment_key, attempt, state, payer, pay_to, asset, \
                 network, amount, route, fingerprint, instance, signature, created_ms, \
                 claimed_ms, final_ms, updated_ms, audited_ms) \
                 VALUES ($1, 'a', $2, 'p', 't', 'm', 'n', 1, '/r', 'f', 'i', $3, 1, 1, $4, 1, $5)",
            )
            .bind(format!("{i:064x}"))
            .bind(state)
            .bind(format!("sig{i}"))
            .bind(1_000 + i / 2)
            .bind((i % 5 == 1).then_some(7i64))
            .execute(&ledger.pool)
            .await
            .unwrap();
        }
        let plan: Vec<String> = sqlx::query(&format!(
            "EXPLAIN QUERY PLAN {}",
            unaudited_sql(super::super::Backend::Sqlite)
        ))
        .bind(0i64)
        .bind("")
        .bind(10i64)
        .fetch_all(&ledger.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String, _>("detail").unwrap())
        .collect();
        assert!(
            plan.iter().any(|step| step.contains("payments_unaudited")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );

        let mut seen = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = ledger
                .unaudited_settled(after.as_ref().map(|(ms, k)| (*ms, k.as_str())), 37)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some((last.final_ms, last.payment_key.clone()));
            seen.extend(page.into_iter().map(|p| (p.final_ms, p.payment_key)));
        }
        let expected: Vec<(i64, String)> = (0..300i64)
            .filter(|i| i % 3 != 0 && i % 5 != 1)
            .map(|i| (1_000 + i / 2, format!("{i:064x}")))
            .collect();
        assert_eq!(seen, expected);
    }
}
