//! [`UserinfoVerifier`]: accept a token if the authorization server's OpenID Connect userinfo
//! endpoint accepts it (what the mcp-auth Logto guide does).
//!
//! ```no_run
//! use mcp_auth::verify::UserinfoVerifier;
//! use mcp_auth::{AuthServer, AuthServerType, TokenVerifier};
//!
//! # async fn run() -> Result<(), mcp_auth::VerifyError> {
//! let logto = AuthServer::discover("https://tenant.logto.app/oidc", AuthServerType::Oidc);
//! let verifier = UserinfoVerifier::new(logto);
//! let info = verifier.verify("an-opaque-access-token").await?;
//! println!("hello {:?}", info.subject);
//! # Ok(()) }
//! ```
//!
//! Read the caveat on [`UserinfoVerifier`] before using it: userinfo cannot tell whom a token
//! was issued for.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use crate::auth_info::{AuthInfo, numeric_date, scopes_from_claims};
use crate::discovery::AuthServer;
use crate::error::{ConfigError, VerifyError, bounded_echo};
use crate::http_client::{FetchedResponse, HttpClient};
use crate::store::StateKind;
use crate::time::{has_expired, unix_now};
use crate::verify::TokenVerifier;
use crate::verify::cache::{CacheSettings, SharedCache, TokenCache, verify_through};
use crate::verify::endpoint::{
    EndpointClient, TokenEndpoint, check_status, content_type_is, json_object, secret_header,
};

/// Verifies a bearer token by calling the authorization server's OpenID Connect
/// `userinfo_endpoint` with it, the approach of the mcp-auth Logto guide.
///
/// # No audience check is possible
///
/// The MCP authorization specification requires a server to accept only tokens that were
/// issued **for it** (RFC 8707 audience). A userinfo answer does not say whom the token was
/// issued for, so **any token the authorization server accepts at its userinfo endpoint
/// passes**, including one issued to another application of the same tenant. A malicious or
/// compromised MCP client, or any other app, can replay its tokens here. The resulting
/// [`AuthInfo::audience`] is always empty, so the bearer guard's audience check (on by default
/// in resource-server mode) rejects every such token: you must turn the audience check off
/// explicitly ([`BearerAuthBuilder::skip_audience_check`](crate::BearerAuthBuilder::skip_audience_check)) to
/// use this verifier.
///
/// Prefer [`JwtVerifier`](crate::verify::JwtVerifier) with resource indicators (the authorization server
/// then puts this server's URL in `aud`) or
/// [`IntrospectionVerifier`](crate::verify::IntrospectionVerifier) (whose answer carries
/// `aud`). Use userinfo where neither is available, for identity (who is the user), knowing it
/// does not prove the token was meant for you.
///
/// # What it does
///
/// `GET userinfo_endpoint` with `Authorization: Bearer <token>`, through the server's
/// [`HttpClient`] (or the one given to the builder):
///
/// | Answer | Result |
/// |---|---|
/// | 2xx with a JSON object carrying a non-empty string `sub` | [`AuthInfo`]: issuer = the server's issuer, subject = `sub`, claims = the answer, scopes from `scope`/`scp`/`scopes` if present, no audience, `expires_at` from a numeric `exp` if the server adds one (not standard for userinfo), `client_id` from `client_id`, else `azp`, if the server adds one (not standard either) |
/// | 2xx with a `client_id` or `azp` that is not a non-empty string | [`VerifyError::InvalidToken`] |
/// | 2xx with a numeric `exp` that has passed | [`VerifyError::InvalidToken`] |
/// | 2xx with an `iss` different from the server's issuer | [`VerifyError::InvalidToken`] |
/// | 2xx without `sub` (or an empty or non-string one) | [`VerifyError::InvalidToken`] |
/// | 400, 401, 403 (RFC 6750 §3.1: the server refuses this token) | [`VerifyError::InvalidToken`] |
/// | 2xx whose body is not a JSON object (the server misbehaved; the token is not known to be bad) | [`VerifyError::Unavailable`] |
/// | timeout, network error, 5xx, 408, 429, or any other status | [`VerifyError::Unavailable`] |
/// | no `userinfo_endpoint` in the metadata, an endpoint the client refuses (plain http), a signed (`application/jwt`) answer | [`VerifyError::Misconfigured`] |
///
/// # Which client?
///
/// OIDC userinfo says who the user is, not which client the token was issued to. When the
/// server does not add `client_id` or `azp`, [`AuthInfo::client_id`] is `None`, and the
/// [session binding](crate::tower::SessionBinding) binds sessions to issuer and subject only:
/// two clients of the same user can then use each other's sessions. Where that matters, use
/// [`IntrospectionVerifier`](crate::verify::IntrospectionVerifier) or
/// [`JwtVerifier`](crate::verify::JwtVerifier), whose answers name the client.
///
/// Successful answers are cached by token hash for the TTL (default 60 s, at most 10 000 of
/// them; see [`TokenCache`] and the builder), so a revoked token keeps working for at most that
/// long; concurrent requests with the same token share one userinfo call; failures are not
/// cached.
#[derive(Clone)]
pub struct UserinfoVerifier {
    endpoint: EndpointClient,
    cache: Option<Arc<TokenCache>>,
}

/// Builder for [`UserinfoVerifier`]; every setter documents its default, and
/// [`build`](Self::build) refuses every bad setting.
#[must_use]
pub struct UserinfoVerifierBuilder {
    server: AuthServer,
    http: Option<HttpClient>,
    cache: CacheSettings,
    store: Option<Arc<dyn crate::store::StateStore>>,
}

impl fmt::Debug for UserinfoVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserinfoVerifier")
            .field("issuer", &self.endpoint.server().issuer())
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for UserinfoVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserinfoVerifierBuilder")
            .field("issuer", &self.server.issuer())
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl UserinfoVerifierBuilder {
    /// Also keeps successful answers in `store`, shared with every replica that uses it
    /// (a `RedisStore` (feature `redis`)), so a token verified by one replica is not
    /// sent to the authorization server again by another. Default: none (each process keeps
    /// its own cache). The local cache stays in front; only successes are shared, without
    /// the token (keyed by the SHA-256 of the issuer and the token), each for
    /// `min(ttl, exp − now)`. A store that fails or holds an unreadable value is a miss: the
    /// authorization server is asked, as without a store (counted in
    /// `mcp_auth_cache_store_errors_total`). No effect with [`cache(false)`](Self::cache).
    pub fn store(mut self, store: impl crate::store::StateStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Caches successful answers, so that a token presented again makes no userinfo call
    /// (see the caching rules on [`UserinfoVerifier`]). Default: `true`; `false` asks the
    /// server about every request.
    pub fn cache(mut self, enabled: bool) -> Self {
        self.cache.enabled = enabled;
        self
    }

    /// How long a successful answer is reused (never beyond a numeric `exp` in it). Default:
    /// 60 s ([`DEFAULT_TTL`](crate::verify::cache::DEFAULT_TTL), the same for every
    /// verifier): a revoked token keeps working for at most this long. Zero is refused by
    /// [`build`](Self::build) (turn the cache off with [`cache(false)`](Self::cache)).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.cache.ttl = ttl;
        self
    }

    /// The most answers cached at once. Default: 10 000
    /// ([`DEFAULT_MAX_ENTRIES`](crate::verify::cache::DEFAULT_MAX_ENTRIES), the same for every
    /// verifier); a miss costs one userinfo call. Zero is refused by [`build`](Self::build)
    /// (turn the cache off with [`cache(false)`](Self::cache)).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.cache.max_entries = max_entries;
        self
    }

    /// The HTTP client for userinfo calls. Default: the server's
    /// ([`AuthServer::http_client`]).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the verifier. Makes no network request: what only the server's metadata can
    /// tell (no `userinfo_endpoint`, a plain-http one) is [`VerifyError::Misconfigured`] on
    /// use.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroSetting`] when the cache `ttl` or `max_entries` is zero.
    pub fn build(self) -> Result<UserinfoVerifier, ConfigError> {
        let shared = self.store.map(|store| {
            SharedCache::new(
                store,
                StateKind::Userinfo,
                self.server.issuer(),
                self.cache.ttl,
            )
        });
        Ok(UserinfoVerifier {
            endpoint: EndpointClient::new(TokenEndpoint::Userinfo, self.server, self.http),
            cache: self.cache.build_shared_token_cache(shared)?,
        })
    }
}

impl UserinfoVerifier {
    /// A verifier for `server`'s userinfo endpoint with the default cache (60 s, 10 000
    /// entries) and the server's HTTP client.
    pub fn new(server: AuthServer) -> Self {
        Self {
            endpoint: EndpointClient::new(TokenEndpoint::Userinfo, server, None),
            cache: Some(Arc::new(TokenCache::default())),
        }
    }

    /// Starts a builder with the documented defaults.
    pub fn builder(server: AuthServer) -> UserinfoVerifierBuilder {
        UserinfoVerifierBuilder {
            server,
            http: None,
            cache: CacheSettings::default(),
            store: None,
        }
    }

    /// The authorization server asked.
    pub fn auth_server(&self) -> &AuthServer {
        self.endpoint.server()
    }

    /// The cache of successful answers; `None` when the builder turned it off.
    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_deref()
    }

    async fn call_userinfo(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let url = self.endpoint.url().await?;
        let authorization = bearer_header(token)?;
        let response = self
            .endpoint
            .send(&url, Method::GET, |request| {
                request.header(header::AUTHORIZATION, authorization)
            })
            .await?;
        let result = userinfo_answer(self.auth_server().issuer(), token, &response, unix_now());
        if let Err(error) = &result {
            self.endpoint.log_refusal(token, &response, error);
        }
        result
    }
}

#[async_trait::async_trait]
impl TokenVerifier for UserinfoVerifier {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        verify_through(self.cache.as_deref(), token, || self.call_userinfo(token)).await
    }
}

/// `Bearer <token>`, marked sensitive so that it is never printed by `Debug`.
fn bearer_header(token: &str) -> Result<HeaderValue, VerifyError> {
    secret_header(format!("Bearer {token}")).ok_or(VerifyError::invalid_token(
        "the token contains characters not allowed in an HTTP header",
    ))
}

/// Interprets a userinfo response at `now` (seconds since the epoch); see the table on
/// [`UserinfoVerifier`].
fn userinfo_answer(
    issuer: &str,
    token: &str,
    response: &FetchedResponse,
    now: i64,
) -> Result<AuthInfo, VerifyError> {
    check_status(TokenEndpoint::Userinfo, response, |status: StatusCode| {
        VerifyError::invalid_token(format!(
            "the authorization server's userinfo endpoint refused the token (HTTP {})",
            status.as_u16()
        ))
    })?;
    if content_type_is(response, "application/jwt") {
        return Err(VerifyError::misconfigured(
            "the userinfo endpoint answers with a signed JWT (application/jwt), which is not \
             supported; configure the client to receive plain JSON userinfo",
        ));
    }
    let claims = json_object(TokenEndpoint::Userinfo, response)?;
    match claims.get("iss") {
        None => {}
        Some(Value::String(iss)) if iss == issuer => {}
        Some(other) => {
            // The foreign issuer is the authorization server's text: logged (cut), never sent
            // back to the client.
            tracing::debug!(
                foreign_issuer = %bounded_echo(&other.to_string()),
                "the userinfo answer names another issuer"
            );
            return Err(VerifyError::invalid_token(format!(
                "the userinfo answer names another issuer than the configured `{issuer}`"
            )));
        }
    }
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => {
            return Err(VerifyError::invalid_token(
                "the userinfo answer has no `sub` (a non-empty string is required)",
            ));
        }
    };
    let scopes = scopes_from_claims(&claims)?;
    // Userinfo has no standard `exp`; some servers add the token's. Honour a numeric one so
    // the cache never outlives it.
    let expires_at = match claims.get("exp") {
        Some(Value::Number(exp)) => numeric_date(exp),
        _ => None,
    };
    if expires_at.is_some_and(|exp| has_expired(exp, now)) {
        return Err(VerifyError::invalid_token(
            "the token has expired (userinfo `exp`)",
        ));
    }
    // Userinfo has no standard member naming the client either; some servers add `client_id`
    // or `azp` (as in their tokens). Take it when they do, so that sessions bind to the client
    // as well as the user.
    let named = |name: &str| match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if !id.is_empty() => Ok(Some(id.clone())),
        Some(_) => Err(VerifyError::invalid_token(format!(
            "the userinfo answer's `{name}` is not a non-empty string"
        ))),
    };
    let client_id = match named("client_id")? {
        Some(id) => Some(id),
        None => named("azp")?,
    };
    let mut info = AuthInfo::new(token, issuer)
        .with_subject(subject)
        .with_scopes(scopes)
        .with_claims(claims);
    info.expires_at = expires_at;
    info.client_id = client_id;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::endpoint::canned_answer;
    use serde_json::json;

    /// `userinfo_answer` now.
    fn answer(
        issuer: &str,
        token: &str,
        response: &FetchedResponse,
    ) -> Result<AuthInfo, VerifyError> {
        userinfo_answer(issuer, token, response, unix_now())
    }

    const ISSUER: &str = "https://as.example.com";

    fn response(status: u16, content_type: &str, body: &str) -> FetchedResponse {
        canned_answer(
            "https://as.example.com/userinfo",
            status,
            content_type,
            body,
        )
    }

    fn json_response(body: Value) -> FetchedResponse {
        response(200, "application/json", &body.to_string())
    }

    #[test]
    fn the_client_is_taken_from_client_id_else_azp_when_the_server_adds_one() {
        let client = |body: Value| answer(ISSUER, "t", &json_response(body)).map(|i| i.client_id);
        assert_eq!(client(json!({"sub": "u"})).unwrap(), None);
        assert_eq!(
            client(json!({"sub": "u", "client_id": "c1", "azp": "c2"})).unwrap(),
            Some("c1".to_owned())
        );
        assert_eq!(
            client(json!({"sub": "u", "client_id": null, "azp": "c2"})).unwrap(),
            Some("c2".to_owned())
        );
        for bad in [json!(""), json!(7), json!(["c"])] {
            assert!(client(json!({"sub": "u", "azp": bad})).is_err());
            assert!(client(json!({"sub": "u", "client_id": bad})).is_err());
        }
    }

    #[test]
    fn a_userinfo_object_with_sub_becomes_auth_info() {
        let info = answer(
            ISSUER,
            "tok",
            &json_response(json!({"sub": "u1", "name": "Alice", "email": "a@example.com"})),
        )
        .unwrap();
        assert_eq!(info.token, "tok");
        assert_eq!(info.issuer, ISSUER);
        assert_eq!(info.subject.as_deref(), Some("u1"));
        assert_eq!(info.claims.get("email"), Some(&json!("a@example.com")));
        assert!(info.scopes.is_empty());
        assert!(info.audience.is_empty());
        assert_eq!(info.expires_at, None);
    }

    #[test]
    fn a_numeric_exp_in_userinfo_sets_expires_at_and_a_past_one_is_invalid() {
        let future = unix_now() + 100;
        let info = answer(
            ISSUER,
            "t",
            &json_response(json!({"sub": "u", "exp": future})),
        )
        .unwrap();
        assert_eq!(info.expires_at, Some(future));
        let odd = answer(
            ISSUER,
            "t",
            &json_response(json!({"sub": "u", "exp": "never"})),
        )
        .unwrap();
        assert_eq!(odd.expires_at, None);
        assert!(matches!(
            answer(
                ISSUER,
                "t",
                &json_response(json!({"sub": "u", "exp": unix_now() - 1}))
            ),
            Err(VerifyError::InvalidToken { .. })
        ));
    }

    #[test]
    fn scope_claims_in_userinfo_become_scopes() {
        let info = answer(
            ISSUER,
            "t",
            &json_response(json!({"sub": "u", "scope": "read write"})),
        )
        .unwrap();
        assert_eq!(info.scopes, ["read", "write"]);
    }

    #[test]
    fn matching_iss_is_accepted_and_other_iss_is_invalid() {
        assert!(
            answer(
                ISSUER,
                "t",
                &json_response(json!({"sub": "u", "iss": ISSUER}))
            )
            .is_ok()
        );
        for iss in [json!("https://evil.example.com"), json!(7)] {
            assert!(matches!(
                answer(ISSUER, "t", &json_response(json!({"sub": "u", "iss": iss}))),
                Err(VerifyError::InvalidToken { .. })
            ));
        }
    }

    #[test]
    fn missing_empty_or_non_string_sub_is_invalid() {
        for body in [
            json!({}),
            json!({"sub": ""}),
            json!({"sub": 42}),
            json!({"sub": null}),
        ] {
            assert!(
                matches!(
                    answer(ISSUER, "t", &json_response(body.clone())),
                    Err(VerifyError::InvalidToken { .. })
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn refusal_statuses_are_invalid_tokens() {
        for status in [400, 401, 403] {
            assert!(matches!(
                answer(ISSUER, "t", &response(status, "application/json", "{}")),
                Err(VerifyError::InvalidToken { .. })
            ));
        }
    }

    #[test]
    fn server_trouble_and_odd_statuses_are_unavailable() {
        for status in [404, 408, 429, 500, 502, 503] {
            assert!(matches!(
                answer(ISSUER, "t", &response(status, "application/json", "{}")),
                Err(VerifyError::Unavailable { .. })
            ));
        }
    }

    #[test]
    fn non_json_and_non_object_answers_are_unavailable() {
        for (content_type, body) in [
            ("text/html", "<html>hi</html>"),
            ("application/json", "[1,2]"),
            ("application/json", "\"sub\""),
            ("application/json", "{\"sub\":"),
        ] {
            assert!(matches!(
                answer(ISSUER, "t", &response(200, content_type, body)),
                Err(VerifyError::Unavailable { .. })
            ));
        }
    }

    #[test]
    fn signed_userinfo_is_a_configuration_error() {
        assert!(matches!(
            answer(
                ISSUER,
                "t",
                &response(200, "application/jwt; charset=utf-8", "eyJ.x.y")
            ),
            Err(VerifyError::Misconfigured { .. })
        ));
    }

    #[test]
    fn tokens_that_cannot_be_a_header_are_invalid_and_the_header_is_sensitive() {
        assert!(matches!(
            bearer_header("a\nb"),
            Err(VerifyError::InvalidToken { .. })
        ));
        let value = bearer_header("abc").unwrap();
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("abc"));
    }
}
