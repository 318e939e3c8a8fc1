#![cfg(feature = "test-util")]
//! `McpAuth::bearer_auth_jwt`: the built-in JWT mode, end to end through the tower layer.

use std::convert::Infallible;
use std::time::Duration;

use crate::support::clock::unix_now;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use mcp_auth::testing::{Endpoint, TestAuthServer};
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, BearerAuth, McpAuth, ProtectedResource};
use tower::{Layer, ServiceExt, service_fn};

const RESOURCE: &str = "https://api.example.com/mcp";

fn mcp_auth(server: &TestAuthServer) -> McpAuth {
    McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::Oidc)),
        )
        .build()
        .expect("valid configuration")
}

async fn status_of(guard: &BearerAuth, token: &str) -> StatusCode {
    let inner = service_fn(|request: Request<Full<Bytes>>| async move {
        let subject = request
            .extensions()
            .get::<AuthInfo>()
            .and_then(|info| info.subject.clone())
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(subject))))
    });
    let request = Request::builder()
        .uri("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    guard
        .layer()
        .layer(inner)
        .oneshot(request)
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn guards_of_one_resource_share_one_jwks_cache() {
    let server = TestAuthServer::start().await.unwrap();
    let auth = mcp_auth(&server);
    let reader = auth
        .bearer_auth_jwt(RESOURCE)
        .required_scopes(["read"])
        .build()
        .unwrap();
    let writer = auth
        .bearer_auth_jwt(RESOURCE)
        .required_scopes(["write"])
        .build()
        .unwrap();
    let token = server.token().audience(RESOURCE).scope("read write").sign();
    assert_eq!(status_of(&reader, &token).await, StatusCode::OK);
    assert_eq!(status_of(&writer, &token).await, StatusCode::OK);
    assert_eq!(server.request_count(Endpoint::Jwks), 1);
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 1);

    let read_only = server.token().audience(RESOURCE).scope("read").sign();
    assert_eq!(status_of(&writer, &read_only).await, StatusCode::FORBIDDEN);
    let other_audience = server.token().audience("https://other.example/mcp").sign();
    assert_eq!(
        status_of(&reader, &other_audience).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bearer_auth_jwt_with_applies_the_verifier_settings() {
    let server = TestAuthServer::start().await.unwrap();
    let auth = mcp_auth(&server);
    let strict = auth
        .bearer_auth_jwt_with(RESOURCE, |jwt| jwt.strict_rfc9068(true))
        .build()
        .unwrap();
    let plain_jwt = server.token().audience(RESOURCE).typ(Some("JWT")).sign();
    assert_eq!(
        status_of(&strict, &plain_jwt).await,
        StatusCode::UNAUTHORIZED
    );
    let relaxed = auth.bearer_auth_jwt(RESOURCE).build().unwrap();
    assert_eq!(status_of(&relaxed, &plain_jwt).await, StatusCode::OK);

    let no_leeway = auth
        .bearer_auth_jwt_with(RESOURCE, |jwt| jwt.leeway(Duration::ZERO))
        .build()
        .unwrap();
    let just_expired = server
        .token()
        .audience(RESOURCE)
        .expires_at(unix_now() - 5)
        .sign();
    assert_eq!(
        status_of(&no_leeway, &just_expired).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of(&relaxed, &just_expired).await, StatusCode::OK);
}

/// Microsoft Entra ID's shape: clients request `api://<id>/access_as_user`, the token's `scp`
/// says `access_as_user`. With a scope prefix, required scopes and challenges use the name
/// clients must request, and the bare name in the token satisfies it.
#[tokio::test]
async fn a_scope_prefix_lets_challenges_name_what_clients_must_request() {
    const API: &str = "api://6e74172b-be56-4843-9ff4-e66a39bb12e3/";
    let server = TestAuthServer::start().await.unwrap();
    let auth = mcp_auth(&server);
    let guard = auth
        .bearer_auth_jwt_with(RESOURCE, |jwt| jwt.scope_prefix(API))
        .required_scopes([format!("{API}access_as_user")])
        .build()
        .unwrap();

    let permitted = server
        .token()
        .audience(RESOURCE)
        .claim("scp", "access_as_user")
        .sign();
    assert_eq!(status_of(&guard, &permitted).await, StatusCode::OK);

    let other_permission = server
        .token()
        .audience(RESOURCE)
        .claim("scp", "files.read")
        .sign();
    let rejection = guard
        .authenticate(&bearer_headers(&other_permission))
        .await
        .expect_err("a token without the permission is refused");
    assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    let challenge = rejection
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.contains(&format!("scope=\"{API}access_as_user\"")),
        "the challenge names the full scope: {challenge}"
    );

    // Without the prefix, the bare name does not match the full one.
    let unprefixed = auth
        .bearer_auth_jwt(RESOURCE)
        .required_scopes([format!("{API}access_as_user")])
        .build()
        .unwrap();
    assert_eq!(
        status_of(&unprefixed, &permitted).await,
        StatusCode::FORBIDDEN
    );
}

fn bearer_headers(token: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers
}

#[tokio::test]
async fn an_unknown_resource_is_named() {
    let server = TestAuthServer::start().await.unwrap();
    let err = mcp_auth(&server)
        .bearer_auth_jwt("https://api.example.com/other")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("https://api.example.com/other"),
        "{err}"
    );
}

#[tokio::test]
#[allow(deprecated)]
async fn the_delegated_mode_verifies_jwts_from_its_one_server() {
    let server = TestAuthServer::start().await.unwrap();
    let auth =
        mcp_auth::DelegatedAuth::new(AuthServer::discover(server.issuer(), AuthServerType::Oidc))
            .unwrap();
    let guard = auth.bearer_auth_jwt().build().unwrap();
    let token = server.token().sign();
    assert_eq!(status_of(&guard, &token).await, StatusCode::OK);
    let foreign = TestAuthServer::start().await.unwrap().token().sign();
    assert_eq!(status_of(&guard, &foreign).await, StatusCode::UNAUTHORIZED);
}
