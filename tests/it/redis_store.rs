//! `RedisStore` against a real `redis-server` (started per test, see `support::redis`): the
//! store contract, and what happens when the server dies and comes back.
#![cfg(all(feature = "redis", feature = "test-util"))]

use std::time::Duration;

use mcp_auth::store::{StateKey, StateKind, StateStore, StoreError};
use mcp_auth::testing::{Endpoint, TestAuthServer};
use mcp_auth::verify::IntrospectionVerifier;
use mcp_auth::{AuthServer, AuthServerType, TokenVerifier};
use serde_json::json;

use crate::support::redis::RedisServer;

fn key(name: &str) -> StateKey {
    StateKey::new(StateKind::DpopProof, &[name.as_bytes()])
}

#[tokio::test]
async fn concurrent_inserts_of_one_key_have_exactly_one_winner_across_connections() {
    let redis = RedisServer::start().await;
    // Two stores: two replicas' connections to one server.
    let (a, b) = (redis.store("race"), redis.store("race"));
    let attempts = (0..64).map(|n| {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            store
                .insert_if_absent(
                    &key("jti"),
                    format!("{n}").as_bytes(),
                    Duration::from_secs(60),
                )
                .await
                .unwrap()
        })
    });
    let mut wins = 0;
    for attempt in attempts {
        if attempt.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert!(a.get(&key("jti")).await.unwrap().is_some());
}

#[tokio::test]
async fn entries_expire_after_their_ttl_and_get_and_refresh_extends_them() {
    let redis = RedisServer::start().await;
    let store = redis.store("ttl");
    let ttl = Duration::from_millis(200);
    assert!(store.insert_if_absent(&key("t"), b"x", ttl).await.unwrap());
    store.set(&key("r"), b"y", ttl).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(80)).await;
        let value = store.get_and_refresh(&key("r"), ttl).await.unwrap();
        assert_eq!(value.as_deref(), Some(&b"y"[..]));
    }
    assert_eq!(
        store.get(&key("t")).await.unwrap(),
        None,
        "t was never refreshed"
    );
    assert!(store.insert_if_absent(&key("t"), b"z", ttl).await.unwrap());
    store.delete(&key("r")).await.unwrap();
    assert_eq!(store.get(&key("r")).await.unwrap(), None);
    assert_eq!(store.get_and_refresh(&key("r"), ttl).await.unwrap(), None);
}

#[tokio::test]
async fn namespaces_isolate_two_deployments_on_one_server() {
    let redis = RedisServer::start().await;
    let (one, two) = (redis.store("deployment-1"), redis.store("deployment-2"));
    let ttl = Duration::from_secs(60);
    assert!(one.insert_if_absent(&key("k"), b"1", ttl).await.unwrap());
    assert!(two.insert_if_absent(&key("k"), b"2", ttl).await.unwrap());
    assert_eq!(
        one.get(&key("k")).await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        two.get(&key("k")).await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
}

#[tokio::test]
async fn a_killed_server_is_an_error_within_the_timeout_and_a_restart_heals_the_same_store() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let store = redis.store("restart");
    let ttl = Duration::from_secs(60);
    store.set(&key("a"), b"1", ttl).await.unwrap();

    redis.kill();
    let started = std::time::Instant::now();
    let error = store.get(&key("a")).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Unavailable { .. } | StoreError::Timeout { .. }
        ),
        "{error:?}"
    );
    // Bounded by the 300 ms call timeout (generous margin for a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(3));

    let _restarted = RedisServer::start_on(port).await;
    // The connection manager reconnects in the background: a few calls at most.
    let mut healed = false;
    for _ in 0..50 {
        if store.set(&key("b"), b"2", ttl).await.is_ok() {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healed, "the store never reconnected after the restart");
    assert_eq!(
        store.get(&key("b")).await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        store.get(&key("a")).await.unwrap(),
        None,
        "a restart without persistence forgets"
    );
}

#[tokio::test]
async fn an_introspection_cache_on_a_dead_redis_asks_the_server_and_stays_correct() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let server = TestAuthServer::start().await.unwrap();
    let verifier = |store| {
        IntrospectionVerifier::builder(AuthServer::discover(server.issuer(), AuthServerType::OAuth))
            .client_secret_basic(server.client_id(), server.client_secret())
            .store(store)
            .build()
            .unwrap()
    };
    let token = server.issue_opaque_token(json!({"scope": "read"}));

    redis.kill();
    // Each new verifier has an empty local cache, so every call reaches the store.
    for n in 1..=2 {
        let info = verifier(redis.store("cache")).verify(&token).await.unwrap();
        assert_eq!(info.subject.as_deref(), Some("alice"));
        assert_eq!(server.request_count(Endpoint::Introspection), n);
    }

    let _restarted = RedisServer::start_on(port).await;
    let first = verifier(redis.store("cache"));
    let mut stored = false;
    for _ in 0..50 {
        first.cache().unwrap().invalidate_all();
        first.verify(&token).await.unwrap();
        // Stored once the store is back: a fresh verifier (another replica) is served by it.
        let before = server.request_count(Endpoint::Introspection);
        verifier(redis.store("cache")).verify(&token).await.unwrap();
        if server.request_count(Endpoint::Introspection) == before {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "the cache never used Redis again after the restart");
}
