//! The HTTP surface: paths, the per-request pipeline (record, fault, answer) and the
//! resource-server-facing endpoints (metadata, JWKS, userinfo, introspection, revocation).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use super::faults::{self, Endpoint};
use super::flow;
use super::request::{IncomingRequest, RecordedRequest};
use super::respond::{self, OAuthError};
use super::state::{Config, Shared};

/// Request bodies above this size are answered 413 (and recorded empty).
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Where each endpoint lives, relative to the server's base URL. Metadata endpoints may
/// have two paths; the first is the canonical one.
pub(crate) fn paths(issuer_path: &str, endpoint: Endpoint) -> Vec<String> {
    let p = issuer_path;
    match endpoint {
        Endpoint::OAuthMetadata => vec![format!("/.well-known/oauth-authorization-server{p}")],
        Endpoint::OidcMetadata if p.is_empty() => {
            vec!["/.well-known/openid-configuration".to_owned()]
        }
        Endpoint::OidcMetadata => vec![
            format!("{p}/.well-known/openid-configuration"),
            format!("/.well-known/openid-configuration{p}"),
        ],
        Endpoint::Jwks => vec![format!("{p}/jwks")],
        Endpoint::Userinfo => vec![format!("{p}/userinfo")],
        Endpoint::Introspection => vec![format!("{p}/introspect")],
        Endpoint::Registration => vec![format!("{p}/register")],
        Endpoint::Authorize => vec![format!("{p}/authorize")],
        Endpoint::Token => vec![format!("{p}/token")],
        Endpoint::Revocation => vec![format!("{p}/revoke")],
    }
}

/// The canonical URL of `endpoint`.
pub(crate) fn endpoint_url(config: &Config, endpoint: Endpoint) -> String {
    let path = paths(&config.issuer_path, endpoint)
        .into_iter()
        .next()
        .unwrap_or_default();
    format!("{}{path}", config.base_url)
}

/// The authorization server metadata (RFC 8414 / OpenID Connect Discovery), advertising
/// exactly what the server implements.
pub(crate) fn base_metadata(config: &Config) -> Value {
    let url = |endpoint| endpoint_url(config, endpoint);
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let mut claims = vec![
        "sub", "iss", "aud", "exp", "iat", "name", "email", "username",
    ];
    claims.extend(config.sample_user.extra_claims.keys().map(String::as_str));
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": url(Endpoint::Authorize),
        "token_endpoint": url(Endpoint::Token),
        "registration_endpoint": url(Endpoint::Registration),
        "jwks_uri": url(Endpoint::Jwks),
        "userinfo_endpoint": url(Endpoint::Userinfo),
        "introspection_endpoint": url(Endpoint::Introspection),
        "revocation_endpoint": url(Endpoint::Revocation),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            crate::exchange::TOKEN_EXCHANGE_GRANT,
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "scopes_supported": config.scopes_supported,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": claims,
        "authorization_response_iss_parameter_supported": true,
    })
}

/// One route per endpoint path; unknown paths get a JSON 404.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for endpoint in Endpoint::ALL {
        for path in paths(&shared.config.issuer_path, endpoint) {
            router = router.route(
                &path,
                any(move |State(shared): State<Arc<Shared>>, request: Request| {
                    serve(shared, endpoint, request)
                }),
            );
        }
    }
    router
        .fallback(|| async { respond::not_found() })
        .with_state(shared)
}

/// Every request: read the body, count and record it, apply a fault, then answer.
async fn serve(shared: Arc<Shared>, endpoint: Endpoint, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_REQUEST_BODY).await.ok();
    let recorded = RecordedRequest {
        method: parts.method.clone(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|pq| pq.to_string())
            .unwrap_or_default(),
        headers: parts.headers.clone(),
        body: body.clone().unwrap_or_default(),
    };
    if let Some(fault) = shared.record(endpoint, recorded)
        && let Some(response) = faults::respond(fault, shared.shutdown_signal()).await
    {
        return respond::with_cors(response);
    }
    let Some(body) = body else {
        return respond::with_cors(
            OAuthError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "body too large",
            )
            .into_response(),
        );
    };
    if parts.method == Method::OPTIONS {
        return respond::with_cors(respond::preflight());
    }
    let request = IncomingRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let response = match endpoint {
        Endpoint::OAuthMetadata | Endpoint::OidcMetadata => {
            get_json(&request, || shared.served_metadata())
        }
        Endpoint::Jwks => get_json(&request, || shared.served_jwks()),
        Endpoint::Userinfo => userinfo(&shared, &request),
        Endpoint::Introspection => introspection(&shared, &request),
        Endpoint::Revocation => revocation(&shared, &request),
        Endpoint::Registration => flow::registration(&shared, &request),
        Endpoint::Authorize => flow::authorize(&shared, &request),
        Endpoint::Token => flow::token(&shared, &request),
    };
    respond::with_cors(response)
}

/// A public, cacheable JSON document (metadata, JWKS): GET or HEAD only.
fn get_json(request: &IncomingRequest, document: impl FnOnce() -> Value) -> Response {
    if request.method != Method::GET && request.method != Method::HEAD {
        return respond::method_not_allowed("GET, HEAD, OPTIONS");
    }
    let mut response = respond::json(StatusCode::OK, &document());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// OpenID Connect userinfo: `Authorization: Bearer <token this server issued>`.
fn userinfo(shared: &Shared, request: &IncomingRequest) -> Response {
    if request.method != Method::GET && request.method != Method::POST {
        return respond::method_not_allowed("GET, POST, OPTIONS");
    }
    let challenge = |status: StatusCode, params: &'static str, body: Value| {
        let mut response = respond::json(status, &body);
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(params));
        response
    };
    match request.bearer_token() {
        Err(error) => challenge(
            StatusCode::BAD_REQUEST,
            "Bearer error=\"invalid_request\"",
            json!({ "error": "invalid_request", "error_description": error.description }),
        ),
        Ok(None) => challenge(
            StatusCode::UNAUTHORIZED,
            "Bearer",
            json!({ "error": "invalid_token", "error_description": "no access token" }),
        ),
        Ok(Some(token)) => match shared.active_token(token) {
            Some(issued) => respond::no_store(respond::json(
                StatusCode::OK,
                &Value::Object(issued.userinfo),
            )),
            None => challenge(
                StatusCode::UNAUTHORIZED,
                "Bearer error=\"invalid_token\"",
                json!({
                    "error": "invalid_token",
                    "error_description": "unknown, expired or revoked access token",
                }),
            ),
        },
    }
}

/// RFC 7662 introspection, for confidential clients.
fn introspection(shared: &Shared, request: &IncomingRequest) -> Response {
    let answer = || -> Result<Value, OAuthError> {
        let form = authenticated_form(shared, request)?;
        let token = form.required("token")?;
        form.one("token_type_hint")?;
        let Some(issued) = shared.active_token(token) else {
            return Ok(json!({ "active": false }));
        };
        let mut body = serde_json::Map::new();
        body.insert("active".into(), true.into());
        // RFC 9449 §6.2: a DPoP-bound token's answer says `DPoP` (claims may override it).
        let bound = issued
            .claims
            .get("cnf")
            .and_then(|cnf| cnf.get("jkt"))
            .is_some();
        body.insert(
            "token_type".into(),
            if bound { "DPoP" } else { "Bearer" }.into(),
        );
        body.extend(issued.claims);
        Ok(Value::Object(body))
    };
    match answer() {
        Ok(body) => respond::no_store(respond::json(StatusCode::OK, &body)),
        Err(error) => error.into_response(),
    }
}

/// RFC 7009 revocation, for confidential clients. Unknown tokens are fine (200).
fn revocation(shared: &Shared, request: &IncomingRequest) -> Response {
    let answer = || -> Result<(), OAuthError> {
        let form = authenticated_form(shared, request)?;
        let token = form.required("token")?;
        form.one("token_type_hint")?;
        shared.state().revoked.insert(token.to_owned());
        Ok(())
    };
    match answer() {
        Ok(()) => respond::empty(StatusCode::OK),
        Err(error) => error.into_response(),
    }
}

/// A POST form from a confidential client with valid credentials (Basic or in the body).
fn authenticated_form(
    shared: &Shared,
    request: &IncomingRequest,
) -> Result<super::request::Params, OAuthError> {
    if request.method != Method::POST {
        return Err(OAuthError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "use POST",
        ));
    }
    let form = request.form()?;
    let Some((client_id, secret)) = request.client_credentials(&form)? else {
        return Err(OAuthError::invalid_client("client authentication required"));
    };
    let state = shared.state();
    let known_secret = state
        .clients
        .get(&client_id)
        .and_then(|client| client.secret.as_deref());
    match (known_secret, secret.as_deref()) {
        (Some(known), Some(given)) if known == given => Ok(form),
        _ => Err(OAuthError::invalid_client("unknown client or wrong secret")),
    }
}
