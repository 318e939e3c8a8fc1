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
//!   (RFC 7662 §4), and an [`AuthInfo`] that has already expired is passed through but not
//!   cached;
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
//! [`JwtVerifier`](crate::verify::JwtVerifier) has a verified-token cache of its own, on by
//! default, which also ends an entry when the key that verified it leaves the JWKS; wrapping a
//! `JwtVerifier` in a [`CachedVerifier`] adds nothing but that blind spot.
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
//!     TokenCache::builder().ttl(Duration::from_secs(30)).max_entries(1_000).build(),
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
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::digest;

use crate::auth_info::AuthInfo;
use crate::error::VerifyError;
use crate::time::time_left;
use crate::verify::TokenVerifier;

/// Default number of entries a [`TokenCache`] holds.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// Default time a verification stays cached (capped by the token's own expiry).
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// SHA-256 of a token: the cache key.
pub(crate) type TokenHash = [u8; 32];

/// A bounded, expiring cache of successful verifications, keyed by token hash.
///
/// See the [module documentation](self) for the rules. Cheap to clone: clones share the same
/// entries. Used inside [`UserinfoVerifier`](crate::verify::UserinfoVerifier) and
/// [`IntrospectionVerifier`](crate::verify::IntrospectionVerifier), and around any verifier
/// through [`CachedVerifier`].
#[derive(Clone)]
pub struct TokenCache {
    entries: moka::future::Cache<TokenHash, Arc<AuthInfo>>,
    ttl: Duration,
    max_entries: u64,
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
    /// How long a successful verification is reused. Default: 60 s.
    ///
    /// An entry never outlives the token's `expires_at`, whatever this says. A zero TTL turns
    /// caching off (and with it the sharing of concurrent verifications).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most entries kept at once. Default: 10 000.
    ///
    /// When full, the entries least likely to be used again are evicted. Zero turns caching
    /// off.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Builds the cache. Never fails.
    pub fn build(self) -> TokenCache {
        let entries = moka::future::Cache::builder()
            .max_capacity(self.max_entries)
            .expire_after(CappedTtl { ttl: self.ttl })
            .build();
        TokenCache {
            entries,
            ttl: self.ttl,
            max_entries: self.max_entries,
        }
    }
}

impl Default for TokenCache {
    /// A cache with the documented defaults (60 s, 10 000 entries).
    fn default() -> Self {
        TokenCacheBuilder::default().build()
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .field("entry_count", &self.entries.entry_count())
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
        self.ttl
    }

    /// The configured bound on entries.
    pub fn max_entries(&self) -> u64 {
        self.max_entries
    }

    /// The number of cached verifications.
    ///
    /// Approximate while insertions and evictions are pending; call
    /// [`TokenCache::run_pending_tasks`] first for an exact figure.
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Same as [`TokenCache::entry_count`].
    pub fn len(&self) -> u64 {
        self.entry_count()
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
    /// of starting their own. The returned [`AuthInfo`] carries `token`. A success whose
    /// `expires_at` has already passed is returned but not cached.
    ///
    /// # Errors
    ///
    /// Whatever `verify` returned; errors are never cached.
    pub async fn get_or_verify<F, Fut>(
        &self,
        token: &str,
        verify: F,
    ) -> Result<AuthInfo, VerifyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AuthInfo, VerifyError>>,
    {
        if self.ttl.is_zero() || self.max_entries == 0 {
            return verify().await;
        }
        let key = token_hash(token);
        if let Some(hit) = self.entries.get(&key).await {
            // The entry's lifetime already ends at `expires_at`; this re-check guards against
            // the wall clock jumping ahead of the cache's monotonic clock.
            if time_left(hit.expires_at, SystemTime::now()) > Duration::ZERO {
                tracing::trace!(token = %fingerprint_of(&key), "token verification served from cache");
                return Ok(with_token(&hit, token));
            }
            self.entries.invalidate(&key).await;
        }
        let ttl = self.ttl;
        let outcome = self
            .entries
            .try_get_with(key, async move {
                tracing::trace!(token = %fingerprint_of(&key), "token not cached; verifying");
                match verify().await {
                    Ok(info) => {
                        let info = Arc::new(without_token(info));
                        if lifetime(ttl, info.expires_at, SystemTime::now()).is_zero() {
                            Err(Miss::Uncacheable(info))
                        } else {
                            Ok(info)
                        }
                    }
                    Err(error) => Err(Miss::Failed(error)),
                }
            })
            .await;
        match outcome {
            Ok(info) => Ok(with_token(&info, token)),
            Err(miss) => match &*miss {
                Miss::Uncacheable(info) => Ok(with_token(info, token)),
                Miss::Failed(error) => Err(error.clone()),
            },
        }
    }
}

/// Per-entry expiry: `min(ttl, expires_at − now)`.
struct CappedTtl {
    ttl: Duration,
}

impl moka::Expiry<TokenHash, Arc<AuthInfo>> for CappedTtl {
    fn expire_after_create(
        &self,
        _key: &TokenHash,
        value: &Arc<AuthInfo>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(lifetime(self.ttl, value.expires_at, SystemTime::now()))
    }

    fn expire_after_update(
        &self,
        _key: &TokenHash,
        value: &Arc<AuthInfo>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(lifetime(self.ttl, value.expires_at, SystemTime::now()))
    }
}

/// How long an entry for a token expiring at `expires_at` may live: `min(ttl, time left)`.
pub(crate) fn lifetime(ttl: Duration, expires_at: Option<i64>, now: SystemTime) -> Duration {
    ttl.min(time_left(expires_at, now))
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

/// Any [`TokenVerifier`] with a [`TokenCache`] in front of it.
///
/// Successful verifications are reused for the cache's TTL (never past the token's expiry),
/// concurrent verifications of one token are shared, failures are not cached. See the
/// [module documentation](self).
#[derive(Clone)]
pub struct CachedVerifier<V> {
    inner: V,
    cache: TokenCache,
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
    pub fn with_cache(inner: V, cache: TokenCache) -> Self {
        Self { inner, cache }
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
}
