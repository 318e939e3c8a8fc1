//! Hostile `Authorization` headers over real HTTP, one test per case. The bytes are written
//! with a raw HTTP/1.1 client where reqwest would refuse them (control bytes, non-ASCII,
//! repeated headers).
//!
//! The rules (`BearerAuth` docs, `BearerAuthError` table): no credentials → bare 401;
//! malformed credentials, several headers, or a header over
//! [`max_header_bytes`](mcp_auth::BearerAuth::max_header_bytes) → 400 `invalid_request`; a
//! well-formed token the verifier refuses → 401 `invalid_token`. Bytes that the HTTP server
//! itself refuses (control characters, heads larger than its buffer) never reach the guard:
//! hyper answers 400 or 431, and the guard's own answer to the same bytes is checked too.
//! Never a 500, never a panic, never the protected handler.
#![cfg(feature = "test-util")]

use crate::support::hostile as hostile_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hostile_support::{App, Outcome, counting};
use http::StatusCode;
use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{
    AuthServer, AuthServerType, BearerAuth, BearerAuthBuilder, McpAuth, ProtectedResource,
};

struct Fixture {
    server: TestAuthServer,
    app: App,
    verifier_calls: Arc<AtomicUsize>,
    guard: BearerAuth,
}

impl Fixture {
    async fn start() -> Fixture {
        Self::start_with(|guard| guard).await
    }

    async fn start_with(tune: impl FnOnce(BearerAuthBuilder) -> BearerAuthBuilder) -> Fixture {
        let server = TestAuthServer::start().await.expect("test AS");
        let verifier_calls = Arc::new(AtomicUsize::new(0));
        let calls = Arc::clone(&verifier_calls);
        let issuer = server.issuer().to_owned();
        let mut kept = None;
        let app = App::serve(|resource| {
            let as_server = AuthServer::discover(issuer, AuthServerType::Oidc);
            let auth = McpAuth::builder()
                .protected_resource(
                    ProtectedResource::new(resource).authorization_server(as_server.clone()),
                )
                .build()
                .expect("configuration");
            let jwt = JwtVerifier::builder()
                .authorization_server(as_server)
                .build()
                .expect("verifier");
            let guard = auth
                .bearer_auth(resource, counting(jwt, calls))
                .required_scopes(["read"])
                .show_error_details(true);
            let guard = tune(guard).build().expect("guard");
            kept = Some(guard.clone());
            (auth, guard)
        })
        .await;
        Fixture {
            server,
            app,
            verifier_calls,
            guard: kept.expect("guard built"),
        }
    }

    fn valid_token(&self) -> String {
        self.server
            .token()
            .audience(self.app.resource.as_str())
            .scope("read")
            .sign()
    }

    fn verifier_calls(&self) -> usize {
        self.verifier_calls.load(Ordering::SeqCst)
    }

    /// The header bytes go straight to the guard, as a framework whose HTTP parser lets them
    /// through would hand them over.
    async fn guard_answer(&self, value: &[u8]) -> (StatusCode, Option<String>) {
        let rejection = self
            .guard
            .authenticate_values([value])
            .await
            .expect_err("refused");
        let error = rejection
            .www_authenticate()
            .map(|v| v.to_str().expect("ASCII").to_owned());
        (rejection.status(), error)
    }

    /// After a hostile request the server still serves a valid token.
    async fn assert_still_serving(&self) {
        let before = self.app.handler_calls();
        let outcome = self.app.post(&self.valid_token()).await;
        assert_eq!(outcome.status, 200, "{outcome:?}");
        assert_eq!(self.app.handler_calls(), before + 1);
    }
}

fn cause_code(outcome: &Outcome) -> String {
    outcome.json()["cause"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_empty_authorization_header_gets_the_bare_401_challenge() {
    let f = Fixture::start().await;
    let outcome = f.app.raw_post(&[b"Authorization: "]).await;
    f.app.expect_refusal(&outcome, 401, None);
    assert_eq!(cause_code(&outcome), "missing_auth_header");
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn a_whitespace_only_authorization_header_gets_the_bare_401_challenge() {
    let f = Fixture::start().await;
    let outcome = f.app.raw_post(&[b"Authorization:  \t  \t "]).await;
    f.app.expect_refusal(&outcome, 401, None);
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn a_64_kib_authorization_header_gets_400_without_reaching_the_verifier() {
    let f = Fixture::start().await;
    let header = format!("Authorization: Bearer {}", "a".repeat(64 * 1024));
    let outcome = f.app.raw_post(&[header.as_bytes()]).await;
    f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
    assert_eq!(cause_code(&outcome), "auth_header_too_long");
    let cause = &outcome.json()["cause"];
    assert_eq!(cause["expected"], 8 * 1024);
    assert_eq!(cause["actual"], 64 * 1024 + "Bearer ".len());
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

/// The length is checked before anything else is looked at: 64 KiB of a foreign scheme or of
/// bytes outside the token alphabet get the same length refusal, not the answer their content
/// would get (bare 401 for `Basic`, 400 format error for the quotes), so the work done on an
/// overlong header does not depend on what it holds.
#[tokio::test]
async fn an_overlong_header_is_refused_by_its_length_before_its_content_is_parsed() {
    let f = Fixture::start().await;
    for filler in ["Basic ", "Bearer \"", "Bearer a", "\u{e9}"] {
        let header = format!("Authorization: {filler}{}", "\"".repeat(64 * 1024));
        let outcome = f.app.raw_post(&[header.as_bytes()]).await;
        f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
        assert_eq!(cause_code(&outcome), "auth_header_too_long", "{filler:?}");
    }
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn the_header_length_limit_is_configurable() {
    let roomy = Fixture::start_with(|guard| guard.max_header_bytes(128 * 1024)).await;
    let header = format!("Authorization: Bearer {}", "a".repeat(64 * 1024));
    let outcome = roomy.app.raw_post(&[header.as_bytes()]).await;
    // Past the header check, the JWT verifier refuses it: not a JWS.
    roomy.app.expect_invalid_token(&outcome);
    assert_eq!(roomy.verifier_calls(), 1);

    let tight = Fixture::start_with(|guard| guard.max_header_bytes(16)).await;
    let outcome = tight
        .app
        .raw_post(&[b"Authorization: Bearer abcdefghijk"])
        .await;
    tight
        .app
        .expect_refusal(&outcome, 400, Some("invalid_request"));
    assert_eq!(cause_code(&outcome), "auth_header_too_long");
    assert_eq!(tight.verifier_calls(), 0);
}

#[tokio::test]
async fn a_header_larger_than_the_http_servers_buffer_gets_431_from_hyper_not_500() {
    let f = Fixture::start().await;
    let header = format!("Authorization: Bearer {}", "a".repeat(1024 * 1024));
    let outcome = f.app.raw_post(&[header.as_bytes()]).await;
    assert_eq!(outcome.status, 431, "{outcome:?}");
    assert_eq!(f.verifier_calls(), 0);
    assert_eq!(f.app.handler_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn non_ascii_bytes_in_the_token_get_400_invalid_request() {
    let f = Fixture::start().await;
    for header in [
        &b"Authorization: Bearer t\xc3\xa9st"[..],
        b"Authorization: Bearer \xff\xfe\xfd",
        b"Authorization: Bearer abc\x80",
    ] {
        let outcome = f.app.raw_post(&[header]).await;
        f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
        assert_eq!(cause_code(&outcome), "invalid_auth_header_format");
    }
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn a_non_ascii_scheme_gets_the_bare_401_challenge() {
    let f = Fixture::start().await;
    let outcome = f.app.raw_post(&[b"Authorization: B\xe9arer abc"]).await;
    f.app.expect_refusal(&outcome, 401, None);
    assert_eq!(cause_code(&outcome), "unsupported_auth_scheme");
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn control_bytes_are_refused_by_hyper_and_would_be_by_the_guard() {
    let f = Fixture::start().await;
    for value in [
        &b"Bearer ab\x00cd"[..],
        b"Bearer ab\x01cd",
        b"Bearer abc\x7f",
        b"Bearer\x0babc",
        b"\x1bBearer abc",
    ] {
        let mut header = b"Authorization: ".to_vec();
        header.extend_from_slice(value);
        let outcome = f.app.raw_post(&[&header]).await;
        // hyper refuses a field value with control characters before any service runs.
        assert_eq!(outcome.status, 400, "{value:?}: {outcome:?}");
        assert_eq!(f.app.handler_calls(), 0);
        // A framework that passed them on would get the guard's refusal: 400 or bare 401.
        let (status, challenge) = f.guard_answer(value).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED,
            "{value:?}: {status}"
        );
        assert!(challenge.is_some(), "{value:?}");
    }
    // Carriage return, line feed and form feed are not spaces: nothing is trimmed but
    // spaces and tabs.
    for value in [&b"Bearer abc\r"[..], b"Bearer abc\n", b"Bearer abc\x0c"] {
        let (status, _) = f.guard_answer(value).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value:?}");
    }
    let (status, challenge) = f.guard_answer(b"\x0cBearer abc").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!challenge.unwrap_or_default().contains("error="));
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn bearer_followed_by_a_tab_gets_400_invalid_request() {
    let f = Fixture::start().await;
    let header = format!("Authorization: Bearer\t{}", f.valid_token());
    let outcome = f.app.raw_post(&[header.as_bytes()]).await;
    f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
    assert_eq!(cause_code(&outcome), "invalid_auth_header_format");
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn repeated_spaces_between_scheme_and_token_are_accepted() {
    let f = Fixture::start().await;
    let header = format!("Authorization:   bEaReR     {}  ", f.valid_token());
    let outcome = f.app.raw_post(&[header.as_bytes()]).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(f.app.handler_calls(), 1);
}

#[tokio::test]
async fn two_authorization_headers_get_400_even_when_both_are_valid() {
    let f = Fixture::start().await;
    let token = f.valid_token();
    let header = format!("Authorization: Bearer {token}");
    let outcome = f
        .app
        .raw_post(&[header.as_bytes(), header.as_bytes()])
        .await;
    f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
    assert_eq!(cause_code(&outcome), "multiple_auth_headers");
    let outcome = f
        .app
        .raw_post(&[header.as_bytes(), b"authorization: Basic dXNlcjpwYXNz"])
        .await;
    f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn a_comma_joined_credentials_list_gets_400_invalid_request() {
    let f = Fixture::start().await;
    let token = f.valid_token();
    for value in [
        format!("Bearer {token}, Bearer {token}"),
        format!("Bearer {token},Basic dXNlcjpwYXNz"),
        format!("Bearer {token} , x=y"),
    ] {
        let header = format!("Authorization: {value}");
        let outcome = f.app.raw_post(&[header.as_bytes()]).await;
        f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
    }
    // A list that starts with another scheme is "no bearer credentials".
    let header = format!("Authorization: Basic dXNlcjpwYXNz, Bearer {token}");
    let outcome = f.app.raw_post(&[header.as_bytes()]).await;
    f.app.expect_refusal(&outcome, 401, None);
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn a_token68_with_characters_outside_the_alphabet_gets_400_invalid_request() {
    let f = Fixture::start().await;
    for token in [
        "abc$def", "a=b", "=abc", "\"abc\"", "a\\b", "a;b", "a:b", "ab%3D", "a(b)", "a{b}", "a<b>",
        "a@b", "a?b", "a!b", "a*b",
    ] {
        let header = format!("Authorization: Bearer {token}");
        let outcome = f.app.raw_post(&[header.as_bytes()]).await;
        f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
        assert_eq!(
            cause_code(&outcome),
            "invalid_auth_header_format",
            "{token}"
        );
    }
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn a_one_character_token_reaches_the_verifier_and_gets_401_invalid_token() {
    let f = Fixture::start().await;
    let outcome = f.app.raw_post(&[b"Authorization: Bearer a"]).await;
    f.app.expect_invalid_token(&outcome);
    assert_eq!(f.verifier_calls(), 1);
    f.assert_still_serving().await;
}

#[tokio::test]
async fn a_100_000_character_token_gets_400_before_the_verifier() {
    let f = Fixture::start().await;
    let header = format!("Authorization: Bearer {}", "A".repeat(100_000));
    let outcome = f.app.raw_post(&[header.as_bytes()]).await;
    f.app.expect_refusal(&outcome, 400, Some("invalid_request"));
    assert_eq!(cause_code(&outcome), "auth_header_too_long");
    assert_eq!(f.verifier_calls(), 0);
    f.assert_still_serving().await;
}
