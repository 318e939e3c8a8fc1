//! The bearer guard as tower middleware: every status, challenge parameter and body of the
//! wire rules (DESIGN.md §3, RFC 6750, MCP), driven with real `http::Request`s and, where the
//! network matters, over real HTTP against the test authorization server.
#![cfg(feature = "test-util")]

use crate::support::logs;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::fixtures::as_metadata;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::testing::{Endpoint, TestAuthServer};
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, BearerAuth, BearerAuthBuilder, ConfigError, McpAuth,
    ProtectedResource, TokenVerifier, VerifyError,
};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

const RESOURCE: &str = "https://api.example.com/mcp";
const METADATA_URL: &str = "https://api.example.com/.well-known/oauth-protected-resource/mcp";
const ISSUER: &str = "https://auth.example.com";

fn mcp_auth() -> McpAuth {
    McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::from_metadata(as_metadata(ISSUER))),
        )
        .build()
        .expect("valid configuration")
}

fn alice(token: &str) -> AuthInfo {
    AuthInfo::new(token, ISSUER)
        .with_subject("alice")
        .with_audience([RESOURCE])
}

/// A verifier with one token per situation.
fn verifier() -> impl TokenVerifier {
    |token: String| async move {
        match token.as_str() {
            "read-write" => Ok(alice(&token).with_scopes(["read", "write"])),
            "read-only" => Ok(alice(&token).with_scopes(["read"])),
            "no-scopes" => Ok(alice(&token)),
            "files-admin" => Ok(alice(&token).with_scopes(["files:admin"])),
            "other-issuer" => Ok(AuthInfo::new(token, "https://evil.example.com")
                .with_audience([RESOURCE])
                .with_scopes(["read", "write"])),
            "issuer-with-slash" => Ok(AuthInfo::new(token, "https://auth.example.com/")
                .with_audience([RESOURCE])
                .with_scopes(["read", "write"])),
            "other-audience" => Ok(AuthInfo::new(token, ISSUER)
                .with_audience(["https://api.example.com/other", "x"])
                .with_scopes(["read", "write"])),
            "no-audience" => Ok(AuthInfo::new(token, ISSUER).with_scopes(["read", "write"])),
            "untrusted" => Err(VerifyError::UntrustedIssuer {
                issuer: "https://evil.example.com".into(),
            }),
            "as-down" => Err(VerifyError::unavailable("connection refused")),
            "no-jwks" => Err(VerifyError::misconfigured("the metadata has no jwks_uri")),
            "expired" => Err(VerifyError::invalid_token("the token has expired")),
            _ => Err(VerifyError::invalid_token("unknown token")),
        }
    }
}

fn guard() -> BearerAuthBuilder {
    mcp_auth().bearer_auth(RESOURCE, verifier())
}

/// What came back, and whether the protected service ran.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    www_authenticate: Option<String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    body: Bytes,
    inner_calls: usize,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn challenge(&self) -> BearerChallenge {
        BearerChallenge::parse(self.www_authenticate.as_deref().expect("a challenge"))
            .expect("a well-formed challenge")
    }
}

/// Sends `request` through `guard` in front of a counting service that answers with the
/// subject and scopes it finds in the request extensions.
async fn send_with(guard: &BearerAuth, request: Request<Full<Bytes>>) -> Outcome {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let inner = service_fn(move |request: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let info = request.extensions().get::<AuthInfo>().cloned();
        async move {
            let body = match info {
                Some(info) => json!({"subject": info.subject, "scopes": info.scopes}).to_string(),
                None => "no AuthInfo".to_owned(),
            };
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }
    });
    let response = guard
        .layer()
        .layer(inner)
        .oneshot(request)
        .await
        .expect("infallible");
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &HeaderValue| v.to_str().expect("visible ASCII").to_owned())
    };
    let (www_authenticate, content_type, cache_control) = (
        header(WWW_AUTHENTICATE),
        header(CONTENT_TYPE),
        header(CACHE_CONTROL),
    );
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Outcome {
        status,
        www_authenticate,
        content_type,
        cache_control,
        body,
        inner_calls: calls.load(Ordering::SeqCst),
    }
}

fn request(authorization: &[&str]) -> Request<Full<Bytes>> {
    request_to("/mcp", authorization)
}

fn request_to(uri: &str, authorization: &[&str]) -> Request<Full<Bytes>> {
    let mut builder = Request::post(uri);
    for value in authorization {
        builder = builder.header(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
    }
    builder.body(Full::new(Bytes::new())).expect("request")
}

async fn send(authorization: &[&str]) -> Outcome {
    send_with(
        &guard().required_scopes(["read"]).build().unwrap(),
        request(authorization),
    )
    .await
}

const BARE_CHALLENGE: &str = "Bearer scope=\"read\", \
     resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\"";

#[tokio::test]
async fn valid_token_reaches_the_inner_service_with_auth_info_in_extensions() {
    let outcome = send(&["Bearer read-write"]).await;
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.inner_calls, 1);
    assert_eq!(
        outcome.json(),
        json!({"subject": "alice", "scopes": ["read", "write"]})
    );
    assert_eq!(outcome.www_authenticate, None);
}

#[tokio::test]
async fn missing_authorization_gets_bare_401_with_resource_metadata_and_scope() {
    let outcome = send(&[]).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.www_authenticate.as_deref(), Some(BARE_CHALLENGE));
    let challenge = outcome.challenge();
    assert_eq!(challenge.error, None);
    assert_eq!(challenge.error_description, None);
    assert_eq!(outcome.content_type.as_deref(), Some("application/json"));
    assert_eq!(outcome.cache_control.as_deref(), Some("no-store"));
    assert_eq!(
        outcome.body,
        "{\"error\":\"unauthorized\",\"error_description\":\"This resource requires a bearer token \
         in the Authorization header.\"}"
    );
    assert_eq!(outcome.inner_calls, 0);
}

#[tokio::test]
async fn offline_access_is_never_named_in_a_challenge() {
    let guard = guard()
        .required_scopes(["read", "offline_access"])
        .build()
        .unwrap();
    for authorization in [&[][..], &["Bearer read-only"][..]] {
        let outcome = send_with(&guard, request(authorization)).await;
        assert_eq!(outcome.challenge().scope, ["read"], "{outcome:?}");
    }
}

#[tokio::test]
async fn non_bearer_scheme_gets_the_same_bare_401() {
    for value in [
        "Basic dXNlcjpwYXNz",
        "DPoP read-write",
        "invalid-header",
        "read-write",
    ] {
        let outcome = send(&[value]).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(
            outcome.www_authenticate.as_deref(),
            Some(BARE_CHALLENGE),
            "{value}"
        );
        assert_eq!(outcome.inner_calls, 0);
    }
}

#[tokio::test]
async fn without_required_scopes_the_bare_challenge_has_only_resource_metadata() {
    let outcome = send_with(&guard().build().unwrap(), request(&[])).await;
    assert_eq!(
        outcome.www_authenticate.as_deref(),
        Some(
            "Bearer resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
        )
    );
}

#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    for value in [
        "bearer read-write",
        "BEARER read-write",
        "bEaReR read-write",
        "Bearer   read-write",
    ] {
        let outcome = send(&[value]).await;
        assert_eq!(outcome.status, StatusCode::OK, "{value}");
        assert_eq!(outcome.inner_calls, 1);
    }
}

#[tokio::test]
async fn a_token_in_the_query_string_is_ignored() {
    let outcome = send_with(
        &guard().required_scopes(["read"]).build().unwrap(),
        request_to("/mcp?access_token=read-write", &[]),
    )
    .await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outcome.www_authenticate.as_deref(), Some(BARE_CHALLENGE));
    assert_eq!(outcome.inner_calls, 0);

    // The header alone decides; the query's junk token changes nothing.
    let outcome = send_with(
        &guard().required_scopes(["read"]).build().unwrap(),
        request_to("/mcp?access_token=junk", &["Bearer read-only"]),
    )
    .await;
    assert_eq!(outcome.status, StatusCode::OK);
    assert_eq!(outcome.json()["scopes"], json!(["read"]));
}

const INVALID_REQUEST_HEADER: &str = "Bearer error=\"invalid_request\", error_description=\"The \
     Authorization header must be the Bearer scheme, one space, and one token.\", scope=\"read\", \
     resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\"";

#[tokio::test]
async fn two_authorization_headers_get_400_invalid_request() {
    let outcome = send(&["Bearer read-write", "Bearer read-write"]).await;
    assert_eq!(outcome.status, StatusCode::BAD_REQUEST);
    let challenge = outcome.challenge();
    assert_eq!(challenge.error.as_deref(), Some("invalid_request"));
    assert_eq!(
        challenge.error_description.as_deref(),
        Some("The request must carry exactly one Authorization header.")
    );
    assert_eq!(challenge.resource_metadata.as_deref(), Some(METADATA_URL));
    assert_eq!(outcome.json()["error"], "invalid_request");
    assert_eq!(outcome.inner_calls, 0);
}

#[tokio::test]
async fn bearer_without_a_token_gets_400_invalid_request() {
    for value in ["Bearer", "Bearer ", "bearer    "] {
        let outcome = send(&[value]).await;
        assert_eq!(outcome.status, StatusCode::BAD_REQUEST, "{value:?}");
        assert_eq!(
            outcome.www_authenticate.as_deref(),
            Some(
                "Bearer error=\"invalid_request\", error_description=\"The Authorization header has \
                 no bearer token.\", scope=\"read\", \
                 resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
            )
        );
        assert_eq!(
            outcome.body,
            "{\"error\":\"invalid_request\",\"error_description\":\"The Authorization header has no \
             bearer token.\"}"
        );
        assert_eq!(outcome.inner_calls, 0);
    }
}

#[tokio::test]
async fn a_malformed_token_gets_400_invalid_request() {
    for value in [
        "Bearer a b",
        "Bearer invalid token format",
        "Bearer \"read-write\"",
        "Bearer read-write,x",
        "Bearer =abc",
        "Bearer\tread-write",
    ] {
        let outcome = send(&[value]).await;
        assert_eq!(outcome.status, StatusCode::BAD_REQUEST, "{value:?}");
        assert_eq!(
            outcome.www_authenticate.as_deref(),
            Some(INVALID_REQUEST_HEADER),
            "{value:?}"
        );
        assert_eq!(outcome.inner_calls, 0);
    }
    // Bytes that are not even UTF-8.
    let mut request = request(&[]);
    request.headers_mut().insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
    );
    let outcome = send_with(&guard().required_scopes(["read"]).build().unwrap(), request).await;
    assert_eq!(outcome.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_overlong_authorization_header_gets_400_before_verification() {
    let long = format!("Bearer {}", "a".repeat(9000));
    let outcome = send(&[&long]).await;
    assert_eq!(outcome.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        outcome.challenge().error.as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        outcome.challenge().error_description.as_deref(),
        Some("The Authorization header is longer than 8192 bytes.")
    );

    let small = guard().max_header_bytes(17).build().unwrap();
    assert_eq!(
        send_with(&small, request(&["Bearer read-write"]))
            .await
            .status,
        StatusCode::OK
    );
    let outcome = send_with(&small, request(&["Bearer read-write-"])).await;
    assert_eq!(outcome.status, StatusCode::BAD_REQUEST);
    assert_eq!(outcome.inner_calls, 0);
}

#[tokio::test]
async fn a_token_the_verifier_rejects_gets_401_invalid_token() {
    let outcome = send(&["Bearer expired"]).await;
    assert_eq!(outcome.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        outcome.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"invalid_token\", error_description=\"The access token is invalid: the \
             token has expired\", scope=\"read\", \
             resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
        )
    );
    assert_eq!(
        outcome.body,
        "{\"error\":\"invalid_token\",\"error_description\":\"The access token is invalid: the token \
         has expired\"}"
    );
    assert_eq!(outcome.inner_calls, 0);
}

#[tokio::test]
async fn a_custom_verifier_returning_an_untrusted_issuer_gets_401_invalid_token() {
    for token in ["other-issuer", "issuer-with-slash", "untrusted"] {
        let outcome = send(&[&format!("Bearer {token}")]).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{token}");
        let challenge = outcome.challenge();
        assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            challenge.error_description.as_deref(),
            Some(
                "The access token was issued by an authorization server this resource does not trust."
            )
        );
        assert_eq!(challenge.resource_metadata.as_deref(), Some(METADATA_URL));
        assert_eq!(challenge.scope, ["read"]);
        assert_eq!(outcome.inner_calls, 0);
    }
}

#[tokio::test]
async fn a_wrong_or_missing_audience_gets_401_invalid_token() {
    for token in ["other-audience", "no-audience"] {
        let outcome = send(&[&format!("Bearer {token}")]).await;
        assert_eq!(outcome.status, StatusCode::UNAUTHORIZED, "{token}");
        let challenge = outcome.challenge();
        assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            challenge.error_description.as_deref(),
            Some("The access token is not intended for this resource.")
        );
        assert_eq!(challenge.resource_metadata.as_deref(), Some(METADATA_URL));
        assert_eq!(outcome.inner_calls, 0);
    }
}

#[tokio::test]
async fn an_explicit_audience_list_replaces_the_resource() {
    let guard = guard()
        .audience(["https://api.example.com/other"])
        .build()
        .unwrap();
    assert_eq!(
        send_with(&guard, request(&["Bearer other-audience"]))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send_with(&guard, request(&["Bearer read-write"]))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_audience_check_is_off_only_when_asked() {
    let guard = guard().skip_audience_check().build().unwrap();
    assert_eq!(
        send_with(&guard, request(&["Bearer other-audience"]))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send_with(&guard, request(&["Bearer no-audience"]))
            .await
            .status,
        StatusCode::OK
    );
    // The issuer is still checked.
    assert_eq!(
        send_with(&guard, request(&["Bearer other-issuer"]))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn an_empty_audience_list_is_refused_when_the_guard_is_built() {
    let err = guard().audience(Vec::<String>::new()).build().unwrap_err();
    assert!(matches!(err, ConfigError::EmptyAudience), "{err:?}");
    assert!(err.to_string().contains("skip_audience_check()"), "{err}");
}

#[tokio::test]
async fn missing_scopes_get_403_naming_every_required_scope() {
    let guard = guard().required_scopes(["read", "write"]).build().unwrap();
    let outcome = send_with(&guard, request(&["Bearer read-only"])).await;
    assert_eq!(outcome.status, StatusCode::FORBIDDEN);
    assert_eq!(
        outcome.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"The access token does not grant \
             the scopes this request requires.\", scope=\"read write\", \
             resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
        )
    );
    assert_eq!(
        outcome.body,
        "{\"error\":\"insufficient_scope\",\"error_description\":\"The access token does not grant the \
         scopes this request requires.\",\"missing_scopes\":[\"write\"]}"
    );
    assert_eq!(outcome.inner_calls, 0);

    let outcome = send_with(&guard, request(&["Bearer no-scopes"])).await;
    assert_eq!(outcome.status, StatusCode::FORBIDDEN);
    assert_eq!(outcome.challenge().scope, ["read", "write"]);
    assert_eq!(outcome.json()["missing_scopes"], json!(["read", "write"]));

    // Deterministic: the same request gets the same challenge.
    let again = send_with(&guard, request(&["Bearer no-scopes"])).await;
    assert_eq!(again.www_authenticate, outcome.www_authenticate);
}

#[tokio::test]
async fn required_scopes_accumulate_and_401_challenges_name_them_all() {
    let guard = guard()
        .required_scopes(["read"])
        .required_scopes(["write", "read"])
        .build()
        .unwrap();
    let outcome = send_with(&guard, request(&["Bearer expired"])).await;
    assert_eq!(outcome.challenge().scope, ["read", "write"]);
    assert_eq!(
        send_with(&guard, request(&["Bearer read-write"]))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_scope_hierarchy_lets_a_broad_scope_imply_narrower_ones() {
    let plain = guard().required_scopes(["files:read"]);
    let outcome = send_with(
        &plain.clone().build().unwrap(),
        request(&["Bearer files-admin"]),
    )
    .await;
    assert_eq!(outcome.status, StatusCode::FORBIDDEN);
    assert_eq!(outcome.json()["missing_scopes"], json!(["files:read"]));

    let with_hierarchy = plain
        .scope_implies("files:admin", ["files:read", "files:write"])
        .build()
        .unwrap();
    let outcome = send_with(&with_hierarchy, request(&["Bearer files-admin"])).await;
    assert_eq!(outcome.status, StatusCode::OK);
    // The handler sees the scopes the token grants, not the expansion.
    assert_eq!(outcome.json()["scopes"], json!(["files:admin"]));

    // Transitive, and never the other way round.
    let transitive = guard()
        .required_scopes(["files:read"])
        .scope_implies("files:admin", ["files:write"])
        .scope_implies("files:write", ["files:read"])
        .build()
        .unwrap();
    assert_eq!(
        send_with(&transitive, request(&["Bearer files-admin"]))
            .await
            .status,
        StatusCode::OK
    );
    let reverse = guard()
        .required_scopes(["files:admin"])
        .scope_implies("files:admin", ["read"])
        .build()
        .unwrap();
    assert_eq!(
        send_with(&reverse, request(&["Bearer read-only"]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_unreachable_authorization_server_gets_503_without_a_challenge() {
    let outcome = send(&["Bearer as-down"]).await;
    assert_eq!(outcome.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(outcome.www_authenticate, None);
    assert_eq!(
        outcome.body,
        "{\"error\":\"temporarily_unavailable\",\"error_description\":\"The authorization server could \
         not be reached to verify the access token; try again later.\"}"
    );
    assert_eq!(outcome.inner_calls, 0);
}

#[tokio::test]
async fn a_misconfigured_verifier_gets_500_without_a_challenge() {
    let outcome = send(&["Bearer no-jwks"]).await;
    assert_eq!(outcome.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(outcome.www_authenticate, None);
    assert_eq!(outcome.json()["error"], "server_error");
    assert!(outcome.json().get("cause").is_none());
    assert_eq!(outcome.inner_calls, 0);
}

#[test]
fn an_invalid_required_scope_is_refused_when_the_guard_is_built() {
    for bad in ["", "has space", "quo\"te", "caf\u{e9}"] {
        let err = guard().required_scopes(["read", bad]).build().unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidScope { setting: "required_scopes", scope } if scope == bad),
            "{bad:?}: {err:?}"
        );
        let err = guard()
            .scope_implies("files:admin", [bad])
            .build()
            .unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::InvalidScope {
                    setting: "scope_implies",
                    ..
                }
            ),
            "{bad:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn error_details_are_shown_only_when_enabled() {
    let outcome = send(&["Bearer other-issuer"]).await;
    assert!(outcome.json().get("cause").is_none());

    let detailed = guard()
        .required_scopes(["read", "write"])
        .show_error_details(true)
        .build()
        .unwrap();
    let outcome = send_with(&detailed, request(&["Bearer other-issuer"])).await;
    assert_eq!(
        outcome.json()["cause"],
        json!({"code": "invalid_issuer", "expected": [ISSUER], "actual": "https://evil.example.com"})
    );
    let outcome = send_with(&detailed, request(&["Bearer other-audience"])).await;
    assert_eq!(
        outcome.json()["cause"],
        json!({"code": "invalid_audience", "expected": [RESOURCE], "actual": ["https://api.example.com/other", "x"]})
    );
    let outcome = send_with(&detailed, request(&["Bearer read-only"])).await;
    assert_eq!(
        outcome.body,
        "{\"error\":\"insufficient_scope\",\"error_description\":\"The access token does not grant the \
         scopes this request requires.\",\"cause\":{\"code\":\"missing_required_scopes\",\"expected\":\
         [\"read\",\"write\"],\"actual\":[\"read\"]},\"missing_scopes\":[\"write\"]}"
    );
    let outcome = send_with(&detailed, request(&["Bearer no-jwks"])).await;
    assert_eq!(
        outcome.json()["cause"],
        json!({"code": "server_misconfigured", "reason": "the metadata has no jwks_uri"})
    );
    let outcome = send_with(&detailed, request(&["Bearer"])).await;
    assert_eq!(
        outcome.json()["cause"],
        json!({"code": "missing_bearer_token"})
    );
}

#[tokio::test]
async fn challenge_values_never_carry_quotes_backslashes_or_non_ascii() {
    let guard = mcp_auth()
        .bearer_auth(RESOURCE, |_token: String| async move {
            Err::<AuthInfo, _>(VerifyError::invalid_token("bad \"sig\" \\ caf\u{e9}\r\n"))
        })
        .build()
        .unwrap();
    let outcome = send_with(&guard, request(&["Bearer x"])).await;
    let header = outcome.www_authenticate.clone().unwrap();
    assert_eq!(
        header,
        "Bearer error=\"invalid_token\", error_description=\"The access token is invalid: bad sig  caf\", \
         resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
    );
    // The body keeps the text as JSON (escaped there, which JSON allows).
    assert_eq!(
        outcome.json()["error_description"],
        "The access token is invalid: bad \"sig\" \\ caf\u{e9}\r\n"
    );
}

#[tokio::test]
async fn a_realm_is_rendered_first_when_configured() {
    let outcome = send_with(&guard().realm("mcp").build().unwrap(), request(&[])).await;
    assert_eq!(
        outcome.www_authenticate.as_deref(),
        Some(
            "Bearer realm=\"mcp\", resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
        )
    );
}

#[tokio::test]
async fn auth_info_already_in_the_request_is_replaced_by_the_verified_one() {
    let mut request = request(&["Bearer read-only"]);
    request.extensions_mut().insert(
        AuthInfo::new("forged", ISSUER)
            .with_subject("mallory")
            .with_scopes(["admin"]),
    );
    let outcome = send_with(&guard().build().unwrap(), request).await;
    assert_eq!(
        outcome.json(),
        json!({"subject": "alice", "scopes": ["read"]})
    );
}

#[tokio::test]
async fn the_framework_neutral_entry_points_agree_with_the_layer() {
    let guard = guard().required_scopes(["read"]).build().unwrap();
    let info = guard
        .authenticate_values([&b"Bearer read-only"[..]])
        .await
        .unwrap();
    assert_eq!(info.scopes, ["read"]);
    assert_eq!(info.token, "read-only");

    let rejection = guard
        .authenticate_values(std::iter::empty())
        .await
        .unwrap_err();
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rejection.www_authenticate().unwrap(), BARE_CHALLENGE);
    assert_eq!(rejection.error().code(), "missing_auth_header");

    let mut headers = http::HeaderMap::new();
    headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer read-only"));
    headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer read-only"));
    let rejection = guard.authenticate(&headers).await.unwrap_err();
    assert_eq!(rejection.error().code(), "multiple_auth_headers");
    let response: Response<Full<Bytes>> = rejection.clone().into_response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body, rejection.body());
}

#[tokio::test]
async fn fine_grained_reasons_match_mcp_auth_codes() {
    let guard = guard().required_scopes(["read", "write"]).build().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&[], "missing_auth_header"),
        (&["Basic abc"], "unsupported_auth_scheme"),
        (&["Bearer"], "missing_bearer_token"),
        (&["Bearer a b"], "invalid_auth_header_format"),
        (&["Bearer x", "Bearer y"], "multiple_auth_headers"),
        (&["Bearer expired"], "invalid_token"),
        (&["Bearer other-issuer"], "invalid_issuer"),
        (&["Bearer other-audience"], "invalid_audience"),
        (&["Bearer read-only"], "missing_required_scopes"),
    ];
    for (values, code) in cases {
        let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        let rejection = guard.authenticate_values(values).await.unwrap_err();
        assert_eq!(rejection.error().code(), code);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tokens_never_appear_in_logs_on_any_path() {
    // Every test of this binary logs into the same capture, which only widens the check.
    logs::capture();

    let server = TestAuthServer::start().await.unwrap();
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::OAuth)),
        )
        .build()
        .unwrap();
    let jwt = JwtVerifier::builder()
        .authorization_server(auth.trusted_servers(RESOURCE).unwrap()[0].clone())
        .build()
        .unwrap();
    let jwt_guard = auth
        .bearer_auth(RESOURCE, jwt)
        .required_scopes(["read"])
        .build()
        .unwrap();

    let secret = "SeCrEtToKeN-4242";
    let closure_guard = mcp_auth()
        .bearer_auth(RESOURCE, |token: String| async move {
            if token.ends_with("4242") {
                Ok(alice(&token).with_scopes(["read"]))
            } else {
                Err(VerifyError::invalid_token("unknown token"))
            }
        })
        .required_scopes(["read", "write"])
        .show_error_details(true)
        .build()
        .unwrap();

    let good = server.token().audience(RESOURCE).scope("read").sign();
    let wrong_audience = server
        .token()
        .audience("https://elsewhere.example.com")
        .scope("read")
        .sign();
    let tokens: Vec<(String, &BearerAuth)> = vec![
        (secret.to_owned(), &closure_guard),
        (format!("{secret}-unknown"), &closure_guard),
        (good.clone(), &jwt_guard),
        (wrong_audience.clone(), &jwt_guard),
        (format!("{good}x"), &jwt_guard),
    ];
    for (token, guard) in &tokens {
        let outcome = send_with(
            guard,
            request_to(
                &format!("/mcp?access_token={token}"),
                &[&format!("Bearer {token}")],
            ),
        )
        .await;
        assert_ne!(outcome.status, StatusCode::INTERNAL_SERVER_ERROR);
        for value in [
            format!("Bearer {token} extra"),
            format!("Basic {token}"),
            token.clone(),
        ] {
            send_with(guard, request(&[&value])).await;
        }
    }
    assert_eq!(
        send_with(&jwt_guard, request(&[&format!("Bearer {good}")]))
            .await
            .status,
        StatusCode::OK
    );

    let text = logs::text();
    // The logs did record the refusals (so the check below is meaningful)...
    assert!(text.contains("invalid_audience"), "{text}");
    assert!(text.contains("missing_required_scopes"), "{text}");
    assert!(text.contains("invalid_auth_header_format"), "{text}");
    // ... and never a token, nor its signature or claims segment.
    for (token, _) in &tokens {
        assert!(
            !text.contains(token.as_str()),
            "a token leaked into the logs:\n{text}"
        );
        for segment in token.split('.').filter(|s| s.len() > 8) {
            assert!(
                !text.contains(segment),
                "a token segment leaked into the logs:\n{text}"
            );
        }
    }
    assert!(!text.contains(secret), "{text}");
    server.shutdown().await;
}

// ---- over real HTTP, against the test authorization server -------------------------------

struct McpServer {
    base: String,
    resource: String,
    calls: Arc<AtomicUsize>,
}

/// Serves `/mcp` (a counting handler behind the JWT guard) and the metadata endpoints on a
/// loopback port chosen by the OS.
async fn serve_mcp(issuers: &[&TestAuthServer], scopes: &[&str]) -> McpServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let mut protected = ProtectedResource::new(&resource);
    for server in issuers {
        protected = protected
            .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::OAuth));
    }
    let auth = McpAuth::builder()
        .protected_resource(protected)
        .build()
        .unwrap();
    let mut jwt = JwtVerifier::builder();
    for server in auth.trusted_servers(resource.as_str()).unwrap() {
        jwt = jwt.authorization_server(server.clone());
    }
    let guard = auth
        .bearer_auth(resource.as_str(), jwt.build().unwrap())
        .required_scopes(scopes.iter().copied())
        .build()
        .unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let handler = move |axum::Extension(info): axum::Extension<AuthInfo>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { info.subject.unwrap_or_default() }
    };
    let app = axum::Router::new()
        .route("/mcp", axum::routing::post(handler))
        .route_layer(guard.layer())
        .fallback_service(auth.metadata_service());
    tokio::spawn(async move { axum::serve(listener, app).await });
    McpServer {
        base,
        resource,
        calls,
    }
}

async fn post(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).body("{}");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).expect("a JSON body")
}

fn challenge_of(response: &reqwest::Response) -> BearerChallenge {
    let value = response
        .headers()
        .get(WWW_AUTHENTICATE.as_str())
        .expect("challenge");
    BearerChallenge::parse(value.to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn over_http_a_bare_401_leads_the_client_to_the_resource_metadata() {
    let server = TestAuthServer::start().await.unwrap();
    let mcp = serve_mcp(&[&server], &["read"]).await;

    let response = post(&format!("{}/mcp", mcp.base), None).await;
    assert_eq!(response.status(), 401);
    let challenge = challenge_of(&response);
    assert_eq!(challenge.error, None);
    assert_eq!(challenge.scope, ["read"]);
    let metadata_url = challenge.resource_metadata.unwrap();
    assert_eq!(
        metadata_url,
        format!("{}/.well-known/oauth-protected-resource/mcp", mcp.base)
    );

    let document = json_of(reqwest::get(&metadata_url).await.unwrap()).await;
    assert_eq!(document["resource"], mcp.resource.as_str());
    assert_eq!(document["authorization_servers"], json!([server.issuer()]));
    assert_eq!(mcp.calls.load(Ordering::SeqCst), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn over_http_jwt_tokens_get_200_401_and_403_as_their_claims_deserve() {
    let server = TestAuthServer::start().await.unwrap();
    let mcp = serve_mcp(&[&server], &["read"]).await;
    let url = format!("{}/mcp", mcp.base);

    let good = server
        .token()
        .subject("alice")
        .audience(mcp.resource.as_str())
        .scope("read write")
        .sign();
    let response = post(&url, Some(&good)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "alice");

    let wrong_audience = server
        .token()
        .audience("https://other.example.com/mcp")
        .scope("read")
        .sign();
    let response = post(&url, Some(&wrong_audience)).await;
    assert_eq!(response.status(), 401);
    let challenge = challenge_of(&response);
    assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
    assert_eq!(
        challenge.error_description.as_deref(),
        Some("The access token is not intended for this resource.")
    );

    let expired = server
        .token()
        .audience(mcp.resource.as_str())
        .scope("read")
        .expires_at(1_000_000_000)
        .sign();
    let response = post(&url, Some(&expired)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge_of(&response).error.as_deref(),
        Some("invalid_token")
    );

    let no_scope = server
        .token()
        .audience(mcp.resource.as_str())
        .scope("write")
        .sign();
    let response = post(&url, Some(&no_scope)).await;
    assert_eq!(response.status(), 403);
    let challenge = challenge_of(&response);
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope, ["read"]);
    assert_eq!(json_of(response).await["missing_scopes"], json!(["read"]));

    assert_eq!(mcp.calls.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn over_http_a_token_from_an_untrusted_server_is_refused_without_fetching_its_keys() {
    let trusted = TestAuthServer::start().await.unwrap();
    let other = TestAuthServer::start().await.unwrap();
    let mcp = serve_mcp(&[&trusted], &[]).await;

    let foreign = other
        .token()
        .audience(mcp.resource.as_str())
        .scope("read")
        .sign();
    let response = post(&format!("{}/mcp", mcp.base), Some(&foreign)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge_of(&response).error.as_deref(),
        Some("invalid_token")
    );
    assert_eq!(other.request_count(Endpoint::Jwks), 0);
    assert_eq!(other.request_count(Endpoint::OAuthMetadata), 0);
    assert_eq!(mcp.calls.load(Ordering::SeqCst), 0);
    trusted.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn over_http_an_unreachable_authorization_server_gets_503_and_the_handler_never_runs() {
    let server = TestAuthServer::start().await.unwrap();
    let mcp = serve_mcp(&[&server], &["read"]).await;
    let token = server
        .token()
        .audience(mcp.resource.as_str())
        .scope("read")
        .sign();
    server.shutdown().await;

    let response = post(&format!("{}/mcp", mcp.base), Some(&token)).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get(WWW_AUTHENTICATE.as_str()).is_none());
    let body = json_of(response).await;
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(mcp.calls.load(Ordering::SeqCst), 0);
}
