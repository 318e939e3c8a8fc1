//! `JwtVerifier` against real authorization servers (`TestAuthServer`) over loopback HTTP.
#![cfg(feature = "test-util")]

use std::sync::Arc;
use std::time::Duration;

use crate::support::clock::unix_now;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::{JwsAlgorithm, JwtVerifier, JwtVerifierBuilder};
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, HttpClient, TokenVerifier, VerifyError};
use serde_json::{Value, json};

const COOLDOWN: Duration = Duration::from_millis(150);

async fn start() -> TestAuthServer {
    TestAuthServer::start()
        .await
        .expect("the test authorization server starts")
}

/// A verifier trusting `server` through its JWKS URL, with a short refresh cooldown.
fn verifier_for(server: &TestAuthServer) -> JwtVerifierBuilder {
    JwtVerifier::builder()
        .issuer_jwks(server.issuer(), server.jwks_uri())
        .jwks_refresh_cooldown(COOLDOWN)
}

#[track_caller]
fn expect_invalid(result: Result<AuthInfo, VerifyError>) -> String {
    match result {
        Err(VerifyError::InvalidToken { reason }) => reason.into_owned(),
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

fn total_requests(server: &TestAuthServer) -> usize {
    Endpoint::ALL.iter().map(|e| server.request_count(*e)).sum()
}

/// Re-encodes one segment of a compact JWS after `edit`.
fn edit_segment(token: &str, index: usize, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[index]).unwrap();
    edit(&mut bytes);
    parts[index] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

/// Waits (up to 1 s) until `endpoint` has seen `count` requests.
async fn wait_for_requests(server: &TestAuthServer, endpoint: Endpoint, count: usize) {
    for _ in 0..100 {
        if server.request_count(endpoint) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{endpoint} got {} requests, expected {count}",
        server.request_count(endpoint)
    );
}

// ---------------------------------------------------------------------------------------------
// Valid tokens

#[tokio::test]
async fn valid_rs256_es256_and_eddsa_tokens_are_accepted() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    for alg in [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let token = server
            .token()
            .alg(alg)
            .audience("https://api.example.com/mcp")
            .scope("read write")
            .sign();
        let info = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(info.issuer, server.issuer());
        assert_eq!(
            info.subject.as_deref(),
            Some(server.sample_user().subject.as_str())
        );
        assert_eq!(info.client_id.as_deref(), Some("test-client"));
        assert_eq!(info.scopes, ["read", "write"]);
        assert_eq!(info.audience, ["https://api.example.com/mcp"]);
        assert!(info.expires_at.is_some_and(|exp| exp > unix_now()));
        assert_eq!(info.token, token);
    }
    // All three keys came from one JWKS fetch.
    assert_eq!(server.request_count(Endpoint::Jwks), 1);
}

#[tokio::test]
async fn keys_come_from_the_jwks_uri_of_a_discovered_authorization_server() {
    let server = start().await;
    let verifier = JwtVerifier::builder()
        .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::OAuth))
        .build()
        .unwrap();
    let info = verifier.verify(&server.token().sign()).await.unwrap();
    assert_eq!(info.issuer, server.issuer());
    assert_eq!(server.request_count(Endpoint::OAuthMetadata), 1);
    assert_eq!(server.request_count(Endpoint::Jwks), 1);
    // Later tokens use the cached metadata and keys.
    verifier
        .verify(&server.token().alg(JwsAlgorithm::Es256).sign())
        .await
        .unwrap();
    assert_eq!(server.request_count(Endpoint::OAuthMetadata), 1);
    assert_eq!(server.request_count(Endpoint::Jwks), 1);
}

#[tokio::test]
async fn a_token_without_kid_is_accepted_only_when_exactly_one_key_fits() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let kidless = server.token().remove_header("kid").sign();
    verifier.verify(&kidless).await.unwrap();

    // Two RSA keys now fit an RS256 token without kid: ambiguous.
    let mut second = server.jwk(JwsAlgorithm::Rs256);
    second["kid"] = json!("another-rsa-key");
    server.set_jwks_override(Some(
        json!({"keys": [server.jwk(JwsAlgorithm::Rs256), second]}),
    ));
    let verifier = verifier_for(&server).build().unwrap();
    let reason = expect_invalid(verifier.verify(&kidless).await);
    assert!(reason.contains("kid"), "{reason}");
}

#[tokio::test]
async fn scopes_come_from_scope_scp_and_scopes_and_client_id_from_azp() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let token = server
        .token()
        .scope("read")
        .claim("scp", json!(["write", "read"]))
        .claim("scopes", "admin")
        .remove_claim("client_id")
        .claim("azp", "azp-client")
        .sign();
    let info = verifier.verify(&token).await.unwrap();
    assert_eq!(info.scopes, ["read", "write", "admin"]);
    assert_eq!(info.client_id.as_deref(), Some("azp-client"));

    let scp_only = server
        .token()
        .claim("scp", "files.read")
        .client_id("cid")
        .claim("azp", "x")
        .sign();
    let info = verifier.verify(&scp_only).await.unwrap();
    assert_eq!(info.scopes, ["files.read"]);
    assert_eq!(info.client_id.as_deref(), Some("cid"));

    let no_scopes = server
        .token()
        .audience(json!(["https://a", "https://b"]))
        .sign();
    let info = verifier.verify(&no_scopes).await.unwrap();
    assert!(info.scopes.is_empty());
    assert_eq!(info.audience, ["https://a", "https://b"]);
}

#[tokio::test]
async fn a_scope_prefix_completes_bare_scope_names_only() {
    const API: &str = "api://my-api/";
    let server = start().await;
    let verifier = verifier_for(&server).scope_prefix(API).build().unwrap();
    let token = server
        .token()
        .claim("scp", "access_as_user api://my-api/files.read files.read")
        .sign();
    let info = verifier.verify(&token).await.unwrap();
    assert_eq!(
        info.scopes,
        ["api://my-api/access_as_user", "api://my-api/files.read"]
    );
    assert!(info.has_scope("api://my-api/access_as_user"));
    // The claims stay as the token has them.
    assert_eq!(
        info.claims["scp"],
        "access_as_user api://my-api/files.read files.read"
    );
    // The same token again is a verified-token cache hit (on by default): the same names.
    let hit = verifier.verify(&token).await.unwrap();
    assert_eq!(hit.scopes, info.scopes);

    for bad in ["", "api://my api/", "api://x/\n"] {
        let error = verifier_for(&server).scope_prefix(bad).build().unwrap_err();
        assert!(
            error.to_string().contains("scope prefix"),
            "{bad:?}: {error}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures, algorithms and keys

#[tokio::test]
async fn a_flipped_signature_or_payload_byte_or_a_foreign_key_is_rejected() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    for alg in [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let token = server.token().alg(alg).sign();
        verifier.verify(&token).await.unwrap();

        let flipped = edit_segment(&token, 2, |sig| sig[10] ^= 0x01);
        let reason = expect_invalid(verifier.verify(&flipped).await);
        assert!(reason.contains("signature"), "{alg}: {reason}");

        let tampered = edit_segment(&token, 1, |payload| {
            let mut claims: Value = serde_json::from_slice(payload).unwrap();
            claims["sub"] = json!("mallory");
            *payload = serde_json::to_vec(&claims).unwrap();
        });
        let reason = expect_invalid(verifier.verify(&tampered).await);
        assert!(reason.contains("signature"), "{alg}: {reason}");

        let forged = server.token().alg(alg).sign_with_unknown_key();
        let reason = expect_invalid(verifier.verify(&forged).await);
        assert!(reason.contains("signature"), "{alg}: {reason}");
    }
}

#[tokio::test]
async fn alg_none_is_rejected_in_every_spelling_without_fetching_keys() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let unsigned = server.token().unsigned();
    let reason = expect_invalid(verifier.verify(&unsigned).await);
    assert!(reason.contains("none"), "{reason}");
    for spelling in ["None", "nOnE", "NONE"] {
        let token = edit_segment(&unsigned, 0, |header| {
            let mut h: Value = serde_json::from_slice(header).unwrap();
            h["alg"] = json!(spelling);
            *header = serde_json::to_vec(&h).unwrap();
        });
        let reason = expect_invalid(verifier.verify(&token).await);
        assert!(reason.contains("none"), "{spelling}: {reason}");
    }
    // With a signature segment that is not empty, too.
    let with_sig = format!("{unsigned}c2lnbmF0dXJl");
    expect_invalid(verifier.verify(&with_sig).await);
    assert_eq!(total_requests(&server), 0);
}

#[tokio::test]
async fn hs256_maced_with_the_rsa_public_key_is_rejected() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let pem = server
        .token()
        .sign_hs256_with(server.rsa_public_key_pem().as_bytes());
    let der = server.token().sign_hs256_with(&server.rsa_public_key_der());
    for token in [pem, der] {
        let reason = expect_invalid(verifier.verify(&token).await);
        assert!(reason.contains("not allowed"), "{reason}");
    }
    assert_eq!(total_requests(&server), 0);
}

#[tokio::test]
async fn the_allow_list_decides_which_algorithms_are_accepted() {
    let server = TestAuthServer::builder()
        .published_algs(JwsAlgorithm::ALL)
        .start()
        .await
        .unwrap();
    let rs256_only = verifier_for(&server)
        .algorithms([JwsAlgorithm::Rs256])
        .build()
        .unwrap();
    rs256_only.verify(&server.token().sign()).await.unwrap();
    for alg in [
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
        JwsAlgorithm::Rs384,
    ] {
        let reason = expect_invalid(rs256_only.verify(&server.token().alg(alg).sign()).await);
        assert!(reason.contains("not allowed"), "{alg}: {reason}");
    }
    // With the default allow-list every published asymmetric algorithm verifies.
    let all = verifier_for(&server).build().unwrap();
    for alg in JwsAlgorithm::ALL {
        all.verify(&server.token().alg(alg).sign())
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
}

#[tokio::test]
async fn an_unknown_or_wrong_kid_is_rejected() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let unknown = server.token().kid("no-such-key").sign();
    let reason = expect_invalid(verifier.verify(&unknown).await);
    assert!(reason.contains("kid"), "{reason}");
    // The kid of the ES256 key on an RS256 token: the key cannot verify that algorithm.
    let wrong = server.token().kid(server.kid(JwsAlgorithm::Es256)).sign();
    let reason = expect_invalid(verifier.verify(&wrong).await);
    assert!(reason.contains("algorithm"), "{reason}");
}

#[tokio::test]
async fn a_jwk_alg_other_than_the_token_alg_is_rejected() {
    let server = TestAuthServer::builder()
        .published_algs([JwsAlgorithm::Rs256])
        .start()
        .await
        .unwrap();
    let verifier = verifier_for(&server).build().unwrap();
    // Same RSA key, JWK says RS256, token says RS384 under that kid.
    let token = server
        .token()
        .alg(JwsAlgorithm::Rs384)
        .kid(server.kid(JwsAlgorithm::Rs256))
        .sign();
    expect_invalid(verifier.verify(&token).await);
    // An EC key labelled RS256 is never used.
    let mut ec = server.jwk(JwsAlgorithm::Es256);
    ec["alg"] = json!("RS256");
    server.set_jwks_override(Some(json!({"keys": [ec]})));
    let verifier = verifier_for(&server).build().unwrap();
    expect_invalid(
        verifier
            .verify(&server.token().alg(JwsAlgorithm::Es256).sign())
            .await,
    );
}

#[tokio::test]
async fn an_encryption_key_with_the_same_material_never_verifies() {
    let server = start().await;
    let mut enc = server.jwk(JwsAlgorithm::Rs256);
    enc["use"] = json!("enc");
    let mut no_verify = server.jwk(JwsAlgorithm::Es256);
    no_verify["key_ops"] = json!(["encrypt"]);
    server.set_jwks_override(Some(json!({"keys": [enc, no_verify]})));
    let verifier = verifier_for(&server).build().unwrap();
    expect_invalid(verifier.verify(&server.token().sign()).await);
    expect_invalid(
        verifier
            .verify(&server.token().alg(JwsAlgorithm::Es256).sign())
            .await,
    );
}

#[tokio::test]
async fn unusable_jwks_entries_do_not_break_the_other_keys() {
    let server = start().await;
    server.set_jwks_override(Some(json!({"keys": [
        {"kty": "PQC-2030", "kid": "future", "pub": "AAAA"},
        {"kty": "RSA", "kid": "broken", "n": "!!!", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "kid": "short", "x": "AAAA", "y": "AAAA"},
        {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        "not an object",
        server.jwk(JwsAlgorithm::Rs256),
        server.jwk(JwsAlgorithm::EdDsa),
    ]})));
    let verifier = verifier_for(&server).build().unwrap();
    verifier.verify(&server.token().sign()).await.unwrap();
    verifier
        .verify(&server.token().alg(JwsAlgorithm::EdDsa).sign())
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_beyond_max_keys_are_ignored() {
    let server = start().await;
    // Published order: RS256, ES256, EdDSA.
    let verifier = verifier_for(&server).max_keys(2).build().unwrap();
    verifier.verify(&server.token().sign()).await.unwrap();
    verifier
        .verify(&server.token().alg(JwsAlgorithm::Es256).sign())
        .await
        .unwrap();
    expect_invalid(
        verifier
            .verify(&server.token().alg(JwsAlgorithm::EdDsa).sign())
            .await,
    );
}

// ---------------------------------------------------------------------------------------------
// Issuers and key sources

#[tokio::test]
async fn a_token_claiming_issuer_a_but_signed_by_issuer_b_is_rejected() {
    let a = start().await;
    let b = start().await;
    let verifier = JwtVerifier::builder()
        .issuer_jwks(a.issuer(), a.jwks_uri())
        .issuer_jwks(b.issuer(), b.jwks_uri())
        .jwks_refresh_cooldown(COOLDOWN)
        .build()
        .unwrap();
    // Both are trusted for their own tokens.
    verifier.verify(&a.token().sign()).await.unwrap();
    verifier.verify(&b.token().sign()).await.unwrap();
    let b_fetches = b.request_count(Endpoint::Jwks);

    // B's key and kid, A's issuer.
    let with_b_kid = b.token().issuer(a.issuer()).sign();
    expect_invalid(verifier.verify(&with_b_kid).await);
    // B's key, A's issuer and A's kid.
    let with_a_kid = b
        .token()
        .issuer(a.issuer())
        .kid(a.kid(JwsAlgorithm::Rs256))
        .sign();
    let reason = expect_invalid(verifier.verify(&with_a_kid).await);
    assert!(reason.contains("signature"), "{reason}");
    // B's keys were never consulted for them.
    assert_eq!(b.request_count(Endpoint::Jwks), b_fetches);
}

#[tokio::test]
async fn an_untrusted_issuer_is_refused_before_any_request() {
    let trusted = start().await;
    let other = start().await;
    let verifier = JwtVerifier::builder()
        .authorization_server(AuthServer::discover(trusted.issuer(), AuthServerType::Oidc))
        .build()
        .unwrap();
    let result = verifier.verify(&other.token().sign()).await;
    match result {
        Err(VerifyError::UntrustedIssuer { issuer }) => assert_eq!(issuer, other.issuer()),
        other => panic!("expected UntrustedIssuer, got {other:?}"),
    }
    // Near misses of the trusted issuer are untrusted too.
    for iss in [
        format!("{}/", trusted.issuer()),
        trusted.issuer().to_uppercase(),
    ] {
        let token = trusted.token().issuer(iss.clone()).sign();
        assert!(
            matches!(
                verifier.verify(&token).await,
                Err(VerifyError::UntrustedIssuer { .. })
            ),
            "{iss}"
        );
    }
    assert_eq!(total_requests(&trusted), 0);
    assert_eq!(total_requests(&other), 0);
}

#[tokio::test]
async fn key_carrying_headers_are_rejected_and_never_fetched() {
    let trusted = start().await;
    let attacker = start().await;
    let verifier = verifier_for(&trusted).build().unwrap();
    let forged = |name: &str, value: Value| {
        attacker
            .token()
            .issuer(trusted.issuer())
            .header(name, value)
            .sign()
    };
    let tokens = [
        forged("jku", json!(attacker.jwks_uri())),
        forged("x5u", json!(attacker.url("/cert.pem"))),
        forged("jwk", attacker.jwk(JwsAlgorithm::Rs256)),
        forged(
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
    ];
    for token in tokens {
        let reason = expect_invalid(verifier.verify(&token).await);
        assert!(reason.contains("own key"), "{reason}");
    }
    assert_eq!(total_requests(&attacker), 0);
    assert_eq!(total_requests(&trusted), 0);
}

#[tokio::test]
async fn a_crit_header_is_rejected() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let token = server
        .token()
        .header("crit", json!(["b64"]))
        .header("b64", false)
        .sign();
    let reason = expect_invalid(verifier.verify(&token).await);
    assert!(reason.contains("crit"), "{reason}");
}

#[tokio::test]
async fn metadata_without_jwks_uri_is_a_misconfiguration() {
    let server = start().await;
    server.set_metadata_override(Some(json!({"jwks_uri": null})));
    let verifier = JwtVerifier::builder()
        .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::OAuth))
        .build()
        .unwrap();
    let result = verifier.verify(&server.token().sign()).await;
    assert!(
        matches!(result, Err(VerifyError::Misconfigured { .. })),
        "{result:?}"
    );
    assert_eq!(server.request_count(Endpoint::Jwks), 0);
}

#[tokio::test]
async fn unreachable_metadata_is_unavailable() {
    let server = start().await;
    server.fail(Endpoint::OAuthMetadata, Fault::Status(503));
    let verifier = JwtVerifier::builder()
        .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::OAuth))
        .build()
        .unwrap();
    let result = verifier.verify(&server.token().sign()).await;
    assert!(
        matches!(result, Err(VerifyError::Unavailable { .. })),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Time claims

#[tokio::test]
async fn expired_not_yet_valid_and_exp_less_tokens_are_rejected() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let expired = server.token().expires_at(unix_now() - 3600).sign();
    assert!(expect_invalid(verifier.verify(&expired).await).contains("expired"));
    let early = server.token().not_before(unix_now() + 600).sign();
    assert!(expect_invalid(verifier.verify(&early).await).contains("not valid yet"));
    let no_exp = server.token().remove_claim("exp").sign();
    assert!(expect_invalid(verifier.verify(&no_exp).await).contains("`exp`"));
    let string_exp = server
        .token()
        .claim("exp", (unix_now() + 600).to_string())
        .sign();
    expect_invalid(verifier.verify(&string_exp).await);
    let bad_nbf = server.token().claim("nbf", "soon").sign();
    expect_invalid(verifier.verify(&bad_nbf).await);
    // nbf within the leeway is fine.
    verifier
        .verify(&server.token().not_before(unix_now() + 30).sign())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_leeway_applies_to_exp_at_its_edges() {
    let server = start().await;
    let default_leeway = verifier_for(&server).build().unwrap();
    default_leeway
        .verify(&server.token().expires_at(unix_now() - 30).sign())
        .await
        .unwrap();
    expect_invalid(
        default_leeway
            .verify(&server.token().expires_at(unix_now() - 120).sign())
            .await,
    );

    let no_leeway = verifier_for(&server)
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    expect_invalid(
        no_leeway
            .verify(&server.token().expires_at(unix_now() - 1).sign())
            .await,
    );
    no_leeway
        .verify(&server.token().expires_at(unix_now() + 60).sign())
        .await
        .unwrap();
    expect_invalid(
        no_leeway
            .verify(&server.token().not_before(unix_now() + 30).sign())
            .await,
    );
}

// ---------------------------------------------------------------------------------------------
// Claims and the strict RFC 9068 profile

#[tokio::test]
async fn sub_must_be_a_non_empty_string() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    for token in [
        server.token().remove_claim("sub").sign(),
        server.token().subject("").sign(),
        server.token().claim("sub", 42).sign(),
    ] {
        assert!(expect_invalid(verifier.verify(&token).await).contains("`sub`"));
    }
}

#[tokio::test]
async fn strict_mode_accepts_only_at_jwt_types() {
    let server = start().await;
    let strict = verifier_for(&server).strict_rfc9068(true).build().unwrap();
    let lax = verifier_for(&server).build().unwrap();
    let token = |typ: Option<&str>| {
        server
            .token()
            .audience("https://api.example.com/mcp")
            .typ(typ)
            .sign()
    };
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT", "at+JWT"] {
        strict
            .verify(&token(Some(typ)))
            .await
            .unwrap_or_else(|e| panic!("{typ}: {e}"));
    }
    for typ in [Some("JWT"), None, Some("dpop+jwt"), Some("id_token+jwt")] {
        let reason = expect_invalid(strict.verify(&token(typ)).await);
        assert!(reason.contains("typ"), "{typ:?}: {reason}");
        // The default (non-strict) mode does not look at typ.
        lax.verify(&token(typ)).await.unwrap();
    }
}

#[tokio::test]
async fn strict_mode_requires_client_id_jti_iat_and_aud() {
    let server = start().await;
    let strict = verifier_for(&server).strict_rfc9068(true).build().unwrap();
    let lax = verifier_for(&server).build().unwrap();
    let base = || server.token().audience("https://api.example.com/mcp");
    strict.verify(&base().sign()).await.unwrap();
    for claim in ["client_id", "jti", "iat", "aud"] {
        let token = base().remove_claim(claim).sign();
        let reason = expect_invalid(strict.verify(&token).await);
        assert!(reason.contains(claim), "{claim}: {reason}");
        lax.verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{claim}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// The JWKS cache

#[tokio::test]
async fn rotated_keys_are_picked_up_with_one_refetch() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    let old = server.token().sign();
    verifier.verify(&old).await.unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 1);

    server.rotate_keys();
    tokio::time::sleep(COOLDOWN).await;
    let new = server.token().sign();
    verifier.verify(&new).await.unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 2);
    verifier
        .verify(&server.token().alg(JwsAlgorithm::Es256).sign())
        .await
        .unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 2);
    // The old key is gone from the refreshed set.
    expect_invalid(verifier.verify(&old).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_tokens_with_a_new_kid_cause_one_jwks_request() {
    let server = start().await;
    let verifier = verifier_for(&server).build().unwrap();
    verifier.verify(&server.token().sign()).await.unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 1);

    server.rotate_keys();
    tokio::time::sleep(COOLDOWN).await;
    let token: Arc<str> = server.token().sign().into();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let verifier = verifier.clone();
            let token = Arc::clone(&token);
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.request_count(Endpoint::Jwks), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_requests_share_one_jwks_fetch() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Delay(Duration::from_millis(100)));
    let verifier = verifier_for(&server).build().unwrap();
    let token: Arc<str> = server.token().sign().into();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let verifier = verifier.clone();
            let token = Arc::clone(&token);
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.request_count(Endpoint::Jwks), 1);
}

#[tokio::test]
async fn a_caller_cancelled_mid_fetch_neither_aborts_nor_repeats_the_fetch() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Delay(Duration::from_millis(300)));
    let verifier = verifier_for(&server).build().unwrap();
    let token = server.token().sign();
    // The client of the first request goes away while the JWKS is being fetched.
    let cancelled = tokio::time::timeout(Duration::from_millis(50), verifier.verify(&token)).await;
    assert!(
        cancelled.is_err(),
        "the verification should still be waiting for the JWKS"
    );
    // The next request gets the keys of that same fetch.
    verifier.verify(&token).await.unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 1);
}

#[tokio::test]
async fn random_unknown_kids_cause_at_most_one_fetch_per_cooldown() {
    let server = start().await;
    let cooldown = Duration::from_millis(400);
    let verifier = verifier_for(&server)
        .jwks_refresh_cooldown(cooldown)
        .build()
        .unwrap();
    let random_kids: Vec<String> = (0..100)
        .map(|i| server.token().kid(format!("random-{i}")).sign())
        .collect();
    verifier.verify(&server.token().sign()).await.unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 1);

    for token in &random_kids[..50] {
        expect_invalid(verifier.verify(token).await);
    }
    // Within the cooldown of the first fetch: no request at all.
    assert_eq!(server.request_count(Endpoint::Jwks), 1);

    tokio::time::sleep(cooldown).await;
    for token in &random_kids[50..] {
        expect_invalid(verifier.verify(token).await);
    }
    assert_eq!(server.request_count(Endpoint::Jwks), 2);
    // Known keys keep working throughout.
    verifier.verify(&server.token().sign()).await.unwrap();
}

#[tokio::test]
async fn stale_keys_keep_working_while_the_jwks_endpoint_fails() {
    let server = start().await;
    let max_age = Duration::from_millis(100);
    let cooldown = Duration::from_millis(200);
    let verifier = verifier_for(&server)
        .jwks_max_age(max_age)
        .jwks_refresh_cooldown(cooldown)
        .build()
        .unwrap();
    let stale_use: Vec<String> = (0..10)
        .map(|_| server.token().alg(JwsAlgorithm::EdDsa).sign())
        .collect();
    verifier.verify(&server.token().sign()).await.unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 1);

    server.fail(Endpoint::Jwks, Fault::Status(500));
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    // Past max age: the cached key still verifies while a refresh is tried in the background.
    verifier.verify(&server.token().sign()).await.unwrap();
    wait_for_requests(&server, Endpoint::Jwks, 2).await;
    // The refresh failed; the stale keys keep working, without a new attempt per request.
    for token in &stale_use {
        verifier.verify(token).await.unwrap();
    }
    assert_eq!(server.request_count(Endpoint::Jwks), 2);

    // Once the endpoint heals, the next refresh (here: for a rotated kid) succeeds.
    server.heal(Endpoint::Jwks);
    server.rotate_keys();
    tokio::time::sleep(cooldown).await;
    let rotated = server.token().sign();
    verifier.verify(&rotated).await.unwrap();
    assert_eq!(server.request_count(Endpoint::Jwks), 3);
}

#[tokio::test]
async fn a_fresh_key_set_is_not_refetched_before_max_age() {
    let server = start().await;
    let verifier = verifier_for(&server)
        .jwks_max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    for _ in 0..20 {
        verifier.verify(&server.token().sign()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.request_count(Endpoint::Jwks), 1);
}

#[tokio::test]
async fn a_jwks_endpoint_that_is_down_with_no_cached_keys_is_unavailable() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Status(503));
    let verifier = verifier_for(&server).build().unwrap();
    let token = server.token().sign();
    let result = verifier.verify(&token).await;
    assert!(
        matches!(result, Err(VerifyError::Unavailable { .. })),
        "{result:?}"
    );
    // Within the cooldown the failure is remembered: still 503, no new request.
    let result = verifier.verify(&token).await;
    assert!(
        matches!(result, Err(VerifyError::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(server.request_count(Endpoint::Jwks), 1);

    // After the cooldown, a healed endpoint is used again.
    server.heal(Endpoint::Jwks);
    tokio::time::sleep(COOLDOWN).await;
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn a_garbage_or_oversized_jwks_is_unavailable_not_a_panic() {
    let server = start().await;
    let small = HttpClient::builder()
        .max_response_bytes(16 * 1024)
        .build()
        .unwrap();
    let faults = [
        Fault::Body {
            status: 200,
            content_type: "application/json".into(),
            body: "{\"keys\": [ {\"kty\": ".into(),
        },
        Fault::Body {
            status: 200,
            content_type: "text/html".into(),
            body: "<html>login</html>".into(),
        },
        Fault::Body {
            status: 200,
            content_type: "application/json".into(),
            body: "{\"keys\": \"none\"}".into(),
        },
        Fault::Oversized(64 * 1024),
    ];
    for fault in faults {
        server.fail(Endpoint::Jwks, fault.clone());
        let verifier = verifier_for(&server)
            .http_client(small.clone())
            .build()
            .unwrap();
        let result = verifier.verify(&server.token().sign()).await;
        assert!(
            matches!(result, Err(VerifyError::Unavailable { .. })),
            "{fault:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_jwks_without_a_matching_key_is_an_invalid_token_not_an_outage() {
    let server = start().await;
    server.set_jwks_override(Some(json!({"keys": []})));
    let verifier = verifier_for(&server).build().unwrap();
    expect_invalid(verifier.verify(&server.token().sign()).await);
}

#[tokio::test]
async fn the_verifier_is_clone_send_sync_and_usable_as_a_trait_object() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<JwtVerifier>();
    let server = start().await;
    let verifier: Arc<dyn TokenVerifier> = Arc::new(verifier_for(&server).build().unwrap());
    verifier.verify(&server.token().sign()).await.unwrap();
}
