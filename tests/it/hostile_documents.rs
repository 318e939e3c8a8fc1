//! Hostile documents from the network, one test per (document, misbehaviour): the
//! authorization server's metadata, its JWKS, and its userinfo and introspection answers,
//! when they are not JSON, JSON of the wrong shape, larger than the size cap, trickled
//! slowly, or a redirect to another origin.
//!
//! Each time the request gets a clear refusal (503 when the authorization server is at fault
//! and a retry may help, 500 when its metadata cannot be used at all), within the client's
//! time budget, having read at most the size cap, and the protected handler never runs.
#![cfg(feature = "test-util")]

use crate::support::hostile as hostile_support;

use std::time::Duration;

use bytes::Bytes;
use hostile_support::App;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::JwsAlgorithm;
use mcp_auth::verify::{IntrospectionVerifier, JwtVerifier, UserinfoVerifier};
use mcp_auth::{AuthServer, AuthServerType, HttpClient, McpAuth, ProtectedResource};
use serde_json::json;

/// How long discovery waits after a failed fetch before trying again, in these tests.
const RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// The client budget of these tests: every fetch ends within it.
const TIMEOUT: Duration = Duration::from_secs(1);
/// The size cap of these tests.
const CAP: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Jwt,
    Userinfo,
    Introspection,
}

struct Fixture {
    kind: Kind,
    server: TestAuthServer,
    other: TestAuthServer,
    app: App,
}

impl Fixture {
    async fn start(kind: Kind) -> Fixture {
        let server = TestAuthServer::start().await.expect("test AS");
        let other = TestAuthServer::start().await.expect("another origin");
        let http = HttpClient::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .max_response_bytes(CAP)
            .build()
            .expect("client");
        let issuer = server.issuer().to_owned();
        let (client_id, secret) = (
            server.client_id().to_owned(),
            server.client_secret().to_owned(),
        );
        let app = App::serve(|resource| {
            let as_server = AuthServer::discover(issuer, AuthServerType::Oidc)
                .with_http_client(http)
                .with_retry_interval(RETRY);
            let auth = McpAuth::builder()
                .protected_resource(
                    ProtectedResource::new(resource).authorization_server(as_server.clone()),
                )
                .build()
                .expect("configuration");
            let guard = match kind {
                Kind::Jwt => auth.bearer_auth(
                    resource,
                    JwtVerifier::builder()
                        .authorization_server(as_server)
                        .build()
                        .expect("verifier"),
                ),
                Kind::Userinfo => auth
                    .bearer_auth(resource, UserinfoVerifier::new(as_server))
                    .skip_audience_check(),
                Kind::Introspection => auth.bearer_auth(
                    resource,
                    IntrospectionVerifier::builder(as_server)
                        .client_secret_basic(client_id, secret)
                        .build()
                        .expect("verifier"),
                ),
            }
            .required_scopes(["read"])
            .show_error_details(true)
            .build()
            .expect("guard");
            (auth, guard)
        })
        .await;
        Fixture {
            kind,
            server,
            other,
            app,
        }
    }

    /// A token the authorization server vouches for: a signed JWT, or an opaque token that
    /// userinfo and introspection know (with `scope` and `aud` in their answers).
    fn token(&self) -> String {
        match self.kind {
            Kind::Jwt => self
                .server
                .token()
                .audience(self.app.resource.as_str())
                .scope("read")
                .sign(),
            Kind::Userinfo | Kind::Introspection => self
                .server
                .issue_opaque_token(json!({"scope": "read", "aud": self.app.resource})),
        }
    }

    /// Arms `fault` on `endpoint`, sends a valid token, and expects `status` with a reason
    /// containing `reason`; then heals and expects the same token to pass.
    async fn expect(&self, endpoint: Endpoint, fault: Fault, status: u16, reason: &str) {
        let token = self.token();
        self.server.fail(endpoint, fault);
        let outcome = self.app.post(&token).await;
        let cause = self.app.expect_server_side(&outcome, status);
        assert!(
            cause.contains(reason),
            "{endpoint}: the reason {cause:?} does not mention {reason:?}"
        );
        self.server.heal(endpoint);
        self.app
            .handler_calls
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// The same token passes again once the failed fetch has been retried (discovery backs
    /// off for [`RETRY`] after a failure).
    async fn expect_recovery(&self) {
        let token = self.token();
        let mut outcome = self.app.post(&token).await;
        for _ in 0..40 {
            if outcome.status == 200 {
                break;
            }
            tokio::time::sleep(RETRY / 2).await;
            outcome = self.app.post(&token).await;
        }
        assert_eq!(outcome.status, 200, "no recovery: {outcome:?}");
    }
}

fn html() -> Fault {
    Fault::Body {
        status: 200,
        content_type: "text/html".into(),
        body: Bytes::from_static(b"<html><body>Welcome to the proxy</body></html>"),
    }
}

fn json_of_the_wrong_shape(body: &'static str) -> Fault {
    Fault::Body {
        status: 200,
        content_type: "application/json".into(),
        body: Bytes::from_static(body.as_bytes()),
    }
}

fn oversized() -> Fault {
    // 64 MiB offered, read until the 64 KiB cap.
    Fault::Oversized(64 * 1024 * 1024)
}

fn trickle() -> Fault {
    // One byte every 50 ms: a 10 KiB document would take over eight minutes.
    Fault::Trickle {
        chunk: 1,
        interval: Duration::from_millis(50),
        total: 10 * 1024,
    }
}

impl Fixture {
    fn redirect_elsewhere(&self, endpoint: Endpoint) -> Fault {
        Fault::Redirect {
            status: 302,
            location: self.other.endpoint_url(endpoint),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization-server metadata (discovered on first use)

#[tokio::test]
async fn metadata_that_is_not_json_gets_503_and_is_retried() {
    let f = Fixture::start(Kind::Jwt).await;
    f.expect(Endpoint::OidcMetadata, html(), 503, "not JSON")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn metadata_json_of_the_wrong_shape_gets_503_and_is_retried() {
    let f = Fixture::start(Kind::Jwt).await;
    let shape = json_of_the_wrong_shape(r#"[{"issuer": "x"}]"#);
    f.expect(Endpoint::OidcMetadata, shape, 503, "not a JSON object")
        .await;
    let shape = json_of_the_wrong_shape(r#"{"issuer": 42, "jwks_uri": ["x"]}"#);
    f.expect(Endpoint::OidcMetadata, shape, 503, "invalid")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn metadata_larger_than_the_cap_gets_503() {
    let f = Fixture::start(Kind::Jwt).await;
    f.expect(Endpoint::OidcMetadata, oversized(), 503, "larger than")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn metadata_trickled_slowly_gets_503_within_the_timeout() {
    let f = Fixture::start(Kind::Jwt).await;
    f.expect(Endpoint::OidcMetadata, trickle(), 503, "timed out")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn metadata_redirected_to_another_origin_gets_503_and_is_not_followed() {
    let f = Fixture::start(Kind::Jwt).await;
    let fault = f.redirect_elsewhere(Endpoint::OidcMetadata);
    f.expect(Endpoint::OidcMetadata, fault, 503, "redirected")
        .await;
    assert_eq!(f.other.request_count(Endpoint::OidcMetadata), 0);
    f.expect_recovery().await;
}

// ---------------------------------------------------------------------------------------------
// JWKS

/// After a failed JWKS fetch the next one waits for the refresh cooldown (30 s by default),
/// so these tests check the refusal and leave recovery to `as_faults.rs`.
#[tokio::test]
async fn a_jwks_that_is_not_json_gets_503() {
    let f = Fixture::start(Kind::Jwt).await;
    f.expect(
        Endpoint::Jwks,
        html(),
        503,
        "not the JSON document expected",
    )
    .await;
}

#[tokio::test]
async fn a_jwks_of_the_wrong_shape_gets_503() {
    let f = Fixture::start(Kind::Jwt).await;
    let shape = json_of_the_wrong_shape(r#"{"keys": {"kty": "RSA"}}"#);
    f.expect(Endpoint::Jwks, shape, 503, "not the JSON document expected")
        .await;
}

#[tokio::test]
async fn a_jwks_with_only_unusable_keys_gets_401_not_a_key_from_it() {
    let f = Fixture::start(Kind::Jwt).await;
    let token = f.token();
    f.server.fail(
        Endpoint::Jwks,
        json_of_the_wrong_shape(
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "n": "AQAB", "e": "AQAB"}, 7, null]}"#,
        ),
    );
    let outcome = f.app.post(&token).await;
    f.app.expect_refusal(&outcome, 401, Some("invalid_token"));
}

/// A JWK `alg` that is not ASCII once made the algorithm-name parser slice a string inside a
/// character: a panic in the JWKS refresh, which then installed nothing, so every request
/// fetched the JWKS again (found by auditing string slicing for the no-panic lints).
#[tokio::test]
async fn a_jwk_with_a_non_ascii_alg_is_skipped_without_a_panic_or_a_refetch_storm() {
    let f = Fixture::start(Kind::Jwt).await;
    let mut jwks = f.server.public_jwks();
    let keys = jwks["keys"].as_array_mut().expect("keys");
    for (i, alg) in ["\u{20ac}S256", "a\u{20ac}", "H\u{1F600}", "\u{e9}\u{e9}"]
        .iter()
        .enumerate()
    {
        let mut bad = f.server.jwk(JwsAlgorithm::Es256);
        bad["kid"] = json!(format!("bad-{i}"));
        bad["alg"] = json!(alg);
        keys.insert(0, bad);
    }
    f.server.set_jwks_override(Some(jwks));
    for _ in 0..5 {
        let outcome = f.app.post(&f.token()).await;
        assert_eq!(outcome.status, 200, "{outcome:?}");
    }
    assert_eq!(f.server.request_count(Endpoint::Jwks), 1);
}

#[tokio::test]
async fn a_jwks_larger_than_the_cap_gets_503() {
    let f = Fixture::start(Kind::Jwt).await;
    f.expect(Endpoint::Jwks, oversized(), 503, "larger than")
        .await;
}

#[tokio::test]
async fn a_jwks_trickled_slowly_gets_503_within_the_timeout() {
    let f = Fixture::start(Kind::Jwt).await;
    f.expect(Endpoint::Jwks, trickle(), 503, "timed out").await;
}

#[tokio::test]
async fn a_jwks_redirected_to_another_origin_gets_503_and_is_not_followed() {
    let f = Fixture::start(Kind::Jwt).await;
    let fault = f.redirect_elsewhere(Endpoint::Jwks);
    f.expect(Endpoint::Jwks, fault, 503, "redirected").await;
    assert_eq!(f.other.request_count(Endpoint::Jwks), 0);
}

// ---------------------------------------------------------------------------------------------
// Userinfo

#[tokio::test]
async fn a_userinfo_answer_that_is_not_json_gets_503_and_is_retried() {
    let f = Fixture::start(Kind::Userinfo).await;
    f.expect(
        Endpoint::Userinfo,
        html(),
        503,
        "not the JSON document expected",
    )
    .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn a_userinfo_answer_of_the_wrong_shape_gets_503() {
    let f = Fixture::start(Kind::Userinfo).await;
    let shape = json_of_the_wrong_shape(r#"[{"sub": "alice"}]"#);
    f.expect(Endpoint::Userinfo, shape, 503, "not an object")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn a_userinfo_answer_larger_than_the_cap_gets_503() {
    let f = Fixture::start(Kind::Userinfo).await;
    f.expect(Endpoint::Userinfo, oversized(), 503, "larger than")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn a_userinfo_answer_trickled_slowly_gets_503_within_the_timeout() {
    let f = Fixture::start(Kind::Userinfo).await;
    f.expect(Endpoint::Userinfo, trickle(), 503, "timed out")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn a_userinfo_redirect_to_another_origin_gets_503_and_is_not_followed() {
    let f = Fixture::start(Kind::Userinfo).await;
    let fault = f.redirect_elsewhere(Endpoint::Userinfo);
    f.expect(Endpoint::Userinfo, fault, 503, "redirected").await;
    assert_eq!(f.other.request_count(Endpoint::Userinfo), 0);
    f.expect_recovery().await;
}

// ---------------------------------------------------------------------------------------------
// Introspection

#[tokio::test]
async fn an_introspection_answer_that_is_not_json_gets_503_and_is_retried() {
    let f = Fixture::start(Kind::Introspection).await;
    f.expect(
        Endpoint::Introspection,
        html(),
        503,
        "not the JSON document expected",
    )
    .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn an_introspection_answer_of_the_wrong_shape_gets_503() {
    let f = Fixture::start(Kind::Introspection).await;
    let shape = json_of_the_wrong_shape(r#"[true]"#);
    f.expect(Endpoint::Introspection, shape, 503, "not an object")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn an_introspection_answer_with_active_not_a_boolean_gets_401() {
    let f = Fixture::start(Kind::Introspection).await;
    let token = f.token();
    f.server.fail(
        Endpoint::Introspection,
        json_of_the_wrong_shape(r#"{"active": "true", "sub": "alice"}"#),
    );
    let outcome = f.app.post(&token).await;
    f.app.expect_invalid_token(&outcome);
}

#[tokio::test]
async fn an_introspection_answer_larger_than_the_cap_gets_503() {
    let f = Fixture::start(Kind::Introspection).await;
    f.expect(Endpoint::Introspection, oversized(), 503, "larger than")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn an_introspection_answer_trickled_slowly_gets_503_within_the_timeout() {
    let f = Fixture::start(Kind::Introspection).await;
    f.expect(Endpoint::Introspection, trickle(), 503, "timed out")
        .await;
    f.expect_recovery().await;
}

#[tokio::test]
async fn an_introspection_redirect_to_another_origin_gets_503_and_is_not_followed() {
    let f = Fixture::start(Kind::Introspection).await;
    let fault = f.redirect_elsewhere(Endpoint::Introspection);
    f.expect(Endpoint::Introspection, fault, 503, "redirected")
        .await;
    assert_eq!(f.other.request_count(Endpoint::Introspection), 0);
    f.expect_recovery().await;
}
