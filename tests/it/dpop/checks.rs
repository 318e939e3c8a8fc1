//! The proof checks of RFC 9449 §4.3 and the key binding (DPOP-01 … DPOP-05).

use mcp_auth::bearer::ChallengeScheme;
use mcp_auth::testing::{DpopKey, TestAuthServer};
use serde_json::json;

use super::{DpopApp, allow, bound_token};
use crate::support::clock::unix_now;

#[tokio::test]
async fn dpop01_a_bound_token_with_one_valid_proof_passes_and_auth_info_names_the_key() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let reply = app.dpop(&token, app.proof(&key, &token)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["jkt"], key.jkt(), "AuthInfo::binding is DpopKey");
    assert_eq!(reply.body["sub"], "alice");
}

#[tokio::test]
async fn dpop01_no_proof_two_proofs_or_a_non_jwt_proof_get_401_invalid_dpop_proof() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let auth = [format!("DPoP {token}")];

    let none = app.send(&auth, &[], &[]).await;
    none.expect_dpop_error("invalid_dpop_proof");
    let two = app
        .send(
            &auth,
            &[app.proof(&key, &token), app.proof(&key, &token)],
            &[],
        )
        .await;
    two.expect_dpop_error("invalid_dpop_proof");
    let not_a_jwt = app.send(&auth, &["not-a-jwt".to_owned()], &[]).await;
    not_a_jwt.expect_dpop_error("invalid_dpop_proof");
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn dpop02_each_malformed_proof_header_gets_401_invalid_dpop_proof() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let proof = || key.proof("POST", &app.resource).access_token(&token);

    let mut private = key.public_jwk();
    private["d"] = json!("c2VjcmV0LXNjYWxhcg");
    // A valid signature by another key, under this key's header and claims.
    let good = proof().sign();
    let other = DpopKey::generate().proof("POST", &app.resource).sign();
    let forged = format!(
        "{}.{}",
        good.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    let cases = [
        ("typ=JWT", proof().typ(Some("JWT")).sign()),
        ("no typ", proof().typ(None).sign()),
        ("alg=HS256", proof().alg("HS256").sign()),
        ("alg=none", proof().alg("none").sign()),
        ("alg=ES384 on a P-256 key", proof().alg("ES384").sign()),
        ("jwk with d", proof().jwk(private).sign()),
        ("no jwk", proof().header("jwk", json!(null)).sign()),
        ("bad signature", forged),
    ];
    for (name, bad) in cases {
        let reply = app.dpop(&token, bad).await;
        assert_eq!(reply.status, 401, "{name}: {reply:?}");
        assert_eq!(
            reply.challenge(ChallengeScheme::Dpop).error.as_deref(),
            Some("invalid_dpop_proof"),
            "{name}: {reply:?}"
        );
    }
    assert_eq!(app.calls(), 0);
    // The same token with a good proof passes: the refusals were the proofs'.
    assert_eq!(app.dpop(&token, good).await.status, 200);
}

#[tokio::test]
async fn dpop03_htm_htu_and_iat_must_match_the_request() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let now = unix_now();
    let other_path = app.resource.replace("/mcp", "/other");
    let cases = [
        (
            "htm GET",
            key.proof("GET", &app.resource).access_token(&token).sign(),
        ),
        (
            "other path",
            key.proof("POST", &other_path).access_token(&token).sign(),
        ),
        (
            "iat an hour ago",
            key.proof("POST", &app.resource)
                .access_token(&token)
                .iat(now - 3600)
                .sign(),
        ),
        (
            "iat a minute ahead",
            key.proof("POST", &app.resource)
                .access_token(&token)
                .iat(now + 60)
                .sign(),
        ),
        (
            "no iat",
            key.proof("POST", &app.resource)
                .access_token(&token)
                .remove_claim("iat")
                .sign(),
        ),
    ];
    for (name, bad) in cases {
        let reply = app.dpop(&token, bad).await;
        assert_eq!(reply.status, 401, "{name}: {reply:?}");
        assert_eq!(reply.body["error"], "invalid_dpop_proof", "{name}");
    }
    assert_eq!(app.calls(), 0);
    // Inside the default window: a client clock 20 s fast, a proof 50 s old.
    for (name, iat) in [("iat 20 s ahead", now + 20), ("iat 50 s ago", now - 50)] {
        let proof = key
            .proof("POST", &app.resource)
            .access_token(&token)
            .iat(iat)
            .sign();
        assert_eq!(app.dpop(&token, proof).await.status, 200, "{name}");
    }
}

#[tokio::test]
async fn dpop03_htu_is_normalised_upper_case_host_default_port_and_query_ignored() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let port = app.addr.port();
    // `127.0.0.1` has no case; `localhost` does, and the origin is the resource's host.
    let variants = [
        format!("HTTP://127.0.0.1:{port}/mcp"),
        format!("http://127.0.0.1:{port}/mcp?ignored=1#frag"),
        format!("http://127.0.0.1:{port}/./mcp"),
    ];
    for htu in variants {
        let proof = key.proof("POST", &htu).access_token(&token).sign();
        let reply = app.dpop(&token, proof).await;
        assert_eq!(reply.status, 200, "{htu}: {reply:?}");
    }
    // A query on the request only: the proof names the URL without it.
    let proof = app.proof(&key, &token);
    let reply = app
        .send_to(
            &format!("{}?page=2", app.resource),
            &[format!("DPoP {token}")],
            &[proof],
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn dpop04_ath_must_be_the_hash_of_this_token() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let other_token = bound_token(&server, &app, &key);
    let for_other = key
        .proof("POST", &app.resource)
        .access_token(&other_token)
        .sign();
    app.dpop(&token, for_other)
        .await
        .expect_dpop_error("invalid_dpop_proof");
    let without_ath = key.proof("POST", &app.resource).sign();
    app.dpop(&token, without_ath)
        .await
        .expect_dpop_error("invalid_dpop_proof");
    assert_eq!(app.dpop(&token, app.proof(&key, &token)).await.status, 200);
}

#[tokio::test]
async fn dpop05_a_proof_by_another_key_or_an_unbound_token_gets_401_invalid_token() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let (key, thief) = (DpopKey::generate(), DpopKey::generate());
    let token = bound_token(&server, &app, &key);
    let reply = app.dpop(&token, app.proof(&thief, &token)).await;
    reply.expect_dpop_error("invalid_token");
    // RFC 9449 §7.1: the DPoP scheme needs a token bound to the proof's key.
    let unbound = server
        .token()
        .audience(app.resource.as_str())
        .scope("read")
        .sign();
    let reply = app.dpop(&unbound, app.proof(&key, &unbound)).await;
    reply.expect_dpop_error("invalid_token");
    assert_eq!(app.calls(), 0);
}
