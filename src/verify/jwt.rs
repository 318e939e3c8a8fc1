//! [`JwtVerifier`]: verifies JWT access tokens locally with the keys each trusted
//! authorization server publishes at its `jwks_uri`.
//!
//! ```no_run
//! use std::time::Duration;
//! use mcp_auth::verify::{JwsAlgorithm, JwtVerifier};
//! use mcp_auth::{AuthServer, AuthServerType, TokenVerifier};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = JwtVerifier::builder()
//!     // Keys come from the `jwks_uri` in this server's (discovered) metadata.
//!     .authorization_server(AuthServer::discover("https://tenant.logto.app/oidc", AuthServerType::Oidc))
//!     // Or name the JWKS directly.
//!     .issuer_jwks("https://auth.example.com", "https://auth.example.com/jwks.json")
//!     .algorithms([JwsAlgorithm::Rs256, JwsAlgorithm::Es256])
//!     .leeway(Duration::from_secs(30))
//!     .build()?;
//!
//! let info = verifier.verify("eyJhbGciOiJSUzI1NiIs...").await?;
//! println!("{} via {:?}", info.subject.unwrap_or_default(), info.client_id);
//! # Ok(())
//! # }
//! ```
//!
//! # What is checked, in order
//!
//! 1. **Shape, without any network request**: three base64url segments (no padding); the
//!    header is a JSON object whose `alg` is on the allow-list (asymmetric algorithms only;
//!    `none` in any spelling and `HS*` are always refused); no `crit` (no extension is
//!    understood); no `jku`, `x5u`, `jwk` or `x5c` (a token never chooses its own key, and
//!    those URLs are never fetched); in strict RFC 9068 mode `typ` is `at+jwt` or
//!    `application/at+jwt` (any case). The payload is a JSON object with a non-empty `iss`.
//! 2. **Issuer**: `iss` must be exactly one of the trusted issuers, else
//!    [`VerifyError::UntrustedIssuer`], still before any network request.
//! 3. **Key**: only that issuer's JWKS is consulted (RFC 8725 §3.8: keys of issuer A never
//!    verify a token claiming issuer B). The key is chosen by `kid` (a token without `kid` is
//!    accepted only if exactly one key fits its algorithm); a JWK's `alg`, `use`, `key_ops`,
//!    key type and curve must fit. An unknown `kid` triggers one rate-limited JWKS refresh
//!    (see [`JwtVerifierBuilder::jwks_refresh_cooldown`]).
//! 4. **Signature**, by `jsonwebtoken`'s crypto provider (aws-lc-rs), for exactly the header's
//!    algorithm and the selected key; then **times**: `exp` required and not past, `nbf` (when
//!    present) not in the future, both with the configured leeway.
//! 5. **Claims**: `sub` is a non-empty string; in strict RFC 9068 mode `client_id`, `jti`,
//!    `iat` and `aud` are present too. `aud` is *not* compared here: the bearer guard checks
//!    it against the protected resource.
//!
//! Failures are [`VerifyError::InvalidToken`] (401) with a short reason, except: an untrusted
//! issuer ([`VerifyError::UntrustedIssuer`]); keys that cannot be fetched while no cached key
//! fits ([`VerifyError::Unavailable`], 503); and an authorization server whose metadata has no
//! `jwks_uri` ([`VerifyError::Misconfigured`], 500).
//!
//! # The verified-token cache
//!
//! A client reuses its access token for the token's whole lifetime, so the same token comes
//! back request after request. The verifier remembers each successful verification (on by
//! default; see [`JwtVerifierBuilder::cache`]) and answers a token it has seen
//! without checking its signature again: about 1 µs instead of 20–45 µs. This is safe because
//! a hit is only served when a full verification would succeed at that moment too:
//!
//! - the key is the **SHA-256 of the whole token**: a different token cannot find the entry
//!   (that would take a SHA-256 collision), and the token itself is not stored;
//! - an entry lives **`min(ttl, exp − now)`**, 60 s at most by default: never past the token's
//!   expiry (a token inside its leeway is verified each time and not cached);
//! - every hit **looks the signing key up again**, exactly as a fresh verification does (same
//!   issuer, `kid` and algorithm, same JWKS refresh rules), and is served only if it is still
//!   the key that verified the signature. When the JWKS is refreshed without that key (a
//!   rotation, or a compromised key taken out), the cached verifications it made end at once;
//! - only successes are cached, **bounded** to 10 000 entries by default, the bound of every
//!   verification cache ([`DEFAULT_MAX_ENTRIES`](super::cache::DEFAULT_MAX_ENTRIES); about
//!   4 KB each for a token with a dozen claims, so about 40 MB at most, spent only when that
//!   many clients are active within the TTL; see [`JwtVerifierBuilder::max_entries`]);
//!   failures, untrusted issuers and malformed tokens are never stored, so invalid tokens
//!   cannot fill the cache;
//! - issuer, audience and scopes are checked by the bearer guard on every request, hit or miss.
//!
//! What a cache cannot change: a JWT stays valid until its `exp` whatever happens at the
//! authorization server (revocation needs introspection), with or without this cache.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::cache::{CacheSettings, Expiring, ExpiringCache, token_hash, with_token, without_token};
use super::jwks::{JwkKey, JwksCache, JwksSettings};
use super::{JwsAlgorithm, TokenVerifier};
use crate::auth_info::{AuthInfo, numeric_date};
use crate::discovery::AuthServer;
use crate::error::{ConfigError, VerifyError};
use crate::http_client::HttpClient;
use crate::time::unix_now;

/// Default clock-skew leeway for `exp` and `nbf` (60 s).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Largest leeway [`JwtVerifierBuilder::leeway`] accepts (5 minutes; RFC 7519 speaks of "a few
/// minutes" at most).
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default minimum time between two fetches of one JWKS (30 s).
pub const DEFAULT_JWKS_REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
/// Default age after which a JWKS is fetched again (10 minutes).
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// Default maximum number of keys kept from one JWKS (64).
pub const DEFAULT_MAX_KEYS: usize = 64;
/// Longest token looked at; longer ones are rejected unparsed (64 KiB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Longest untrusted issuer echoed in [`VerifyError::UntrustedIssuer`].
const MAX_ECHOED_ISSUER: usize = 256;

/// Verifies JWT access tokens with the JWKS of each trusted authorization server.
///
/// Build one with [`JwtVerifier::builder`]; see the [module docs](self) for every check it
/// makes. Keys are fetched on first use and cached per `jwks_uri` (see the builder's JWKS
/// settings), and successful verifications are remembered (see
/// [the verified-token cache](self#the-verified-token-cache)). Cheap to clone: clones share
/// the key caches and the verified-token cache.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<TrustedIssuer>,
    algorithms: Vec<JwsAlgorithm>,
    /// Leeway for `exp` and `nbf`, in seconds.
    leeway: i64,
    strict_rfc9068: bool,
    /// Prepended to granted scopes that lack it (see `JwtVerifierBuilder::scope_prefix`).
    scope_prefix: Option<String>,
    jwks_settings: JwksSettings,
    /// Successful verifications, when the cache is on.
    verified: Option<ExpiringCache<Verified>>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuers", &self.trusted_issuers().collect::<Vec<_>>())
            .field("algorithms", &self.allowed_algorithms().collect::<Vec<_>>())
            .field("strict_rfc9068", &self.inner.strict_rfc9068)
            .field("scope_prefix", &self.inner.scope_prefix)
            .field("jwks", &self.inner.jwks_settings)
            .field("verified_token_cache", &self.inner.verified)
            .finish_non_exhaustive()
    }
}

/// A trusted issuer and where its keys come from.
struct TrustedIssuer {
    issuer: String,
    source: KeySource,
}

enum KeySource {
    /// A JWKS URL given directly.
    Jwks(Arc<JwksCache>),
    /// The `jwks_uri` of an authorization server's metadata, resolved on first use.
    AuthServer {
        server: AuthServer,
        http: HttpClient,
        cache: RwLock<Option<Arc<JwksCache>>>,
    },
}

impl TrustedIssuer {
    /// The key cache for this issuer (resolving the `jwks_uri` on first use).
    async fn jwks(&self, settings: JwksSettings) -> Result<Arc<JwksCache>, VerifyError> {
        match &self.source {
            KeySource::Jwks(cache) => Ok(Arc::clone(cache)),
            KeySource::AuthServer { cache, .. } => {
                let known = cache.read().unwrap_or_else(PoisonError::into_inner).clone();
                match known {
                    Some(cache) => Ok(cache),
                    None => self.resolve(settings).await,
                }
            }
        }
    }

    /// Reads the `jwks_uri` from the authorization server's metadata and returns its cache,
    /// replacing the cache if the URI changed.
    async fn resolve(&self, settings: JwksSettings) -> Result<Arc<JwksCache>, VerifyError> {
        let KeySource::AuthServer {
            server,
            http,
            cache,
        } = &self.source
        else {
            return self.jwks_direct();
        };
        let metadata = server.metadata().await?;
        let Some(uri) = metadata.jwks_uri.as_deref().filter(|uri| !uri.is_empty()) else {
            return Err(VerifyError::misconfigured(format_args!(
                "the authorization server `{}` publishes no `jwks_uri`, so JWT access tokens \
                 cannot be verified locally; use the userinfo or introspection verifier, or give \
                 the JWKS URL with `JwtVerifierBuilder::issuer_jwks`",
                self.issuer
            )));
        };
        let mut slot = cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = slot.as_ref().filter(|existing| existing.uri() == uri) {
            return Ok(Arc::clone(existing));
        }
        if let Err(error) = http.check_url(uri) {
            return Err(VerifyError::misconfigured(format_args!(
                "the `jwks_uri` of `{}` cannot be used: {error}",
                self.issuer
            )));
        }
        if let Some(previous) = slot.as_ref() {
            tracing::info!(
                issuer = %self.issuer,
                from = previous.uri(),
                to = uri,
                "the authorization server moved its jwks_uri"
            );
        }
        let fresh = Arc::new(JwksCache::new(uri.to_owned(), http.clone(), settings));
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    fn jwks_direct(&self) -> Result<Arc<JwksCache>, VerifyError> {
        match &self.source {
            KeySource::Jwks(cache) => Ok(Arc::clone(cache)),
            KeySource::AuthServer { .. } => Err(VerifyError::misconfigured("no JWKS source")),
        }
    }

    /// The key for a token of this issuer.
    async fn key(
        &self,
        kid: Option<&str>,
        alg: JwsAlgorithm,
        settings: JwksSettings,
    ) -> Result<Arc<JwkKey>, VerifyError> {
        let cache = self.jwks(settings).await?;
        let result = cache.key(kid, alg).await;
        match (&result, &self.source) {
            (Err(_), KeySource::AuthServer { .. }) => {
                // The server may have moved its jwks_uri since (its metadata is refreshed):
                // look once more at the current metadata. Errors here change nothing.
                match self.resolve(settings).await {
                    Ok(moved) if !Arc::ptr_eq(&moved, &cache) => moved.key(kid, alg).await,
                    _ => result,
                }
            }
            _ => result,
        }
    }
}

/// Builder for [`JwtVerifier`]; every setter documents its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct JwtVerifierBuilder {
    sources: Vec<IssuerSpec>,
    algorithms: Option<Vec<JwsAlgorithm>>,
    leeway: Duration,
    strict_rfc9068: bool,
    scope_prefix: Option<String>,
    http: Option<HttpClient>,
    refresh_cooldown: Duration,
    max_age: Duration,
    max_keys: usize,
    cache: CacheSettings,
}

#[derive(Debug, Clone)]
enum IssuerSpec {
    AuthServer(AuthServer),
    Jwks { issuer: String, jwks_uri: String },
}

impl Default for JwtVerifierBuilder {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            algorithms: None,
            leeway: DEFAULT_LEEWAY,
            strict_rfc9068: false,
            scope_prefix: None,
            http: None,
            refresh_cooldown: DEFAULT_JWKS_REFRESH_COOLDOWN,
            max_age: DEFAULT_JWKS_MAX_AGE,
            max_keys: DEFAULT_MAX_KEYS,
            cache: CacheSettings::default(),
        }
    }
}

impl JwtVerifierBuilder {
    /// Trusts tokens whose `iss` is exactly `server.issuer()`, verified with the keys at the
    /// `jwks_uri` of its metadata ([`AuthServer::metadata`], fetched on first use if the
    /// server is discovered). Repeatable, one call per trusted server.
    pub fn authorization_server(mut self, server: AuthServer) -> Self {
        self.sources.push(IssuerSpec::AuthServer(server));
        self
    }

    /// Trusts tokens whose `iss` is exactly `issuer`, verified with the keys at `jwks_uri`
    /// (no metadata discovery). Repeatable.
    pub fn issuer_jwks(mut self, issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        self.sources.push(IssuerSpec::Jwks {
            issuer: issuer.into(),
            jwks_uri: jwks_uri.into(),
        });
        self
    }

    /// The algorithms accepted (the token's `alg` must be one of them). Default: all of
    /// [`JwsAlgorithm::ALL`] (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA). Shared-secret
    /// algorithms (`HS*`) and `none` cannot be allowed at all. An empty list is refused by
    /// [`build`](Self::build).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = JwsAlgorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Clock-skew leeway applied to `exp` and `nbf`, in whole seconds (fractions are dropped).
    /// Default: 60 s ([`DEFAULT_LEEWAY`]); at most 5 minutes ([`MAX_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Enforces the RFC 9068 JWT access-token profile: header `typ` must be `at+jwt` or
    /// `application/at+jwt` (case-insensitive), and `client_id`, `jti`, `iat` and `aud` must
    /// be present. Default: `false`, because many authorization servers (like those mcp-auth
    /// users connect to) issue access tokens with `typ: JWT` or without `client_id`; turn it on
    /// when yours follows RFC 9068, it also keeps ID tokens from passing as access tokens.
    pub fn strict_rfc9068(mut self, strict: bool) -> Self {
        self.strict_rfc9068 = strict;
        self
    }

    /// Reads every granted scope that does not start with `prefix` as `prefix` followed by
    /// the scope. Default: scopes are read as the token names them.
    ///
    /// For providers whose tokens name a permission without the resource it belongs to,
    /// while clients must request it with the resource: Microsoft Entra ID tokens carry
    /// `scp: "access_as_user"` for a permission requested as
    /// `api://<api-client-id>/access_as_user`. With the prefix `api://<api-client-id>/`,
    /// [`AuthInfo::scopes`] holds the full names, so `required_scopes`, per-tool scopes,
    /// `scopes_supported` and the `scope` of every challenge all use the names clients must
    /// request. The claims in [`AuthInfo::claims`] are left as the token has them.
    ///
    /// ```
    /// # fn main() -> Result<(), mcp_auth::ConfigError> {
    /// use mcp_auth::verify::JwtVerifier;
    ///
    /// let verifier = JwtVerifier::builder()
    ///     .issuer_jwks(
    ///         "https://login.microsoftonline.com/my-tenant/v2.0",
    ///         "https://login.microsoftonline.com/my-tenant/discovery/v2.0/keys",
    ///     )
    ///     .scope_prefix("api://my-api-client-id/")
    ///     .build()?;
    /// # let _ = verifier;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`build`](Self::build) refuses an empty prefix.
    pub fn scope_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.scope_prefix = Some(prefix.into());
        self
    }

    /// The HTTP client for every JWKS fetch. Default: each authorization server's own client
    /// ([`AuthServer::http_client`]), and [`HttpClient::default`] for
    /// [`issuer_jwks`](Self::issuer_jwks) entries.
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Minimum time between two fetches of one JWKS. A token with an unknown `kid` triggers a
    /// refresh only if the last fetch is older than this; otherwise it is rejected without a
    /// request, so random `kid`s cannot make us hammer the authorization server. After a
    /// failed fetch it is also the time before the next try. Default: 30 s
    /// ([`DEFAULT_JWKS_REFRESH_COOLDOWN`]); must not be zero.
    pub fn jwks_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.refresh_cooldown = cooldown;
        self
    }

    /// Age after which a JWKS is fetched again. The refresh runs in the background while the
    /// cached keys keep working; if it fails, they stay in use (and the failure is logged).
    /// Default: 10 minutes ([`DEFAULT_JWKS_MAX_AGE`]); must not be zero.
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Most keys kept from one JWKS document; further keys are ignored with a warning.
    /// Default: 64 ([`DEFAULT_MAX_KEYS`]); must be at least 1.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Remembers successful verifications, so that a token presented again (a client reuses
    /// its access token for its whole lifetime) skips the signature check. Default: `true`;
    /// `false` turns the verified-token cache off.
    ///
    /// The cache never accepts a token that a fresh verification would refuse at that moment
    /// (see [the module docs](self#the-verified-token-cache)): entries are keyed by the
    /// SHA-256 of the whole token, end at the token's `exp` (and after [`ttl`](Self::ttl)),
    /// and each hit checks that the key that verified the signature is still the key the JWKS
    /// cache selects for the token, so a key removed from the JWKS stops its cached tokens at
    /// the same moment as uncached ones. Failures are never cached. The bearer guard checks
    /// issuer, audience and scopes on every request, hit or miss.
    pub fn cache(mut self, enabled: bool) -> Self {
        self.cache.enabled = enabled;
        self
    }

    /// How long a successful verification is remembered, at most (never past the token's
    /// `exp`). Default: 60 s ([`DEFAULT_TTL`](crate::verify::cache::DEFAULT_TTL), the same for
    /// every verifier); zero is refused by [`build`](Self::build) (turn the cache off with
    /// [`cache(false)`](Self::cache)).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.cache.ttl = ttl;
        self
    }

    /// The most verifications remembered at once; when full, the entries least likely to be
    /// used again make room. Default: 10 000
    /// ([`DEFAULT_MAX_ENTRIES`](crate::verify::cache::DEFAULT_MAX_ENTRIES), the same for every
    /// verifier); zero is refused by [`build`](Self::build) (turn the cache off with
    /// [`cache(false)`](Self::cache)). An entry takes about 4 KB for a token with a dozen
    /// claims (measured: 100 000 distinct tokens raise the peak resident memory by about 4 MB
    /// at 1 000 entries, 38 MB at 10 000), so the memory follows the number of clients active
    /// within the TTL, up to about 40 MB; a miss costs one signature check.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.cache.max_entries = max_entries;
        self
    }

    /// Builds the verifier. Makes no network request.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when no issuer is configured, an issuer is empty or listed
    /// twice, a JWKS URL is invalid or plain http on a non-loopback host (see [`HttpClient`]),
    /// the algorithm list is empty, the leeway exceeds [`MAX_LEEWAY`], the cooldown or max age
    /// is zero, or `max_keys` is zero; [`ConfigError::ZeroSetting`] when the cache `ttl` or
    /// `max_entries` is zero.
    pub fn build(self) -> Result<JwtVerifier, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid(reason.into());
        if self.sources.is_empty() {
            return Err(invalid(
                "the JWT verifier trusts no issuer; add one with \
                 `JwtVerifierBuilder::authorization_server` or `issuer_jwks`"
                    .to_owned(),
            ));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(invalid(format!(
                "the JWT leeway of {:?} is more than the {MAX_LEEWAY:?} allowed; clocks that far \
                 apart need fixing (NTP), not a longer leeway",
                self.leeway
            )));
        }
        if self.refresh_cooldown.is_zero() || self.max_age.is_zero() {
            return Err(invalid(
                "the JWKS refresh cooldown and max age must be greater than zero".to_owned(),
            ));
        }
        if self.max_keys == 0 {
            return Err(invalid("`max_keys` must be at least 1".to_owned()));
        }
        if self.scope_prefix.as_deref().is_some_and(|prefix| {
            prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            return Err(invalid(
                "the scope prefix must be non-empty, without spaces or control characters \
                 (scopes are space-separated)"
                    .to_owned(),
            ));
        }
        let mut algorithms: Vec<JwsAlgorithm> = Vec::new();
        for alg in self
            .algorithms
            .unwrap_or_else(|| JwsAlgorithm::ALL.to_vec())
        {
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            return Err(invalid(
                "the JWT algorithm allow-list is empty; allow at least one algorithm (RS256 is \
                 the one RFC 9068 requires)"
                    .to_owned(),
            ));
        }
        let verified = self.cache.build()?;
        let jwks_settings = JwksSettings {
            refresh_cooldown: self.refresh_cooldown,
            max_age: self.max_age,
            max_keys: self.max_keys,
        };

        let mut default_http: Option<HttpClient> = self.http.clone();
        let mut issuers: Vec<TrustedIssuer> = Vec::with_capacity(self.sources.len());
        for spec in self.sources {
            let (issuer, source) = match spec {
                IssuerSpec::AuthServer(server) => {
                    let http = self
                        .http
                        .clone()
                        .unwrap_or_else(|| server.http_client().clone());
                    let source = KeySource::AuthServer {
                        server: server.clone(),
                        http,
                        cache: RwLock::new(None),
                    };
                    (server.issuer().to_owned(), source)
                }
                IssuerSpec::Jwks { issuer, jwks_uri } => {
                    let http = match &default_http {
                        Some(http) => http.clone(),
                        None => {
                            let http = HttpClient::builder().build().map_err(|error| {
                                invalid(format!("could not create the JWKS HTTP client: {error}"))
                            })?;
                            default_http = Some(http.clone());
                            http
                        }
                    };
                    if let Err(error) = http.check_url(&jwks_uri) {
                        return Err(invalid(format!(
                            "the JWKS URL for issuer `{issuer}` cannot be used: {error}"
                        )));
                    }
                    let cache = JwksCache::new(jwks_uri, http, jwks_settings);
                    (issuer, KeySource::Jwks(Arc::new(cache)))
                }
            };
            if issuer.is_empty() {
                return Err(invalid("a trusted issuer is the empty string".to_owned()));
            }
            if issuers.iter().any(|known| known.issuer == issuer) {
                return Err(invalid(format!(
                    "the issuer `{issuer}` is trusted more than once by the JWT verifier"
                )));
            }
            issuers.push(TrustedIssuer { issuer, source });
        }

        // At most MAX_LEEWAY, so the conversion cannot fail.
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                issuers,
                algorithms,
                leeway,
                strict_rfc9068: self.strict_rfc9068,
                scope_prefix: self.scope_prefix,
                jwks_settings,
                verified,
            }),
        })
    }
}

impl JwtVerifier {
    /// Starts a builder with the documented defaults (and no trusted issuer yet).
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
    }

    /// The trusted issuers, in the order they were added.
    pub fn trusted_issuers(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner
            .issuers
            .iter()
            .map(|issuer| issuer.issuer.as_str())
    }

    /// The allowed algorithms.
    pub fn allowed_algorithms(&self) -> impl Iterator<Item = JwsAlgorithm> + '_ {
        self.inner.algorithms.iter().copied()
    }

    /// The number of verifications the verified-token cache holds now (approximate while
    /// insertions and evictions are pending); 0 when the cache is off.
    pub fn cached_verifications(&self) -> u64 {
        self.inner
            .verified
            .as_ref()
            .map_or(0, ExpiringCache::entry_count)
    }

    /// Forgets every cached verification: each token is verified in full on its next use.
    /// Rarely needed, since a key removed from the JWKS already ends the cached verifications
    /// it made; for example after trusting fewer issuers' keys by hand.
    pub fn clear_cached_verifications(&self) {
        if let Some(cache) = &self.inner.verified {
            cache.invalidate_all();
        }
    }

    async fn verify_token(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::invalid_token("the token is too long"));
        }
        let Some(cache) = &self.inner.verified else {
            return self.verify_signed(token).await.map(|(info, _)| info);
        };
        let hash = token_hash(token);
        if let Some(hit) = cache.get(&hash).await {
            if self.still_bound(&hit.binding).await {
                return Ok(with_token(&hit.info, token));
            }
            cache.invalidate(&hash).await;
        }
        let (info, binding) = self.verify_signed(token).await?;
        // Tokens inside their `exp` leeway are answered but not cached (the cache admits only
        // tokens with time left).
        let entry = Verified {
            info: without_token(info.clone()),
            binding,
        };
        cache.insert(hash, Arc::new(entry)).await;
        Ok(info)
    }

    /// Whether the key that verified a cached token is still the one a fresh verification
    /// would select (the key lookup is the same as in [`verify_signed`](Self::verify_signed),
    /// including its JWKS refresh rules). The cache has already checked the expiry.
    async fn still_bound(&self, binding: &KeyBinding) -> bool {
        let Some(issuer) = self.inner.issuers.get(binding.issuer) else {
            return false;
        };
        match issuer
            .key(
                binding.kid.as_deref(),
                binding.alg,
                self.inner.jwks_settings,
            )
            .await
        {
            Ok(key) => Arc::ptr_eq(&key, &binding.key),
            Err(_) => false,
        }
    }

    /// The full verification: structure, issuer, key, signature, times and claims. Returns the
    /// key lookup it made along with the result.
    async fn verify_signed(&self, token: &str) -> Result<(AuthInfo, KeyBinding), VerifyError> {
        let inner = &*self.inner;
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(VerifyError::invalid_token(
                "the token is not a JWS in compact form (three dot-separated parts)",
            ));
        };

        // 1. Header, before anything else and without any network request.
        let header_json = decode_segment(header_b64, "the token header is not valid base64url")?;
        // RFC 7515 §5.2: the header is UTF-8 JSON. Skipped members are not otherwise checked.
        if std::str::from_utf8(&header_json).is_err() {
            return Err(VerifyError::invalid_token("the token header is not UTF-8"));
        }
        let header =
            parse_object::<RawHeader<'_>>(&header_json).ok_or(VerifyError::invalid_token(
                "the token header is not a JSON object with string `alg`, `kid` and `typ`",
            ))?;
        let Some(alg_name) = header.alg.as_deref() else {
            return Err(VerifyError::invalid_token("the token header has no `alg`"));
        };
        let Some(alg) = inner
            .algorithms
            .iter()
            .copied()
            .find(|alg| alg.as_str() == alg_name)
        else {
            return Err(VerifyError::invalid_token(
                if alg_name.eq_ignore_ascii_case("none") {
                    "unsigned tokens (`alg: none`) are not accepted"
                } else {
                    "the token's signing algorithm is not allowed"
                },
            ));
        };
        if header.crit {
            return Err(VerifyError::invalid_token(
                "the token header has `crit` extensions, none of which are supported",
            ));
        }
        if header.jku || header.x5u || header.jwk || header.x5c {
            return Err(VerifyError::invalid_token(
                "tokens that name their own key (`jku`, `x5u`, `jwk` or `x5c`) are not accepted",
            ));
        }
        if inner.strict_rfc9068 && !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(VerifyError::invalid_token(
                "the token's `typ` is not `at+jwt` (RFC 9068 access token)",
            ));
        }

        // 2. Issuer, still without any network request.
        let payload_json = decode_segment(payload_b64, "the token payload is not valid base64url")?;
        let UniqueClaims(claims) = serde_json::from_slice(&payload_json).map_err(|_| {
            VerifyError::invalid_token(
                "the token payload is not a JSON object with unique claim names",
            )
        })?;
        let Some(iss) = claims
            .get("iss")
            .and_then(Value::as_str)
            .filter(|iss| !iss.is_empty())
        else {
            return Err(VerifyError::invalid_token(
                "the `iss` claim is missing or is not a non-empty string",
            ));
        };
        let Some((issuer_index, issuer)) = inner
            .issuers
            .iter()
            .enumerate()
            .find(|(_, trusted)| trusted.issuer == iss)
        else {
            return Err(VerifyError::UntrustedIssuer {
                issuer: truncate(iss, MAX_ECHOED_ISSUER).to_owned(),
            });
        };

        // 3. That issuer's key, and only that issuer's.
        let key = issuer
            .key(header.kid.as_deref(), alg, inner.jwks_settings)
            .await?;

        // 4. The signature, by jsonwebtoken's crypto provider, for exactly the header's
        //    algorithm. (Not `jsonwebtoken::decode`: it parses the header twice more and the
        //    payload twice more, about 2 µs, over 10% of an RS256 verification; the claims are
        //    checked below on the payload parsed once.)
        let Some(signing_input) = token.get(..header_b64.len() + 1 + payload_b64.len()) else {
            return Err(VerifyError::invalid_token(
                "the token is not a JWS in compact form",
            ));
        };
        match jsonwebtoken::crypto::verify(
            signature_b64,
            signing_input.as_bytes(),
            key.decoding_key(),
            alg.to_jsonwebtoken(),
        ) {
            Ok(true) => {}
            Ok(false) => {
                return Err(VerifyError::invalid_token(
                    "the token's signature is invalid",
                ));
            }
            Err(error) => return Err(reject(error.kind())),
        }

        // 5. Times and claims.
        check_times(&claims, unix_now(), inner.leeway)?;
        if !is_non_empty_string(claims.get("sub")) {
            return Err(VerifyError::invalid_token(
                "the `sub` claim is missing or is not a non-empty string",
            ));
        }
        if inner.strict_rfc9068 {
            check_rfc9068_claims(&claims)?;
        }
        let binding = KeyBinding {
            issuer: issuer_index,
            kid: header.kid.map(|kid| kid.into()),
            alg,
            key,
        };
        let mut info = AuthInfo::from_claims(token, claims)?;
        if let Some(prefix) = &inner.scope_prefix {
            prefix_scopes(&mut info.scopes, prefix);
        }
        Ok((info, binding))
    }
}

/// Prepends `prefix` to each scope that lacks it, keeping the order and dropping the
/// duplicates this can make (`read` and `api://x/read` are the same permission).
fn prefix_scopes(scopes: &mut Vec<String>, prefix: &str) {
    let mut named: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes.drain(..) {
        let full = if scope.starts_with(prefix) {
            scope
        } else {
            format!("{prefix}{scope}")
        };
        if !named.contains(&full) {
            named.push(full);
        }
    }
    *scopes = named;
}

/// One cached verification.
struct Verified {
    /// The result, without the token (the request's own token is put back on a hit).
    info: AuthInfo,
    binding: KeyBinding,
}

impl Expiring for Verified {
    fn expires_at(&self) -> Option<i64> {
        self.info.expires_at
    }
}

/// The key lookup a verification made: which trusted issuer, `kid` and algorithm, and the key
/// found.
struct KeyBinding {
    /// Index into `Inner::issuers`.
    issuer: usize,
    kid: Option<Box<str>>,
    alg: JwsAlgorithm,
    key: Arc<JwkKey>,
}

#[async_trait]
impl TokenVerifier for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let result = self.verify_token(token).await;
        if let Err(error) = &result {
            tracing::debug!(%error, "JWT rejected");
        }
        result
    }
}

/// The header members we look at. Borrowed from the decoded bytes; unknown members ignored.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
}

/// `true` whenever the member exists, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer)?;
    Ok(true)
}

/// A claim set whose top-level names are unique. RFC 7519 §4 lets a parser take the last of
/// duplicated names, but two parsers can then read different claims from one token (for
/// example `{"sub":"mallory","sub":"alice"}`), so we refuse such tokens outright.
struct UniqueClaims(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueClaims;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with unique member names")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                let mut claims = Map::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if claims.contains_key(&name) {
                        return Err(serde::de::Error::custom("duplicate claim name"));
                    }
                    claims.insert(name, value);
                }
                Ok(UniqueClaims(claims))
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// Base64url without padding (RFC 7515 §2), strictly.
fn decode_segment(segment: &str, reason: &'static str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| VerifyError::invalid_token(reason))
}

/// Parses a JSON object (a derived struct would also accept a JSON array, positionally).
/// Duplicate members of the derived struct are an error.
fn parse_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(json).ok()
}

fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

fn is_non_empty_string(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::String(s)) if !s.is_empty())
}

/// RFC 9068 §2.2: `client_id`, `jti`, `iat` and `aud` are required (`iss`, `exp`, `sub` are
/// required in every mode).
fn check_rfc9068_claims(claims: &Map<String, Value>) -> Result<(), VerifyError> {
    if !is_non_empty_string(claims.get("client_id")) {
        return Err(VerifyError::invalid_token(
            "the `client_id` claim is required (RFC 9068) and missing or empty",
        ));
    }
    if !is_non_empty_string(claims.get("jti")) {
        return Err(VerifyError::invalid_token(
            "the `jti` claim is required (RFC 9068) and missing or empty",
        ));
    }
    if !matches!(claims.get("iat"), Some(Value::Number(_))) {
        return Err(VerifyError::invalid_token(
            "the `iat` claim is required (RFC 9068) and missing or not a number",
        ));
    }
    let has_audience = match claims.get("aud") {
        Some(Value::String(aud)) => !aud.is_empty(),
        Some(Value::Array(auds)) => !auds.is_empty(),
        _ => false,
    };
    if !has_audience {
        return Err(VerifyError::invalid_token(
            "the `aud` claim is required (RFC 9068) and missing or empty",
        ));
    }
    Ok(())
}

/// `exp` is required and must not be past, `nbf` (if present) must not be in the future,
/// both with `leeway` seconds of tolerance (RFC 7519 §4.1.4, §4.1.5; RFC 9068 §4). A token
/// whose `exp` equals `now - leeway` is still accepted. Fractional NumericDates are truncated.
fn check_times(claims: &Map<String, Value>, now: i64, leeway: i64) -> Result<(), VerifyError> {
    let exp = match claims.get("exp") {
        None | Some(Value::Null) => {
            return Err(VerifyError::invalid_token("the token has no `exp` claim"));
        }
        Some(Value::Number(exp)) => numeric_date(exp),
        Some(_) => None,
    }
    .ok_or(VerifyError::invalid_token(
        "the `exp` claim is not a valid NumericDate",
    ))?;
    if exp.saturating_add(leeway) < now {
        return Err(VerifyError::invalid_token("the token has expired"));
    }
    let nbf = match claims.get("nbf") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Number(nbf)) => numeric_date(nbf),
        Some(_) => None,
    }
    .ok_or(VerifyError::invalid_token(
        "the `nbf` claim is not a valid NumericDate",
    ))?;
    if nbf > now.saturating_add(leeway) {
        return Err(VerifyError::invalid_token(
            "the token is not valid yet (`nbf`)",
        ));
    }
    Ok(())
}

/// A short, safe reason for a failure of `jsonwebtoken`'s signature check.
fn reject(kind: &ErrorKind) -> VerifyError {
    let reason = match kind {
        ErrorKind::InvalidSignature => "the token's signature is invalid",
        ErrorKind::Base64(_) => "the token's signature is not valid base64url",
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey => "the signing key cannot verify this token",
        _ => "the token's signature could not be verified",
    };
    VerifyError::invalid_token(reason)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    fn verifier(strict: bool) -> JwtVerifier {
        JwtVerifier::builder()
            .issuer_jwks("https://trusted.example", "https://trusted.example/jwks")
            .strict_rfc9068(strict)
            .build()
            .unwrap()
    }

    fn token(header: Value, payload: Value) -> String {
        format!("{}.{}.c2ln", b64(&header), b64(&payload))
    }

    async fn reason(verifier: &JwtVerifier, token: &str) -> String {
        match verifier.verify(token).await {
            Err(VerifyError::InvalidToken { reason }) => reason.into_owned(),
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_builder_refuses_bad_settings() {
        let base =
            || JwtVerifier::builder().issuer_jwks("https://a.example", "https://a.example/jwks");
        assert!(JwtVerifier::builder().build().is_err());
        assert!(base().algorithms([]).build().is_err());
        assert!(base().leeway(Duration::from_secs(301)).build().is_err());
        assert!(base().leeway(MAX_LEEWAY).build().is_ok());
        assert!(
            base()
                .jwks_refresh_cooldown(Duration::ZERO)
                .build()
                .is_err()
        );
        assert!(base().jwks_max_age(Duration::ZERO).build().is_err());
        assert!(base().max_keys(0).build().is_err());
        assert!(
            base()
                .issuer_jwks("https://a.example", "https://b.example/jwks")
                .build()
                .is_err()
        );
        assert!(
            JwtVerifier::builder()
                .issuer_jwks("", "https://a.example/jwks")
                .build()
                .is_err()
        );
        assert!(
            JwtVerifier::builder()
                .issuer_jwks("https://a.example", "http://a.example/jwks")
                .build()
                .is_err()
        );
        assert!(
            JwtVerifier::builder()
                .issuer_jwks("https://a.example", "not a url")
                .build()
                .is_err()
        );
        let built = base()
            .algorithms([JwsAlgorithm::Es256, JwsAlgorithm::Es256])
            .build()
            .unwrap();
        assert_eq!(
            built.allowed_algorithms().collect::<Vec<_>>(),
            [JwsAlgorithm::Es256]
        );
        assert_eq!(
            built.trusted_issuers().collect::<Vec<_>>(),
            ["https://a.example"]
        );
    }

    #[test]
    fn malformed_tokens_are_rejected_before_any_key_is_needed() {
        let rt = rt();
        let v = verifier(false);
        let iss = json!({"iss": "https://trusted.example"});
        let rs = json!({"alg": "RS256"});
        let cases = [
            "".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{}=.{}.c2ln", b64(&rs), b64(&iss)),
            format!("{}.{}.c2ln", b64(&json!(["RS256"])), b64(&iss)),
            format!(
                "{}.{}.c2ln",
                b64(&rs),
                b64(&json!(["https://trusted.example"]))
            ),
            format!(
                "{}.{}.c2ln",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","alg":"none"}"#),
                b64(&iss)
            ),
            token(json!({"kid": "k"}), iss.clone()),
            token(json!({"alg": 256}), iss.clone()),
            token(rs.clone(), json!({"sub": "x"})),
            token(rs.clone(), json!({"iss": ""})),
            token(rs.clone(), json!({"iss": 42})),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ];
        for case in cases {
            rt.block_on(reason(&v, &case));
        }
    }

    #[test]
    fn none_hs_and_unknown_algorithms_are_refused() {
        let rt = rt();
        let v = verifier(false);
        let iss = json!({"iss": "https://trusted.example"});
        for alg in ["none", "None", "nOnE", "NONE"] {
            let r = rt.block_on(reason(&v, &token(json!({"alg": alg}), iss.clone())));
            assert!(r.contains("alg: none"), "{alg}: {r}");
        }
        for alg in ["HS256", "HS384", "HS512", "rs256", "ES512", "RSA-OAEP"] {
            let r = rt.block_on(reason(&v, &token(json!({"alg": alg}), iss.clone())));
            assert!(r.contains("not allowed"), "{alg}: {r}");
        }
    }

    #[test]
    fn crit_and_key_carrying_headers_are_refused_whatever_their_value() {
        let rt = rt();
        let v = verifier(false);
        let iss = json!({"iss": "https://trusted.example"});
        let r = rt.block_on(reason(
            &v,
            &token(json!({"alg": "RS256", "crit": ["exp"]}), iss.clone()),
        ));
        assert!(r.contains("crit"), "{r}");
        for member in ["jku", "x5u", "jwk", "x5c"] {
            for value in [
                json!("https://evil.example/jwks"),
                json!(null),
                json!({"kty": "RSA"}),
            ] {
                let header = json!({"alg": "RS256", member: value});
                let r = rt.block_on(reason(&v, &token(header, iss.clone())));
                assert!(r.contains("name their own key"), "{member}: {r}");
            }
        }
    }

    #[test]
    fn strict_mode_checks_typ_before_the_issuer() {
        let rt = rt();
        let strict = verifier(true);
        let untrusted = json!({"iss": "https://untrusted.example"});
        for typ in [
            json!("JWT"),
            json!("dpop+jwt"),
            json!("at+jwt; x"),
            json!(null),
        ] {
            let r = rt.block_on(reason(
                &strict,
                &token(json!({"alg": "RS256", "typ": typ}), untrusted.clone()),
            ));
            assert!(r.contains("typ"), "{r}");
        }
        let r = rt.block_on(reason(
            &strict,
            &token(json!({"alg": "RS256"}), untrusted.clone()),
        ));
        assert!(r.contains("typ"), "{r}");
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            let result = rt.block_on(strict.verify(&token(
                json!({"alg": "RS256", "typ": typ}),
                untrusted.clone(),
            )));
            assert!(
                matches!(result, Err(VerifyError::UntrustedIssuer { .. })),
                "{typ}: {result:?}"
            );
        }
    }

    #[test]
    fn an_untrusted_issuer_is_named_and_truncated() {
        let rt = rt();
        let v = verifier(false);
        let long = format!("https://{}.example", "é".repeat(300));
        let result = rt.block_on(v.verify(&token(json!({"alg": "ES256"}), json!({"iss": long}))));
        let Err(VerifyError::UntrustedIssuer { issuer }) = result else {
            panic!("{result:?}")
        };
        assert!(issuer.len() <= MAX_ECHOED_ISSUER && long.starts_with(&issuer));
        // Exact match only: no trailing slash, no case folding.
        for iss in ["https://trusted.example/", "https://TRUSTED.example"] {
            let result =
                rt.block_on(v.verify(&token(json!({"alg": "ES256"}), json!({"iss": iss}))));
            assert!(
                matches!(result, Err(VerifyError::UntrustedIssuer { .. })),
                "{iss}"
            );
        }
    }

    #[test]
    fn exp_and_nbf_are_checked_with_the_leeway_at_its_edges() {
        let check = |claims: Value, leeway: i64| {
            check_times(claims.as_object().unwrap(), 1_000_000, leeway).map_err(|e| e.to_string())
        };
        assert!(check(json!({"exp": 1_000_000}), 0).is_ok());
        assert!(
            check(json!({"exp": 999_999}), 0)
                .unwrap_err()
                .contains("expired")
        );
        assert!(check(json!({"exp": 999_940}), 60).is_ok());
        assert!(check(json!({"exp": 999_939}), 60).is_err());
        assert!(check(json!({"exp": 999_999.9}), 0).is_err());
        assert!(check(json!({"exp": 1_000_000.5}), 0).is_ok());
        for bad in [json!("1000001"), json!(1e300), json!(true), json!([1])] {
            assert!(
                check(json!({"exp": bad}), 0)
                    .unwrap_err()
                    .contains("NumericDate")
            );
        }
        for missing in [json!({}), json!({"exp": null})] {
            assert!(check(missing, 0).unwrap_err().contains("no `exp`"));
        }
        let exp = 2_000_000;
        assert!(check(json!({"exp": exp, "nbf": 1_000_000}), 0).is_ok());
        assert!(
            check(json!({"exp": exp, "nbf": 1_000_001}), 0)
                .unwrap_err()
                .contains("not valid yet")
        );
        assert!(check(json!({"exp": exp, "nbf": 1_000_060}), 60).is_ok());
        assert!(check(json!({"exp": exp, "nbf": 1_000_061}), 60).is_err());
        assert!(
            check(json!({"exp": exp, "nbf": "soon"}), 60)
                .unwrap_err()
                .contains("NumericDate")
        );
        assert!(check(json!({"exp": exp, "nbf": null}), 0).is_ok());
    }

    #[test]
    fn signature_failures_map_to_short_reasons() {
        let reason = |kind: ErrorKind| reject(&kind).to_string();
        assert!(reason(ErrorKind::InvalidSignature).contains("signature is invalid"));
        assert!(reason(ErrorKind::InvalidKeyFormat).contains("signing key"));
        assert!(reason(ErrorKind::UnsupportedAlgorithm).contains("could not be verified"));
    }

    #[test]
    fn rfc9068_claims_are_all_required_in_strict_mode() {
        let full = json!({"client_id": "c", "jti": "j", "iat": 1, "aud": "r"});
        assert!(check_rfc9068_claims(full.as_object().unwrap()).is_ok());
        for (name, bad) in [
            ("client_id", json!("")),
            ("jti", json!(null)),
            ("iat", json!("1")),
            ("aud", json!([])),
        ] {
            let mut claims = full.as_object().unwrap().clone();
            claims.insert(name.into(), bad);
            assert!(check_rfc9068_claims(&claims).is_err(), "{name}");
            claims.remove(name);
            assert!(check_rfc9068_claims(&claims).is_err(), "{name}");
        }
    }
}

/// The verified-token cache against a real JWKS (the test authorization server).
#[cfg(all(test, feature = "test-util"))]
mod verified_token_cache_tests {
    use super::*;
    use crate::testing::TestAuthServer;
    use crate::time::unix_now;
    use std::time::Duration;

    const COOLDOWN: Duration = Duration::from_millis(150);

    async fn server() -> TestAuthServer {
        TestAuthServer::start().await.unwrap()
    }

    fn builder(server: &TestAuthServer) -> JwtVerifierBuilder {
        JwtVerifier::builder()
            .issuer_jwks(server.issuer(), server.jwks_uri())
            .jwks_refresh_cooldown(COOLDOWN)
    }

    /// The exact number of cached verifications.
    async fn cached(verifier: &JwtVerifier) -> u64 {
        match &verifier.inner.verified {
            Some(cache) => {
                cache.run_pending_tasks().await;
                cache.entry_count()
            }
            None => 0,
        }
    }

    #[tokio::test]
    async fn the_cache_is_on_by_default_and_a_hit_returns_the_same_identity_with_its_token() {
        let server = server().await;
        let verifier = builder(&server).build().unwrap();
        let token = server.token().scope("read").sign();
        let first = verifier.verify(&token).await.unwrap();
        assert_eq!(cached(&verifier).await, 1);
        let second = verifier.verify(&token).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(second.token, token);
        // A different token never finds another token's entry.
        let other = server.token().scope("read").sign();
        assert_eq!(verifier.verify(&other).await.unwrap().token, other);
        assert_eq!(cached(&verifier).await, 2);
    }

    #[tokio::test]
    async fn failures_untrusted_issuers_and_malformed_tokens_are_not_cached() {
        let server = server().await;
        let verifier = builder(&server).build().unwrap();
        let token = server.token().sign();
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(verifier.verify(&forged).await.is_err());
        assert!(verifier.verify("not.a.jwt").await.is_err());
        let foreign = server.token().issuer("https://other.example").sign();
        assert!(verifier.verify(&foreign).await.is_err());
        assert!(
            verifier
                .verify(&server.token().expires_at(1).sign())
                .await
                .is_err()
        );
        assert_eq!(cached(&verifier).await, 0);
    }

    #[tokio::test]
    async fn a_cached_token_whose_key_left_the_jwks_is_refused() {
        let server = server().await;
        let verifier = builder(&server).build().unwrap();
        let old = server.token().sign();
        verifier.verify(&old).await.unwrap();
        verifier.verify(&old).await.unwrap();
        assert_eq!(cached(&verifier).await, 1);

        server.rotate_keys();
        tokio::time::sleep(COOLDOWN).await;
        // A token with the new kid makes the verifier fetch the new key set.
        verifier.verify(&server.token().sign()).await.unwrap();
        let result = verifier.verify(&old).await;
        assert!(
            matches!(result, Err(VerifyError::InvalidToken { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn an_entry_never_outlives_the_token_expiry() {
        let server = server().await;
        let verifier = builder(&server)
            .leeway(Duration::ZERO)
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        let exp = unix_now() + 1;
        let token = server.token().expires_at(exp).sign();
        verifier.verify(&token).await.unwrap();
        verifier.verify(&token).await.unwrap();
        // Wait (at most 4 s) until the expiry has passed by the wall clock.
        for _ in 0..40 {
            if unix_now() > exp {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let result = verifier.verify(&token).await;
        assert!(
            matches!(&result, Err(VerifyError::InvalidToken { reason }) if reason.contains("expired")),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_token_inside_its_leeway_is_accepted_but_not_cached() {
        let server = server().await;
        let verifier = builder(&server).build().unwrap();
        let token = server.token().expires_at(unix_now() - 10).sign();
        verifier.verify(&token).await.unwrap();
        assert_eq!(cached(&verifier).await, 0);
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_max_entries() {
        let server = server().await;
        let verifier = builder(&server).max_entries(10).build().unwrap();
        for _ in 0..60 {
            let token = server.token().alg(JwsAlgorithm::EdDsa).sign();
            verifier.verify(&token).await.unwrap();
        }
        let count = cached(&verifier).await;
        assert!(count <= 10, "{count} entries");
    }

    #[tokio::test]
    async fn the_cache_can_be_turned_off_or_cleared() {
        let server = server().await;
        let token = server.token().sign();
        let verifier = builder(&server).cache(false).build().unwrap();
        assert!(verifier.inner.verified.is_none());
        verifier.verify(&token).await.unwrap();
        verifier.verify(&token).await.unwrap();
        assert_eq!(verifier.cached_verifications(), 0);
        // A zero TTL or bound is a mistake, not a way to turn the cache off.
        for zero in [
            builder(&server).ttl(Duration::ZERO),
            builder(&server).max_entries(0),
        ] {
            assert!(matches!(
                zero.build(),
                Err(crate::ConfigError::ZeroSetting { .. })
            ));
        }
        let verifier = builder(&server).build().unwrap();
        verifier.verify(&token).await.unwrap();
        assert_eq!(cached(&verifier).await, 1);
        verifier.clear_cached_verifications();
        assert_eq!(cached(&verifier).await, 0);
        verifier.verify(&token).await.unwrap();
    }
}
