#![cfg(feature = "test-util")]
//! Sender-constrained tokens (RFC 9449 §7.2, RFC 8705 §3) through the guard's binding step,
//! over real HTTP: a token whose `cnf` binds it to a key or a certificate is never accepted as
//! a plain bearer token, and a malformed `cnf` is refused rather than ignored.

use crate::support::hostile::App;
use mcp_auth::testing::TestAuthServer;
use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
use serde_json::json;

/// The JWT guard (required scope `read`) of a fresh app trusting `server`.
async fn serve(server: &TestAuthServer) -> App {
    let issuer = server.issuer().to_owned();
    App::serve(|resource| {
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource)
                    .authorization_server(AuthServer::discover(issuer, AuthServerType::Oidc)),
            )
            .build()
            .expect("configuration");
        let guard = auth
            .bearer_auth_jwt(resource)
            .required_scopes(["read"])
            .build()
            .expect("guard");
        (auth, guard)
    })
    .await
}

/// A `read` token for `app` with the claim `cnf` set to `cnf` (none when `Null`).
fn token(server: &TestAuthServer, app: &App, cnf: serde_json::Value) -> String {
    let token = server.token().audience(app.url()).scope("read");
    if cnf.is_null() {
        token.sign()
    } else {
        token.claim("cnf", cnf).sign()
    }
}

#[tokio::test]
async fn an_unbound_token_passes_as_a_bearer_token() {
    let server = TestAuthServer::start().await.unwrap();
    let app = serve(&server).await;
    let outcome = app.post(&token(&server, &app, json!(null))).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(app.handler_calls(), 1);
}

#[tokio::test]
async fn a_dpop_bound_token_sent_as_bearer_is_refused() {
    let server = TestAuthServer::start().await.unwrap();
    let app = serve(&server).await;
    // RFC 7638 §3.1's example thumbprint: any key binding will do, none is proven here.
    let bound = token(
        &server,
        &app,
        json!({ "jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" }),
    );
    let outcome = app.post(&bound).await;
    app.expect_invalid_token(&outcome);
}

#[tokio::test]
async fn a_certificate_bound_token_without_a_certificate_source_is_refused() {
    let server = TestAuthServer::start().await.unwrap();
    let app = serve(&server).await;
    let bound = token(
        &server,
        &app,
        json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }),
    );
    let outcome = app.post(&bound).await;
    app.expect_invalid_token(&outcome);
}

#[tokio::test]
async fn a_malformed_confirmation_claim_is_refused_not_ignored() {
    let server = TestAuthServer::start().await.unwrap();
    let app = serve(&server).await;
    for cnf in [
        json!("jkt"),
        json!({ "jkt": 7 }),
        json!({ "x5t#S256": ["a"] }),
    ] {
        let outcome = app.post(&token(&server, &app, cnf.clone())).await;
        assert_eq!(outcome.status, 401, "cnf {cnf}: {outcome:?}");
        assert_eq!(
            outcome.challenge().error.as_deref(),
            Some("invalid_token"),
            "cnf {cnf}"
        );
    }
    assert_eq!(app.handler_calls(), 0, "the protected handler ran");
}
