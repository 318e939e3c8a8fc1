//! [`AuthServer`]: a trusted authorization server, resolved or discovered on first use.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde_json::Value;

use super::fetch::{
    AuthServerConfig, AuthServerType, DiscoveryOptions, fetch_server_config_with_options,
};
use super::validate::validate_server_config;
use crate::error::DiscoveryError;
use crate::http_client::HttpClient;
use crate::metadata::AuthorizationServerMetadata;

/// Default time after which discovered metadata is fetched again (1 hour).
pub const DEFAULT_METADATA_REFRESH: Duration = Duration::from_secs(3600);
/// Default longest wait between two attempts after failed fetches (30 s): the backoff starts
/// at [`FIRST_METADATA_RETRY`] and doubles up to this.
pub const DEFAULT_METADATA_RETRY: Duration = Duration::from_secs(30);
/// The wait after the first failed fetch before the next attempt (1 s), doubling after each
/// further failure up to the retry interval.
pub const FIRST_METADATA_RETRY: Duration = Duration::from_secs(1);

type MetadataResult = Result<Arc<AuthorizationServerMetadata>, DiscoveryError>;

/// A trusted authorization server: its issuer and, once known, its metadata.
///
/// Either *resolved* (metadata given up front, never fetched) or *discovered on first use*
/// (mcp-auth 0.2's discovery config, useful where startup must not do network I/O):
///
/// - concurrent first calls to [`metadata`](Self::metadata) share one fetch;
/// - a failed fetch is retried with a backoff: calls in the meantime get the same error at once
///   (a flood of requests while the server is down costs no extra fetches), the next attempt
///   comes 1 s later, then 2 s, 4 s, ... up to [`with_retry_interval`](Self::with_retry_interval)
///   (default 30 s); the first success resets it, so a server that heals is used again within
///   about a second of the next attempt. The first failure is logged at `error`, later ones at
///   `warn` (at most once per attempt, so at a bounded rate), and the recovery at `info`;
/// - discovered metadata is refreshed after [`with_refresh_interval`](Self::with_refresh_interval)
///   (default 1 h), so an authorization server can move its `jwks_uri`; if a refresh fails, the
///   previous document keeps being used while the refresh is retried with the same backoff;
/// - the fetched document's `issuer` must equal the configured issuer, and it must pass
///   [`validate_server_config`] (errors refuse it, warnings are logged).
///
/// Cheap to clone; clones share the cache.
///
/// ```
/// use std::time::Duration;
/// use mcp_auth::{AuthServer, AuthServerType};
///
/// let logto = AuthServer::discover("https://tenant.logto.app/oidc", AuthServerType::Oidc)
///     .with_refresh_interval(Duration::from_secs(600));
/// assert_eq!(logto.issuer(), "https://tenant.logto.app/oidc");
/// ```
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    server_type: AuthServerType,
    options: DiscoveryOptions,
    refresh_interval: Duration,
    retry_interval: Duration,
    /// Origins besides the issuer's that discovered endpoints may be on.
    allowed_endpoint_origins: Vec<url::Origin>,
    /// `None` for a resolved server.
    discovery: Option<Mutex<DiscoveryState>>,
    resolved: Option<Arc<AuthorizationServerMetadata>>,
}

#[derive(Default)]
struct DiscoveryState {
    cached: Option<(Arc<AuthorizationServerMetadata>, Instant)>,
    in_flight: Option<Shared<BoxFuture<'static, MetadataResult>>>,
    /// The failures since the last success, if the last attempt failed.
    failing: Option<Failing>,
}

/// Consecutive failed fetches: what the last one said, and when the next may start.
struct Failing {
    error: DiscoveryError,
    attempts: u32,
    retry_at: Instant,
}

/// The wait after `attempts` consecutive failures: 1 s, 2 s, 4 s, ... capped at `max`.
fn backoff(attempts: u32, max: Duration) -> Duration {
    crate::backoff::retry_after(FIRST_METADATA_RETRY, attempts, max)
}

impl fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.inner.issuer)
            .field("server_type", &self.inner.server_type)
            .field("resolved", &self.inner.resolved.is_some())
            .finish()
    }
}

impl AuthServer {
    /// A server whose metadata is fetched on first use from the well-known location(s) of
    /// `server_type` (see [`well_known_urls`](super::well_known_urls)).
    pub fn discover(issuer: impl Into<String>, server_type: AuthServerType) -> Self {
        Self::build(
            issuer.into(),
            server_type,
            None,
            DiscoveryOptions::default(),
        )
    }

    /// A server whose metadata is already known (for example from [`fetch_server_config`](super::fetch_server_config)).
    pub fn from_config(config: AuthServerConfig) -> Self {
        let issuer = config.metadata.issuer.clone();
        Self::build(
            issuer,
            config.server_type,
            Some(Arc::new(config.metadata)),
            DiscoveryOptions::default(),
        )
    }

    /// A server from its metadata document ([`AuthServerType::OAuth`]).
    pub fn from_metadata(metadata: AuthorizationServerMetadata) -> Self {
        Self::from_config(AuthServerConfig::new(metadata, AuthServerType::OAuth))
    }

    fn build(
        issuer: String,
        server_type: AuthServerType,
        resolved: Option<Arc<AuthorizationServerMetadata>>,
        options: DiscoveryOptions,
    ) -> Self {
        let discovery = resolved
            .is_none()
            .then(|| Mutex::new(DiscoveryState::default()));
        options.http.trust_host_of(&issuer);
        Self {
            inner: Arc::new(Inner {
                issuer,
                server_type,
                options,
                refresh_interval: DEFAULT_METADATA_REFRESH,
                retry_interval: DEFAULT_METADATA_RETRY,
                allowed_endpoint_origins: Vec::new(),
                discovery,
                resolved,
            }),
        }
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let inner = &self.inner;
        let mut fresh = Inner {
            issuer: inner.issuer.clone(),
            server_type: inner.server_type,
            options: inner.options.clone(),
            refresh_interval: inner.refresh_interval,
            retry_interval: inner.retry_interval,
            allowed_endpoint_origins: inner.allowed_endpoint_origins.clone(),
            discovery: inner
                .resolved
                .is_none()
                .then(|| Mutex::new(DiscoveryState::default())),
            resolved: inner.resolved.clone(),
        };
        change(&mut fresh);
        fresh.options.http.trust_host_of(&fresh.issuer);
        Self {
            inner: Arc::new(fresh),
        }
    }

    /// Origins other than the issuer's where discovered `jwks_uri`, `userinfo_endpoint` and
    /// `introspection_endpoint` may be. Default: none, so they must share the issuer's origin
    /// (scheme, host and port).
    ///
    /// A discovered document is network input: if it could name any endpoint, a tampered
    /// document would send users' tokens and the resource server's client secret anywhere.
    /// A document naming an endpoint elsewhere is refused ([`DiscoveryError::ForeignEndpoint`];
    /// requests get 500 until it is fixed). Providers that host their keys on another origin
    /// need this (Google, for example, serves the keys of `https://accounts.google.com` from
    /// `https://www.googleapis.com`); the providers in `docs/providers/` all keep them on the
    /// issuer's origin. Metadata given up front ([`from_metadata`](Self::from_metadata),
    /// [`from_config`](Self::from_config)) is your own configuration and is not checked.
    ///
    /// ```
    /// use mcp_auth::{AuthServer, AuthServerType};
    ///
    /// let google = AuthServer::discover("https://accounts.google.com", AuthServerType::Oidc)
    ///     .with_allowed_endpoint_origins([url::Url::parse("https://www.googleapis.com")?]);
    /// # let _ = google;
    /// # Ok::<(), url::ParseError>(())
    /// ```
    #[must_use]
    pub fn with_allowed_endpoint_origins(
        self,
        origins: impl IntoIterator<Item = url::Url>,
    ) -> Self {
        let origins: Vec<url::Origin> = origins.into_iter().map(|url| url.origin()).collect();
        self.rebuild(|inner| inner.allowed_endpoint_origins = origins)
    }

    /// The HTTP client used for this server's metadata, and by verifiers for its JWKS,
    /// userinfo and introspection endpoints. Default: [`HttpClient::default`].
    #[must_use]
    pub fn with_http_client(self, http: HttpClient) -> Self {
        self.rebuild(|inner| inner.options = inner.options.clone().http_client(http))
    }

    /// A hook applied to the raw discovered JSON before parsing. Default: none.
    #[must_use]
    pub fn with_transform(
        self,
        transform: impl Fn(Value) -> Value + Send + Sync + 'static,
    ) -> Self {
        self.rebuild(|inner| inner.options = inner.options.clone().transform(transform))
    }

    /// How long discovered metadata is used before it is fetched again. Default: 1 hour.
    #[must_use]
    pub fn with_refresh_interval(self, interval: Duration) -> Self {
        self.rebuild(|inner| inner.refresh_interval = interval)
    }

    /// The longest wait between attempts after failed fetches: the backoff starts at 1 s
    /// ([`FIRST_METADATA_RETRY`], or this interval if shorter) and doubles up to it. Meanwhile
    /// callers get the last error at once (503), or the previous document if there is one.
    /// Default: 30 s ([`DEFAULT_METADATA_RETRY`]).
    #[must_use]
    pub fn with_retry_interval(self, interval: Duration) -> Self {
        self.rebuild(|inner| inner.retry_interval = interval)
    }

    /// The issuer identifier, exactly as configured.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The discovery document type.
    pub fn server_type(&self) -> AuthServerType {
        self.inner.server_type
    }

    /// Whether the metadata was given up front (no discovery).
    pub fn is_resolved(&self) -> bool {
        self.inner.resolved.is_some()
    }

    /// The HTTP client for this server's endpoints.
    pub fn http_client(&self) -> &HttpClient {
        &self.inner.options.http
    }

    /// The metadata if it is known now, without any network request.
    pub fn cached_metadata(&self) -> Option<Arc<AuthorizationServerMetadata>> {
        if let Some(resolved) = &self.inner.resolved {
            return Some(resolved.clone());
        }
        let state = self.inner.discovery.as_ref()?;
        let state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.cached.as_ref().map(|(metadata, _)| metadata.clone())
    }

    /// The metadata: resolved, cached, or fetched now (see the type docs for the caching rules).
    ///
    /// # Errors
    ///
    /// A [`DiscoveryError`] when the first fetch fails, the document names another issuer,
    /// or it does not pass [`validate_server_config`].
    pub async fn metadata(&self) -> Result<Arc<AuthorizationServerMetadata>, DiscoveryError> {
        if let Some(resolved) = &self.inner.resolved {
            return Ok(resolved.clone());
        }
        let Some(state) = &self.inner.discovery else {
            return Err(DiscoveryError::InvalidIssuer {
                issuer: self.inner.issuer.clone(),
                reason: "no metadata and no discovery state".into(),
            });
        };
        let fetch = {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((metadata, fetched_at)) = &state.cached
                && fetched_at.elapsed() < self.inner.refresh_interval
            {
                return Ok(metadata.clone());
            }
            match &state.in_flight {
                Some(fetch) => fetch.clone(),
                None => {
                    if let Some(failing) = &state.failing
                        && Instant::now() < failing.retry_at
                    {
                        // Backing off: the previous document if there is one, else the error.
                        crate::metrics::discovery_refresh_suppressed();
                        return match &state.cached {
                            Some((stale, _)) => Ok(stale.clone()),
                            None => Err(failing.error.clone()),
                        };
                    }
                    let this = self.clone();
                    let fetch = async move { this.refresh().await }.boxed().shared();
                    state.in_flight = Some(fetch.clone());
                    fetch
                }
            }
        };
        fetch.await
    }

    /// One fetch, shared by every caller that arrived while it ran; stores its outcome.
    async fn refresh(&self) -> MetadataResult {
        let timer = crate::metrics::Timer::start();
        let result = self.fetch_and_check().await;
        crate::metrics::discovery_fetch(&timer, result.is_ok());
        let Some(state) = &self.inner.discovery else {
            return result.map(Arc::new);
        };
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_flight = None;
        let issuer = &self.inner.issuer;
        match result {
            Ok(metadata) => {
                if let Some(failing) = state.failing.take() {
                    tracing::info!(
                        issuer = %issuer,
                        failed_attempts = failing.attempts,
                        "authorization server metadata fetched again after failures"
                    );
                }
                let metadata = Arc::new(metadata);
                state.cached = Some((metadata.clone(), Instant::now()));
                Ok(metadata)
            }
            Err(error) => {
                let attempts = state.failing.as_ref().map_or(0, |f| f.attempts) + 1;
                let wait = backoff(attempts, self.inner.retry_interval);
                let stale = state.cached.as_ref().map(|(stale, _)| stale.clone());
                if attempts == 1 {
                    tracing::error!(
                        issuer = %issuer,
                        %error,
                        retry_in = ?wait,
                        using_previous_document = stale.is_some(),
                        "cannot fetch the authorization server metadata; requests that need it \
                         get 503 until it can be fetched"
                    );
                } else {
                    tracing::warn!(
                        issuer = %issuer,
                        %error,
                        attempts,
                        retry_in = ?wait,
                        using_previous_document = stale.is_some(),
                        "the authorization server metadata still cannot be fetched"
                    );
                }
                let now = Instant::now();
                state.failing = Some(Failing {
                    error: error.clone(),
                    attempts,
                    // An interval too large for the clock means "do not retry for a long time".
                    retry_at: now
                        .checked_add(wait)
                        .unwrap_or(now + Duration::from_secs(86_400)),
                });
                stale.ok_or(error)
            }
        }
    }

    async fn fetch_and_check(&self) -> Result<AuthorizationServerMetadata, DiscoveryError> {
        let config = fetch_server_config_with_options(
            &self.inner.issuer,
            self.inner.server_type,
            &self.inner.options,
        )
        .await?;
        let result = validate_server_config(&config);
        if !result.is_valid {
            return Err(DiscoveryError::Invalid {
                issuer: self.inner.issuer.clone(),
                result,
            });
        }
        log_warnings(&self.inner.issuer, &result);
        self.check_endpoint_origins(&config.metadata)?;
        Ok(config.metadata)
    }

    /// Whether a discovered endpoint at `url` may be used: on the issuer's origin or an allowed
    /// one ([`with_allowed_endpoint_origins`](Self::with_allowed_endpoint_origins)); always
    /// for metadata given up front (the operator's own configuration).
    pub(crate) fn allows_endpoint(&self, url: &str) -> bool {
        if self.is_resolved() {
            return true;
        }
        let origin = url::Url::parse(url).map(|url| url.origin()).ok();
        let issuer = url::Url::parse(&self.inner.issuer)
            .map(|url| url.origin())
            .ok();
        origin.is_some_and(|origin| {
            Some(&origin) == issuer.as_ref()
                || self.inner.allowed_endpoint_origins.contains(&origin)
        })
    }

    /// Refuses a document whose outbound endpoints are neither on the issuer's origin nor on
    /// an allowed one.
    fn check_endpoint_origins(
        &self,
        metadata: &AuthorizationServerMetadata,
    ) -> Result<(), DiscoveryError> {
        let issuer =
            url::Url::parse(&self.inner.issuer).map_err(|e| DiscoveryError::InvalidIssuer {
                issuer: self.inner.issuer.clone(),
                reason: format!("not an absolute URL ({e})").into(),
            })?;
        let endpoints = [
            ("jwks_uri", &metadata.jwks_uri),
            ("userinfo_endpoint", &metadata.userinfo_endpoint),
            ("introspection_endpoint", &metadata.introspection_endpoint),
        ];
        for (field, value) in endpoints {
            let Some(value) = value else { continue };
            let origin = url::Url::parse(value).map(|url| url.origin()).ok();
            let allowed = origin.as_ref().is_some_and(|origin| {
                *origin == issuer.origin() || self.inner.allowed_endpoint_origins.contains(origin)
            });
            if !allowed {
                return Err(DiscoveryError::ForeignEndpoint {
                    issuer: self.inner.issuer.clone(),
                    field,
                    url: crate::error::bounded_echo(value),
                });
            }
        }
        Ok(())
    }
}

/// Logs validation warnings once, in one message.
pub(crate) fn log_warnings(issuer: &str, result: &super::ValidationResult) {
    if !result.warnings.is_empty() {
        let list: Vec<&str> = result.warnings.iter().map(|w| w.description).collect();
        tracing::warn!(
            issuer,
            warnings = ?list,
            "the authorization server configuration has warnings"
        );
    }
}
