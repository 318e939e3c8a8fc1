//! A probe for the interop suite (`tests/interop`): exchanges one subject token at a real
//! authorization server with [`TokenExchange`], twice (the second must come from the cache),
//! checks the issued token with the JWT guard of the downstream resource and of the MCP
//! resource, and prints one JSON line with what happened. It never prints a token.
//!
//! Environment (all required): `PROBE_ISSUER`, `PROBE_CLIENT_ID`, `PROBE_CLIENT_SECRET`
//! (sent with `client_secret_post`), `PROBE_SUBJECT_TOKEN`, `PROBE_RESOURCE` (the downstream
//! API), `PROBE_SCOPE`, `PROBE_MCP_RESOURCE` (where the issued token must be refused).
//!
//! Output: `{"outcome":"exchanged",...}` or `{"outcome":"error","kind":...,"code":...}`; exit
//! status 0 either way, 2 when the environment is incomplete.

use std::process::ExitCode;

use http::{HeaderMap, header};
use mcp_auth::exchange::{ExchangeError, ExchangeRequest, TokenExchange};
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, BearerAuthError, McpAuth, ProtectedResource};
use serde_json::{Value, json};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// The JWT guard of `resource` at `issuer`, and what it says about `header`.
async fn check(
    issuer: &str,
    resource: &str,
    header: http::HeaderValue,
) -> Result<AuthInfo, BearerAuthError> {
    let guard = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(resource)
                .authorization_server(AuthServer::discover(issuer, AuthServerType::Oidc)),
        )
        .build()
        .map_err(|e| BearerAuthError::ServerMisconfigured {
            reason: e.to_string(),
        })?
        .bearer_auth_jwt(resource)
        .build()
        .map_err(|e| BearerAuthError::ServerMisconfigured {
            reason: e.to_string(),
        })?;
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, header);
    guard
        .authenticate(&headers)
        .await
        .map_err(|rejection| rejection.error().clone())
}

fn error_line(error: &ExchangeError) -> Value {
    let kind = match error {
        ExchangeError::Refused { .. } => "refused",
        ExchangeError::Unavailable { .. } => "unavailable",
        ExchangeError::MalformedAnswer { .. } => "malformed",
        ExchangeError::Misconfigured { .. } => "misconfigured",
        ExchangeError::InvalidRequest { .. } => "invalid_request",
        _ => "other",
    };
    json!({ "outcome": "error", "kind": kind, "code": error.code(), "message": error.to_string() })
}

async fn probe() -> Result<Value, String> {
    let issuer = env("PROBE_ISSUER")?;
    let resource = env("PROBE_RESOURCE")?;
    let mcp_resource = env("PROBE_MCP_RESOURCE")?;
    let subject_token = env("PROBE_SUBJECT_TOKEN")?;
    let exchange = TokenExchange::builder(AuthServer::discover(&issuer, AuthServerType::Oidc))
        .client_secret_post(env("PROBE_CLIENT_ID")?, env("PROBE_CLIENT_SECRET")?)
        .build()
        .map_err(|e| e.to_string())?;
    let subject = AuthInfo::new(subject_token, &issuer);
    let request = ExchangeRequest::for_resource(&resource).scope(env("PROBE_SCOPE")?);

    let token = match exchange.exchange(&subject, &request).await {
        Ok(token) => token,
        Err(error) => return Ok(error_line(&error)),
    };
    let again = exchange.exchange(&subject, &request).await;
    let cached = again.as_ref().is_ok_and(|again| again == &token);

    let downstream = check(&issuer, &resource, token.authorization_header()).await;
    let at_mcp = check(&issuer, &mcp_resource, token.authorization_header()).await;
    Ok(json!({
        "outcome": "exchanged",
        "token_type": token.token_type,
        "issued_token_type": token.issued_token_type,
        "expires_at": token.expires_at,
        "scopes": token.scopes,
        "second_call_cached": cached,
        "downstream": match downstream {
            Ok(info) => json!({
                "accepted": true,
                "sub": info.subject,
                "audience": info.audience,
                "scopes": info.scopes,
                "act": info.claims.get("act"),
            }),
            Err(error) => json!({ "accepted": false, "error": error.to_string() }),
        },
        "mcp_resource": match at_mcp {
            Ok(_) => json!({ "accepted": true }),
            Err(error) => json!({
                "accepted": false,
                "invalid_audience": matches!(error, BearerAuthError::InvalidAudience { .. }),
                "error": error.to_string(),
            }),
        },
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match probe().await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("token_exchange_probe: {problem}");
            ExitCode::from(2)
        }
    }
}
