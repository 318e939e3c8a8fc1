//! Calling upstream APIs on the caller's behalf without passing their token through:
//! [`TokenExchange`], an RFC 8693 token-exchange client.
//!
//! MCP forbids token passthrough: the token a client sent to this server is for this server
//! (its `aud`), and an upstream API must not accept it. A tool that calls an upstream API for
//! the user asks the authorization server for a token of that API instead, presenting the
//! verified incoming token as the *subject token* and authenticating as this server:
//!
//! ```no_run
//! use mcp_auth::exchange::{ExchangeRequest, TokenExchange};
//! use mcp_auth::{AuthInfo, AuthServer, AuthServerType};
//!
//! # async fn tool(auth: AuthInfo) -> Result<(), Box<dyn std::error::Error>> {
//! let server = AuthServer::discover("https://auth.example.com", AuthServerType::Oidc);
//! let exchange = TokenExchange::builder(server)
//!     .client_secret_basic("my-mcp-server", "its-secret")
//!     .build()?;
//!
//! // In a tool, with the `AuthInfo` the bearer guard verified:
//! let upstream = exchange
//!     .exchange(&auth, &ExchangeRequest::for_resource("https://calendar.example.com/api").scope("calendar:read"))
//!     .await?;
//! let events = reqwest::Client::new()
//!     .get("https://calendar.example.com/api/events")
//!     .header(http::header::AUTHORIZATION, upstream.authorization_header())
//!     .send()
//!     .await?;
//! # let _ = events;
//! # Ok(()) }
//! ```
//!
//! # The request
//!
//! `POST` to the `token_endpoint` of the authorization server's metadata (discovered on first
//! use, like the verifiers do), `application/x-www-form-urlencoded`:
//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token`,
//! `subject_token_type=urn:ietf:params:oauth:token-type:access_token`, every `resource` and
//! `audience` of the [`ExchangeRequest`] (at least one is required), `scope`, and
//! `requested_token_type` when set; with `client_secret_basic` (an `Authorization: Basic`
//! header) or `client_secret_post` (`client_id` and `client_secret` in the body). The request
//! goes through the crate's bounded [`HttpClient`] (timeouts, response size cap, https unless
//! loopback). A discovered `token_endpoint` must be on the issuer's origin (or one allowed by
//! [`AuthServer::with_allowed_endpoint_origins`]): the subject token and the client secret are
//! never sent elsewhere.
//!
//! [`GrantShape::EntraOnBehalfOf`] sends Microsoft Entra ID's on-behalf-of request instead
//! (see the guide's Entra recipe).
//!
//! # The cache
//!
//! Issued tokens are reused, keyed by the SHA-256 of (grant shape, subject token, resources,
//! audiences, scopes, requested token type), never by the token itself:
//!
//! - an entry lives `min(ttl, subject expiry − margin, issued expiry − margin)`: never past the
//!   subject token's `exp` (the `expires_at` of the [`AuthInfo`]) nor the issued token's
//!   `expires_in`, and a token with less than the
//!   [margin](TokenExchangeBuilder::expiry_margin) (30 s) left is not handed out of the cache
//!   (one the server just issued is returned, not cached);
//! - at most [`max_entries`](TokenExchangeBuilder::max_entries) entries (10 000);
//! - concurrent exchanges of the same key share one request to the token endpoint;
//! - failures are not cached.
//!
//! Nothing is logged but fingerprints (a short hash) of the subject token.

mod answer;
mod error;
mod request;

pub use answer::ExchangedToken;
pub use error::ExchangeError;
pub use request::{ExchangeRequest, GrantShape};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, header};

use crate::auth_info::AuthInfo;
use crate::discovery::AuthServer;
use crate::error::{ConfigError, DiscoveryError, FetchError, VerifyError};
use crate::http_client::HttpClient;
use crate::time::{has_expired, unix_now};
use crate::verify::cache::{CacheSettings, Expiring, ExpiringCache, token_fingerprint};
use crate::verify::introspection::ClientCredentials;

/// `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `grant_type` of RFC 7523 JWT bearer assertions, used by Entra ID's on-behalf-of flow.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The RFC 8693 token type of an access token: the `subject_token_type` sent, and the
/// `issued_token_type` expected unless another is requested.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Default [`expiry_margin`](TokenExchangeBuilder::expiry_margin): 30 s.
pub const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// An RFC 8693 token-exchange client: trades the verified incoming token for a token of an
/// upstream API. See the [module docs](self) for the request, the cache and the rules.
///
/// Cheap to clone (clones share the cache): keep one in your tool handler's state.
#[derive(Clone)]
pub struct TokenExchange {
    inner: Arc<Inner>,
}

struct Inner {
    server: AuthServer,
    /// `None`: the server's own client.
    http: Option<HttpClient>,
    client_id: String,
    credentials: ClientCredentials,
    shape: GrantShape,
    margin: Duration,
    cache: Option<ExpiringCache<Cached>>,
}

/// One cached exchange: the token, and when the entry must end.
struct Cached {
    token: ExchangedToken,
    /// `min(subject exp, issued exp) − margin`, in seconds since the epoch.
    until: Option<i64>,
}

impl Expiring for Cached {
    fn expires_at(&self) -> Option<i64> {
        self.until
    }
}

/// Why the cache's init future produced no entry; shared by every waiting caller.
enum Miss {
    Failed(ExchangeError),
    /// Issued, but with too little time left to cache: answered, not kept.
    Uncacheable(ExchangedToken),
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("issuer", &self.inner.server.issuer())
            .field("client_id", &self.inner.client_id)
            .field("client_authentication", &self.inner.credentials.method())
            .field("grant_shape", &self.inner.shape)
            .field("expiry_margin", &self.inner.margin)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// Builder for [`TokenExchange`]: one of the client-authentication methods is required, every
/// other setter documents its default, and [`build`](Self::build) refuses bad settings.
#[must_use]
pub struct TokenExchangeBuilder {
    server: AuthServer,
    http: Option<HttpClient>,
    /// The last credential method called, with the client id.
    credentials: Option<Result<(String, ClientCredentials), ConfigError>>,
    shape: GrantShape,
    margin: Duration,
    cache: CacheSettings,
}

impl fmt::Debug for TokenExchangeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.credentials.as_ref().map(|credentials| {
            credentials
                .as_ref()
                .map_or("unusable", |(_, credentials)| credentials.method())
        });
        f.debug_struct("TokenExchangeBuilder")
            .field("issuer", &self.server.issuer())
            .field("client_authentication", &method)
            .field("grant_shape", &self.shape)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl TokenExchangeBuilder {
    /// Authenticate at the token endpoint with HTTP Basic (`client_secret_basic`, RFC 6749
    /// §2.3.1). The secret is kept in a sensitive header value and never logged or printed.
    pub fn client_secret_basic(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl AsRef<str>,
    ) -> Self {
        let client_id = client_id.into();
        let credentials = ClientCredentials::basic(&client_id, client_secret.as_ref());
        self.credentials = Some(credentials.map(|credentials| (client_id, credentials)));
        self
    }

    /// Authenticate with `client_id` and `client_secret` in the request body
    /// (`client_secret_post`, RFC 6749 §2.3.1).
    pub fn client_secret_post(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        let client_id = client_id.into();
        let credentials = ClientCredentials::Post {
            client_id: client_id.clone(),
            client_secret: client_secret.into(),
        };
        self.credentials = Some(Ok((client_id, credentials)));
        self
    }

    /// The request shape. Default: [`GrantShape::TokenExchange`] (RFC 8693);
    /// [`GrantShape::EntraOnBehalfOf`] for Microsoft Entra ID.
    pub fn grant_shape(mut self, shape: GrantShape) -> Self {
        self.shape = shape;
        self
    }

    /// How long before either token's expiry a cached token stops being handed out. Default:
    /// 30 s ([`DEFAULT_EXPIRY_MARGIN`]), so that the upstream call does not meet a token that
    /// expires on the way. Zero hands tokens out up to their last second.
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Caches issued tokens (see the [module docs](self#the-cache)). Default: `true`; `false`
    /// asks the authorization server on every call.
    pub fn cache(mut self, enabled: bool) -> Self {
        self.cache.enabled = enabled;
        self
    }

    /// The longest an issued token is reused (never beyond either token's expiry minus the
    /// margin). Default: 60 s ([`DEFAULT_TTL`](crate::verify::cache::DEFAULT_TTL), as for
    /// every cache of the crate); raise it to save round trips, since the expiries bound it
    /// anyway. Zero is refused by [`build`](Self::build).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.cache.ttl = ttl;
        self
    }

    /// The most tokens cached at once. Default: 10 000
    /// ([`DEFAULT_MAX_ENTRIES`](crate::verify::cache::DEFAULT_MAX_ENTRIES)). Zero is refused by
    /// [`build`](Self::build).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.cache.max_entries = max_entries;
        self
    }

    /// The HTTP client for the token endpoint. Default: the server's
    /// ([`AuthServer::http_client`]).
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client. Makes no network request: what only the metadata can tell (no
    /// token endpoint, a plain-http one) is [`ExchangeError::Misconfigured`] on use.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::MissingExchangeCredentials`] when no client authentication was given
    ///   (an exchange by an anonymous client would let anyone holding a user's token mint
    ///   tokens for other APIs);
    /// - [`ConfigError::ZeroSetting`] when the cache `ttl` or `max_entries` is zero.
    pub fn build(self) -> Result<TokenExchange, ConfigError> {
        let (client_id, credentials) = match self.credentials {
            None => return Err(ConfigError::MissingExchangeCredentials),
            Some(credentials) => credentials?,
        };
        Ok(TokenExchange {
            inner: Arc::new(Inner {
                server: self.server,
                http: self.http,
                client_id,
                credentials,
                shape: self.shape,
                margin: self.margin,
                cache: self.cache.build()?,
            }),
        })
    }
}

impl TokenExchange {
    /// Starts a builder for exchanges at `server`'s token endpoint; choose the client
    /// authentication with [`client_secret_basic`](TokenExchangeBuilder::client_secret_basic)
    /// or [`client_secret_post`](TokenExchangeBuilder::client_secret_post).
    pub fn builder(server: AuthServer) -> TokenExchangeBuilder {
        TokenExchangeBuilder {
            server,
            http: None,
            credentials: None,
            shape: GrantShape::default(),
            margin: DEFAULT_EXPIRY_MARGIN,
            cache: CacheSettings::default(),
        }
    }

    /// The authorization server asked.
    pub fn auth_server(&self) -> &AuthServer {
        &self.inner.server
    }

    /// The number of cached tokens (approximate while insertions and evictions are pending).
    pub fn cached_tokens(&self) -> u64 {
        self.inner
            .cache
            .as_ref()
            .map_or(0, ExpiringCache::entry_count)
    }

    /// Forgets every cached token.
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.invalidate_all();
        }
    }

    /// A token for the target of `request`, on behalf of the caller whose verified token is
    /// `subject` (what the bearer guard put in the request), from the cache or the token
    /// endpoint.
    ///
    /// # Errors
    ///
    /// [`ExchangeError::InvalidRequest`] when `subject` was issued by another authorization
    /// server than this client's (its token is never sent to a server that did not issue it),
    /// has expired, or `request` cannot be sent; the other variants as described on
    /// [`ExchangeError`].
    pub async fn exchange(
        &self,
        subject: &AuthInfo,
        request: &ExchangeRequest,
    ) -> Result<ExchangedToken, ExchangeError> {
        let issuer = self.inner.server.issuer();
        if subject.issuer != issuer {
            return Err(ExchangeError::invalid_request(format_args!(
                "the subject token was issued by `{}`, not by `{issuer}`, the authorization \
                 server of this token exchange",
                crate::error::bounded_echo(&subject.issuer)
            )));
        }
        self.exchange_subject_token(&subject.token, subject.expires_at, request)
            .await
    }

    /// As [`exchange`](Self::exchange), for a subject token you hold yourself, expiring at
    /// `subject_expires_at` (seconds since the epoch; `None` if unknown, then only the issued
    /// token's expiry and the TTL bound the cache). No issuer check: send only tokens this
    /// authorization server issued.
    ///
    /// # Errors
    ///
    /// As [`exchange`](Self::exchange), except the issuer check.
    pub async fn exchange_subject_token(
        &self,
        subject_token: &str,
        subject_expires_at: Option<i64>,
        request: &ExchangeRequest,
    ) -> Result<ExchangedToken, ExchangeError> {
        if subject_token.is_empty() {
            return Err(ExchangeError::invalid_request("the subject token is empty"));
        }
        if subject_expires_at.is_some_and(|exp| has_expired(exp, unix_now())) {
            return Err(ExchangeError::invalid_request(
                "the subject token has expired",
            ));
        }
        let inner = &self.inner;
        request.check(inner.shape)?;
        let Some(cache) = &inner.cache else {
            return self.request_token(subject_token, request).await;
        };
        let key = request.cache_key(inner.shape, subject_token);
        if let Some(hit) = cache.get(&key).await {
            tracing::trace!(
                subject = %token_fingerprint(subject_token),
                "exchanged token served from cache"
            );
            return Ok(hit.token.clone());
        }
        let outcome = cache
            .try_get_with(key, async {
                match self.request_token(subject_token, request).await {
                    Ok(token) => {
                        let until = [subject_expires_at, token.expires_at]
                            .into_iter()
                            .flatten()
                            .min()
                            .map(|exp| exp.saturating_sub(margin_secs(inner.margin)));
                        let cached = Arc::new(Cached { token, until });
                        if cache.admits(&cached) {
                            Ok(cached)
                        } else {
                            Err(Miss::Uncacheable(cached.token.clone()))
                        }
                    }
                    Err(error) => Err(Miss::Failed(error)),
                }
            })
            .await;
        match outcome {
            Ok(cached) => Ok(cached.token.clone()),
            Err(miss) => match &*miss {
                Miss::Uncacheable(token) => Ok(token.clone()),
                Miss::Failed(error) => Err(error.clone()),
            },
        }
    }

    fn http(&self) -> &HttpClient {
        self.inner
            .http
            .as_ref()
            .unwrap_or_else(|| self.inner.server.http_client())
    }

    /// The token endpoint from the metadata, if it may be sent our secrets.
    async fn token_endpoint(&self) -> Result<String, ExchangeError> {
        let server = &self.inner.server;
        let metadata = server.metadata().await.map_err(discovery_error)?;
        let url = metadata.token_endpoint.as_str();
        if url.is_empty() {
            return Err(ExchangeError::misconfigured(format_args!(
                "the authorization server `{}` publishes no `token_endpoint`",
                server.issuer()
            )));
        }
        if !server.allows_endpoint(url) {
            return Err(ExchangeError::misconfigured(format_args!(
                "the discovered `token_endpoint` `{}` is not on the issuer's origin; the subject \
                 token and the client secret are not sent there unless the origin is allowed \
                 with `AuthServer::with_allowed_endpoint_origins`",
                crate::error::bounded_echo(url)
            )));
        }
        Ok(url.to_owned())
    }

    async fn request_token(
        &self,
        subject_token: &str,
        request: &ExchangeRequest,
    ) -> Result<ExchangedToken, ExchangeError> {
        let inner = &self.inner;
        let url = self.token_endpoint().await?;
        let body = request.form_body(
            inner.shape,
            subject_token,
            &inner.client_id,
            &inner.credentials,
        );
        let http = self.http();
        let builder = http
            .request(Method::POST, &url)
            .map_err(fetch_error)?
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let builder = match &inner.credentials {
            ClientCredentials::Basic(value) | ClientCredentials::Bearer(value) => {
                builder.header(header::AUTHORIZATION, value.clone())
            }
            ClientCredentials::Post { .. } => builder,
        };
        let result = match http.send(&url, builder.body(body)).await {
            Ok(response) => answer::read(
                &response,
                request,
                inner.shape == GrantShape::TokenExchange,
                unix_now(),
            ),
            Err(error) => Err(fetch_error(error)),
        };
        match &result {
            Ok(token) => tracing::debug!(
                subject = %token_fingerprint(subject_token),
                resources = ?request.resources(),
                audiences = ?request.audiences(),
                scopes = ?token.scopes,
                expires_at = ?token.expires_at,
                "token exchanged"
            ),
            Err(error) => tracing::debug!(
                subject = %token_fingerprint(subject_token),
                resources = ?request.resources(),
                audiences = ?request.audiences(),
                %error,
                "token exchange failed"
            ),
        }
        result
    }
}

fn margin_secs(margin: Duration) -> i64 {
    i64::try_from(margin.as_secs()).unwrap_or(i64::MAX)
}

/// Metadata that cannot be fetched now is an outage; metadata that cannot be trusted is ours
/// to fix (the same split as for the verifiers).
fn discovery_error(error: DiscoveryError) -> ExchangeError {
    match VerifyError::from(error) {
        VerifyError::Unavailable { reason } => ExchangeError::Unavailable { reason },
        other => ExchangeError::misconfigured(other),
    }
}

/// A failed request: a URL the client refuses is our configuration, an oversized answer is
/// malformed, anything else (timeout, network, redirect) an outage.
fn fetch_error(error: FetchError) -> ExchangeError {
    match error {
        FetchError::InvalidUrl { .. }
        | FetchError::InsecureUrl { .. }
        | FetchError::Client { .. } => ExchangeError::misconfigured(error),
        FetchError::TooLarge { .. } | FetchError::InvalidJson { .. } => {
            ExchangeError::malformed(error)
        }
        _ => ExchangeError::unavailable(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthServerType;

    fn server() -> AuthServer {
        AuthServer::discover("https://as.example.com", AuthServerType::OAuth)
    }

    #[test]
    fn building_needs_credentials_and_nonzero_cache_settings() {
        assert!(matches!(
            TokenExchange::builder(server()).build(),
            Err(ConfigError::MissingExchangeCredentials)
        ));
        for builder in [
            TokenExchange::builder(server()).ttl(Duration::ZERO),
            TokenExchange::builder(server()).max_entries(0),
        ] {
            assert!(matches!(
                builder.client_secret_post("id", "secret").build(),
                Err(ConfigError::ZeroSetting { .. })
            ));
        }
        let exchange = TokenExchange::builder(server())
            .client_secret_basic("id", "s3cr3t-value")
            .build()
            .unwrap();
        let printed = format!("{exchange:?}");
        assert!(printed.contains("client_secret_basic"), "{printed}");
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
    }

    #[tokio::test]
    async fn subjects_of_other_issuers_or_expired_ones_are_never_sent() {
        let exchange = TokenExchange::builder(server())
            .client_secret_post("id", "secret")
            .build()
            .unwrap();
        let request = ExchangeRequest::for_audience("api");
        let foreign = AuthInfo::new("t", "https://other.example.com");
        assert!(matches!(
            exchange.exchange(&foreign, &request).await,
            Err(ExchangeError::InvalidRequest { .. })
        ));
        let expired = AuthInfo::new("t", "https://as.example.com").with_expires_at(1);
        assert!(matches!(
            exchange.exchange(&expired, &request).await,
            Err(ExchangeError::InvalidRequest { .. })
        ));
        assert!(matches!(
            exchange.exchange_subject_token("", None, &request).await,
            Err(ExchangeError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn oversized_answers_are_malformed_and_refused_urls_misconfiguration() {
        assert!(matches!(
            fetch_error(FetchError::TooLarge {
                url: "https://x".into(),
                limit: 1
            }),
            ExchangeError::MalformedAnswer { .. }
        ));
        assert!(matches!(
            fetch_error(FetchError::InsecureUrl {
                url: "http://x".into()
            }),
            ExchangeError::Misconfigured { .. }
        ));
        assert!(
            fetch_error(FetchError::Timeout {
                url: "https://x".into(),
                timeout: Duration::from_secs(1)
            })
            .is_retryable()
        );
    }
}
