//! [`IntrospectionVerifier`]: ask the authorization server about a token (RFC 7662), the
//! standard way to accept opaque access tokens.
//!
//! ```no_run
//! use std::time::Duration;
//! use mcp_auth::verify::IntrospectionVerifier;
//! use mcp_auth::{AuthServer, AuthServerType, TokenVerifier};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = AuthServer::discover("https://auth.example.com", AuthServerType::OAuth);
//! let verifier = IntrospectionVerifier::builder(server)
//!     .client_secret_basic("my-resource-server", "its-secret")
//!     .ttl(Duration::from_secs(30))
//!     .build()?;
//! let info = verifier.verify("an-opaque-access-token").await?;
//! println!("{:?} may use {:?}", info.subject, info.scopes);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value};
use url::form_urlencoded;

use crate::auth_info::AuthInfo;
use crate::discovery::AuthServer;
use crate::error::{ConfigError, VerifyError, bounded_echo};
use crate::http_client::{FetchedResponse, HttpClient};
use crate::store::StateKind;
use crate::time::{has_expired, unix_now};
use crate::verify::TokenVerifier;
use crate::verify::cache::{CacheSettings, SharedCache, TokenCache, verify_through};
use crate::verify::endpoint::{
    EndpointClient, TokenEndpoint, check_status, json_object, secret_header,
};

/// Verifies opaque (or any) access tokens with RFC 7662 token introspection.
///
/// Each token is sent, with this resource server's own credentials, to the authorization
/// server's `introspection_endpoint` (from its metadata):
/// `POST` `application/x-www-form-urlencoded` `token=<token>&token_type_hint=access_token`.
///
/// | Answer | Result |
/// |---|---|
/// | 2xx JSON object with `"active": true` (the JSON boolean) | [`AuthInfo`] from the answer, checked as below |
/// | `"active": false`, `"active": "true"` (a string), no `active` | [`VerifyError::InvalidToken`] |
/// | `iss` present and not the server's issuer (absent: the server's issuer is used) | [`VerifyError::InvalidToken`] |
/// | `exp` present and not in the future | [`VerifyError::InvalidToken`] (expired) |
/// | `token_type` is `refresh_token` | [`VerifyError::InvalidToken`] |
/// | wrongly typed `sub`, `client_id`, `aud`, `scope`, `exp` | [`VerifyError::InvalidToken`] |
/// | 400, 401, 403: the server refused **our** credentials or request (RFC 7662 §2.3) | [`VerifyError::Misconfigured`] |
/// | timeout, network error, 5xx, any other status, a body that is not a JSON object | [`VerifyError::Unavailable`] |
/// | no `introspection_endpoint` in the metadata, or an endpoint the client refuses (plain http) | [`VerifyError::Misconfigured`] |
///
/// `aud` and the scopes are returned in the [`AuthInfo`] (`audience`, `scopes`) for the bearer
/// guard to check, like for every verifier; this verifier does not drop or judge them.
///
/// Successful answers are cached by token hash for the TTL (default 60 s, at most 10 000 of
/// them; see the builder), never beyond the answer's `exp` (RFC 7662 §4); concurrent requests with the same token share one call;
/// failures are not cached. A token revoked at the server keeps working here for at most the
/// TTL. The token is never logged (the request body contains it; it is not traced).
#[derive(Clone)]
pub struct IntrospectionVerifier {
    endpoint: EndpointClient,
    credentials: ClientCredentials,
    cache: Option<Arc<TokenCache>>,
}

/// Builder for [`IntrospectionVerifier`]; one of the credential methods is required, every
/// other setter documents its default, and [`build`](Self::build) refuses every bad setting.
#[must_use]
pub struct IntrospectionVerifierBuilder {
    server: AuthServer,
    http: Option<HttpClient>,
    /// The last credential method called, or why it cannot be used.
    credentials: Option<Result<ClientCredentials, ConfigError>>,
    cache: CacheSettings,
    store: Option<Arc<dyn crate::store::StateStore>>,
}

/// How this server authenticates to an endpoint of the authorization server (introspection,
/// and the token endpoint for [`TokenExchange`](crate::exchange::TokenExchange)).
#[derive(Clone)]
pub(crate) enum ClientCredentials {
    /// `Authorization: Basic ...` (`client_secret_basic`), marked sensitive.
    Basic(HeaderValue),
    /// `Authorization: Bearer ...`, marked sensitive.
    Bearer(HeaderValue),
    /// `client_id` and `client_secret` in the form body.
    Post {
        client_id: String,
        client_secret: String,
    },
}

impl ClientCredentials {
    /// `client_secret_basic` (RFC 6749 §2.3.1): the id and the secret are each
    /// form-urlencoded, joined with `:`, and base64-encoded into a sensitive header value.
    pub(crate) fn basic(client_id: &str, client_secret: &str) -> Result<Self, ConfigError> {
        let encoded = STANDARD.encode(format!(
            "{}:{}",
            form_urlencode(client_id),
            form_urlencode(client_secret)
        ));
        // Base64 is always a valid header value; the error is for completeness only.
        secret_header(format!("Basic {encoded}"))
            .map(Self::Basic)
            .ok_or(ConfigError::InvalidClientCredential {
                method: "client_secret_basic",
            })
    }

    pub(crate) fn method(&self) -> &'static str {
        match self {
            Self::Basic(_) => "client_secret_basic",
            Self::Bearer(_) => "bearer",
            Self::Post { .. } => "client_secret_post",
        }
    }
}

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("issuer", &self.endpoint.server().issuer())
            .field("client_authentication", &self.credentials.method())
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.credentials.as_ref().map(|credentials| {
            credentials
                .as_ref()
                .map_or("unusable", ClientCredentials::method)
        });
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("issuer", &self.server.issuer())
            .field("client_authentication", &method)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifierBuilder {
    /// Authenticate with HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1): the id and the
    /// secret are each form-urlencoded, joined with `:`, and base64-encoded.
    pub fn client_secret_basic(
        mut self,
        client_id: impl AsRef<str>,
        client_secret: impl AsRef<str>,
    ) -> Self {
        self.credentials = Some(ClientCredentials::basic(
            client_id.as_ref(),
            client_secret.as_ref(),
        ));
        self
    }

    /// Authenticate with `client_id` and `client_secret` in the request body
    /// (`client_secret_post`, RFC 6749 §2.3.1).
    pub fn client_secret_post(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Ok(ClientCredentials::Post {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }));
        self
    }

    /// Authenticate with `Authorization: Bearer <token>`, for servers that protect
    /// introspection with an access token of their own (RFC 7662 §2.1). A token with
    /// characters an HTTP header cannot carry is refused by [`build`](Self::build).
    pub fn bearer(mut self, token: impl AsRef<str>) -> Self {
        let header = secret_header(format!("Bearer {}", token.as_ref()))
            .ok_or(ConfigError::InvalidClientCredential { method: "bearer" });
        self.credentials = Some(header.map(ClientCredentials::Bearer));
        self
    }

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

    /// Caches successful answers, so that a token presented again is not introspected again
    /// (see the caching rules on [`IntrospectionVerifier`]). Default: `true`; `false` asks the
    /// server about every request, so that a revoked token is refused at once.
    pub fn cache(mut self, enabled: bool) -> Self {
        self.cache.enabled = enabled;
        self
    }

    /// How long a successful answer is reused (never beyond its `exp`). Default: 60 s
    /// ([`DEFAULT_TTL`](crate::verify::cache::DEFAULT_TTL), the same for every verifier): a
    /// revoked token keeps working for at most this long. Zero is refused by
    /// [`build`](Self::build) (turn the cache off with [`cache(false)`](Self::cache)).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.cache.ttl = ttl;
        self
    }

    /// The most answers cached at once. Default: 10 000
    /// ([`DEFAULT_MAX_ENTRIES`](crate::verify::cache::DEFAULT_MAX_ENTRIES), the same for every
    /// verifier); a miss costs one introspection call. Zero is refused by
    /// [`build`](Self::build) (turn the cache off with [`cache(false)`](Self::cache)).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.cache.max_entries = max_entries;
        self
    }

    /// The HTTP client for introspection calls. Default: the server's
    /// ([`AuthServer::http_client`]).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the verifier. Makes no network request: what only the server's metadata can
    /// tell (no `introspection_endpoint`, a plain-http one) is [`VerifyError::Misconfigured`]
    /// on use.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::MissingClientCredentials`] when no client credentials were given
    ///   (RFC 7662 §2.1 requires the endpoint to be protected, so calling it anonymously
    ///   cannot work);
    /// - [`ConfigError::InvalidClientCredential`] when the bearer credential contains
    ///   characters not allowed in an HTTP header;
    /// - [`ConfigError::ZeroSetting`] when the cache `ttl` or `max_entries` is zero.
    pub fn build(self) -> Result<IntrospectionVerifier, ConfigError> {
        let credentials = match self.credentials {
            None => return Err(ConfigError::MissingClientCredentials),
            Some(credentials) => credentials?,
        };
        let shared = self.store.map(|store| {
            SharedCache::new(
                store,
                StateKind::Introspection,
                self.server.issuer(),
                self.cache.ttl,
            )
        });
        Ok(IntrospectionVerifier {
            endpoint: EndpointClient::new(TokenEndpoint::Introspection, self.server, self.http),
            credentials,
            cache: self.cache.build_shared_token_cache(shared)?,
        })
    }
}

fn form_urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl IntrospectionVerifier {
    /// Starts a builder; choose the client authentication with
    /// [`client_secret_basic`](IntrospectionVerifierBuilder::client_secret_basic),
    /// [`client_secret_post`](IntrospectionVerifierBuilder::client_secret_post) or
    /// [`bearer`](IntrospectionVerifierBuilder::bearer).
    pub fn builder(server: AuthServer) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder {
            server,
            http: None,
            credentials: None,
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

    async fn introspect(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let url = self.endpoint.url().await?;
        // The body holds the token and perhaps our secret: it is never logged.
        let body = introspection_body(token, &self.credentials);
        let response = self
            .endpoint
            .send(&url, Method::POST, |request| {
                let request =
                    request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                match &self.credentials {
                    ClientCredentials::Basic(value) | ClientCredentials::Bearer(value) => {
                        request.header(header::AUTHORIZATION, value.clone())
                    }
                    ClientCredentials::Post { .. } => request,
                }
                .body(body)
            })
            .await?;
        let result =
            introspection_answer(self.auth_server().issuer(), token, &response, unix_now());
        if let Err(error) = &result {
            self.endpoint.log_refusal(token, &response, error);
        }
        result
    }
}

#[async_trait::async_trait]
impl TokenVerifier for IntrospectionVerifier {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        verify_through(self.cache.as_deref(), token, || self.introspect(token)).await
    }
}

/// `token=..&token_type_hint=access_token`, plus the client credentials for
/// `client_secret_post`.
fn introspection_body(token: &str, credentials: &ClientCredentials) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token)
        .append_pair("token_type_hint", "access_token");
    if let ClientCredentials::Post {
        client_id,
        client_secret,
    } = credentials
    {
        form.append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret);
    }
    form.finish()
}

/// Interprets an introspection response at `now` (seconds since the epoch); see the table on
/// [`IntrospectionVerifier`].
fn introspection_answer(
    issuer: &str,
    token: &str,
    response: &FetchedResponse,
    now: i64,
) -> Result<AuthInfo, VerifyError> {
    check_status(
        TokenEndpoint::Introspection,
        response,
        |status: StatusCode| {
            VerifyError::misconfigured(format_args!(
                "the introspection endpoint `{}` refused our request (HTTP {}{}); check the \
             resource server's client credentials and authentication method",
                response.url,
                status.as_u16(),
                oauth_error_code(response)
                    .map(|code| format!(", `{code}`"))
                    .unwrap_or_default()
            ))
        },
    )?;
    let mut claims = json_object(TokenEndpoint::Introspection, response)?;
    match claims.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            return Err(VerifyError::invalid_token("the token is not active"));
        }
        Some(_) => {
            return Err(VerifyError::invalid_token(
                "the introspection answer's `active` is not a JSON boolean",
            ));
        }
        None => {
            return Err(VerifyError::invalid_token(
                "the introspection answer has no `active` member",
            ));
        }
    }
    let iss_added = match claims.get("iss") {
        None | Some(Value::Null) => {
            claims.insert("iss".to_owned(), Value::String(issuer.to_owned()));
            true
        }
        Some(Value::String(iss)) if iss == issuer => false,
        Some(other) => {
            // The foreign issuer is the authorization server's text: logged (cut), never sent
            // back to the client.
            tracing::debug!(
                foreign_issuer = %bounded_echo(&other.to_string()),
                "the introspection answer names another issuer"
            );
            return Err(VerifyError::invalid_token(format!(
                "the introspection answer names another issuer than the configured `{issuer}`"
            )));
        }
    };
    if let Some(Value::String(token_type)) = claims.get("token_type")
        && token_type.eq_ignore_ascii_case("refresh_token")
    {
        return Err(VerifyError::invalid_token(
            "the token is a refresh token, not an access token",
        ));
    }
    let mut info = AuthInfo::from_claims(token, claims)?;
    if info.expires_at.is_some_and(|exp| has_expired(exp, now)) {
        return Err(VerifyError::invalid_token("the token has expired"));
    }
    if iss_added {
        info.claims.remove("iss");
    }
    Ok(info)
}

/// The OAuth `error` code of an error answer, if it has a short, printable one.
fn oauth_error_code(response: &FetchedResponse) -> Option<String> {
    let object: Map<String, Value> = response.json().ok()?;
    let code = object.get("error")?.as_str()?;
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_graphic())).then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::endpoint::canned_answer;
    use serde_json::json;

    const ISSUER: &str = "https://as.example.com";
    const NOW: u64 = 1_700_000_000;

    fn now() -> i64 {
        i64::try_from(NOW).unwrap()
    }

    fn response(status: u16, body: &str) -> FetchedResponse {
        canned_answer(
            "https://as.example.com/introspect",
            status,
            "application/json",
            body,
        )
    }

    fn answer(body: Value) -> Result<AuthInfo, VerifyError> {
        introspection_answer(ISSUER, "tok", &response(200, &body.to_string()), now())
    }

    #[test]
    fn active_answer_becomes_auth_info_with_audience_and_scopes() {
        let info = answer(json!({
            "active": true, "sub": "u1", "client_id": "c1", "scope": "read write",
            "aud": ["https://api.example.com/mcp"], "exp": NOW + 60,
        }))
        .unwrap();
        assert_eq!(info.token, "tok");
        assert_eq!(info.issuer, ISSUER);
        assert_eq!(info.subject.as_deref(), Some("u1"));
        assert_eq!(info.client_id.as_deref(), Some("c1"));
        assert_eq!(info.scopes, ["read", "write"]);
        assert_eq!(info.audience, ["https://api.example.com/mcp"]);
        assert_eq!(info.expires_at, Some(i64::try_from(NOW + 60).unwrap()));
        assert!(
            !info.claims.contains_key("iss"),
            "the issuer is not invented into the claims"
        );
    }

    #[test]
    fn only_the_json_boolean_true_is_active() {
        for body in [
            json!({"active": false}),
            json!({"active": "true"}),
            json!({"active": 1}),
            json!({"active": null}),
            json!({"sub": "u1"}),
        ] {
            assert!(
                matches!(answer(body.clone()), Err(VerifyError::InvalidToken { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn matching_iss_is_kept_and_other_iss_is_invalid() {
        let info = answer(json!({"active": true, "iss": ISSUER})).unwrap();
        assert_eq!(info.claims.get("iss"), Some(&json!(ISSUER)));
        for iss in [json!("https://evil.example.com"), json!(3), json!("")] {
            assert!(matches!(
                answer(json!({"active": true, "iss": iss})),
                Err(VerifyError::InvalidToken { .. })
            ));
        }
    }

    #[test]
    fn expired_or_now_exp_is_invalid() {
        for exp in [json!(NOW), json!(NOW - 1), json!(-1)] {
            assert!(matches!(
                answer(json!({"active": true, "exp": exp})),
                Err(VerifyError::InvalidToken { .. })
            ));
        }
        assert!(matches!(
            answer(json!({"active": true, "exp": "soon"})),
            Err(VerifyError::InvalidToken { .. })
        ));
    }

    #[test]
    fn refresh_tokens_are_refused() {
        assert!(matches!(
            answer(json!({"active": true, "token_type": "refresh_token"})),
            Err(VerifyError::InvalidToken { .. })
        ));
        assert!(answer(json!({"active": true, "token_type": "Bearer"})).is_ok());
    }

    #[test]
    fn refusal_of_our_credentials_is_misconfiguration() {
        for status in [400, 401, 403] {
            let result = introspection_answer(
                ISSUER,
                "t",
                &response(status, r#"{"error":"invalid_client"}"#),
                now(),
            );
            match result {
                Err(VerifyError::Misconfigured { reason }) => {
                    assert!(reason.contains("invalid_client"), "{reason}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn server_errors_and_garbage_are_unavailable() {
        for (status, body) in [
            (500, "{}"),
            (503, "{}"),
            (404, "{}"),
            (200, "<html>"),
            (200, "[true]"),
        ] {
            assert!(matches!(
                introspection_answer(ISSUER, "t", &response(status, body), now()),
                Err(VerifyError::Unavailable { .. })
            ));
        }
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_before_base64() {
        let server = AuthServer::discover("https://as.example.com", crate::AuthServerType::OAuth);
        let verifier = IntrospectionVerifier::builder(server)
            .client_secret_basic("my client", "s3cr:t/é")
            .build()
            .unwrap();
        let ClientCredentials::Basic(value) = &verifier.credentials else {
            panic!("expected a header credential");
        };
        assert!(value.is_sensitive());
        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "my+client:s3cr%3At%2F%C3%A9");
        assert!(!format!("{verifier:?}").contains("s3cr"));
    }

    #[test]
    fn building_without_credentials_or_with_a_bad_bearer_fails() {
        let server = AuthServer::discover("https://as.example.com", crate::AuthServerType::OAuth);
        assert!(matches!(
            IntrospectionVerifier::builder(server.clone()).build(),
            Err(ConfigError::MissingClientCredentials)
        ));
        assert!(matches!(
            IntrospectionVerifier::builder(server.clone())
                .bearer("a\r\nb")
                .build(),
            Err(ConfigError::InvalidClientCredential { method: "bearer" })
        ));
        // The last credential method called counts: a good one replaces a bad one.
        assert!(
            IntrospectionVerifier::builder(server.clone())
                .bearer("a\r\nb")
                .client_secret_post("id", "secret")
                .build()
                .is_ok()
        );
        for zero in [
            IntrospectionVerifier::builder(server.clone()).ttl(Duration::ZERO),
            IntrospectionVerifier::builder(server.clone()).max_entries(0),
        ] {
            assert!(matches!(
                zero.bearer("t").build(),
                Err(ConfigError::ZeroSetting { .. })
            ));
        }
        let uncached = IntrospectionVerifier::builder(server)
            .bearer("t")
            .cache(false)
            .build()
            .unwrap();
        assert!(uncached.cache().is_none());
        assert!(format!("{uncached:?}").contains("\"bearer\""));
    }
}
