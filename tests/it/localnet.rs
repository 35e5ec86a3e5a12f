//! End-to-end tests of the embedded local cluster: real ed25519-signed transactions executed
//! by the real SPL Token programs, sent over real HTTP to the loopback JSON-RPC server.

use serde_json::{json, Value};
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_gateway::localnet::{
    LocalCluster, LocalnetConfig, TokenProgramKind, TransferFeeParams, WalletConfig,
    DEVNET_USDC_MINT,
};

use crate::common::cluster::*;

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn assert_keys(v: &Value, expected: &[&str]) {
    let mut e: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    e.sort();
    assert_eq!(keys(v), e, "in {v}");
}

fn assert_context(v: &Value) {
    assert_keys(v, &["context", "value"]);
    assert_keys(&v["context"], &["apiVersion", "slot"]);
    assert!(v["context"]["slot"].is_u64());
}

#[tokio::test]
async fn transfer_checked_confirms_and_moves_exact_balances() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let payer = net.fee_payer();
    assert_eq!(c.mint().to_string(), DEVNET_USDC_MINT);
    let src = ata(&client.pubkey(), &c.mint(), &c.token_program());
    let dst = ata(&c.pay_to(), &c.mint(), &c.token_program());
    assert_eq!(net.rpc.token_balance(&src).await, 100_000_000);
    assert_eq!(net.rpc.token_balance(&dst).await, 0);
    let payer_sol = c.sol_balance(&payer.pubkey());
    let client_sol = c.sol_balance(&client.pubkey());

    let amount = 1_234_567;
    let (hash, _) = net.rpc.latest_blockhash().await;
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), amount);
    // Same shape as an x402 "exact" payment: compute budget + TransferChecked.
    use solana_compute_budget_interface::ComputeBudgetInstruction as Cb;
    let ixs = [
        Cb::set_compute_unit_limit(20_000),
        Cb::set_compute_unit_price(1_000_000),
        ix,
    ];
    let tx = legacy_tx(&ixs, &payer.pubkey(), &[payer, client], hash);
    // 2 signatures + ceil(20_000 CU * 1 lamport/CU) prioritization fee.
    let expected_fee = 10_000 + 20_000;
    let quoted = net
        .rpc
        .ok("getFeeForMessage", json!([base64_msg(&tx)]))
        .await;
    assert_eq!(quoted["value"], expected_fee);
    let res = net.rpc.send(&tx).await;
    let sig = res["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{res}"))
        .to_string();
    assert_eq!(sig, tx.signatures[0].to_string());

    let st = net.rpc.wait_confirmed(&sig).await;
    assert_keys(
        &st,
        &[
            "slot",
            "confirmations",
            "err",
            "status",
            "confirmationStatus",
        ],
    );
    assert_eq!(st["err"], Value::Null);
    assert_eq!(st["status"], json!({"Ok": null}));

    assert_eq!(net.rpc.token_balance(&src).await, 100_000_000 - amount);
    assert_eq!(net.rpc.token_balance(&dst).await, amount);
    assert_eq!(c.token_balance(&client.pubkey()), 100_000_000 - amount);
    assert_eq!(c.token_balance(&c.pay_to()), amount);
    // Two signatures (5000 lamports each) plus the priority fee, all charged to the fee payer.
    assert_eq!(c.sol_balance(&payer.pubkey()), payer_sol - expected_fee);
    assert_eq!(c.sol_balance(&client.pubkey()), client_sol);

    // getTransaction: real shape, token balance deltas recorded.
    let t = net
        .rpc
        .ok("getTransaction", json!([sig, {"encoding": "json"}]))
        .await;
    assert_keys(&t, &["slot", "blockTime", "meta", "transaction"]);
    let meta = &t["meta"];
    for k in [
        "err",
        "status",
        "fee",
        "preBalances",
        "postBalances",
        "preTokenBalances",
        "postTokenBalances",
        "logMessages",
        "innerInstructions",
        "rewards",
        "loadedAddresses",
        "computeUnitsConsumed",
    ] {
        assert!(meta.get(k).is_some(), "meta.{k} missing: {meta}");
    }
    assert_eq!(meta["fee"], expected_fee);
    assert_eq!(meta["err"], Value::Null);
    assert!(meta["logMessages"].as_array().unwrap().iter().any(|l| l
        .as_str()
        .unwrap()
        .contains("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")));
    let pre = meta["preBalances"].as_array().unwrap();
    let post = meta["postBalances"].as_array().unwrap();
    assert_eq!(
        pre[0].as_u64().unwrap() - post[0].as_u64().unwrap(),
        expected_fee
    );
    // The priority fee shows up in getRecentPrioritizationFees for the written accounts.
    let fees = net
        .rpc
        .ok(
            "getRecentPrioritizationFees",
            json!([[c.ata(&c.pay_to()).to_string()]]),
        )
        .await;
    assert!(fees
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["prioritizationFee"] == 1_000_000));
    let amount_of = |list: &Value, owner: &Address| -> u64 {
        list.as_array()
            .unwrap()
            .iter()
            .find(|b| b["owner"] == owner.to_string())
            .map(|b| {
                b["uiTokenAmount"]["amount"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .unwrap()
    };
    assert_eq!(
        amount_of(&meta["preTokenBalances"], &client.pubkey())
            - amount_of(&meta["postTokenBalances"], &client.pubkey()),
        amount
    );
    assert_eq!(amount_of(&meta["postTokenBalances"], &c.pay_to()), amount);
    let tb = &meta["postTokenBalances"][0];
    assert_keys(
        tb,
        &[
            "accountIndex",
            "mint",
            "owner",
            "programId",
            "uiTokenAmount",
        ],
    );
    assert_keys(
        &tb["uiTokenAmount"],
        &["amount", "decimals", "uiAmount", "uiAmountString"],
    );
    let msg = &t["transaction"]["message"];
    assert_keys(
        msg,
        &["accountKeys", "header", "instructions", "recentBlockhash"],
    );
    assert_eq!(t["transaction"]["signatures"][0], sig);
    // base64 encoding round-trips to the same wire bytes.
    let t64 = net
        .rpc
        .ok("getTransaction", json!([sig, {"encoding": "base64"}]))
        .await;
    assert_eq!(t64["transaction"], json!([b64(&tx), "base64"]));

    // Finality progression by slot count.
    c.advance_slots(32);
    let st = net.rpc.ok("getSignatureStatuses", json!([[sig]])).await;
    assert_eq!(st["value"][0]["confirmationStatus"], "finalized");
    assert_eq!(st["value"][0]["confirmations"], Value::Null);
    net.cluster.shutdown().await;
}

#[tokio::test]
async fn bad_signature_is_rejected_with_32003() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let (hash, _) = net.rpc.latest_blockhash().await;
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 1);
    let mut tx = legacy_tx(&[ix], &client.pubkey(), &[client], hash);
    // A valid signature by the wrong key over the same message.
    let other = Keypair::new();
    tx.signatures[0] = other.sign_message(&tx.message.serialize());
    for skip in [false, true] {
        let e = net
            .rpc
            .err(
                "sendTransaction",
                json!([b64(&tx), {"encoding": "base64", "skipPreflight": skip}]),
            )
            .await;
        assert_eq!(e["code"], -32003);
        assert_eq!(e["message"], "Transaction signature verification failure");
    }
    // Simulation with sigVerify also rejects it.
    let e = net
        .rpc
        .err(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64", "sigVerify": true}]),
        )
        .await;
    assert_eq!(e["code"], -32003);
    assert_eq!(c.token_balance(&c.pay_to()), 0);
}

#[tokio::test]
async fn expired_blockhash_is_rejected_after_150_blocks() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let (hash, lvbh) = net.rpc.latest_blockhash().await;
    let height = net
        .rpc
        .ok("getBlockHeight", json!([]))
        .await
        .as_u64()
        .unwrap();
    assert_eq!(lvbh, height + 150);

    c.advance_slots(150);
    let valid = net
        .rpc
        .ok("isBlockhashValid", json!([hash.to_string()]))
        .await;
    assert_context(&valid);
    assert_eq!(valid["value"], true, "still valid at lastValidBlockHeight");
    c.advance_slots(1);
    let valid = net
        .rpc
        .ok("isBlockhashValid", json!([hash.to_string()]))
        .await;
    assert_eq!(valid["value"], false);

    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 5);
    let tx = legacy_tx(&[ix], &client.pubkey(), &[client], hash);
    let e = net.rpc.send(&tx).await["error"].clone();
    assert_eq!(e["code"], -32002, "{e}");
    assert_eq!(
        e["message"],
        "Transaction simulation failed: Blockhash not found"
    );
    assert_eq!(e["data"]["err"], "BlockhashNotFound");
    assert_eq!(e["data"]["accounts"], Value::Null);
    assert!(e["data"]["logs"].is_array());
    // Simulation reports the same error in the result, not as an RPC error.
    let sim = net
        .rpc
        .ok(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64"}]),
        )
        .await;
    assert_eq!(sim["value"]["err"], "BlockhashNotFound");
    // getFeeForMessage answers null for an expired blockhash.
    let msg = base64_msg(&tx);
    let fee = net.rpc.ok("getFeeForMessage", json!([msg])).await;
    assert_eq!(fee["value"], Value::Null);
    // With skipPreflight the signature comes back but the transaction never lands.
    let r = net
        .rpc
        .ok(
            "sendTransaction",
            json!([b64(&tx), {"encoding": "base64", "skipPreflight": true}]),
        )
        .await;
    let st = net.rpc.ok("getSignatureStatuses", json!([[r]])).await;
    assert_eq!(st["value"][0], Value::Null);
    assert_eq!(c.token_balance(&c.pay_to()), 0);
}

fn base64_msg(tx: &solana_transaction::versioned::VersionedTransaction) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(tx.message.serialize())
}

#[tokio::test]
async fn simulate_underfunded_transfer_reports_error_and_moves_nothing() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let before_sol = c.sol_balance(&client.pubkey());
    let (hash, _) = net.rpc.latest_blockhash().await;
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 100_000_001);
    let tx = legacy_tx(&[ix], &client.pubkey(), &[client], hash);
    let sim = net
        .rpc
        .ok(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64", "sigVerify": true}]),
        )
        .await;
    assert_context(&sim);
    let v = &sim["value"];
    for k in ["err", "logs", "accounts", "unitsConsumed", "returnData"] {
        assert!(v.get(k).is_some(), "simulate value.{k} missing: {v}");
    }
    // spl-token error 1 = InsufficientFunds.
    assert_eq!(v["err"], json!({"InstructionError": [0, {"Custom": 1}]}));
    assert!(v["logs"].as_array().unwrap().iter().any(|l| l
        .as_str()
        .unwrap()
        .contains("insufficient funds")
        || l.as_str().unwrap().contains("failed")));
    assert!(v["unitsConsumed"].as_u64().unwrap() > 0);

    // Sending it with preflight is refused with -32002 and the simulation data.
    let e = net.rpc.send(&tx).await["error"].clone();
    assert_eq!(e["code"], -32002);
    for k in ["err", "logs", "accounts", "unitsConsumed", "returnData"] {
        assert!(
            e["data"].get(k).is_some(),
            "preflight data.{k} missing: {e}"
        );
    }
    assert_eq!(e["data"]["err"], v["err"]);
    assert!(!e["data"]["logs"].as_array().unwrap().is_empty());

    assert_eq!(c.token_balance(&client.pubkey()), 100_000_000);
    assert_eq!(c.token_balance(&c.pay_to()), 0);
    assert_eq!(
        c.sol_balance(&client.pubkey()),
        before_sol,
        "no fee charged"
    );
    let st = net
        .rpc
        .ok(
            "getSignatureStatuses",
            json!([[tx.signatures[0].to_string()]]),
        )
        .await;
    assert_eq!(st["value"][0], Value::Null);
}

#[tokio::test]
async fn skip_preflight_failed_transfer_lands_with_error_and_pays_fee() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let before_sol = c.sol_balance(&client.pubkey());
    let (hash, _) = net.rpc.latest_blockhash().await;
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 100_000_001);
    let tx = legacy_tx(&[ix], &client.pubkey(), &[client], hash);
    let sig = net
        .rpc
        .ok(
            "sendTransaction",
            json!([b64(&tx), {"encoding": "base64", "skipPreflight": true}]),
        )
        .await;
    let st = net.rpc.wait_confirmed(sig.as_str().unwrap()).await;
    assert_eq!(st["err"], json!({"InstructionError": [0, {"Custom": 1}]}));
    assert_eq!(st["status"]["Err"], st["err"]);
    assert_eq!(c.sol_balance(&client.pubkey()), before_sol - 5_000);
    assert_eq!(c.token_balance(&client.pubkey()), 100_000_000);
}

#[tokio::test]
async fn simulate_without_sigverify_accepts_partially_signed_transaction() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let payer = net.fee_payer();
    let (hash, _) = net.rpc.latest_blockhash().await;
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 1_000);
    // x402 "exact" SVM flow: the client signs, the facilitator's fee-payer slot stays zeroed.
    let tx = legacy_tx(&[ix], &payer.pubkey(), &[client], hash);
    assert_eq!(tx.signatures[0], Default::default());
    let sim = net
        .rpc
        .ok(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64", "sigVerify": false,
                "accounts": {"addresses": [c.ata(&c.pay_to()).to_string()], "encoding": "jsonParsed"}}]),
        )
        .await;
    assert_eq!(sim["value"]["err"], Value::Null, "{sim}");
    // Post-simulation state of the requested account shows the credit; the ledger does not.
    let acc = &sim["value"]["accounts"][0];
    assert_eq!(
        acc["data"]["parsed"]["info"]["tokenAmount"]["amount"],
        "1000"
    );
    assert_eq!(c.token_balance(&c.pay_to()), 0);
    // The same transaction fails sigVerify and cannot be sent.
    let e = net
        .rpc
        .err(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64", "sigVerify": true}]),
        )
        .await;
    assert_eq!(e["code"], -32003);
    assert_eq!(net.rpc.send(&tx).await["error"]["code"], -32003);
}

#[tokio::test]
async fn replace_recent_blockhash_simulates_with_latest() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let bogus = Hash::new_from_array([7u8; 32]);
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 10);
    let tx = legacy_tx(&[ix], &client.pubkey(), &[client], bogus);
    let sim = net
        .rpc
        .ok(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64"}]),
        )
        .await;
    assert_eq!(sim["value"]["err"], "BlockhashNotFound");
    assert_eq!(sim["value"]["replacementBlockhash"], Value::Null);

    let (latest, lvbh) = c.latest_blockhash();
    let sim = net
        .rpc
        .ok(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64", "replaceRecentBlockhash": true}]),
        )
        .await;
    assert_eq!(sim["value"]["err"], Value::Null, "{sim}");
    assert_eq!(
        sim["value"]["replacementBlockhash"],
        json!({"blockhash": latest.to_string(), "lastValidBlockHeight": lvbh})
    );
    // Both flags together are invalid params, as on a real node.
    let e = net
        .rpc
        .err(
            "simulateTransaction",
            json!([b64(&tx), {"encoding": "base64", "replaceRecentBlockhash": true, "sigVerify": true}]),
        )
        .await;
    assert_eq!(e["code"], -32602);
    // Default encoding is base58.
    let b58 = bs58::encode(bincode::serialize(&tx).unwrap()).into_string();
    let sim = net
        .rpc
        .ok(
            "simulateTransaction",
            json!([b58, {"replaceRecentBlockhash": true}]),
        )
        .await;
    assert_eq!(sim["value"]["err"], Value::Null);
}

#[tokio::test]
async fn duplicate_send_is_already_processed() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let (hash, _) = net.rpc.latest_blockhash().await;
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 42);
    let tx = legacy_tx(&[ix], &client.pubkey(), &[client], hash);
    let sig = net.rpc.send(&tx).await["result"].clone();
    assert!(sig.is_string());
    let e = net.rpc.send(&tx).await["error"].clone();
    assert_eq!(e["code"], -32002);
    assert_eq!(
        e["message"],
        "Transaction simulation failed: This transaction has already been processed"
    );
    assert_eq!(e["data"]["err"], "AlreadyProcessed");
    // skipPreflight: the node accepts the bytes and returns the signature; nothing re-executes.
    let again = net
        .rpc
        .ok(
            "sendTransaction",
            json!([b64(&tx), {"encoding": "base64", "skipPreflight": true}]),
        )
        .await;
    assert_eq!(again, sig);
    assert_eq!(c.token_balance(&c.pay_to()), 42);
}

#[tokio::test]
async fn v0_transaction_and_get_transaction_version_gate() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let (hash, _) = net.rpc.latest_blockhash().await;
    let ix = transfer_checked_ix(&net, &client.pubkey(), &c.pay_to(), 7);
    let tx = v0_tx(&[ix], client, &[client], hash);
    let sig = net.rpc.send(&tx).await["result"]
        .as_str()
        .unwrap()
        .to_string();
    net.rpc.wait_confirmed(&sig).await;
    assert_eq!(c.token_balance(&c.pay_to()), 7);
    let e = net.rpc.err("getTransaction", json!([sig])).await;
    assert_eq!(e["code"], -32015);
    let t = net
        .rpc
        .ok(
            "getTransaction",
            json!([sig, {"encoding": "json", "maxSupportedTransactionVersion": 0}]),
        )
        .await;
    assert_eq!(t["version"], 0);
    assert!(t["transaction"]["message"]["addressTableLookups"].is_array());
    let t = net
        .rpc
        .ok(
            "getTransaction",
            json!([sig, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0}]),
        )
        .await;
    assert_keys(
        &t["transaction"]["message"]["accountKeys"][0],
        &["pubkey", "signer", "source", "writable"],
    );
    let missing = net
        .rpc
        .ok(
            "getTransaction",
            json!([Keypair::new().sign_message(b"x").to_string()]),
        )
        .await;
    assert_eq!(missing, Value::Null);
}

#[tokio::test]
async fn read_method_shapes_match_real_rpc() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let rpc = &net.rpc;
    let client = net.client().pubkey();
    let mint = c.mint().to_string();
    let client_ata = c.ata(&client).to_string();

    let r = rpc
        .ok("getLatestBlockhash", json!([{"commitment": "confirmed"}]))
        .await;
    assert_context(&r);
    assert_keys(&r["value"], &["blockhash", "lastValidBlockHeight"]);

    let r = rpc.ok("getBalance", json!([client.to_string()])).await;
    assert_context(&r);
    assert_eq!(r["value"], 10_000_000_000u64);
    let r = rpc
        .ok("getBalance", json!([Address::new_unique().to_string()]))
        .await;
    assert_eq!(r["value"], 0);

    // getAccountInfo: default legacy binary (bare base58 string), base64, base58, jsonParsed.
    let r = rpc.ok("getAccountInfo", json!([mint])).await;
    assert_context(&r);
    assert_keys(
        &r["value"],
        &[
            "data",
            "executable",
            "lamports",
            "owner",
            "rentEpoch",
            "space",
        ],
    );
    assert!(r["value"]["data"].is_string());
    assert_eq!(r["value"]["space"], 82);
    assert_eq!(r["value"]["owner"], spl_token_interface::id().to_string());
    let r = rpc
        .ok("getAccountInfo", json!([mint, {"encoding": "base64"}]))
        .await;
    assert_eq!(r["value"]["data"][1], "base64");
    let r = rpc
        .ok("getAccountInfo", json!([mint, {"encoding": "base58"}]))
        .await;
    assert_eq!(r["value"]["data"][1], "base58");
    let r = rpc
        .ok(
            "getAccountInfo",
            json!([mint, {"encoding": "base64", "dataSlice": {"offset": 44, "length": 1}}]),
        )
        .await;
    assert_eq!(r["value"]["data"][0], "Bg==", "decimals byte = 6");
    let r = rpc
        .ok("getAccountInfo", json!([mint, {"encoding": "jsonParsed"}]))
        .await;
    let d = &r["value"]["data"];
    assert_keys(d, &["program", "parsed", "space"]);
    assert_eq!(d["program"], "spl-token");
    assert_eq!(d["parsed"]["type"], "mint");
    assert_keys(
        &d["parsed"]["info"],
        &[
            "decimals",
            "freezeAuthority",
            "isInitialized",
            "mintAuthority",
            "supply",
        ],
    );
    assert_eq!(d["parsed"]["info"]["decimals"], 6);
    assert_eq!(d["parsed"]["info"]["supply"], "100000000");
    let r = rpc
        .ok(
            "getAccountInfo",
            json!([client_ata, {"encoding": "jsonParsed"}]),
        )
        .await;
    let info = &r["value"]["data"]["parsed"]["info"];
    assert_eq!(r["value"]["data"]["parsed"]["type"], "account");
    assert_keys(info, &["isNative", "mint", "owner", "state", "tokenAmount"]);
    assert_eq!(info["tokenAmount"]["uiAmountString"], "100");
    assert_eq!(info["tokenAmount"]["uiAmount"], 100.0);
    let r = rpc
        .ok(
            "getAccountInfo",
            json!([Address::new_unique().to_string(), {"encoding": "base64"}]),
        )
        .await;
    assert_context(&r);
    assert_eq!(r["value"], Value::Null);
    let e = rpc
        .err(
            "getAccountInfo",
            json!([mint, {"encoding": "jsonParsed", "dataSlice": {"offset": 0, "length": 4}}]),
        )
        .await;
    assert_eq!(e["code"], -32600);

    let r = rpc
        .ok(
            "getMultipleAccounts",
            json!([[mint, Address::new_unique().to_string(), client_ata], {"encoding": "jsonParsed"}]),
        )
        .await;
    assert_context(&r);
    let vals = r["value"].as_array().unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!(vals[1], Value::Null);
    assert_eq!(vals[0]["data"]["parsed"]["type"], "mint");
    let r = rpc.ok("getMultipleAccounts", json!([[mint]])).await;
    assert_eq!(
        r["value"][0]["data"][1], "base64",
        "default encoding is base64"
    );

    let r = rpc.ok("getTokenAccountBalance", json!([client_ata])).await;
    assert_context(&r);
    assert_eq!(
        r["value"],
        json!({"amount": "100000000", "decimals": 6, "uiAmount": 100.0, "uiAmountString": "100"})
    );
    let e = rpc.err("getTokenAccountBalance", json!([mint])).await;
    assert_eq!(e["code"], -32602);

    for filter in [
        json!({"mint": mint}),
        json!({"programId": spl_token_interface::id().to_string()}),
    ] {
        let r = rpc
            .ok(
                "getTokenAccountsByOwner",
                json!([client.to_string(), filter, {"encoding": "jsonParsed"}]),
            )
            .await;
        assert_context(&r);
        let list = r["value"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{r}");
        assert_keys(&list[0], &["pubkey", "account"]);
        assert_eq!(list[0]["pubkey"], client_ata);
        assert_eq!(
            list[0]["account"]["data"]["parsed"]["info"]["owner"],
            client.to_string()
        );
    }

    let r = rpc
        .ok("getMinimumBalanceForRentExemption", json!([165]))
        .await;
    assert_eq!(r, 2_039_280);
    let slot = rpc.ok("getSlot", json!([])).await;
    assert!(slot.is_u64());
    assert!(rpc.ok("getBlockHeight", json!([])).await.is_u64());
    let r = rpc.ok("getEpochInfo", json!([])).await;
    assert_keys(
        &r,
        &[
            "absoluteSlot",
            "blockHeight",
            "epoch",
            "slotIndex",
            "slotsInEpoch",
            "transactionCount",
        ],
    );
    assert_eq!(rpc.ok("getHealth", json!([])).await, "ok");
    let r = rpc.ok("getVersion", json!([])).await;
    assert_keys(&r, &["feature-set", "solana-core"]);
    let g = rpc.ok("getGenesisHash", json!([])).await;
    assert!(g.as_str().unwrap().parse::<Hash>().is_ok());
    let r = rpc.ok("getRecentPrioritizationFees", json!([[mint]])).await;
    let fees = r.as_array().unwrap();
    assert!(!fees.is_empty() && fees.len() <= 150);
    assert_keys(&fees[0], &["slot", "prioritizationFee"]);

    // getFeeForMessage: 5000 lamports per signature.
    let (hash, _) = rpc.latest_blockhash().await;
    let payer = net.fee_payer();
    let ix = transfer_checked_ix(&net, &client, &c.pay_to(), 1);
    let tx = legacy_tx(&[ix], &payer.pubkey(), &[payer, net.client()], hash);
    let r = rpc
        .ok(
            "getFeeForMessage",
            json!([base64_msg(&tx), {"commitment": "processed"}]),
        )
        .await;
    assert_context(&r);
    assert_eq!(r["value"], 10_000);

    // minContextSlot in the future.
    let e = rpc
        .err(
            "getBalance",
            json!([client.to_string(), {"minContextSlot": 1_000_000}]),
        )
        .await;
    assert_eq!(e["code"], -32016);
}

#[tokio::test]
async fn request_airdrop_is_a_recorded_transfer() {
    let net = TestNet::start().await;
    let who = Keypair::new().pubkey();
    let sig = net
        .rpc
        .ok("requestAirdrop", json!([who.to_string(), 2_000_000_000u64]))
        .await;
    let st = net.rpc.wait_confirmed(sig.as_str().unwrap()).await;
    assert_eq!(st["err"], Value::Null);
    let r = net.rpc.ok("getBalance", json!([who.to_string()])).await;
    assert_eq!(r["value"], 2_000_000_000u64);
    let t = net.rpc.ok("getTransaction", json!([sig])).await;
    assert_eq!(t["meta"]["fee"], 5_000);
}

#[tokio::test]
async fn json_rpc_envelope_errors_and_batches() {
    let net = TestNet::start().await;
    let rpc = &net.rpc;
    let e = rpc.err("getBananas", json!([])).await;
    assert_eq!(e["code"], -32601);
    assert_eq!(e["message"], "Method not found");

    let (status, v) = rpc.raw("{not json").await;
    assert_eq!(status, 200);
    assert_eq!(v["error"]["code"], -32700);
    assert_eq!(v["id"], Value::Null);

    let (_, v) = rpc.raw(r#"{"jsonrpc":"2.0","id":3}"#).await;
    assert_eq!(v["error"]["code"], -32600);
    let (_, v) = rpc
        .raw(r#"{"jsonrpc":"1.0","id":3,"method":"getSlot"}"#)
        .await;
    assert_eq!(v["error"]["code"], -32600);
    let (_, v) = rpc.raw("[]").await;
    assert_eq!(v["error"]["code"], -32600);
    let (_, v) = rpc.raw("42").await;
    assert_eq!(v["error"]["code"], -32600);

    // Bad params never panic.
    for (m, p) in [
        ("getBalance", json!([])),
        ("getBalance", json!(["not-an-address"])),
        ("getBalance", json!([42])),
        (
            "getAccountInfo",
            json!(["11111111111111111111111111111111", {"encoding": "nope"}]),
        ),
        ("sendTransaction", json!(["%%%"])),
        ("sendTransaction", json!(["AAAA", {"encoding": "base64"}])),
        ("simulateTransaction", json!([""])),
        ("getSignatureStatuses", json!([["xyz"]])),
        ("getTransaction", json!(["xyz"])),
        ("getFeeForMessage", json!(["!!"])),
        ("isBlockhashValid", json!(["zz"])),
        ("getMultipleAccounts", json!(["x"])),
        (
            "getTokenAccountsByOwner",
            json!(["11111111111111111111111111111111", {}]),
        ),
    ] {
        let e = rpc.err(m, p.clone()).await;
        assert_eq!(e["code"], -32602, "{m} {p}: {e}");
    }
    let (_, v) = rpc
        .raw(r#"{"jsonrpc":"2.0","id":1,"method":"getSlot","params":{"a":1}}"#)
        .await;
    assert_eq!(v["error"]["code"], -32602);

    // Batch: results in order, errors inline, notifications skipped.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
        {"jsonrpc": "2.0", "id": "two", "method": "nope"},
        {"jsonrpc": "2.0", "method": "getSlot"},
        {"jsonrpc": "2.0", "id": 4, "method": "getBlockHeight", "params": []}
    ]);
    let (_, v) = rpc.raw(batch.to_string()).await;
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0], json!({"jsonrpc": "2.0", "id": 1, "result": "ok"}));
    assert_eq!(arr[1]["id"], "two");
    assert_eq!(arr[1]["error"]["code"], -32601);
    assert_eq!(arr[2]["id"], 4);
    assert!(arr[2]["result"].is_u64());

    // Oversized body is refused.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"getHealth","params":["{}"]}}"#,
        "a".repeat(100 * 1024)
    );
    let (status, _) = rpc.raw(big).await;
    assert_eq!(status, 413);

    let health = reqwest::get(format!("{}/health", rpc.url)).await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn token_2022_mint_with_transfer_fee() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let mint = Address::new_unique();
    c.add_mint_with_transfer_fee(
        mint,
        6,
        TransferFeeParams {
            basis_points: 100,
            maximum_fee: 1_000_000,
        },
    )
    .unwrap();
    let program = TokenProgramKind::Token2022.program_id();
    c.mint_to(&client.pubkey(), &mint, 5_000_000).unwrap();
    let dest_owner = Keypair::new().pubkey();
    c.mint_to(&dest_owner, &mint, 0).unwrap();
    let src = ata(&client.pubkey(), &mint, &program);
    let dst = ata(&dest_owner, &mint, &program);

    let r = net
        .rpc
        .ok(
            "getAccountInfo",
            json!([mint.to_string(), {"encoding": "jsonParsed"}]),
        )
        .await;
    let d = &r["value"]["data"];
    assert_eq!(d["program"], "spl-token-2022");
    assert_eq!(
        d["parsed"]["info"]["extensions"][0]["extension"],
        "transferFeeConfig"
    );

    let ix = spl_token_2022_interface::instruction::transfer_checked(
        &program,
        &src,
        &mint,
        &dst,
        &client.pubkey(),
        &[],
        1_000_000,
        6,
    )
    .unwrap();
    let (hash, _) = net.rpc.latest_blockhash().await;
    let tx = legacy_tx(&[ix], &client.pubkey(), &[client], hash);
    let res = net.rpc.send(&tx).await;
    let sig = res["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{res}"))
        .to_string();
    net.rpc.wait_confirmed(&sig).await;
    assert_eq!(net.rpc.token_balance(&src).await, 4_000_000);
    // 1% fee withheld in the destination account.
    assert_eq!(net.rpc.token_balance(&dst).await, 990_000);
    assert_eq!(c.token_balance_of(&dest_owner, &mint), 990_000);
    let r = net
        .rpc
        .ok(
            "getAccountInfo",
            json!([dst.to_string(), {"encoding": "jsonParsed"}]),
        )
        .await;
    let exts = r["value"]["data"]["parsed"]["info"]["extensions"].to_string();
    assert!(exts.contains("\"withheldAmount\":10000"), "{exts}");

    // Plain Token-2022 mint too.
    let m2 = Address::new_unique();
    c.add_mint(m2, 2, TokenProgramKind::Token2022).unwrap();
    c.mint_to(&client.pubkey(), &m2, 250).unwrap();
    let r = net
        .rpc
        .ok(
            "getTokenAccountsByOwner",
            json!([client.pubkey().to_string(), {"programId": program.to_string()}, {"encoding": "jsonParsed"}]),
        )
        .await;
    assert_eq!(r["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn token_2022_genesis_mint_and_configured_pay_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LocalnetConfig::for_tests(dir.path());
    cfg.token_program = TokenProgramKind::Token2022;
    let merchant = Keypair::new().pubkey();
    cfg.pay_to = Some(merchant.to_string());
    let net = TestNet::start_with(cfg, dir).await;
    let c = &net.cluster;
    assert_eq!(c.token_program(), spl_token_2022_interface::id());
    assert_eq!(c.pay_to(), merchant);
    assert!(c.pay_to_keypair().is_none());
    let client = net.client();
    let program = c.token_program();
    let ix = spl_token_2022_interface::instruction::transfer_checked(
        &program,
        &c.ata(&client.pubkey()),
        &c.mint(),
        &c.ata(&merchant),
        &client.pubkey(),
        &[],
        250_000,
        6,
    )
    .unwrap();
    let (hash, _) = net.rpc.latest_blockhash().await;
    let tx = legacy_tx(&[ix], &client.pubkey(), &[client], hash);
    let sig = net.rpc.send(&tx).await["result"]
        .as_str()
        .unwrap()
        .to_string();
    net.rpc.wait_confirmed(&sig).await;
    assert_eq!(c.token_balance(&merchant), 250_000);
    assert_eq!(net.rpc.token_balance(&c.ata(&merchant)).await, 250_000);
    let r = net
        .rpc
        .ok(
            "getAccountInfo",
            json!([c.ata(&merchant).to_string(), {"encoding": "jsonParsed"}]),
        )
        .await;
    assert_eq!(r["value"]["data"]["program"], "spl-token-2022");
    assert_eq!(
        r["value"]["data"]["parsed"]["info"]["extensions"][0]["extension"],
        "immutableOwner"
    );
}

#[tokio::test]
async fn keypair_files_are_created_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LocalnetConfig::for_tests(dir.path());
    cfg.wallets.push(WalletConfig {
        keypair: dir.path().join("rich.json"),
        sol: None,
        lamports: Some(123),
        usdc: 5,
    });
    let first = LocalCluster::start(cfg.clone()).await.unwrap();
    let rich = first.wallets()[1].keypair.pubkey();
    let pay_to = first.pay_to();
    assert_eq!(first.sol_balance(&rich), 123);
    assert_eq!(first.token_balance(&rich), 5);
    // solana-keygen format: JSON array of 64 bytes.
    let text = std::fs::read_to_string(dir.path().join("rich.json")).unwrap();
    let bytes: Vec<u8> = serde_json::from_str(&text).unwrap();
    assert_eq!(bytes.len(), 64);
    first.shutdown().await;

    let second = LocalCluster::start(cfg).await.unwrap();
    assert_eq!(second.wallets()[1].keypair.pubkey(), rich);
    assert_eq!(second.pay_to(), pay_to);
    second.shutdown().await;
}

#[tokio::test]
async fn fund_wallet_and_clock_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LocalnetConfig::for_tests(dir.path());
    cfg.slot_ms = 5;
    let cluster = LocalCluster::start(cfg).await.unwrap();
    let url = cluster.rpc_url();
    let rpc = Rpc::new(url.clone());
    let who = Keypair::new().pubkey();
    cluster.fund_wallet(&who, 1_000, 77).unwrap();
    assert_eq!(cluster.sol_balance(&who), 1_000);
    assert_eq!(cluster.token_balance(&who), 77);

    // The clock moves slots and blockhashes on its own (bounded polling, no timing asserts).
    let start = rpc.ok("getSlot", json!([])).await.as_u64().unwrap();
    let (h0, _) = rpc.latest_blockhash().await;
    let mut moved = false;
    for _ in 0..400 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        if rpc.ok("getSlot", json!([])).await.as_u64().unwrap() > start {
            moved = true;
            break;
        }
    }
    assert!(moved, "clock never advanced");
    assert_ne!(rpc.latest_blockhash().await.0, h0);

    cluster.shutdown().await;
    assert!(reqwest::Client::new()
        .post(&url)
        .body("{}")
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn non_loopback_listen_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LocalnetConfig::for_tests(dir.path());
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    assert!(LocalCluster::start(cfg).await.is_err());
}

#[test]
fn config_defaults_and_toml() {
    let cfg: LocalnetConfig = toml::from_str("").unwrap();
    assert_eq!(cfg, LocalnetConfig::default());
    assert_eq!(cfg.mint, DEVNET_USDC_MINT);
    assert_eq!(cfg.decimals, 6);
    assert_eq!(cfg.slot_ms, 400);
    assert_eq!(cfg.listen.port(), 8899);
    let cfg: LocalnetConfig = toml::from_str(
        r#"
        slot_ms = 100
        token_program = "token_2022"
        [[wallets]]
        keypair = "a.json"
        sol = 1.5
        usdc = 3
        "#,
    )
    .unwrap();
    assert_eq!(cfg.token_program, TokenProgramKind::Token2022);
    assert_eq!(cfg.wallets[0].lamports(), 1_500_000_000);
    assert!(toml::from_str::<LocalnetConfig>("bogus = 1").is_err());
}

/// A Memo v2 instruction with no signers.
fn memo_ix(text: &[u8]) -> solana_instruction::Instruction {
    solana_instruction::Instruction {
        program_id: x402_gateway::svm::constants::MEMO_PROGRAM,
        accounts: vec![],
        data: text.to_vec(),
    }
}

#[tokio::test]
async fn get_signatures_for_address_pages_history_newest_first() {
    let net = TestNet::start().await;
    let c = &net.cluster;
    let client = net.client();
    let payer = net.fee_payer();
    let dst = ata(&c.pay_to(), &c.mint(), &c.token_program());
    let (hash, _) = net.rpc.latest_blockhash().await;
    // Four transfers into `dst` in execution order (the clock is paused: one slot), the
    // second with two memos, the third failing on chain (more than the client holds).
    let mut sent = Vec::new();
    for (i, amount) in [11u64, 12, 100_000_001, 14].into_iter().enumerate() {
        let mut ixs = vec![transfer_checked_ix(
            &net,
            &client.pubkey(),
            &c.pay_to(),
            amount,
        )];
        if i == 1 {
            ixs.push(memo_ix(b"a"));
            ixs.push(memo_ix(b"hello"));
        }
        let tx = legacy_tx(&ixs, &payer.pubkey(), &[payer, client], hash);
        let sig = net
            .rpc
            .ok(
                "sendTransaction",
                json!([b64(&tx), {"encoding": "base64", "skipPreflight": true}]),
            )
            .await;
        net.rpc.wait_confirmed(sig.as_str().unwrap()).await;
        sent.push(sig.as_str().unwrap().to_string());
    }
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    let list = |config: Value| {
        let rpc = &net.rpc;
        let dst = dst.to_string();
        async move {
            rpc.ok("getSignaturesForAddress", json!([dst, config]))
                .await
        }
    };
    let sigs = |page: &Value| -> Vec<String> {
        page.as_array()
            .unwrap_or_else(|| panic!("not an array: {page}"))
            .iter()
            .map(|e| e["signature"].as_str().unwrap().to_string())
            .collect()
    };

    // Finalized (the default) lists nothing yet; confirmed lists every landed one.
    assert_eq!(list(json!({})).await, json!([]));
    let confirmed = list(json!({"commitment": "confirmed"})).await;
    assert_eq!(sigs(&confirmed), newest_first);
    for entry in confirmed.as_array().unwrap() {
        assert_keys(
            entry,
            &[
                "signature",
                "slot",
                "err",
                "memo",
                "blockTime",
                "confirmationStatus",
            ],
        );
        assert_eq!(entry["confirmationStatus"], "confirmed");
        assert_eq!(entry["slot"], c.slot());
        assert!(entry["blockTime"].is_i64());
    }
    assert_eq!(confirmed[2]["memo"], "[1] a; [5] hello");
    assert_eq!(confirmed[0]["memo"], Value::Null);
    assert_eq!(
        confirmed[1]["err"],
        json!({"InstructionError": [0, {"Custom": 1}]})
    );
    assert_eq!(confirmed[0]["err"], Value::Null);

    c.advance_slots(32);
    let all = list(json!(null)).await;
    assert_eq!(sigs(&all), newest_first);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["confirmationStatus"] == "finalized"));
    // The fee payer's history has them too (every account of a transaction is indexed).
    let payer_history = net
        .rpc
        .ok(
            "getSignaturesForAddress",
            json!([payer.pubkey().to_string()]),
        )
        .await;
    assert_eq!(sigs(&payer_history), newest_first);

    // Paging: limit, then `before` the last one seen (exclusive); `until` stops above it.
    let first = list(json!({"limit": 2})).await;
    assert_eq!(sigs(&first), newest_first[..2]);
    let second = list(json!({"limit": 2, "before": newest_first[1]})).await;
    assert_eq!(sigs(&second), newest_first[2..]);
    let above = list(json!({"until": newest_first[2]})).await;
    assert_eq!(sigs(&above), newest_first[..2]);
    let between = list(json!({"before": newest_first[0], "until": newest_first[3]})).await;
    assert_eq!(sigs(&between), newest_first[1..3]);
    // A `before` the node does not know gives nothing; an unknown `until` is ignored.
    let unknown = solana_signature::Signature::from([7u8; 64]).to_string();
    assert_eq!(list(json!({"before": unknown})).await, json!([]));
    assert_eq!(sigs(&list(json!({"until": unknown})).await), newest_first);
    // An address no transaction touched.
    let untouched = net
        .rpc
        .ok(
            "getSignaturesForAddress",
            json!([Keypair::new().pubkey().to_string()]),
        )
        .await;
    assert_eq!(untouched, json!([]));

    // Refusals, with the real node's messages.
    let err = |config: Value| {
        let rpc = &net.rpc;
        let dst = dst.to_string();
        async move {
            rpc.err("getSignaturesForAddress", json!([dst, config]))
                .await
        }
    };
    for limit in [0, 1001] {
        let e = err(json!({"limit": limit})).await;
        assert_eq!(e["code"], -32602);
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("Invalid limit; max 1000"),
            "{e}"
        );
    }
    let e = err(json!({"commitment": "processed"})).await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("Method does not support commitment below `confirmed`"));
    assert_eq!(
        err(json!({"before": "not-a-signature"})).await["code"],
        -32602
    );
    let e = net
        .rpc
        .err("getSignaturesForAddress", json!(["not-an-address"]))
        .await;
    assert_eq!(e["code"], -32602);
    let e = net.rpc.err("getSignaturesForAddress", json!([])).await;
    assert_eq!(e["code"], -32602);
}
