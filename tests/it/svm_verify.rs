//! Table-driven tests of the local x402 `exact` SVM verifier with real signed transactions, plus
//! property tests (arbitrary bytes, single-byte mutations, non-canonical signatures).

use base64::Engine as _;
use ed25519_dalek::{Signature as DalekSignature, Verifier, VerifyingKey};
use proptest::prelude::*;
use solana_address::Address;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_message::{AddressLookupTableAccount, VersionedMessage};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use x402_gateway::svm::client::{encode, partially_sign, wire};
use x402_gateway::svm::constants::*;
use x402_gateway::svm::testkit::PaymentFixture;
use x402_gateway::svm::{
    associated_token_address, decode_transaction, decode_transaction_bytes, sign_as_fee_payer,
    verify_exact, ExactPolicy, ExactRequirements, MintInfo, VerifiedPayment, VerifyError,
};

fn check(
    b64: &str,
    req: &ExactRequirements,
    mint: &MintInfo,
    policy: &ExactPolicy,
) -> Result<VerifiedPayment, VerifyError> {
    let tx = decode_transaction(b64)?;
    verify_exact(&tx, req, mint, policy)
}

fn check_fixture(f: &PaymentFixture, b64: &str) -> Result<VerifiedPayment, VerifyError> {
    check(b64, &f.requirements(), &f.mint_info(), &f.policy())
}

fn with_ixs(f: &PaymentFixture, edit: impl FnOnce(&mut Vec<Instruction>)) -> String {
    let mut ixs = f.instructions();
    edit(&mut ixs);
    encode(&f.sign_v0(&ixs))
}

fn other(seed: u8) -> Address {
    Address::new_from_array([seed; 32])
}

// ---------------------------------------------------------------------------------------------
// Accepted variants
// ---------------------------------------------------------------------------------------------

#[test]
fn accepts_honest_v0_payment() {
    let f = PaymentFixture::new();
    let p = check_fixture(&f, &f.honest_base64()).expect("honest payment");
    assert_eq!(p.payer, f.client.pubkey());
    assert_eq!(p.source, f.source());
    assert_eq!(p.destination, f.destination());
    assert_eq!(p.amount, 1000);
    assert_eq!(p.mint, f.mint);
    assert_eq!(p.token_program, SPL_TOKEN_PROGRAM);
    assert_eq!(p.fee_payer, f.fee_payer.pubkey());
    assert_eq!(p.recent_blockhash, f.blockhash);
    assert_eq!(p.compute_unit_limit, 20_000);
    assert_eq!(p.compute_unit_price, 1);
    assert_eq!(p.memo.as_deref(), Some(f.memo_text().as_str()));
}

#[test]
fn accepts_legacy_message() {
    let f = PaymentFixture::new();
    let b64 = encode(&f.sign_legacy(&f.instructions()));
    let tx = decode_transaction(&b64).unwrap();
    assert!(tx.is_legacy());
    check_fixture(&f, &b64).expect("legacy payment");
}

#[test]
fn accepts_token_2022_payment() {
    let f = PaymentFixture::with_program(TOKEN_2022_PROGRAM);
    let p = check_fixture(&f, &f.honest_base64()).expect("token-2022 payment");
    assert_eq!(p.token_program, TOKEN_2022_PROGRAM);
    assert_eq!(
        p.destination,
        associated_token_address(&f.pay_to, &f.mint, &TOKEN_2022_PROGRAM)
    );
}

#[test]
fn accepts_lighthouse_after_transfer() {
    let f = PaymentFixture::new();
    // Phantom-style: up to three Lighthouse assertions after the transfer, memo anywhere after.
    let b64 = with_ixs(&f, |ixs| {
        let lh = f.lighthouse_ix(vec![AccountMeta::new_readonly(f.source(), false)]);
        ixs.insert(3, lh.clone());
        ixs.push(lh.clone());
        ixs.push(lh);
    });
    assert_eq!(
        decode_transaction(&b64)
            .unwrap()
            .message()
            .instructions()
            .len(),
        7
    );
    check_fixture(&f, &b64).expect("lighthouse payment");
}

#[test]
fn accepts_seller_memo() {
    let mut f = PaymentFixture::new();
    f.memo = Some("pi_3abc123def456".into());
    let p = check_fixture(&f, &f.honest_base64()).expect("seller memo");
    assert_eq!(p.memo.as_deref(), Some("pi_3abc123def456"));
}

#[test]
fn accepts_missing_memo_unless_policy_requires_one() {
    let f = PaymentFixture::new();
    let b64 = with_ixs(&f, |ixs| {
        ixs.pop();
    });
    let mut policy = f.policy();
    let p = check(&b64, &f.requirements(), &f.mint_info(), &policy).expect("no memo allowed");
    assert_eq!(p.memo, None);
    policy.require_memo = true;
    assert_eq!(
        check(&b64, &f.requirements(), &f.mint_info(), &policy).unwrap_err(),
        VerifyError::MemoCount(0)
    );
}

#[test]
fn accepts_caps_at_the_limit() {
    let f = PaymentFixture::new();
    let b64 = with_ixs(&f, |ixs| {
        ixs[0] = f.limit_ix(DEFAULT_MAX_COMPUTE_UNIT_LIMIT);
        ixs[1] = f.price_ix(DEFAULT_MAX_COMPUTE_UNIT_PRICE);
    });
    check_fixture(&f, &b64).expect("caps are inclusive");
}

// ---------------------------------------------------------------------------------------------
// One rejection per rule
// ---------------------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    b64: String,
    req: ExactRequirements,
    mint: MintInfo,
    policy: ExactPolicy,
    reason: &'static str,
}

fn case(f: &PaymentFixture, name: &'static str, b64: String, reason: &'static str) -> Case {
    Case {
        name,
        b64,
        req: f.requirements(),
        mint: f.mint_info(),
        policy: f.policy(),
        reason,
    }
}

fn rejection_cases() -> Vec<Case> {
    let f = PaymentFixture::new();
    let honest = f.honest_base64();
    let client = f.client.pubkey();
    let fee_payer = f.fee_payer.pubkey();
    let mut cases = Vec::new();

    // --- decoding -------------------------------------------------------------------------
    let mut bytes = wire(&f.sign_v0(&f.instructions()));
    bytes.push(0);
    cases.push(case(
        &f,
        "trailing byte",
        base64::engine::general_purpose::STANDARD.encode(&bytes),
        "invalid_exact_svm_payload_transaction_could_not_be_decoded",
    ));
    let bytes = wire(&f.sign_v0(&f.instructions()));
    cases.push(case(
        &f,
        "truncated",
        base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() - 1]),
        "invalid_exact_svm_payload_transaction_could_not_be_decoded",
    ));
    cases.push(case(
        &f,
        "leading whitespace in base64",
        format!(" {honest}"),
        "invalid_exact_svm_payload_transaction_could_not_be_decoded",
    ));
    let mut bytes = wire(&f.sign_v0(&f.instructions()));
    bytes[1 + 2 * 64] = 0x81; // message prefix: version 1
    cases.push(case(
        &f,
        "unknown version",
        base64::engine::general_purpose::STANDARD.encode(&bytes),
        "unsupported_transaction_version",
    ));
    let table_key = other(0x77);
    // The lookup table holds only an account of a Lighthouse ix; the transfer stays static.
    let lh = f.lighthouse_ix(vec![AccountMeta::new_readonly(other(0x78), false)]);
    let tables2 = [AddressLookupTableAccount {
        key: table_key,
        addresses: vec![other(0x78)],
    }];
    let mut ixs2 = f.instructions();
    ixs2.push(lh);
    cases.push(case(
        &f,
        "address lookup table",
        encode(&f.sign_v0_with(&ixs2, &tables2, &[&f.client])),
        "invalid_exact_svm_payload_address_lookup_tables_unsupported",
    ));
    // Duplicate static key: overwrite the last static key (a program) with the client's key.
    let mut tx = f.sign_v0(&f.instructions());
    if let VersionedMessage::V0(m) = &mut tx.message {
        let last = m.account_keys.len() - 1;
        m.account_keys[last] = client;
    }
    let tx = partially_sign(tx.message, &[&f.client]);
    cases.push(case(
        &f,
        "duplicate account keys",
        encode(&tx),
        "invalid_exact_svm_payload_duplicate_account_keys",
    ));

    // --- fee payer and signers ------------------------------------------------------------
    let mut c = case(
        &f,
        "fee payer not ours",
        honest.clone(),
        "invalid_exact_svm_fee_payer_not_managed_by_facilitator",
    );
    c.policy.our_signers = vec![f.spare_signer.pubkey()];
    cases.push(c);
    let mut c = case(
        &f,
        "account 0 is not extra.feePayer",
        honest.clone(),
        "invalid_exact_svm_fee_payer_mismatch",
    );
    c.req.fee_payer = f.spare_signer.pubkey();
    cases.push(c);
    let third = Keypair::new_from_array([9; 32]);
    cases.push(case(
        &f,
        "third signer",
        encode(&f.sign_v0_with(
            &[
                f.limit_ix(20_000),
                f.price_ix(1),
                f.transfer_ix(),
                f.memo_ix(b"0123456789abcdef"),
                f.lighthouse_ix(vec![AccountMeta::new_readonly(third.pubkey(), true)]),
            ],
            &[],
            &[&f.client, &third],
        )),
        "invalid_exact_svm_payload_excessive_signers",
    ));
    // Client as fee payer: only one required signer.
    let msg =
        solana_message::v0::Message::try_compile(&client, &f.instructions(), &[], f.blockhash)
            .unwrap();
    let mut c = case(
        &f,
        "single signer",
        encode(&partially_sign(VersionedMessage::V0(msg), &[&f.client])),
        "invalid_exact_svm_payload_missing_signers",
    );
    c.policy.our_signers.push(client);
    c.req.fee_payer = client;
    cases.push(c);
    let mut tx = f.sign_v0(&f.instructions());
    tx.signatures[1] = Signature::default();
    cases.push(case(
        &f,
        "client signature missing",
        encode(&tx),
        "invalid_exact_svm_payload_signature_invalid",
    ));
    let mut tx = f.sign_v0(&f.instructions());
    tx.signatures[1] = third.sign_message(&tx.message.serialize());
    cases.push(case(
        &f,
        "client slot signed by another key",
        encode(&tx),
        "invalid_exact_svm_payload_signature_invalid",
    ));
    let mut tx = f.sign_v0(&f.instructions());
    tx.signatures[1] = f.client.sign_message(b"some other message");
    cases.push(case(
        &f,
        "client signature over another message",
        encode(&tx),
        "invalid_exact_svm_payload_signature_invalid",
    ));
    let mut tx = f.sign_v0(&f.instructions());
    tx.signatures[1] = non_canonical(&tx.signatures[1]);
    cases.push(case(
        &f,
        "non-canonical S",
        encode(&tx),
        "invalid_exact_svm_payload_signature_invalid",
    ));

    // --- durable nonce and layout ---------------------------------------------------------
    let advance_nonce = Instruction::new_with_bytes(
        SYSTEM_PROGRAM,
        &SYSTEM_ADVANCE_NONCE_ACCOUNT.to_le_bytes(),
        vec![
            AccountMeta::new(other(0x31), false),
            AccountMeta::new_readonly(
                Address::from_str_const("SysvarRecentB1ockHashes11111111111111111111"),
                false,
            ),
            AccountMeta::new_readonly(client, true),
        ],
    );
    cases.push(case(
        &f,
        "durable nonce first",
        with_ixs(&f, |ixs| ixs.insert(0, advance_nonce.clone())),
        "invalid_exact_svm_payload_durable_nonce_not_allowed",
    ));
    cases.push(case(
        &f,
        "durable nonce last",
        with_ixs(&f, |ixs| ixs.push(advance_nonce.clone())),
        "invalid_exact_svm_payload_durable_nonce_not_allowed",
    ));
    cases.push(case(
        &f,
        "two instructions (limit, transfer)",
        with_ixs(&f, |ixs| {
            ixs.remove(1);
            ixs.pop();
        }),
        "invalid_exact_svm_payload_transaction_instructions_length",
    ));
    cases.push(case(
        &f,
        "eight instructions",
        with_ixs(&f, |ixs| {
            for _ in 0..4 {
                ixs.push(f.lighthouse_ix(vec![]));
            }
        }),
        "invalid_exact_svm_payload_transaction_instructions_length",
    ));
    cases.push(case(
        &f,
        "price before limit",
        with_ixs(&f, |ixs| ixs.swap(0, 1)),
        "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction",
    ));
    cases.push(case(
        &f,
        "limit instruction with trailing data",
        with_ixs(&f, |ixs| ixs[0].data.push(0)),
        "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction",
    ));
    cases.push(case(
        &f,
        "limit too high",
        with_ixs(&f, |ixs| {
            ixs[0] = f.limit_ix(DEFAULT_MAX_COMPUTE_UNIT_LIMIT + 1)
        }),
        "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction_too_high",
    ));
    cases.push(case(
        &f,
        "second instruction is a limit",
        with_ixs(&f, |ixs| ixs[1] = f.limit_ix(1)),
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction",
    ));
    cases.push(case(
        &f,
        "price too high",
        with_ixs(&f, |ixs| {
            ixs[1] = f.price_ix(DEFAULT_MAX_COMPUTE_UNIT_PRICE + 1)
        }),
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high",
    ));
    let mut c = case(
        &f,
        "price above a tighter operator cap",
        with_ixs(&f, |ixs| ixs[1] = f.price_ix(11)),
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high",
    );
    c.policy.max_compute_unit_price = 10;
    cases.push(c);
    cases.push(case(
        &f,
        "plain Transfer instead of TransferChecked",
        with_ixs(&f, |ixs| {
            ixs[2] = spl_token_interface::instruction::transfer(
                &SPL_TOKEN_PROGRAM,
                &f.source(),
                &f.destination(),
                &client,
                &[],
                1000,
            )
            .unwrap()
        }),
        "invalid_exact_svm_payload_no_transfer_instruction",
    ));
    cases.push(case(
        &f,
        "lighthouse before the transfer",
        with_ixs(&f, |ixs| ixs.insert(2, f.lighthouse_ix(vec![]))),
        "invalid_exact_svm_payload_no_transfer_instruction",
    ));
    cases.push(case(
        &f,
        "read-only destination",
        with_ixs(&f, |ixs| ixs[2].accounts[2].is_writable = false),
        "invalid_exact_svm_payload_no_transfer_instruction",
    ));
    cases.push(case(
        &f,
        "source equals destination",
        with_ixs(&f, |ixs| ixs[2].accounts[0].pubkey = f.destination()),
        "invalid_exact_svm_payload_no_transfer_instruction",
    ));
    cases.push(case(
        &f,
        "transfer with an extra multisig signer account",
        with_ixs(&f, |ixs| {
            ixs[2]
                .accounts
                .push(AccountMeta::new_readonly(other(0x12), false))
        }),
        "invalid_exact_svm_payload_no_transfer_instruction",
    ));
    let system_transfer = Instruction::new_with_bytes(
        SYSTEM_PROGRAM,
        &[2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        vec![
            AccountMeta::new(client, true),
            AccountMeta::new(other(0x13), false),
        ],
    );
    cases.push(case(
        &f,
        "system transfer as fourth",
        with_ixs(&f, |ixs| ixs.insert(3, system_transfer.clone())),
        "invalid_exact_svm_payload_unknown_fourth_instruction",
    ));
    cases.push(case(
        &f,
        "second transfer as fifth",
        with_ixs(&f, |ixs| {
            let t = ixs[2].clone();
            ixs.push(t)
        }),
        "invalid_exact_svm_payload_unknown_fifth_instruction",
    ));
    cases.push(case(
        &f,
        "compute budget as seventh",
        with_ixs(&f, |ixs| {
            ixs.push(f.lighthouse_ix(vec![]));
            ixs.push(f.lighthouse_ix(vec![]));
            ixs.push(f.price_ix(1));
        }),
        "invalid_exact_svm_payload_unknown_seventh_instruction",
    ));

    // --- fee-payer isolation --------------------------------------------------------------
    // Fee payer as the transfer authority (client still signs via a Lighthouse account).
    cases.push(case(
        &f,
        "fee payer is the authority",
        with_ixs(&f, |ixs| {
            ixs[2] = f.transfer_ix_with(
                &SPL_TOKEN_PROGRAM,
                &associated_token_address(&fee_payer, &f.mint, &SPL_TOKEN_PROGRAM),
                &f.mint,
                &f.destination(),
                &fee_payer,
                f.amount,
                f.decimals,
            );
            ixs.push(f.lighthouse_ix(vec![AccountMeta::new_readonly(client, true)]));
        }),
        "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds",
    ));
    cases.push(case(
        &f,
        "fee payer's ATA is the source",
        with_ixs(&f, |ixs| {
            ixs[2] = f.transfer_ix_with(
                &SPL_TOKEN_PROGRAM,
                &associated_token_address(&fee_payer, &f.mint, &SPL_TOKEN_PROGRAM),
                &f.mint,
                &f.destination(),
                &client,
                f.amount,
                f.decimals,
            );
        }),
        "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds",
    ));
    cases.push(case(
        &f,
        "fee payer in lighthouse accounts",
        with_ixs(&f, |ixs| {
            ixs.push(f.lighthouse_ix(vec![AccountMeta::new(fee_payer, false)]))
        }),
        "invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts",
    ));
    cases.push(case(
        &f,
        "another managed key in lighthouse accounts",
        with_ixs(&f, |ixs| {
            ixs.push(f.lighthouse_ix(vec![AccountMeta::new_readonly(
                f.spare_signer.pubkey(),
                false,
            )]))
        }),
        "invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts",
    ));
    cases.push(case(
        &f,
        "managed key invoked as a program",
        with_ixs(&f, |ixs| {
            ixs.push(Instruction::new_with_bytes(
                f.spare_signer.pubkey(),
                &[1],
                vec![],
            ))
        }),
        "invalid_exact_svm_payload_fee_payer_invoked_as_program",
    ));
    // Authority is a non-signer account; the client signs through Lighthouse.
    cases.push(case(
        &f,
        "authority is not the client signer",
        with_ixs(&f, |ixs| {
            ixs[2].accounts[3] = AccountMeta::new_readonly(other(0x14), false);
            ixs.push(f.lighthouse_ix(vec![AccountMeta::new_readonly(client, true)]));
        }),
        "invalid_exact_svm_payload_transfer_authority_not_signer",
    ));

    // --- transfer semantics ---------------------------------------------------------------
    let f22 = PaymentFixture::with_program(TOKEN_2022_PROGRAM);
    let mut c = case(
        &f,
        "token-2022 transfer for an SPL Token mint",
        f22.honest_base64(),
        "invalid_exact_svm_payload_token_program_mismatch",
    );
    c.mint = f.mint_info();
    cases.push(c);
    let wrong_mint = other(0x15);
    cases.push(case(
        &f,
        "transfer of another mint",
        with_ixs(&f, |ixs| {
            ixs[2] = f.transfer_ix_with(
                &SPL_TOKEN_PROGRAM,
                &f.source(),
                &wrong_mint,
                &associated_token_address(&f.pay_to, &wrong_mint, &SPL_TOKEN_PROGRAM),
                &client,
                f.amount,
                f.decimals,
            )
        }),
        "invalid_exact_svm_payload_mint_mismatch",
    ));
    let mut c = case(
        &f,
        "mint info for another mint",
        honest.clone(),
        "invalid_exact_svm_payload_mint_mismatch",
    );
    c.mint.address = wrong_mint;
    cases.push(c);
    let mut c = case(
        &f,
        "mint not on the allow-list",
        honest.clone(),
        "invalid_exact_svm_payload_mint_not_allowed",
    );
    c.policy.allowed_mints = vec![wrong_mint];
    cases.push(c);
    cases.push(case(
        &f,
        "wrong decimals",
        with_ixs(&f, |ixs| {
            ixs[2] = f.transfer_ix_with(
                &SPL_TOKEN_PROGRAM,
                &f.source(),
                &f.mint,
                &f.destination(),
                &client,
                f.amount,
                9,
            )
        }),
        "invalid_exact_svm_payload_decimals_mismatch",
    ));
    cases.push(case(
        &f,
        "destination is another wallet's ATA",
        with_ixs(&f, |ixs| {
            ixs[2] = f.transfer_ix_with(
                &SPL_TOKEN_PROGRAM,
                &f.source(),
                &f.mint,
                &associated_token_address(&other(0x16), &f.mint, &SPL_TOKEN_PROGRAM),
                &client,
                f.amount,
                f.decimals,
            )
        }),
        "invalid_exact_svm_payload_recipient_mismatch",
    ));
    cases.push(case(
        &f,
        "destination is payTo itself",
        with_ixs(&f, |ixs| ixs[2].accounts[2].pubkey = f.pay_to),
        "invalid_exact_svm_payload_recipient_mismatch",
    ));
    let mut c = case(
        &f22,
        "token-2022 transfer to the SPL-derived ATA",
        with_ixs(&f22, |ixs| {
            ixs[2] = f22.transfer_ix_with(
                &TOKEN_2022_PROGRAM,
                &f22.source(),
                &f22.mint,
                &associated_token_address(&f22.pay_to, &f22.mint, &SPL_TOKEN_PROGRAM),
                &client,
                f22.amount,
                f22.decimals,
            )
        }),
        "invalid_exact_svm_payload_recipient_mismatch",
    );
    c.mint = f22.mint_info();
    cases.push(c);
    for (name, amount) in [("underpay", 999u64), ("overpay", 1001)] {
        cases.push(case(
            &f,
            name,
            with_ixs(&f, |ixs| {
                ixs[2] = f.transfer_ix_with(
                    &SPL_TOKEN_PROGRAM,
                    &f.source(),
                    &f.mint,
                    &f.destination(),
                    &client,
                    amount,
                    f.decimals,
                )
            }),
            "invalid_exact_svm_payload_amount_mismatch",
        ));
    }

    // --- memo -----------------------------------------------------------------------------
    let mut fm = PaymentFixture::new();
    fm.memo = Some("pi_3abc123def456".into());
    cases.push(case(
        &fm,
        "seller memo missing",
        with_ixs(&fm, |ixs| {
            ixs.pop();
        }),
        "invalid_exact_svm_payload_memo_count",
    ));
    cases.push(case(
        &fm,
        "seller memo twice",
        with_ixs(&fm, |ixs| ixs.push(fm.memo_ix(b"pi_3abc123def456"))),
        "invalid_exact_svm_payload_memo_count",
    ));
    cases.push(case(
        &fm,
        "seller memo differs",
        with_ixs(&fm, |ixs| ixs[3] = fm.memo_ix(b"pi_other")),
        "invalid_exact_svm_payload_memo_mismatch",
    ));
    cases.push(case(
        &f,
        "two nonce memos",
        with_ixs(&f, |ixs| ixs.push(f.memo_ix(b"another nonce"))),
        "invalid_exact_svm_payload_memo_count",
    ));
    cases.push(case(
        &f,
        "memo is not UTF-8",
        with_ixs(&f, |ixs| ixs[3] = f.memo_ix(&[0xff, 0xfe])),
        "invalid_exact_svm_payload_memo_invalid",
    ));
    cases.push(case(
        &f,
        "memo over 256 bytes",
        with_ixs(&f, |ixs| ixs[3] = f.memo_ix(&[b'a'; 257])),
        "invalid_exact_svm_payload_memo_invalid",
    ));
    cases.push(case(
        &f,
        "memo with a signer account",
        with_ixs(&f, |ixs| {
            ixs[3] = Instruction::new_with_bytes(
                MEMO_PROGRAM,
                b"hello",
                vec![AccountMeta::new_readonly(client, true)],
            )
        }),
        "invalid_exact_svm_payload_memo_invalid",
    ));
    cases
}

#[test]
fn every_rule_rejects_with_its_reason() {
    let cases = rejection_cases();
    let mut failures = Vec::new();
    for c in &cases {
        match check(&c.b64, &c.req, &c.mint, &c.policy) {
            Ok(_) => failures.push(format!("{}: accepted", c.name)),
            Err(e) if e.reason() != c.reason => failures.push(format!(
                "{}: got {} ({e}), want {}",
                c.name,
                e.reason(),
                c.reason
            )),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 40, "{}", cases.len());
}

/// The table must not pass because of one generic failure: every case differs from the honest
/// payment in exactly the intended way, so the honest inputs must be accepted.
#[test]
fn table_baseline_is_accepted() {
    let f = PaymentFixture::new();
    for c in rejection_cases() {
        let honest = if c.req.memo.is_some() {
            let mut fm = PaymentFixture::new();
            fm.memo = c.req.memo.clone();
            fm.honest_base64()
        } else if c.mint.token_program == TOKEN_2022_PROGRAM {
            PaymentFixture::with_program(TOKEN_2022_PROGRAM).honest_base64()
        } else {
            f.honest_base64()
        };
        let baseline = check(&honest, &c.req, &c.mint, &c.policy);
        // Cases that change req/mint/policy are rejected on the honest tx too; the others not.
        let changed_inputs = c.req.fee_payer != f.fee_payer.pubkey()
            || c.mint.address != f.mint
            || c.policy.allowed_mints != vec![f.mint]
            || c.policy.our_signers.first() != Some(&f.fee_payer.pubkey())
            || c.name.starts_with("token-2022 transfer for");
        if !changed_inputs {
            assert!(
                baseline.is_ok(),
                "{}: baseline rejected: {baseline:?}",
                c.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Weak keys, message hash, signing
// ---------------------------------------------------------------------------------------------

/// A small-order public key with the trivial signature (R = identity, S = 0) satisfies the
/// non-strict verification equation for any message; `verify_strict` must reject it.
#[test]
fn weak_key_signature_rejected() {
    let f = PaymentFixture::new();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = Address::new_from_array(identity);
    let ixs = vec![
        f.limit_ix(20_000),
        f.price_ix(1),
        f.transfer_ix_with(
            &SPL_TOKEN_PROGRAM,
            &associated_token_address(&weak, &f.mint, &SPL_TOKEN_PROGRAM),
            &f.mint,
            &f.destination(),
            &weak,
            f.amount,
            f.decimals,
        ),
        f.memo_ix(b"0123456789abcdef"),
    ];
    let mut tx = f.sign_v0_with(&ixs, &[], &[]);
    let mut sig = [0u8; 64];
    sig[0] = 1; // R = identity, S = 0
    tx.signatures[1] = Signature::from(sig);
    let msg = tx.message.serialize();
    let vk = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(
        vk.verify(&msg, &DalekSignature::from_bytes(&sig)).is_ok(),
        "the forgery works against non-strict verify"
    );
    let e = check_fixture(&f, &encode(&tx)).unwrap_err();
    assert_eq!(e, VerifyError::SignatureInvalid { index: 1 });
}

#[test]
fn message_hash_ignores_fee_payer_slot_and_reencoding() {
    let f = PaymentFixture::new();
    let tx = f.sign_v0(&f.instructions());
    let a = decode_transaction(&encode(&tx)).unwrap();
    let mut garbage = tx.clone();
    garbage.signatures[0] = Signature::from([0xab; 64]);
    let b = decode_transaction(&encode(&garbage)).unwrap();
    assert_eq!(a.message_hash(), b.message_hash());
    // Garbage in slot 0 is still accepted: we fill it at settle.
    check_fixture(&f, &encode(&garbage)).expect("slot 0 is ours to fill");
    // Re-encoding the decoded transaction gives the same bytes and key.
    let again = decode_transaction_bytes(wire(a.transaction())).unwrap();
    assert_eq!(again.message_hash(), a.message_hash());
    assert_eq!(again.wire_bytes(), a.wire_bytes());
    // The key is SHA-256 of the message bytes.
    use sha2::Digest;
    let expect: [u8; 32] = sha2::Sha256::digest(tx.message.serialize()).into();
    assert_eq!(a.message_hash(), expect);
    // A different payment (other memo) has a different key.
    let mut ixs = f.instructions();
    ixs[3] = f.memo_ix(b"fedcba9876543210fedcba9876543210");
    let c = decode_transaction(&encode(&f.sign_v0(&ixs))).unwrap();
    assert_ne!(c.message_hash(), a.message_hash());
    // A legacy message of the same payment is a different message.
    let d = decode_transaction(&encode(&f.sign_legacy(&f.instructions()))).unwrap();
    assert_ne!(d.message_hash(), a.message_hash());
}

#[test]
fn sign_as_fee_payer_fills_slot_zero_only() {
    let f = PaymentFixture::new();
    let tx = decode_transaction(&f.honest_base64()).unwrap();
    let (wire_bytes, sig) = sign_as_fee_payer(&tx, &f.fee_payer).unwrap();
    let signed = decode_transaction_bytes(wire_bytes).unwrap();
    assert_eq!(signed.signatures()[0], sig);
    assert_eq!(signed.signatures()[1], tx.signatures()[1]);
    assert_eq!(signed.message_bytes(), tx.message_bytes());
    assert_eq!(signed.message_hash(), tx.message_hash());
    let vk = VerifyingKey::from_bytes(f.fee_payer.pubkey().as_array()).unwrap();
    vk.verify_strict(
        signed.message_bytes(),
        &DalekSignature::from_bytes(sig.as_array()),
    )
    .expect("fee payer signature verifies");
    // Still a valid payment after signing.
    check_fixture(
        &f,
        &base64::engine::general_purpose::STANDARD.encode(signed.wire_bytes()),
    )
    .unwrap();
    assert_eq!(
        sign_as_fee_payer(&tx, &f.client).unwrap_err(),
        VerifyError::WrongSigningKey
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// Group order ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The same signature with S replaced by S + ℓ (same value mod ℓ, non-canonical encoding).
fn non_canonical(sig: &Signature) -> Signature {
    let mut bytes = *sig.as_array();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(bytes[32 + i]) + u16::from(L[i]) + carry;
        bytes[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + ℓ fits in 256 bits since S < ℓ < 2^253");
    Signature::from(bytes)
}

fn honest_tx(f: &PaymentFixture) -> VersionedTransaction {
    f.sign_v0(&f.instructions())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let f = PaymentFixture::new();
        if let Ok(tx) = decode_transaction_bytes(bytes) {
            let _ = verify_exact(&tx, &f.requirements(), &f.mint_info(), &f.policy());
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,2000}") {
        let _ = decode_transaction(&s);
    }

    #[test]
    fn arbitrary_base64_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
        let _ = decode_transaction(&base64::engine::general_purpose::STANDARD.encode(bytes));
    }

    /// Flipping any bits of any single byte outside the fee-payer slot is never accepted.
    #[test]
    fn single_byte_mutation_never_accepted(pos in any::<proptest::sample::Index>(), mask in 1u8..=255) {
        let f = PaymentFixture::new();
        let mut bytes = wire(&honest_tx(&f));
        let slot0 = 1..65;
        let candidates: Vec<usize> = (0..bytes.len()).filter(|i| !slot0.contains(i)).collect();
        let i = candidates[pos.index(candidates.len())];
        bytes[i] ^= mask;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert!(check_fixture(&f, &b64).is_err(), "mutated byte {} accepted", i);
    }

    /// Random structural edits of a valid payment (insert / delete / overwrite runs) never
    /// panic and are never accepted.
    #[test]
    fn random_edits_never_accepted(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..3, any::<u8>()), 1..6)
    ) {
        let f = PaymentFixture::new();
        let mut bytes = wire(&honest_tx(&f));
        let mut changed = false;
        for (pos, kind, val) in edits {
            let i = pos.index(bytes.len());
            match kind {
                0 => { bytes.insert(i, val); changed = true; }
                1 => { bytes.remove(i); changed = true; }
                _ => if !(1..65).contains(&i) && bytes[i] != val { bytes[i] = val; changed = true; },
            }
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let res = check_fixture(&f, &b64);
        if changed {
            // Only a change confined to slot 0 could be accepted; inserts/removes shift bytes.
            if let Ok(p) = res {
                let orig = decode_transaction(&f.honest_base64()).unwrap();
                prop_assert_eq!(p.message_hash, orig.message_hash(), "a different message was accepted");
            }
        }
    }

    /// A non-canonical S (S + ℓ) on the client signature is always rejected, for any memo.
    #[test]
    fn non_canonical_signature_rejected(memo in "[a-f0-9]{32}") {
        let f = PaymentFixture::new();
        let mut ixs = f.instructions();
        ixs[3] = f.memo_ix(memo.as_bytes());
        let mut tx = f.sign_v0(&ixs);
        prop_assert!(check_fixture(&f, &encode(&tx)).is_ok());
        tx.signatures[1] = non_canonical(&tx.signatures[1]);
        let e = check_fixture(&f, &encode(&tx)).unwrap_err();
        prop_assert_eq!(e, VerifyError::SignatureInvalid { index: 1 });
    }
}
