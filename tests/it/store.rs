//! The store's semantics, run identically against the in-memory backend and a real Redis.

use std::sync::Arc;
use std::time::Duration;

use x402_gateway::store::memory::MemoryStore;
use x402_gateway::store::redis::RedisStore;
use x402_gateway::store::{
    new_token, CachedResponse, ClaimIds, ClaimRecord, ClaimState, LimitCheck, LimitVerdict,
    PaymentKey, Reservation, Store, StoreError, UsageDelta,
};

use crate::common::redis::{unique_prefix, TestRedis};

const TTL: Duration = Duration::from_secs(60);

fn ids(n: u8, aliases: &[&str]) -> ClaimIds {
    ClaimIds {
        payment: PaymentKey([n; 32]),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
    }
}

fn settled(fingerprint: &str) -> ClaimRecord {
    ClaimRecord {
        fingerprint: fingerprint.into(),
        state: ClaimState::Settled {
            response: Some(CachedResponse {
                status: 200,
                headers: vec![("payment-response".into(), "abc".into())],
                body: b"{\"result\":1}".to_vec(),
            }),
            ledger_key: None,
        },
    }
}

fn pending(fingerprint: &str) -> ClaimRecord {
    ClaimRecord {
        fingerprint: fingerprint.into(),
        state: ClaimState::Pending {
            transaction: Some("sig".into()),
            response: None,
            settle_request: "{}".into(),
        },
    }
}

async fn token(store: &dyn Store, ids: &ClaimIds, fp: &str) -> String {
    match store
        .reserve(ids, &new_token(), fp, &[], TTL)
        .await
        .unwrap()
    {
        Reservation::Reserved { token } => token,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

async fn claims_lifecycle(store: &dyn Store) {
    let a = ids(1, &["idem:a"]);
    let t = token(store, &a, "fp1").await;
    // In flight: a second claim of the payment, or of its alias with another payment, sees it.
    match store
        .reserve(&a, &new_token(), "fp1", &[], TTL)
        .await
        .unwrap()
    {
        Reservation::Existing(r) => assert!(matches!(r.state, ClaimState::InFlight { .. })),
        other => panic!("{other:?}"),
    }
    match store
        .reserve(&ids(2, &["idem:a"]), &new_token(), "fp1", &[], TTL)
        .await
        .unwrap()
    {
        Reservation::Existing(r) => assert_eq!(r.fingerprint, "fp1"),
        other => panic!("{other:?}"),
    }
    // Release with a wrong token does nothing; with ours frees payment and alias.
    store.release(&a, "not-the-token").await.unwrap();
    assert!(store.claim(&a.payment).await.unwrap().is_some());
    store.release(&a, &t).await.unwrap();
    assert!(store.claim(&a.payment).await.unwrap().is_none());
    let t = token(store, &ids(2, &["idem:a"]), "fp2").await;

    // Settled: kept with its answer, reachable through the alias too.
    store
        .finish(&ids(2, &["idem:a"]), &t, &settled("fp2"), TTL)
        .await
        .unwrap();
    assert_eq!(
        store.claim(&PaymentKey([2; 32])).await.unwrap(),
        Some(settled("fp2"))
    );
    match store
        .reserve(&ids(3, &["idem:a"]), &new_token(), "fp2", &[], TTL)
        .await
        .unwrap()
    {
        Reservation::Existing(r) => assert_eq!(r, settled("fp2")),
        other => panic!("{other:?}"),
    }
    // A late release of a finished claim is ignored.
    store.release(&ids(2, &["idem:a"]), &t).await.unwrap();
    assert!(store.claim(&PaymentKey([2; 32])).await.unwrap().is_some());
}

async fn pending_is_leased_and_resolved(store: &dyn Store) {
    let a = ids(7, &[]);
    let t = token(store, &a, "fp").await;
    store.finish(&a, &t, &pending("fp"), TTL).await.unwrap();
    assert_eq!(store.pending_count().await.unwrap(), 1);
    let due = store
        .due_pending(Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(due, vec![a.payment]);
    // Leased: not handed out again until the lease ends.
    assert!(store
        .due_pending(Duration::from_secs(30), 10)
        .await
        .unwrap()
        .is_empty());
    store
        .resolve_pending(&a.payment, Some(&settled("fp")), TTL)
        .await
        .unwrap();
    assert_eq!(store.pending_count().await.unwrap(), 0);
    assert_eq!(store.claim(&a.payment).await.unwrap(), Some(settled("fp")));

    // Released: the payment is free again.
    let b = ids(8, &[]);
    let t = token(store, &b, "fp").await;
    store.finish(&b, &t, &pending("fp"), TTL).await.unwrap();
    store
        .due_pending(Duration::from_millis(1), 10)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store
            .due_pending(Duration::from_secs(30), 10)
            .await
            .unwrap(),
        vec![b.payment],
        "a lease ends"
    );
    store.resolve_pending(&b.payment, None, TTL).await.unwrap();
    assert!(store.claim(&b.payment).await.unwrap().is_none());
    token(store, &b, "fp").await;
}

async fn limits_are_all_or_nothing(store: &dyn Store, prefix: &str) {
    let tight = LimitCheck {
        key: format!("{prefix}rl:tight"),
        burst: 2,
        period: Duration::from_secs(60),
    };
    let loose = LimitCheck {
        key: format!("{prefix}rl:loose"),
        burst: 100,
        period: Duration::from_secs(60),
    };
    let both = [loose.clone(), tight.clone()];
    for left in [1, 0] {
        match store.check_limits(&both).await.unwrap() {
            LimitVerdict::Allowed {
                index, remaining, ..
            } => assert_eq!((index, remaining), (1, left)),
            other => panic!("{other:?}"),
        }
    }
    match store.check_limits(&both).await.unwrap() {
        LimitVerdict::Limited { index, retry_after } => {
            assert_eq!(index, 1);
            assert!(
                retry_after > Duration::from_secs(29) && retry_after <= Duration::from_secs(30)
            );
        }
        other => panic!("{other:?}"),
    }
    // The refused call consumed nothing from the loose limit: 98 left after one more.
    match store.check_limits(&[loose]).await.unwrap() {
        LimitVerdict::Allowed { remaining, .. } => assert_eq!(remaining, 97),
        other => panic!("{other:?}"),
    }
    // A reservation refused by a limit claims nothing.
    let a = ids(9, &[]);
    match store
        .reserve(&a, &new_token(), "fp", &[tight], TTL)
        .await
        .unwrap()
    {
        Reservation::Limited(v) => assert!(!v.is_allowed()),
        other => panic!("{other:?}"),
    }
    assert!(store.claim(&a.payment).await.unwrap().is_none());
}

async fn single_use_values_and_usage(store: &dyn Store, prefix: &str) {
    let key = format!("{prefix}nonce:1");
    assert!(store.put_once(&key, "v", TTL).await.unwrap());
    assert!(!store.put_once(&key, "w", TTL).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some("v"));
    assert_eq!(store.take(&key).await.unwrap().as_deref(), Some("v"));
    assert_eq!(store.take(&key).await.unwrap(), None);
    let short = format!("{prefix}nonce:2");
    assert!(store
        .put_once(&short, "v", Duration::from_millis(20))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(store.get(&short).await.unwrap(), None, "expired");

    let day = format!("{prefix}2026-11-21");
    let delta = |field: &str, delta| UsageDelta {
        day: day.clone(),
        field: field.into(),
        delta,
    };
    store
        .add_usage(&[delta("a", 2), delta("b", 5), delta("a", 1)], TTL)
        .await
        .unwrap();
    assert_eq!(
        store.usage(&day).await.unwrap(),
        vec![("a".to_string(), 3), ("b".to_string(), 5)]
    );
}

async fn all(store: &dyn Store, prefix: &str) {
    claims_lifecycle(store).await;
    pending_is_leased_and_resolved(store).await;
    limits_are_all_or_nothing(store, prefix).await;
    single_use_values_and_usage(store, prefix).await;
}

#[tokio::test]
async fn memory_store_semantics() {
    all(&MemoryStore::default(), "").await;
}

#[tokio::test]
async fn redis_store_semantics_and_every_key_expires() {
    let redis = TestRedis::start();
    let prefix = unique_prefix("store");
    let store = RedisStore::new(&redis.url, &prefix, Duration::from_millis(500)).unwrap();
    all(&store, "").await;
    redis.assert_all_keys_expire(&prefix).await;
}

#[tokio::test]
async fn concurrent_claims_of_one_payment_have_one_winner() {
    let redis = TestRedis::start();
    let stores: Vec<Arc<dyn Store>> = vec![
        Arc::new(MemoryStore::default()),
        Arc::new(
            RedisStore::new(&redis.url, &unique_prefix("race"), Duration::from_secs(2)).unwrap(),
        ),
    ];
    for store in stores {
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .reserve(&ids(5, &[]), &new_token(), "fp", &[], TTL)
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            if matches!(t.await.unwrap().unwrap(), Reservation::Reserved { .. }) {
                won += 1;
            }
        }
        assert_eq!(won, 1, "{}", store.backend());
    }
}

#[tokio::test]
async fn a_dead_redis_is_an_error_not_a_guess() {
    let mut redis = TestRedis::spawn();
    let store = RedisStore::new(
        &redis.url,
        &unique_prefix("dead"),
        Duration::from_millis(200),
    )
    .unwrap();
    store.ping().await.unwrap();
    redis.stop();
    let err = store
        .reserve(&ids(1, &[]), &new_token(), "fp", &[], TTL)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout),
        "{err:?}"
    );
    assert!(store.put_once("k", "v", TTL).await.is_err());
    // The pool reconnects by itself once Redis is back.
    redis.restart();
    let mut ok = false;
    for _ in 0..50 {
        if store.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "store recovered");
    assert!(matches!(
        store
            .reserve(&ids(1, &[]), &new_token(), "fp", &[], TTL)
            .await
            .unwrap(),
        Reservation::Reserved { .. }
    ));
}
