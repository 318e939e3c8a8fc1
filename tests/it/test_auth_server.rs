#![cfg(feature = "test-util")]
//! The test authorization server over real loopback HTTP.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_auth::testing::{Endpoint, Fault, SampleUser, TestAuthServer};
use mcp_auth::verify::JwsAlgorithm;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::{Value, json};

const RESOURCE: &str = "http://localhost:3001/mcp";
const REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

async fn start() -> TestAuthServer {
    TestAuthServer::start().await.expect("test server starts")
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request succeeds");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body arrives");
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(url: &str) -> Answer {
    answer(client().get(url)).await
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> Answer {
    answer(client().post(url).form(form)).await
}

async fn introspect(server: &TestAuthServer, token: &str) -> Value {
    let request = client()
        .post(server.introspection_url())
        .basic_auth(server.client_id(), Some(server.client_secret()))
        .form(&[("token", token)]);
    let reply = answer(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()
}

/// Finds the token's key in the served JWKS and verifies it with jsonwebtoken.
async fn verify_with_served_jwks(server: &TestAuthServer, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header decodes");
    let kid = header.kid.clone().expect("token has a kid");
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&get(&server.jwks_uri()).await.body).expect("JWKS parses");
    let jwk: &Jwk = jwks.find(&kid).expect("kid is published");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[server.issuer()]);
    let key = DecodingKey::from_jwk(jwk).expect("JWK converts");
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("token verifies")
        .claims
}

fn pkce_pair() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode([7u8; 48]);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

fn query_value(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(location).expect("Location is absolute");
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[test]
fn handles_and_token_builders_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<TestAuthServer>();
    assert_send_sync::<mcp_auth::testing::TokenBuilder>();
    assert_send_sync::<mcp_auth::testing::TestServerError>();
}

// ---------------------------------------------------------------- metadata and JWKS

#[tokio::test]
async fn metadata_is_served_at_oauth_and_oidc_urls_for_a_root_issuer() {
    let server = start().await;
    assert_eq!(server.issuer(), server.base_url());
    assert!(server.issuer().starts_with("http://127.0.0.1:"));
    assert_eq!(
        server.oauth_metadata_url(),
        format!(
            "{}/.well-known/oauth-authorization-server",
            server.base_url()
        )
    );
    assert_eq!(
        server.oidc_metadata_url(),
        format!("{}/.well-known/openid-configuration", server.issuer())
    );
    for url in [server.oauth_metadata_url(), server.oidc_metadata_url()] {
        let reply = get(&url).await;
        assert_eq!(reply.status, StatusCode::OK, "{url}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.header("access-control-allow-origin"), "*");
        let metadata = reply.json();
        assert_eq!(metadata, server.metadata());
        assert_eq!(metadata["issuer"], server.issuer());
        assert_eq!(metadata["jwks_uri"], server.jwks_uri());
        assert_eq!(metadata["response_types_supported"], json!(["code"]));
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
        assert_eq!(
            metadata["introspection_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "client_secret_post"])
        );
        assert_eq!(
            metadata["scopes_supported"],
            json!(["openid", "profile", "email", "read", "write"])
        );
        for endpoint in [
            "authorization_endpoint",
            "token_endpoint",
            "registration_endpoint",
            "userinfo_endpoint",
            "introspection_endpoint",
            "revocation_endpoint",
        ] {
            let url = metadata[endpoint].as_str().expect("endpoint advertised");
            assert!(url.starts_with(server.issuer()), "{endpoint}: {url}");
        }
    }
    assert_eq!(server.request_count(Endpoint::OAuthMetadata), 1);
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 1);
}

#[tokio::test]
async fn issuer_path_moves_metadata_to_inserted_and_appended_urls() {
    let server = TestAuthServer::builder()
        .issuer_path("/oidc")
        .start()
        .await
        .expect("starts");
    assert_eq!(server.issuer(), format!("{}/oidc", server.base_url()));
    assert_eq!(
        server.oauth_metadata_url(),
        server.url("/.well-known/oauth-authorization-server/oidc")
    );
    assert_eq!(
        server.oidc_metadata_url(),
        server.url("/oidc/.well-known/openid-configuration")
    );
    for path in [
        "/.well-known/oauth-authorization-server/oidc",
        "/oidc/.well-known/openid-configuration",
        "/.well-known/openid-configuration/oidc",
    ] {
        let reply = get(&server.url(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.json()["issuer"], server.issuer(), "{path}");
    }
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 2);
    // Root-level documents do not exist for a path issuer.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        assert_eq!(
            get(&server.url(path)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert!(
        server
            .jwks_uri()
            .starts_with(&format!("{}/", server.issuer()))
    );
    assert_eq!(get(&server.jwks_uri()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn jwks_lists_one_public_key_per_default_alg_with_kid_alg_and_use() {
    let server = start().await;
    let reply = get(&server.jwks_uri()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), "*");
    let jwks = reply.json();
    assert_eq!(jwks, server.public_jwks());
    let keys = jwks["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 3);
    let expected = [("RS256", "RSA"), ("ES256", "EC"), ("EdDSA", "OKP")];
    for (key, (alg, kty)) in keys.iter().zip(expected) {
        assert_eq!(key["alg"], alg);
        assert_eq!(key["kty"], kty);
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{alg} JWK leaks {private}");
        }
    }
    assert!(keys[0]["n"].is_string() && keys[0]["e"] == "AQAB");
    assert_eq!(keys[1]["crv"], "P-256");
    assert!(keys[1]["x"].is_string() && keys[1]["y"].is_string());
    assert_eq!(keys[2]["crv"], "Ed25519");
    assert!(keys[2]["x"].is_string() && keys[2].get("y").is_none());
}

#[tokio::test]
async fn minted_tokens_verify_against_the_served_jwks_for_each_default_alg() {
    let server = start().await;
    for alg in [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let token = server
            .token()
            .alg(alg)
            .audience(RESOURCE)
            .scope("read write")
            .sign();
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid, Some(server.kid(alg)));
        let claims = verify_with_served_jwks(&server, &token, RESOURCE).await;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["scope"], "read write");
        assert_eq!(claims["client_id"], "test-client");
        assert!(claims["jti"].is_string());
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 3600);
    }
}

#[tokio::test]
async fn extra_algorithms_verify_when_published() {
    let server = TestAuthServer::builder()
        .published_algs(JwsAlgorithm::ALL)
        .start()
        .await
        .expect("starts");
    let jwks = server.public_jwks();
    assert_eq!(
        jwks["keys"].as_array().map(Vec::len),
        Some(JwsAlgorithm::ALL.len())
    );
    for alg in JwsAlgorithm::ALL {
        let token = server.token().alg(alg).audience(RESOURCE).sign();
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(format!("{:?}", header.alg), alg.to_string());
        verify_with_served_jwks(&server, &token, RESOURCE).await;
    }
}

#[tokio::test]
async fn rotate_keys_publishes_only_new_kids() {
    let server = start().await;
    let old_token = server.token().audience(RESOURCE).sign();
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().into())
            .collect()
    };
    let before = kids(server.public_jwks());
    server.rotate_keys();
    let after = kids(get(&server.jwks_uri()).await.json());
    assert_eq!(after.len(), 3);
    assert!(
        after.iter().all(|kid| !before.contains(kid)),
        "{before:?} vs {after:?}"
    );
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    assert!(!after.contains(&old_kid));
    let new_token = server.token().audience(RESOURCE).sign();
    verify_with_served_jwks(&server, &new_token, RESOURCE).await;
}

#[tokio::test]
async fn token_builder_makes_the_broken_tokens_verifiers_must_reject() {
    let server = start().await;
    let rs256_jwk: Jwk = serde_json::from_value(server.jwk(JwsAlgorithm::Rs256)).unwrap();
    let real_key = DecodingKey::from_jwk(&rs256_jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[RESOURCE]);

    let unsigned = server.token().audience(RESOURCE).unsigned();
    assert!(unsigned.ends_with('.'));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(unsigned.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "none");

    let pem = server.rsa_public_key_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let confused = server
        .token()
        .audience(RESOURCE)
        .sign_hs256_with(pem.as_bytes());
    let confused_header = jsonwebtoken::decode_header(&confused).unwrap();
    assert_eq!(confused_header.alg, Algorithm::HS256);
    assert_eq!(confused_header.kid, Some(server.kid(JwsAlgorithm::Rs256)));
    let mut hs_validation = Validation::new(Algorithm::HS256);
    hs_validation.set_audience(&[RESOURCE]);
    let hmac_key = DecodingKey::from_secret(pem.as_bytes());
    assert!(jsonwebtoken::decode::<Value>(&confused, &hmac_key, &hs_validation).is_ok());
    assert!(jsonwebtoken::decode::<Value>(&confused, &real_key, &validation).is_err());
    assert!(!server.rsa_public_key_der().is_empty());

    let forged = server.token().audience(RESOURCE).sign_with_unknown_key();
    assert_eq!(
        jsonwebtoken::decode_header(&forged).unwrap().kid,
        Some(server.kid(JwsAlgorithm::Rs256))
    );
    assert!(jsonwebtoken::decode::<Value>(&forged, &real_key, &validation).is_err());

    let expired = server.token().audience(RESOURCE).expires_at(1_000).sign();
    assert!(jsonwebtoken::decode::<Value>(&expired, &real_key, &validation).is_err());

    let odd = server
        .token()
        .header("jku", "https://evil.example/jwks")
        .kid("no-such-kid")
        .typ(None)
        .remove_claim("exp")
        .claim("scp", json!(["read"]))
        .sign();
    let header = jsonwebtoken::decode_header(&odd).unwrap();
    assert_eq!(header.jku.as_deref(), Some("https://evil.example/jwks"));
    assert_eq!(header.kid.as_deref(), Some("no-such-kid"));
    assert_eq!(header.typ, None);
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(&odd)
        .unwrap()
        .claims;
    assert!(claims.get("exp").is_none());
    assert_eq!(claims["scp"], json!(["read"]));
}

// ---------------------------------------------------------------- faults and counters

#[tokio::test]
async fn status_fault_answers_that_status_with_a_json_error() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Status(503));
    for _ in 0..2 {
        let reply = get(&server.jwks_uri()).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.json()["error"], "server_error");
    }
    server.heal(Endpoint::Jwks);
    assert_eq!(get(&server.jwks_uri()).await.status, StatusCode::OK);
    assert_eq!(server.request_count(Endpoint::Jwks), 3);
}

#[tokio::test]
async fn fail_times_faults_only_the_next_n_requests_and_every_request_is_counted() {
    let server = start().await;
    server.fail_times(Endpoint::OAuthMetadata, Fault::Status(500), 2);
    let url = server.oauth_metadata_url();
    let statuses = [
        get(&url).await.status,
        get(&url).await.status,
        get(&url).await.status,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::OK
        ]
    );
    assert_eq!(server.request_count(Endpoint::OAuthMetadata), 3);
    assert_eq!(server.request_count(Endpoint::Jwks), 0);
    assert_eq!(server.requests(Endpoint::OAuthMetadata).len(), 3);
    server.reset_counts();
    assert_eq!(server.request_count(Endpoint::OAuthMetadata), 0);
    assert!(server.requests(Endpoint::OAuthMetadata).is_empty());
}

#[tokio::test]
async fn delay_fault_answers_normally_after_the_delay() {
    let server = start().await;
    server.fail_times(Endpoint::Jwks, Fault::Delay(Duration::from_millis(300)), 1);
    let started = Instant::now();
    let reply = get(&server.jwks_uri()).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), server.public_jwks());
}

#[tokio::test]
async fn body_fault_serves_the_given_bytes_verbatim() {
    let server = start().await;
    let garbage = Bytes::from_static(b"<html>not json{");
    server.fail(
        Endpoint::OidcMetadata,
        Fault::Body {
            status: 200,
            content_type: "text/html".into(),
            body: garbage.clone(),
        },
    );
    let reply = get(&server.oidc_metadata_url()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/html");
    assert_eq!(reply.body, garbage);
}

#[tokio::test]
async fn oversized_fault_streams_valid_json_of_at_least_the_size() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Oversized(3 * 1024 * 1024));
    let reply = get(&server.jwks_uri()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/json");
    assert!(reply.headers.get("content-length").is_none());
    assert!(reply.body.len() >= 3 * 1024 * 1024);
    assert!(reply.json()["padding"].is_string());
}

#[tokio::test]
async fn redirect_fault_answers_with_the_status_and_location() {
    let server = start().await;
    let location = "http://169.254.169.254/latest/meta-data";
    server.fail(
        Endpoint::OAuthMetadata,
        Fault::Redirect {
            status: 307,
            location: location.into(),
        },
    );
    let reply = get(&server.oauth_metadata_url()).await;
    assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(reply.header("location"), location);
}

#[tokio::test]
async fn hang_fault_never_answers_until_the_client_gives_up() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Hang);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = impatient
        .get(server.jwks_uri())
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    server.heal_all();
    assert_eq!(get(&server.jwks_uri()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn trickle_fault_sends_a_json_body_slowly() {
    let server = start().await;
    let fault = Fault::Trickle {
        chunk: 10,
        interval: Duration::from_millis(50),
        total: 50,
    };
    server.fail(Endpoint::Jwks, fault);
    let started = Instant::now();
    let reply = get(&server.jwks_uri()).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(reply.body.len(), 50);
    assert!(reply.json().is_object());
}

#[tokio::test]
async fn shutdown_ends_hanging_requests_and_stops_listening() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Hang);
    let url = server.jwks_uri();
    let pending = tokio::spawn(async move { client().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let jwks_uri = server.jwks_uri();
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(4));
    // The hanging request ends (503 or a closed connection), it does not wait forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .expect("request ended");
    assert!(client().get(jwks_uri).send().await.is_err());
}

#[tokio::test]
async fn dropping_the_last_clone_stops_the_server() {
    let server = start().await;
    let clone = server.clone();
    let url = server.jwks_uri();
    drop(server);
    assert_eq!(
        get(&url).await.status,
        StatusCode::OK,
        "a clone keeps it running"
    );
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        if fresh.get(&url).send().await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "server still answers after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cors_preflight_is_answered_204_and_counted() {
    let server = start().await;
    let reply = answer(client().request(
        reqwest::Method::OPTIONS,
        server.endpoint_url(Endpoint::Token),
    ))
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.header("access-control-allow-origin"), "*");
    assert!(
        reply
            .header("access-control-allow-headers")
            .contains("authorization")
    );
    assert_eq!(server.request_count(Endpoint::Token), 1);
}

#[tokio::test]
async fn overrides_patch_metadata_and_replace_the_jwks() {
    let server = start().await;
    server.set_metadata_override(Some(
        json!({ "issuer": "https://evil.example", "jwks_uri": null }),
    ));
    let metadata = get(&server.oauth_metadata_url()).await.json();
    assert_eq!(metadata["issuer"], "https://evil.example");
    assert!(metadata.get("jwks_uri").is_none());
    assert_eq!(
        metadata["token_endpoint"],
        server.endpoint_url(Endpoint::Token)
    );
    assert_eq!(server.metadata(), metadata);
    server.set_metadata_override(None);
    assert_eq!(
        get(&server.oidc_metadata_url()).await.json()["issuer"],
        server.issuer()
    );

    let replacement = json!({ "keys": [{ "kty": "oct", "kid": "x", "k": "c2VjcmV0" }] });
    server.set_jwks_override(Some(replacement.clone()));
    assert_eq!(get(&server.jwks_uri()).await.json(), replacement);
    assert_eq!(
        server.public_jwks()["keys"].as_array().map(Vec::len),
        Some(3)
    );
    server.set_jwks_override(None);
    assert_eq!(get(&server.jwks_uri()).await.json(), server.public_jwks());
}

// ---------------------------------------------------------------- userinfo, introspection

#[tokio::test]
async fn opaque_token_gets_userinfo_until_revoked() {
    let server = start().await;
    let token = server.issue_opaque_token(json!({ "scope": "read", "tenant": "acme" }));
    let reply = answer(client().get(server.userinfo_url()).bearer_auth(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let claims = reply.json();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["tenant"], "acme");

    server.revoke(&token);
    let reply = answer(client().get(server.userinfo_url()).bearer_auth(&token)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
}

#[tokio::test]
async fn userinfo_rejects_missing_unknown_and_expired_tokens() {
    let server = start().await;
    let missing = get(&server.userinfo_url()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.header("www-authenticate"), "Bearer");

    let expired = server.issue_opaque_token(json!({ "exp": 1_000 }));
    for token in ["not-a-token", expired.as_str()] {
        let reply = answer(client().post(server.userinfo_url()).bearer_auth(token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(
            reply.header("www-authenticate"),
            "Bearer error=\"invalid_token\""
        );
    }
}

#[tokio::test]
async fn custom_sample_user_appears_in_userinfo_and_tokens() {
    let bob = SampleUser::new("bob").name("Bob").claim("role", "admin");
    let server = TestAuthServer::builder()
        .sample_user(bob)
        .start()
        .await
        .expect("starts");
    let token = server.issue_opaque_token(Value::Null);
    let claims = answer(client().get(server.userinfo_url()).bearer_auth(&token))
        .await
        .json();
    assert_eq!(
        claims,
        json!({ "sub": "bob", "name": "Bob", "role": "admin" })
    );
    let jwt = server.token().audience(RESOURCE).sign();
    assert_eq!(
        verify_with_served_jwks(&server, &jwt, RESOURCE).await["sub"],
        "bob"
    );
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let server = start().await;
    let token = server.issue_opaque_token(Value::Null);
    let url = server.introspection_url();
    let cases = [
        client().post(&url).form(&[("token", token.as_str())]),
        client()
            .post(&url)
            .basic_auth(server.client_id(), Some("wrong"))
            .form(&[("token", token.as_str())]),
        client()
            .post(&url)
            .bearer_auth("anything")
            .form(&[("token", token.as_str())]),
        client().post(&url).form(&[
            ("token", token.as_str()),
            ("client_id", "test-resource-server"),
        ]),
    ];
    for request in cases {
        let reply = answer(request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json()["error"], "invalid_client");
    }
}

#[tokio::test]
async fn introspection_reports_active_tokens_with_their_claims() {
    let server = start().await;
    let opaque = server.issue_opaque_token(json!({ "aud": RESOURCE, "scope": "read" }));
    let body = introspect(&server, &opaque).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], server.issuer());
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["aud"], RESOURCE);
    assert_eq!(body["scope"], "read");
    assert_eq!(body["client_id"], "test-client");
    assert!(body["exp"].is_i64() && body["iat"].is_i64());

    // client_secret_post works too, and the request is recorded for assertions.
    let reply = post_form(
        &server.introspection_url(),
        &[
            ("token", &opaque),
            ("client_id", server.client_id()),
            ("client_secret", server.client_secret()),
        ],
    )
    .await;
    assert_eq!(reply.json()["active"], true);
    let recorded = server.requests(Endpoint::Introspection);
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].method, reqwest::Method::POST);
    assert_eq!(
        recorded[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        recorded[0].basic_auth(),
        Some((
            server.client_id().to_owned(),
            server.client_secret().to_owned()
        ))
    );
    assert_eq!(
        recorded[0].form_value("token").as_deref(),
        Some(opaque.as_str())
    );

    let jwt = server.token().audience(RESOURCE).scope("write").sign();
    let body = introspect(&server, &jwt).await;
    assert_eq!(
        (body["active"].clone(), body["scope"].clone()),
        (json!(true), json!("write"))
    );
}

#[tokio::test]
async fn introspection_reports_inactive_for_unknown_revoked_expired_and_forged_tokens() {
    let server = start().await;
    let revoked = server.issue_opaque_token(Value::Null);
    server.revoke(&revoked);
    let revoked_jwt = server.token().sign();
    server.revoke(&revoked_jwt);
    let expired = server.issue_opaque_token(json!({ "exp": 1_000 }));
    let expired_jwt = server.token().expires_at(1_000).sign();
    let forged = server.token().unsigned();
    for token in [
        "unknown",
        &revoked,
        &revoked_jwt,
        &expired,
        &expired_jwt,
        &forged,
    ] {
        assert_eq!(
            introspect(&server, token).await,
            json!({ "active": false }),
            "{token}"
        );
    }
}

#[tokio::test]
async fn basic_client_credentials_are_form_urlencoded_before_base64() {
    let server = TestAuthServer::builder()
        .client("rs:1 a", "s&e:c=r+t%")
        .start()
        .await
        .expect("starts");
    let token = server.issue_opaque_token(Value::Null);
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode("rs:1 a"), encode("s&e:c=r+t%"));
    let request = client()
        .post(server.introspection_url())
        .header(
            "authorization",
            format!("Basic {}", STANDARD.encode(credentials)),
        )
        .form(&[("token", token.as_str())]);
    assert_eq!(answer(request).await.json()["active"], true);
}

#[tokio::test]
async fn revocation_endpoint_deactivates_a_token() {
    let server = start().await;
    let token = server.issue_opaque_token(Value::Null);
    let revoke = |token: &str| {
        client()
            .post(server.endpoint_url(Endpoint::Revocation))
            .basic_auth(server.client_id(), Some(server.client_secret()))
            .form(&[("token", token.to_owned())])
    };
    assert_eq!(answer(revoke(&token)).await.status, StatusCode::OK);
    assert_eq!(answer(revoke("unknown")).await.status, StatusCode::OK);
    assert_eq!(introspect(&server, &token).await["active"], false);
    let anonymous = post_form(
        &server.endpoint_url(Endpoint::Revocation),
        &[("token", &token)],
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------- development flow

struct Registered {
    client_id: String,
}

async fn register_public_client(server: &TestAuthServer) -> Registered {
    let metadata = json!({
        "client_name": "test MCP client",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    });
    let reply = answer(
        client()
            .post(server.endpoint_url(Endpoint::Registration))
            .header("content-type", "application/json")
            .body(metadata.to_string()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let body = reply.json();
    assert!(body.get("client_secret").is_none());
    assert_eq!(body["redirect_uris"], json!([REDIRECT_URI]));
    assert_eq!(body["client_name"], "test MCP client");
    Registered {
        client_id: body["client_id"].as_str().expect("client_id").to_owned(),
    }
}

fn authorize_url(server: &TestAuthServer, params: &[(&str, &str)]) -> url::Url {
    let mut url = url::Url::parse(&server.endpoint_url(Endpoint::Authorize)).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url
}

/// Runs the authorization request; returns the `Location` of the 302.
async fn authorize(server: &TestAuthServer, params: &[(&str, &str)]) -> String {
    let reply = answer(client().get(authorize_url(server, params))).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{:?}", reply.body);
    reply.header(LOCATION.as_str()).to_owned()
}

async fn code_for(
    server: &TestAuthServer,
    client_id: &str,
    challenge: &str,
    resource: Option<&str>,
) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("scope", "read write"),
        ("state", "xyz"),
    ];
    if let Some(resource) = resource {
        params.push(("resource", resource));
    }
    let location = authorize(server, &params).await;
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(query_value(&location, "state").as_deref(), Some("xyz"));
    assert_eq!(
        query_value(&location, "iss").as_deref(),
        Some(server.issuer())
    );
    query_value(&location, "code").expect("code in redirect")
}

async fn exchange(server: &TestAuthServer, client_id: &str, code: &str, verifier: &str) -> Answer {
    post_form(
        &server.endpoint_url(Endpoint::Token),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn dev_flow_issues_a_jwt_for_the_requested_resource() {
    let server = start().await;
    let registered = register_public_client(&server).await;
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&server, &registered.client_id, &challenge, Some(RESOURCE)).await;
    let reply = exchange(&server, &registered.client_id, &code, &verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.header("cache-control"), "no-store");
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    assert!(body["refresh_token"].is_string());
    let access_token = body["access_token"].as_str().expect("access_token");
    let header = jsonwebtoken::decode_header(access_token).unwrap();
    assert_eq!(
        (header.alg, header.typ.as_deref()),
        (Algorithm::RS256, Some("at+jwt"))
    );
    let claims = verify_with_served_jwks(&server, access_token, RESOURCE).await;
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["client_id"], registered.client_id.as_str());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(introspect(&server, access_token).await["active"], true);
}

#[tokio::test]
async fn dev_flow_without_resource_issues_an_opaque_token_known_to_userinfo() {
    let server = start().await;
    let registered = register_public_client(&server).await;
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&server, &registered.client_id, &challenge, None).await;
    let body = exchange(&server, &registered.client_id, &code, &verifier)
        .await
        .json();
    let access_token = body["access_token"].as_str().expect("access_token");
    assert_eq!(access_token.split('.').count(), 1, "opaque, not a JWT");
    let reply = answer(
        client()
            .get(server.userinfo_url())
            .bearer_auth(access_token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["sub"], "alice");
}

#[tokio::test]
async fn wrong_code_verifier_gets_400_invalid_grant() {
    let server = start().await;
    let registered = register_public_client(&server).await;
    let (_, challenge) = pkce_pair();
    let code = code_for(&server, &registered.client_id, &challenge, Some(RESOURCE)).await;
    let wrong = URL_SAFE_NO_PAD.encode([9u8; 48]);
    let reply = exchange(&server, &registered.client_id, &code, &wrong).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn reused_authorization_code_gets_400_invalid_grant_and_revokes_its_token() {
    let server = start().await;
    let registered = register_public_client(&server).await;
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&server, &registered.client_id, &challenge, Some(RESOURCE)).await;
    let first = exchange(&server, &registered.client_id, &code, &verifier).await;
    assert_eq!(first.status, StatusCode::OK);
    let access_token = first.json()["access_token"].as_str().unwrap().to_owned();
    let second = exchange(&server, &registered.client_id, &code, &verifier).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.json()["error"], "invalid_grant");
    assert_eq!(introspect(&server, &access_token).await["active"], false);
}

#[tokio::test]
async fn authorize_refuses_unknown_redirects_and_redirects_other_errors() {
    let server = start().await;
    let registered = register_public_client(&server).await;
    let (_, challenge) = pkce_pair();
    let unregistered = answer(client().get(authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", registered.client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )))
    .await;
    assert_eq!(unregistered.status, StatusCode::BAD_REQUEST);
    assert!(unregistered.header("location").is_empty());

    // A loopback redirect may change its port (RFC 8252 §7.3).
    let other_port = authorize(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &registered.client_id),
            ("redirect_uri", "http://127.0.0.1:40000/callback"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert!(other_port.starts_with("http://127.0.0.1:40000/callback?code="));

    let without_pkce = authorize(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &registered.client_id),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(
        query_value(&without_pkce, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_value(&without_pkce, "state").as_deref(), Some("s1"));

    let bad_scope = authorize(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", &registered.client_id),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("scope", "admin"),
        ],
    )
    .await;
    assert_eq!(
        query_value(&bad_scope, "error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn refresh_token_is_single_use_and_keeps_the_audience() {
    let server = start().await;
    let registered = register_public_client(&server).await;
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&server, &registered.client_id, &challenge, Some(RESOURCE)).await;
    let body = exchange(&server, &registered.client_id, &code, &verifier)
        .await
        .json();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let token_url = server.endpoint_url(Endpoint::Token);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", registered.client_id.as_str()),
    ];
    let renewed = post_form(&token_url, &form).await;
    assert_eq!(renewed.status, StatusCode::OK);
    let renewed = renewed.json();
    assert_ne!(
        renewed["refresh_token"].as_str(),
        Some(refresh_token.as_str())
    );
    let claims =
        verify_with_served_jwks(&server, renewed["access_token"].as_str().unwrap(), RESOURCE).await;
    assert_eq!(claims["scope"], "read write");
    let replay = post_form(&token_url, &form).await;
    assert_eq!(
        (replay.status, replay.json()["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
}

#[tokio::test]
async fn client_credentials_grant_needs_the_pre_registered_secret() {
    let server = start().await;
    let url = server.endpoint_url(Endpoint::Token);
    let request = client()
        .post(&url)
        .basic_auth(server.client_id(), Some(server.client_secret()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("resource", RESOURCE),
        ]);
    let reply = answer(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let claims = verify_with_served_jwks(&server, &token, RESOURCE).await;
    assert_eq!(claims["sub"], server.client_id());
    assert!(claims.get("refresh_token").is_none());

    let wrong = answer(
        client()
            .post(&url)
            .basic_auth(server.client_id(), Some("nope"))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.json()["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );

    let unsupported = post_form(
        &url,
        &[("grant_type", "password"), ("client_id", "test-client")],
    )
    .await;
    assert_eq!(unsupported.json()["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn binding_beyond_loopback_warns_loudly_and_loopback_does_not() {
    crate::support::logs::capture();
    let exposed = TestAuthServer::builder()
        .bind(std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
        .start()
        .await
        .unwrap();
    let port = exposed.local_addr().port();
    let logs = crate::support::logs::text();
    let warning = logs
        .lines()
        .find(|line| line.contains(&format!("0.0.0.0:{port}")))
        .unwrap_or_else(|| panic!("no warning for 0.0.0.0:{port} in:\n{logs}"));
    assert!(warning.contains("ERROR"), "{warning}");
    assert!(warning.contains("beyond loopback"), "{warning}");
    assert!(warning.contains("test-secret"), "{warning}");
    exposed.shutdown().await;

    let local = TestAuthServer::start().await.unwrap();
    let port = local.local_addr().port();
    assert!(
        !crate::support::logs::text().contains(&format!(":{port}, beyond loopback")),
        "no warning for a loopback server"
    );
    local.shutdown().await;
}
