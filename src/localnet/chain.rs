//! The ledger: LiteSVM plus the cluster semantics LiteSVM does not model by itself — slots
//! and block height, a 150-slot window of valid blockhashes, a signature status cache with
//! per-transaction history (slot, balances, logs) for `getSignatureStatuses`/`getTransaction`.
//!
//! LiteSVM runs with its own signature and blockhash checks *off*: it only accepts its single
//! latest blockhash and ties duplicate detection to sigverify, which would make
//! `sigVerify: false` simulation impossible. [`Chain`] performs those checks itself, with the
//! real cluster's rules, before handing a transaction to LiteSVM.

use super::tokens;
use litesvm::types::{FailedTransactionMetadata, SimulatedTransactionInfo, TransactionMetadata};
use litesvm::LiteSVM;
use solana_account::Account;
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction_error::TransactionError;
use std::collections::{HashMap, VecDeque};

/// A blockhash stays usable for this many blocks (agave `MAX_PROCESSING_AGE`).
pub(super) const MAX_PROCESSING_AGE: u64 = 150;
/// Slots after which a landed transaction is reported `finalized` (a root on a real cluster
/// is ~32 slots behind the tip).
pub(super) const FINALIZED_DEPTH: u64 = 32;
/// Kept twice the validity window so `isBlockhashValid` can say "expired" rather than
/// "never seen" for a while; older hashes are forgotten.
const BLOCKHASH_RING: usize = 2 * MAX_PROCESSING_AGE as usize;
/// Address lookup table header size (`LOOKUP_TABLE_META_SIZE`).
const ALT_META_SIZE: usize = 56;

/// A token balance entry of `preTokenBalances` / `postTokenBalances`.
#[derive(Debug, Clone)]
pub(super) struct TokenBalance {
    pub account_index: usize,
    pub mint: Address,
    pub owner: Address,
    pub program_id: Address,
    pub amount: u64,
    pub decimals: u8,
}

/// Everything `getTransaction` / `getSignatureStatuses` need about a landed transaction.
#[derive(Debug, Clone)]
pub(super) struct TxRecord {
    /// Position in the ledger's history (execution order): orders an address's signatures
    /// the way a real node's block order does.
    pub seq: u64,
    pub slot: u64,
    pub block_time: i64,
    pub tx: VersionedTransaction,
    /// Addresses loaded from lookup tables (writable, readonly); empty for legacy messages.
    pub loaded: (Vec<Address>, Vec<Address>),
    pub err: Option<TransactionError>,
    pub meta: TransactionMetadata,
    pub pre_balances: Vec<u64>,
    pub post_balances: Vec<u64>,
    pub pre_token_balances: Vec<TokenBalance>,
    pub post_token_balances: Vec<TokenBalance>,
}

/// The in-process ledger. Always used behind a mutex; no method blocks or awaits.
pub(super) struct Chain {
    pub svm: LiteSVM,
    pub slot: u64,
    pub block_height: u64,
    pub genesis_hash: Hash,
    /// Recent blockhashes, newest at the back, with their last valid block height.
    blockhashes: VecDeque<(Hash, u64)>,
    txs: HashMap<Signature, TxRecord>,
    /// Every account a landed transaction touched → its signatures, oldest first (the
    /// address-signatures index behind `getSignaturesForAddress`).
    by_address: HashMap<Address, Vec<Signature>>,
    pub transaction_count: u64,
    /// (slot, compute-unit price, writable keys) of landed transactions, for
    /// `getRecentPrioritizationFees`.
    pub priority_fees: VecDeque<(u64, u64, Vec<Address>)>,
    /// Funds `requestAirdrop` with real, recorded system transfers.
    faucet: solana_keypair::Keypair,
}

impl Chain {
    /// A fresh ledger with the default programs (SPL Token, Token-2022, ATA, Memo).
    pub(super) fn new() -> Self {
        let mut svm = LiteSVM::new()
            .with_sigverify(false)
            .with_blockhash_check(false);
        let faucet = solana_keypair::Keypair::new();
        // LiteSVM's own airdrop keypair is not exposed, so the faucet is ours: 1M SOL.
        let _ = svm.set_account(
            solana_signer::Signer::pubkey(&faucet),
            Account {
                lamports: 1_000_000 * 1_000_000_000,
                data: vec![],
                owner: Address::default(),
                executable: false,
                rent_epoch: u64::MAX,
            },
        );
        let genesis_hash = svm.latest_blockhash();
        let mut blockhashes = VecDeque::with_capacity(BLOCKHASH_RING + 1);
        blockhashes.push_back((genesis_hash, MAX_PROCESSING_AGE));
        Self {
            svm,
            slot: 0,
            block_height: 0,
            genesis_hash,
            blockhashes,
            txs: HashMap::new(),
            by_address: HashMap::new(),
            transaction_count: 0,
            priority_fees: VecDeque::new(),
            faucet,
        }
    }

    /// One slot passes: a new block with a new blockhash.
    pub(super) fn tick(&mut self) {
        self.slot += 1;
        self.block_height += 1;
        // `expire_blockhash` derives the next hash from the current one, so the sequence is
        // deterministic but unguessable enough for a test ledger.
        self.svm.expire_blockhash();
        self.svm.warp_to_slot(self.slot);
        let hash = self.svm.latest_blockhash();
        self.blockhashes
            .push_back((hash, self.block_height + MAX_PROCESSING_AGE));
        while self.blockhashes.len() > BLOCKHASH_RING {
            self.blockhashes.pop_front();
        }
        let keep_from = self.slot.saturating_sub(MAX_PROCESSING_AGE);
        while self.priority_fees.front().is_some_and(|f| f.0 < keep_from) {
            self.priority_fees.pop_front();
        }
    }

    /// Latest blockhash and its last valid block height.
    pub(super) fn latest_blockhash(&self) -> (Hash, u64) {
        self.blockhashes
            .back()
            .copied()
            .unwrap_or((self.genesis_hash, MAX_PROCESSING_AGE))
    }

    /// Last valid block height of `hash` if it is still usable.
    pub(super) fn blockhash_last_valid(&self, hash: &Hash) -> Option<u64> {
        self.blockhashes
            .iter()
            .rev()
            .find(|(h, _)| h == hash)
            .map(|(_, lvbh)| *lvbh)
            .filter(|lvbh| self.block_height <= *lvbh)
    }

    /// Status-cache and age checks a real bank applies before executing.
    pub(super) fn check_age_and_status(
        &self,
        tx: &VersionedTransaction,
    ) -> Result<(), TransactionError> {
        if self.txs.contains_key(&first_signature(tx)) {
            return Err(TransactionError::AlreadyProcessed);
        }
        if self
            .blockhash_last_valid(tx.message.recent_blockhash())
            .is_none()
        {
            return Err(TransactionError::BlockhashNotFound);
        }
        Ok(())
    }

    pub(super) fn record(&self, sig: &Signature) -> Option<&TxRecord> {
        self.txs.get(sig)
    }

    /// The landed transactions that touched `addr` (any of their accounts, lookup-table ones
    /// included), newest first.
    pub(super) fn history(&self, addr: &Address) -> impl Iterator<Item = (&Signature, &TxRecord)> {
        self.by_address
            .get(addr)
            .map(|sigs| sigs.as_slice())
            .unwrap_or_default()
            .iter()
            .rev()
            .filter_map(|sig| self.txs.get(sig).map(|r| (sig, r)))
    }

    pub(super) fn account(&self, addr: &Address) -> Option<Account> {
        self.svm.get_account(addr)
    }

    pub(super) fn set_account(&mut self, addr: Address, account: Account) -> Result<(), String> {
        self.svm
            .set_account(addr, account)
            .map_err(|e| e.to_string())
    }

    pub(super) fn lamports(&self, addr: &Address) -> u64 {
        self.svm.get_balance(addr).unwrap_or(0)
    }

    pub(super) fn mint_decimals(&self, mint: &Address) -> Option<u8> {
        self.svm
            .get_account(mint)
            .and_then(|a| tokens::unpack_mint(&a.data))
            .map(|m| m.decimals)
    }

    /// Every account matching `filter(address, owner, data)`, sorted by address; used by
    /// `getTokenAccountsByOwner`. Filters on borrowed data so program ELFs are never cloned.
    pub(super) fn scan(
        &self,
        mut filter: impl FnMut(&Address, &Address, &[u8]) -> bool,
    ) -> Vec<(Address, Account)> {
        use solana_account::ReadableAccount;
        let mut out: Vec<(Address, Account)> = self
            .svm
            .accounts_db()
            .inner
            .iter()
            .filter(|(k, v)| filter(k, v.owner(), v.data()))
            .map(|(k, v)| (*k, Account::from(v.clone())))
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// Resolves lookup-table addresses of a v0 message (writable, readonly).
    pub(super) fn loaded_addresses(
        &self,
        tx: &VersionedTransaction,
    ) -> (Vec<Address>, Vec<Address>) {
        let (mut w, mut r) = (Vec::new(), Vec::new());
        for lookup in tx.message.address_table_lookups().unwrap_or_default() {
            let Some(table) = self.svm.get_account(&lookup.account_key) else {
                continue;
            };
            let addrs: Vec<Address> = table
                .data
                .get(ALT_META_SIZE..)
                .unwrap_or_default()
                .chunks_exact(32)
                .filter_map(|c| <[u8; 32]>::try_from(c).ok().map(Address::from))
                .collect();
            let pick = |idx: &[u8], out: &mut Vec<Address>| {
                out.extend(idx.iter().filter_map(|i| addrs.get(*i as usize).copied()))
            };
            pick(&lookup.writable_indexes, &mut w);
            pick(&lookup.readonly_indexes, &mut r);
        }
        (w, r)
    }

    fn token_balances(&self, keys: &[Address]) -> Vec<TokenBalance> {
        keys.iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let acc = self.svm.get_account(k)?;
                crate::config::localnet::TokenProgramKind::from_program_id(&acc.owner)?;
                let t = tokens::unpack_account(&acc.data)?;
                Some(TokenBalance {
                    account_index: i,
                    mint: t.mint,
                    owner: t.owner,
                    program_id: acc.owner,
                    amount: t.amount,
                    decimals: self.mint_decimals(&t.mint)?,
                })
            })
            .collect()
    }

    /// Runs the transaction read-only (preflight / `simulateTransaction`).
    pub(super) fn simulate(
        &self,
        tx: &VersionedTransaction,
    ) -> Result<SimulatedTransactionInfo, Box<FailedTransactionMetadata>> {
        self.svm.simulate_transaction(tx.clone()).map_err(Box::new)
    }

    /// Executes `tx` for real in the current slot. The caller has already verified signatures
    /// and run [`Chain::check_age_and_status`]. Returns whether the transaction landed (a
    /// transaction that fails inside a program lands, pays its fee and is recorded with its
    /// error; one rejected before execution, e.g. an unfunded fee payer, does not).
    pub(super) fn execute(&mut self, tx: VersionedTransaction, block_time: i64) -> bool {
        let sig = first_signature(&tx);
        let loaded = self.loaded_addresses(&tx);
        let keys: Vec<Address> = tx
            .message
            .static_account_keys()
            .iter()
            .chain(&loaded.0)
            .chain(&loaded.1)
            .copied()
            .collect();
        let pre_balances: Vec<u64> = keys.iter().map(|k| self.lamports(k)).collect();
        let pre_token_balances = self.token_balances(&keys);
        let (err, meta) = match self.svm.send_transaction(tx.clone()) {
            Ok(meta) => (None, meta),
            Err(failed) => {
                // LiteSVM records failed transactions in its history only if they were
                // included (fee charged); the rest never reach a block.
                if self.svm.get_transaction(&sig).is_none() {
                    return false;
                }
                (Some(failed.err), failed.meta)
            }
        };
        let writable: Vec<Address> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| tx.message.is_maybe_writable(*i, None))
            .map(|(_, k)| *k)
            .collect();
        self.priority_fees.push_back((
            self.slot,
            super::fees::compute_unit_price(&tx.message),
            writable,
        ));
        for key in &keys {
            self.by_address.entry(*key).or_default().push(sig);
        }
        let record = TxRecord {
            seq: self.transaction_count,
            slot: self.slot,
            block_time,
            post_balances: keys.iter().map(|k| self.lamports(k)).collect(),
            post_token_balances: self.token_balances(&keys),
            pre_balances,
            pre_token_balances,
            loaded,
            err,
            meta,
            tx,
        };
        self.txs.insert(sig, record);
        self.transaction_count += 1;
        true
    }

    /// Sends `lamports` from LiteSVM's faucet keypair (a real, recorded system transfer).
    pub(super) fn airdrop(
        &mut self,
        to: &Address,
        lamports: u64,
        block_time: i64,
    ) -> Result<Signature, String> {
        let tx = faucet_transfer(&self.faucet, to, lamports, self.latest_blockhash().0);
        let sig = first_signature(&tx);
        if self.execute(tx, block_time) {
            match self.txs.get(&sig).and_then(|r| r.err.clone()) {
                None => Ok(sig),
                Some(e) => Err(e.to_string()),
            }
        } else {
            Err("airdrop transaction was rejected".into())
        }
    }
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

/// The transaction id. Sanitized transactions always have one; default (all zeros) otherwise
/// so malformed input can never panic.
pub(super) fn first_signature(tx: &VersionedTransaction) -> Signature {
    tx.signatures.first().copied().unwrap_or_default()
}

fn faucet_transfer(
    faucet: &solana_keypair::Keypair,
    to: &Address,
    lamports: u64,
    blockhash: Hash,
) -> VersionedTransaction {
    use solana_signer::Signer;
    // System program `Transfer` = instruction index 2, then the lamports (bincode LE u64).
    let mut data = 2u32.to_le_bytes().to_vec();
    data.extend_from_slice(&lamports.to_le_bytes());
    let ix = solana_instruction::Instruction {
        program_id: Address::default(),
        accounts: vec![
            solana_instruction::AccountMeta::new(faucet.pubkey(), true),
            solana_instruction::AccountMeta::new(*to, false),
        ],
        data,
    };
    let msg =
        solana_message::Message::new_with_blockhash(&[ix], Some(&faucet.pubkey()), &blockhash);
    let tx = solana_transaction::Transaction::new(&[faucet], msg, blockhash);
    VersionedTransaction::from(tx)
}
