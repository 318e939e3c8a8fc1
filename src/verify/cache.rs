//! A bounded cache of successful token verifications: [`TokenCache`] and [`CachedVerifier`].
//!
//! Verifiers that ask the authorization server about every token (userinfo, introspection)
//! would otherwise cost one network round trip per request. The cache remembers each
//! successful verification for a while:
//!
//! - **keyed by the SHA-256 of the token**, never by the token itself; the cached
//!   [`AuthInfo`] is stored without its token and handed back with the token of the request
//!   (the same token, since the keys are equal hashes; SHA-256 collisions are not a practical
//!   concern);
//! - **each entry lives for `min(ttl, expires_at − now)`**: never past the token's known expiry
//!   (RFC 7662 §4), and a success whose [`AuthInfo`] has already expired is refused as an
//!   expired token, never cached or handed back;
//! - **one cache, one verifier**: a [`TokenCache`] is not `Clone`, so two verifiers cannot
//!   share one and see each other's successes (the key is the token's hash alone);
//! - **bounded** to [`TokenCacheBuilder::max_entries`] entries (least-recently-used entries
//!   make room for new ones);
//! - **single flight**: concurrent requests with the same token share one verification and
//!   its outcome (a burst of requests during an outage makes one upstream call, not many);
//! - **failures are not cached**, so a 503 heals on the next request as soon as the
//!   authorization server is back. The trade-off: invalid tokens are not cached either, so a
//!   client that keeps presenting a bad token costs one upstream call per request (rate-limit
//!   such clients in front of the server if that matters).
//!
//! Revocation is seen only when an entry expires: a token revoked at the authorization server
//! keeps working here for at most the TTL (default 60 s). Lower the TTL, or call
//! [`TokenCache::invalidate`], if that window is too long.
//!
//! # One set of settings for every verifier
//!
//! The three built-in verifiers cache their successes by these rules, and their builders
//! share the settings: `cache(bool)` (default on), `ttl` (default [`DEFAULT_TTL`], 60 s) and
//! `max_entries` (default [`DEFAULT_MAX_ENTRIES`], 10 000). Zero is not a TTL or a bound:
//! `build()` refuses it with [`ConfigError::ZeroSetting`]; turn a cache off with
//! `cache(false)`.
//!
//! [`JwtVerifier`](crate::verify::JwtVerifier) keeps its successes in a cache of its own
//! (the same entry rules, no single flight: a miss is a local signature check), which also
//! ends an entry when the key that verified it leaves the JWKS; wrapping a `JwtVerifier` in a
//! [`CachedVerifier`] adds nothing but that blind spot.
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth::verify::{CachedVerifier, TokenCache};
//! use mcp_auth::{AuthInfo, TokenVerifier, VerifyError};
//!
//! let slow_lookup = |token: String| async move {
//!     // ... ask a database or an authorization server ...
//!     Ok::<_, VerifyError>(AuthInfo::new(token, "https://auth.example.com").with_subject("alice"))
//! };
//! let verifier = CachedVerifier::with_cache(
//!     slow_lookup,
//!     TokenCache::builder().ttl(Duration::from_secs(30)).max_entries(1_000).build()?,
//! );
//! # tokio_test_block_on(async {
//! let first = verifier.verify("some-token").await?;   // calls slow_lookup
//! let second = verifier.verify("some-token").await?;  // served from the cache
//! assert_eq!(first, second);
//! # Ok::<(), VerifyError>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! # Ok::<(), mcp_auth::ConfigError>(())
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::digest;

use crate::auth_info::AuthInfo;
use crate::error::{ConfigError, VerifyError};
use crate::time::{has_expired, time_left, unix_now};
use crate::verify::TokenVerifier;
pub(crate) use crate::verify::shared_cache::SharedCache;

/// Default bound on the entries of every verification cache: [`TokenCache`] and the caches
/// of the JWT, userinfo and introspection verifiers (10 000; a JWT entry takes about 4 KB).
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// Default time a verification stays cached, in every verification cache (60 s; never past
/// the token's own expiry).
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// SHA-256 of a token: the cache key.
pub(crate) type TokenHash = [u8; 32];

/// What a cache needs to know of a cached verification: when its token expires (seconds since
/// the epoch), if known.
pub(crate) trait Expiring: Send + Sync + 'static {
    fn expires_at(&self) -> Option<i64>;
}

impl Expiring for AuthInfo {
    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}

/// The cache behind every verification cache of the crate: values keyed by token hash, each
/// living `min(ttl, expires_at − now)`, bounded in number.
pub(crate) struct ExpiringCache<V> {
    entries: moka::future::Cache<TokenHash, Arc<V>>,
    ttl: Duration,
    max_entries: u64,
}

impl<V> Clone for ExpiringCache<V> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            ttl: self.ttl,
            max_entries: self.max_entries,
        }
    }
}

impl<V: Expiring> ExpiringCache<V> {
    /// A cache of at most `max_entries` values, each kept at most `ttl`. Callers check the
    /// settings first ([`check_settings`]).
    fn new(ttl: Duration, max_entries: u64) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(max_entries)
            .expire_after(CappedTtl { ttl })
            .build();
        Self {
            entries,
            ttl,
            max_entries,
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) fn max_entries(&self) -> u64 {
        self.max_entries
    }

    /// The value cached for `key`, unless its token has expired by the wall clock. (The
    /// entry's lifetime already ends at the expiry; this re-check guards against the wall
    /// clock jumping ahead of the cache's monotonic clock.) An expired entry is removed.
    pub(crate) async fn get(&self, key: &TokenHash) -> Option<Arc<V>> {
        let hit = self.entries.get(key).await?;
        if time_left(hit.expires_at(), SystemTime::now()).is_zero() {
            self.entries.invalidate(key).await;
            return None;
        }
        Some(hit)
    }

    /// Whether `value` may be cached at all: its token has time left (one inside its leeway,
    /// or already past its expiry, is answered but not cached).
    pub(crate) fn admits(&self, value: &V) -> bool {
        !lifetime(self.ttl, value.expires_at(), SystemTime::now()).is_zero()
    }

    /// Caches `value` for `key` if it [`admits`](Self::admits) it.
    pub(crate) async fn insert(&self, key: TokenHash, value: Arc<V>) {
        if self.admits(&value) {
            self.entries.insert(key, value).await;
        }
    }

    /// Single flight: the value for `key`, or the one `init` produces, shared by every caller
    /// that asks while `init` runs. An `Err` is shared the same way and not cached.
    pub(crate) async fn try_get_with<E: Send + Sync + 'static>(
        &self,
        key: TokenHash,
        init: impl Future<Output = Result<Arc<V>, E>>,
    ) -> Result<Arc<V>, Arc<E>> {
        self.entries.try_get_with(key, init).await
    }

    pub(crate) async fn invalidate(&self, key: &TokenHash) {
        self.entries.invalidate(key).await;
    }

    pub(crate) fn invalidate_all(&self) {
        self.entries.invalidate_all();
    }

    /// Approximate while insertions and evictions are pending.
    pub(crate) fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    pub(crate) async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }
}

impl<V> fmt::Debug for ExpiringCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiringCache")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .field("entry_count", &self.entries.entry_count())
            .finish()
    }
}

/// The one per-entry expiry of the crate's caches: `min(ttl, expires_at − now)`, so that no
/// entry outlives its token.
struct CappedTtl {
    ttl: Duration,
}

impl<V: Expiring> moka::Expiry<TokenHash, Arc<V>> for CappedTtl {
    fn expire_after_create(
        &self,
        _key: &TokenHash,
        value: &Arc<V>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(lifetime(self.ttl, value.expires_at(), SystemTime::now()))
    }

    fn expire_after_update(
        &self,
        _key: &TokenHash,
        value: &Arc<V>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(lifetime(self.ttl, value.expires_at(), SystemTime::now()))
    }
}

/// Whether the expiry `expires_at` (seconds since the epoch) has passed by the wall clock.
fn has_passed(expires_at: Option<i64>) -> bool {
    expires_at.is_some_and(|at| has_expired(at, unix_now()))
}

/// How long an entry for a token expiring at `expires_at` may live: `min(ttl, time left)`.
fn lifetime(ttl: Duration, expires_at: Option<i64>, now: SystemTime) -> Duration {
    ttl.min(time_left(expires_at, now))
}

/// Refuses a zero TTL or bound, the same way for [`TokenCacheBuilder`] and every verifier
/// builder: a cache that keeps nothing is asked for with `cache(false)`, not with a zero.
fn check_settings(ttl: Duration, max_entries: u64) -> Result<(), ConfigError> {
    const ADVICE: &str = "to turn the cache off, call `cache(false)` on the verifier builder \
                          (or do not wrap the verifier in a `CachedVerifier`)";
    if ttl.is_zero() {
        return Err(ConfigError::ZeroSetting {
            setting: "ttl",
            advice: ADVICE,
        });
    }
    if max_entries == 0 {
        return Err(ConfigError::ZeroSetting {
            setting: "max_entries",
            advice: ADVICE,
        });
    }
    Ok(())
}

/// The cache settings of a verifier builder: `cache(bool)`, `ttl` and `max_entries`, with the
/// defaults of this module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheSettings {
    pub(crate) enabled: bool,
    pub(crate) ttl: Duration,
    pub(crate) max_entries: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: DEFAULT_TTL,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

impl CacheSettings {
    /// The cache these settings describe, `None` when it is off. The TTL and the bound are
    /// checked either way: a zero is a mistake whether or not the cache is on.
    pub(crate) fn build<V: Expiring>(self) -> Result<Option<ExpiringCache<V>>, ConfigError> {
        check_settings(self.ttl, self.max_entries)?;
        Ok(self
            .enabled
            .then(|| ExpiringCache::new(self.ttl, self.max_entries)))
    }

    /// As [`build`](Self::build), as a [`TokenCache`].
    /// The cache of one verifier (shared by its clones only).
    /// With `shared`, successes are also kept in (and looked up from) that store.
    pub(crate) fn build_shared_token_cache(
        self,
        shared: Option<SharedCache>,
    ) -> Result<Option<Arc<TokenCache>>, ConfigError> {
        Ok(self
            .build()?
            .map(|entries| Arc::new(TokenCache { entries, shared })))
    }
}

pub(crate) fn token_hash(token: &str) -> TokenHash {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// A short, non-reversible name for a token, safe to log: the first 8 bytes of its SHA-256
/// in hex.
pub(crate) fn token_fingerprint(token: &str) -> String {
    fingerprint_of(&token_hash(token))
}

fn fingerprint_of(hash: &TokenHash) -> String {
    use fmt::Write as _;
    hash.iter()
        .take(8)
        .fold(String::with_capacity(16), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

pub(crate) fn without_token(mut info: AuthInfo) -> AuthInfo {
    info.token = String::new();
    info
}

pub(crate) fn with_token(cached: &AuthInfo, token: &str) -> AuthInfo {
    let mut info = cached.clone();
    token.clone_into(&mut info.token);
    info
}

/// A bounded, expiring cache of successful verifications, keyed by token hash.
///
/// See the [module documentation](self) for the rules. Used inside
/// [`UserinfoVerifier`](crate::verify::UserinfoVerifier) and
/// [`IntrospectionVerifier`](crate::verify::IntrospectionVerifier), and around any verifier
/// through [`CachedVerifier`].
///
/// # One cache, one verifier
///
/// The key is the token's hash alone, so a cache shared by two verifiers would hand one
/// verifier's success to the other (a token the first accepts would pass the second
/// unverified). A `TokenCache` therefore belongs to exactly one verifier: it is not `Clone`,
/// and [`CachedVerifier::with_cache`] takes it by value. Clones of a `CachedVerifier` (the same
/// verifier) share its cache. A custom verifier that calls
/// [`get_or_verify`](Self::get_or_verify) itself should own its cache the same way.
///
/// ```compile_fail
/// // Two verifiers cannot be given one cache: there is no second handle to give.
/// let cache = mcp_auth::verify::TokenCache::new();
/// let copy = cache.clone();
/// ```
pub struct TokenCache {
    entries: ExpiringCache<AuthInfo>,
    /// The store shared with other replicas, behind the local entries (set by the userinfo
    /// and introspection builders' `store`).
    shared: Option<SharedCache>,
}

/// Builder for [`TokenCache`]; every setter documents its default.
#[derive(Clone, Debug)]
#[must_use]
pub struct TokenCacheBuilder {
    ttl: Duration,
    max_entries: u64,
}

impl Default for TokenCacheBuilder {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

impl TokenCacheBuilder {
    /// How long a successful verification is reused. Default: 60 s ([`DEFAULT_TTL`]).
    ///
    /// An entry never outlives the token's `expires_at`, whatever this says. Zero is refused
    /// by [`build`](Self::build).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most entries kept at once. Default: 10 000 ([`DEFAULT_MAX_ENTRIES`]).
    ///
    /// When full, the entries least likely to be used again are evicted. Zero is refused by
    /// [`build`](Self::build).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroSetting`] when the TTL or the bound is zero (a cache that can keep
    /// nothing; to cache nothing, do not wrap the verifier).
    pub fn build(self) -> Result<TokenCache, ConfigError> {
        check_settings(self.ttl, self.max_entries)?;
        Ok(TokenCache {
            entries: ExpiringCache::new(self.ttl, self.max_entries),
            shared: None,
        })
    }
}

impl Default for TokenCache {
    /// A cache with the documented defaults (60 s, 10 000 entries).
    fn default() -> Self {
        TokenCache {
            entries: ExpiringCache::new(DEFAULT_TTL, DEFAULT_MAX_ENTRIES),
            shared: None,
        }
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("ttl", &self.ttl())
            .field("max_entries", &self.max_entries())
            .field("entry_count", &self.entry_count())
            .finish()
    }
}

/// Why the cache's init future did not produce an entry; shared by all waiting callers.
enum Miss {
    /// Verification failed: nothing is cached.
    Failed(VerifyError),
    /// Verification succeeded, but the token is already expired: answer without caching.
    Uncacheable(Arc<AuthInfo>),
}

impl TokenCache {
    /// A cache with the documented defaults (60 s, 10 000 entries).
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a builder with the documented defaults.
    pub fn builder() -> TokenCacheBuilder {
        TokenCacheBuilder::default()
    }

    /// The configured TTL.
    pub fn ttl(&self) -> Duration {
        self.entries.ttl()
    }

    /// The configured bound on entries.
    pub fn max_entries(&self) -> u64 {
        self.entries.max_entries()
    }

    /// The number of cached verifications.
    ///
    /// Approximate while insertions and evictions are pending; call
    /// [`TokenCache::run_pending_tasks`] first for an exact figure.
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Whether the cache holds no entries (approximate, like [`TokenCache::entry_count`]).
    pub fn is_empty(&self) -> bool {
        self.entry_count() == 0
    }

    /// Applies pending evictions and expirations now, so that
    /// [`TokenCache::entry_count`] is exact. The cache does this on its own over time.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }

    /// Forgets the verification of `token`, if cached (for example after revoking it).
    pub async fn invalidate(&self, token: &str) {
        self.entries.invalidate(&token_hash(token)).await;
    }

    /// Forgets every cached verification.
    pub fn invalidate_all(&self) {
        self.entries.invalidate_all();
    }

    /// Returns the cached verification of `token`, or runs `verify` and caches its success.
    ///
    /// Concurrent calls with the same token while `verify` runs wait for its result instead
    /// of starting their own. The returned [`AuthInfo`] carries `token`. The cache never
    /// returns an expired success: entries end at the token's expiry, and a success whose
    /// `expires_at` has already passed is refused, not cached. (A leeway for clock skew is the
    /// verifier's business, before this point, and the bearer guard's, after it.)
    ///
    /// # Errors
    ///
    /// Whatever `verify` returned (errors are never cached), or
    /// [`VerifyError::InvalidToken`] when `verify` succeeded with an `expires_at` in the past.
    pub async fn get_or_verify<F, Fut>(
        &self,
        token: &str,
        verify: F,
    ) -> Result<AuthInfo, VerifyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AuthInfo, VerifyError>>,
    {
        let key = token_hash(token);
        if let Some(hit) = self.entries.get(&key).await {
            crate::metrics::cache_lookup(crate::metrics::Cache::Token, true);
            tracing::trace!(token = %fingerprint_of(&key), "token verification served from cache");
            return Ok(with_token(&hit, token));
        }
        crate::metrics::cache_lookup(crate::metrics::Cache::Token, false);
        let outcome = self
            .entries
            .try_get_with(key, async move {
                if let Some(shared) = &self.shared
                    && let Some(info) = shared.get(token).await
                    && self.entries.admits(&info)
                {
                    tracing::trace!(token = %fingerprint_of(&key), "token verification served from the shared store");
                    return Ok(Arc::new(info));
                }
                tracing::trace!(token = %fingerprint_of(&key), "token not cached; verifying");
                match verify().await {
                    Ok(info) => {
                        if let Some(shared) = &self.shared {
                            shared.put(token, &info).await;
                        }
                        let info = Arc::new(without_token(info));
                        if self.entries.admits(&info) {
                            Ok(info)
                        } else {
                            Err(Miss::Uncacheable(info))
                        }
                    }
                    Err(error) => Err(Miss::Failed(error)),
                }
            })
            .await;
        match outcome {
            Ok(info) => Ok(with_token(&info, token)),
            Err(miss) => match &*miss {
                Miss::Uncacheable(info) if has_passed(info.expires_at) => {
                    Err(VerifyError::invalid_token("the token has expired"))
                }
                Miss::Uncacheable(info) => Ok(with_token(info, token)),
                Miss::Failed(error) => Err(error.clone()),
            },
        }
    }
}

/// `verify` through `cache` when there is one (see [`TokenCache::get_or_verify`]), directly
/// when the verifier's cache is off.
pub(crate) async fn verify_through<F, Fut>(
    cache: Option<&TokenCache>,
    token: &str,
    verify: F,
) -> Result<AuthInfo, VerifyError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<AuthInfo, VerifyError>>,
{
    match cache {
        Some(cache) => cache.get_or_verify(token, verify).await,
        None => verify().await,
    }
}

/// Any [`TokenVerifier`] with a [`TokenCache`] in front of it.
///
/// Successful verifications are reused for the cache's TTL (never past the token's expiry),
/// concurrent verifications of one token are shared, failures are not cached. See the
/// [module documentation](self).
#[derive(Clone)]
pub struct CachedVerifier<V> {
    inner: V,
    cache: Arc<TokenCache>,
}

impl<V> fmt::Debug for CachedVerifier<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedVerifier")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<V: TokenVerifier> CachedVerifier<V> {
    /// Wraps `inner` with a cache of the default size and TTL (10 000 entries, 60 s).
    pub fn new(inner: V) -> Self {
        Self::with_cache(inner, TokenCache::default())
    }

    /// Wraps `inner` with `cache` (build one with [`TokenCache::builder`]).
    ///
    /// The cache is taken by value: it serves this verifier (and its clones) only. See
    /// [`TokenCache`] on why caches are never shared between verifiers.
    pub fn with_cache(inner: V, cache: TokenCache) -> Self {
        Self {
            inner,
            cache: Arc::new(cache),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The wrapped verifier.
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// The number of cached verifications (see [`TokenCache::entry_count`]).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

#[async_trait::async_trait]
impl<V: TokenVerifier> TokenVerifier for CachedVerifier<V> {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        self.cache
            .get_or_verify(token, || self.inner.verify(token))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{T0, at};

    #[test]
    fn lifetime_is_the_ttl_without_an_expiry() {
        assert_eq!(
            lifetime(Duration::from_secs(60), None, at(T0)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn lifetime_is_capped_by_the_expiry() {
        let exp = i64::try_from(T0 + 5).unwrap();
        assert_eq!(
            lifetime(Duration::from_secs(60), Some(exp), at(T0)),
            Duration::from_secs(5)
        );
        assert_eq!(
            lifetime(Duration::from_secs(2), Some(exp), at(T0)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn expired_or_negative_expiry_gives_zero_lifetime() {
        let ttl = Duration::from_secs(60);
        let now_exact = i64::try_from(T0).unwrap();
        assert_eq!(lifetime(ttl, Some(now_exact), at(T0)), Duration::ZERO);
        assert_eq!(lifetime(ttl, Some(now_exact - 1), at(T0)), Duration::ZERO);
        assert_eq!(lifetime(ttl, Some(-5), at(T0)), Duration::ZERO);
    }

    #[test]
    fn absurdly_far_expiry_gives_the_ttl() {
        assert_eq!(
            lifetime(Duration::from_secs(60), Some(i64::MAX), at(T0)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn fingerprint_is_16_hex_chars_and_not_the_token() {
        let fp = token_fingerprint("secret-token");
        assert_eq!(fp.len(), 16);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!fp.contains("secret"));
        assert_ne!(fp, token_fingerprint("secret-token2"));
    }

    #[test]
    fn token_is_stripped_and_restored() {
        let stored = without_token(AuthInfo::new("abc", "https://a"));
        assert!(stored.token.is_empty());
        assert_eq!(with_token(&stored, "abc").token, "abc");
    }

    #[test]
    fn zero_ttl_or_bound_is_refused_and_cache_false_turns_the_cache_off() {
        for (ttl, max_entries, setting) in [
            (Duration::ZERO, 10, "ttl"),
            (Duration::from_secs(1), 0, "max_entries"),
        ] {
            let expect = |result: Result<(), ConfigError>| {
                assert!(
                    matches!(result, Err(ConfigError::ZeroSetting { setting: s, .. }) if s == setting),
                    "{setting}"
                );
            };
            expect(
                TokenCache::builder()
                    .ttl(ttl)
                    .max_entries(max_entries)
                    .build()
                    .map(drop),
            );
            for enabled in [true, false] {
                let settings = CacheSettings {
                    enabled,
                    ttl,
                    max_entries,
                };
                expect(settings.build_shared_token_cache(None).map(drop));
            }
        }
        let off = CacheSettings {
            enabled: false,
            ..CacheSettings::default()
        };
        assert!(off.build_shared_token_cache(None).unwrap().is_none());
        let on = CacheSettings::default()
            .build_shared_token_cache(None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (on.ttl(), on.max_entries()),
            (DEFAULT_TTL, DEFAULT_MAX_ENTRIES)
        );
    }
}
