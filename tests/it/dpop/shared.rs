//! Replay detection (DPOP-07) in one guard, across guards sharing a store (memory and a real
//! Redis), server nonces (DPOP-09), and introspection answers with `cnf.jkt`.

use std::sync::Arc;
use std::time::Duration;

use mcp_auth::dpop::NonceConfig;
use mcp_auth::store::{MemoryStore, StateStore};
use mcp_auth::testing::{DpopKey, TestAuthServer};
use mcp_auth::verify::IntrospectionVerifier;
use mcp_auth::{AuthServer, AuthServerType};
use serde_json::json;

use super::{DpopApp, allow, bound_token};

#[tokio::test]
async fn dpop07_an_identical_proof_sent_twice_is_refused_the_second_time() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let proof = app.proof(&key, &token);
    assert_eq!(app.dpop(&token, proof.clone()).await.status, 200);
    app.dpop(&token, proof)
        .await
        .expect_dpop_error("invalid_dpop_proof");
    // A fresh proof (new jti) for the same token passes.
    assert_eq!(app.dpop(&token, app.proof(&key, &token)).await.status, 200);
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn dpop07_an_oversized_or_missing_jti_is_refused() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let proof = || key.proof("POST", &app.resource).access_token(&token);
    for bad in [
        proof().jti("j".repeat(300)).sign(),
        proof().jti("").sign(),
        proof().remove_claim("jti").sign(),
    ] {
        app.dpop(&token, bad)
            .await
            .expect_dpop_error("invalid_dpop_proof");
    }
    assert_eq!(
        app.dpop(&token, proof().jti("j".repeat(256)).sign())
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn dpop07_a_refused_request_does_not_use_up_its_proof() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let narrow = server
        .token()
        .audience(app.resource.as_str())
        .scope("write")
        .dpop_bound(&key)
        .sign();
    let proof = app.proof(&key, &narrow);
    // 403 (scope) twice: the proof was not consumed by the refusal.
    assert_eq!(app.dpop(&narrow, proof.clone()).await.status, 403);
    assert_eq!(app.dpop(&narrow, proof).await.status, 403);
}

#[tokio::test]
async fn dpop07_replay_is_refused_across_two_guards_sharing_a_memory_store() {
    let server = TestAuthServer::start().await.unwrap();
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    // Both replicas answer for one public URL, as behind a load balancer.
    let public = "https://api.example.com";
    let a = DpopApp::serve(
        &server,
        allow().public_base_url(public).store(store.clone()),
    )
    .await;
    let b = DpopApp::serve(&server, allow().public_base_url(public).store(store)).await;
    let key = DpopKey::generate();
    let token = server
        .token()
        .audience([a.resource.as_str(), b.resource.as_str()].as_slice())
        .scope("read")
        .dpop_bound(&key)
        .sign();
    let proof = key
        .proof("POST", "https://api.example.com/mcp")
        .access_token(&token)
        .sign();
    assert_eq!(a.dpop(&token, proof.clone()).await.status, 200);
    b.dpop(&token, proof)
        .await
        .expect_dpop_error("invalid_dpop_proof");
    assert_eq!(b.calls(), 0);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn dpop07_replay_is_refused_across_two_guards_on_one_redis_and_redis_down_is_503() {
    use crate::support::redis::RedisServer;

    let redis = RedisServer::start().await;
    let server = TestAuthServer::start().await.unwrap();
    let public = "https://api.example.com";
    let store = |redis: &RedisServer| -> Arc<dyn StateStore> { Arc::new(redis.store("dpop")) };
    let a = DpopApp::serve(
        &server,
        allow().public_base_url(public).store(store(&redis)),
    )
    .await;
    let b = DpopApp::serve(
        &server,
        allow().public_base_url(public).store(store(&redis)),
    )
    .await;
    let key = DpopKey::generate();
    let token = server
        .token()
        .audience([a.resource.as_str(), b.resource.as_str()].as_slice())
        .scope("read")
        .dpop_bound(&key)
        .sign();
    let proof = || {
        key.proof("POST", "https://api.example.com/mcp")
            .access_token(&token)
            .sign()
    };
    let first = proof();
    assert_eq!(a.dpop(&token, first.clone()).await.status, 200);
    b.dpop(&token, first)
        .await
        .expect_dpop_error("invalid_dpop_proof");
    assert_eq!(b.dpop(&token, proof()).await.status, 200);

    // Fail closed: with Redis gone, a valid fresh proof gets 503, never a pass.
    drop(redis);
    let reply = a.dpop(&token, proof()).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.challenges.is_empty());
    assert_eq!(reply.body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn dpop09_nonce_round_trip_first_401_use_dpop_nonce_then_200_with_it() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow().nonces(true)).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);

    let first = app.dpop(&token, app.proof(&key, &token)).await;
    first.expect_dpop_error("use_dpop_nonce");
    let nonce = first.nonce.clone().expect("a DPoP-Nonce header");
    let with_nonce = key
        .proof("POST", &app.resource)
        .access_token(&token)
        .nonce(nonce.as_str())
        .sign();
    let reply = app.dpop(&token, with_nonce).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // After a nonce was issued, proofs without it (or with a made-up one) are refused.
    app.dpop(&token, app.proof(&key, &token))
        .await
        .expect_dpop_error("use_dpop_nonce");
    let forged = key
        .proof("POST", &app.resource)
        .access_token(&token)
        .nonce("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .sign();
    let reply = app.dpop(&token, forged).await;
    reply.expect_dpop_error("use_dpop_nonce");
    assert_eq!(reply.nonce.as_deref(), Some(nonce.as_str()));
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn dpop09_replicas_with_the_same_secret_accept_each_others_nonces() {
    let server = TestAuthServer::start().await.unwrap();
    let public = "https://api.example.com";
    let nonces = |secret: u8| {
        NonceConfig::new()
            .secret([secret; 32])
            .window(Duration::from_secs(60))
    };
    let a = DpopApp::serve(&server, allow().public_base_url(public).nonces(nonces(7))).await;
    let b = DpopApp::serve(&server, allow().public_base_url(public).nonces(nonces(7))).await;
    let other = DpopApp::serve(&server, allow().public_base_url(public).nonces(nonces(8))).await;
    let key = DpopKey::generate();
    let token = server
        .token()
        .audience(
            [
                a.resource.as_str(),
                b.resource.as_str(),
                other.resource.as_str(),
            ]
            .as_slice(),
        )
        .scope("read")
        .dpop_bound(&key)
        .sign();
    let proof = |nonce: Option<&str>| {
        let proof = key
            .proof("POST", "https://api.example.com/mcp")
            .access_token(&token);
        match nonce {
            Some(nonce) => proof.nonce(nonce).sign(),
            None => proof.sign(),
        }
    };
    let nonce = a.dpop(&token, proof(None)).await.nonce.expect("a nonce");
    assert_eq!(b.dpop(&token, proof(Some(&nonce))).await.status, 200);
    other
        .dpop(&token, proof(Some(&nonce)))
        .await
        .expect_dpop_error("use_dpop_nonce");
}

#[tokio::test]
async fn dpop05_introspection_answers_with_cnf_jkt_are_bound_too() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier =
        IntrospectionVerifier::builder(AuthServer::discover(server.issuer(), AuthServerType::Oidc))
            .client_secret_basic(server.client_id(), server.client_secret())
            .build()
            .unwrap();
    let app = DpopApp::serve_with(&server, allow(), Some(Arc::new(verifier))).await;
    let (key, thief) = (DpopKey::generate(), DpopKey::generate());
    let token = server.issue_opaque_token(json!({
        "aud": app.resource,
        "scope": "read",
        "cnf": { "jkt": key.jkt() },
    }));
    let reply = app.dpop(&token, app.proof(&key, &token)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["jkt"], key.jkt());
    app.dpop(&token, app.proof(&thief, &token))
        .await
        .expect_dpop_error("invalid_token");
    // As Bearer: refused (the answer's token_type is DPoP and it carries cnf.jkt).
    let reply = app.send(&[format!("Bearer {token}")], &[], &[]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
}
