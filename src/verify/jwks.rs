//! The JWKS cache behind [`JwtVerifier`](crate::verify::JwtVerifier): one [`JwksCache`] per
//! `jwks_uri`.
//!
//! - Keys are fetched lazily (on the first token that needs them) through the bounded
//!   [`HttpClient`], parsed once, and kept as ready [`DecodingKey`](jsonwebtoken::DecodingKey)s. Or they start from a
//!   [`JwksSeed`] (a static JWKS given at build time), used until the first successful fetch
//!   replaces it and refreshed from the network in the background from the first token on.
//! - The hot path is a `std::sync::RwLock` read, a short scan and one `Arc` clone; no async
//!   lock and no allocation.
//! - A `kid` not in the set triggers a refresh, but only one refresh runs at a time (callers
//!   that arrive meanwhile wait for it and look again), and after a successful fetch the next
//!   one waits `refresh_cooldown`, so random `kid`s cannot make us hammer the authorization
//!   server.
//! - A failed fetch is retried with a backoff: 1 s after it ([`FIRST_JWKS_RETRY`]), doubling
//!   after each further failure up to `refresh_cooldown`, reset by a success. Callers in between
//!   get the last error at once (503), without a request and without waiting. So a JWKS
//!   endpoint that heals is used again about a second later, and one that stays down is asked
//!   a handful of times, then once per cooldown, whatever the load.
//! - The keys are refreshed in the background, while they keep working, once they are as old
//!   as the fetched response's `Cache-Control: max-age` (less its `Age`), bounded to
//!   `[refresh_cooldown, max_age]`: `max_age` without a usable hint, the cooldown for
//!   `no-store` or `no-cache`. A malformed header is ignored.
//! - If refreshes fail, the last good keys stay in use (stale-if-error), but only for
//!   `max_staleness` after the last successful fetch (or the seed): older keys verify nothing,
//!   and callers get 503 until a fetch succeeds.
//! - JWKS hygiene (RFC 7517, in [`super::jwk`]): unusable keys are skipped (logged) without
//!   affecting the other keys. At most `max_keys` keys are kept.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::algorithm::JwsAlgorithm;
use super::jwk::{JwkKey, Selection, parse_keys, select};
use super::jwt::FIRST_JWKS_RETRY;
use crate::backoff::retry_after;
use crate::error::{FetchError, VerifyError};
use crate::http_client::HttpClient;

/// Tuning of a [`JwksCache`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwksSettings {
    /// Minimum time between two fetches after a successful one, the longest wait of the
    /// backoff after failed ones, and the shortest lifetime a `Cache-Control` hint can give.
    pub(crate) refresh_cooldown: Duration,
    /// Longest time keys are used before they are refreshed (in the background): the lifetime
    /// without a `Cache-Control` hint, and the longest one a hint can give.
    pub(crate) max_age: Duration,
    /// Longest time after the last successful fetch (or the seed) that the keys verify tokens
    /// while refreshes fail.
    pub(crate) max_staleness: Duration,
    /// Most keys kept from one JWKS document.
    pub(crate) max_keys: usize,
}

impl JwksSettings {
    /// How long fetched keys are used before a refresh: the response's hint, if any, within
    /// `[refresh_cooldown, max_age]` (the cooldown wins if the two cross).
    fn lifetime(&self, hint: Option<Duration>) -> Duration {
        hint.unwrap_or(self.max_age)
            .min(self.max_age)
            .max(self.refresh_cooldown)
    }
}

/// Keys given at build time (a static JWKS, from a `JwkSet` or a file), used until the first
/// successful fetch replaces them. For `max_staleness` they count as fetched when loaded.
#[derive(Clone)]
pub(crate) struct JwksSeed {
    keys: Vec<Arc<JwkKey>>,
    loaded_at: Instant,
}

impl fmt::Debug for JwksSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksSeed")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl JwksSeed {
    /// The usable keys of a JWKS document (`{"keys": [..]}`, each key checked as a fetched
    /// one is), loaded now. `origin` names the document in logs.
    ///
    /// # Errors
    ///
    /// Why the document cannot seed a key set: it is not a JWKS, or none of its keys is usable.
    pub(crate) fn from_document(
        origin: &str,
        document: &Value,
        max_keys: usize,
    ) -> Result<Self, &'static str> {
        let Some(Value::Array(jwks)) = document.get("keys") else {
            return Err("it is not a JWKS (a JSON object with a `keys` array)");
        };
        let keys = parse_keys(origin, jwks, max_keys);
        if keys.is_empty() {
            return Err("it has no usable verification key (the log says why each was skipped)");
        }
        Ok(Self {
            keys,
            loaded_at: Instant::now(),
        })
    }

    /// The seeded key for a token while the JWKS itself cannot be reached yet (its URL comes
    /// from metadata that cannot be fetched: `cause`). Keys older than `max_staleness`, or a
    /// `kid` the seed does not have, get `cause` (503).
    pub(crate) fn key(
        &self,
        kid: Option<&str>,
        alg: JwsAlgorithm,
        max_staleness: Duration,
        cause: VerifyError,
    ) -> Result<Arc<JwkKey>, VerifyError> {
        if self.loaded_at.elapsed() > max_staleness {
            return Err(cause);
        }
        match select(&self.keys, kid, alg) {
            Selection::Found(key) => Ok(key),
            Selection::Unusable(reason) => Err(VerifyError::invalid_token(reason)),
            // The key may well be published: only the authorization server can tell.
            Selection::Missing => Err(cause),
        }
    }
}

/// One immutable generation of the cache.
#[derive(Default)]
struct KeySet {
    keys: Vec<Arc<JwkKey>>,
    /// Bumped by every fetch attempt, successful or not.
    generation: u64,
    /// When the keys were last fetched successfully (or seeded); `None` before.
    fetched_at: Option<Instant>,
    /// When the keys are due for a (background) refresh; `None`: now.
    refresh_due: Option<Instant>,
    /// The earliest time the next fetch may start (the cooldown after a success, the backoff
    /// after a failure); `None`: any time.
    next_fetch: Option<Instant>,
    /// Failed fetches since the last successful one.
    failures: u32,
    /// Why the last fetch attempt failed; `None` if it succeeded (or none was made).
    last_error: Option<Arc<str>>,
    /// The keys are the seed's: no fetch has succeeded yet.
    seeded: bool,
}

impl KeySet {
    fn seeded(seed: &JwksSeed) -> Self {
        Self {
            keys: seed.keys.clone(),
            fetched_at: Some(seed.loaded_at),
            // Due at once: the network is asked (in the background) from the first token on.
            refresh_due: None,
            seeded: true,
            ..Self::default()
        }
    }

    fn select(&self, kid: Option<&str>, alg: JwsAlgorithm) -> Selection {
        select(&self.keys, kid, alg)
    }

    fn is_due(&self, now: Instant) -> bool {
        self.refresh_due.is_none_or(|due| now >= due)
    }

    fn may_fetch(&self, now: Instant) -> bool {
        self.next_fetch.is_none_or(|at| now >= at)
    }

    /// How long ago the keys were fetched, when that is more than `max_staleness`.
    fn too_stale(&self, now: Instant, max_staleness: Duration) -> Option<Duration> {
        let age = now.saturating_duration_since(self.fetched_at?);
        (age > max_staleness).then_some(age)
    }
}

/// `at + wait`, or a day after `at` when that is beyond the clock (a huge setting means "not
/// for a long time").
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .or_else(|| at.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(at)
}

/// A duration in whole seconds, for messages.
fn whole_seconds(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}

/// The keys published at one `jwks_uri`.
pub(crate) struct JwksCache {
    uri: String,
    http: HttpClient,
    settings: JwksSettings,
    current: RwLock<Arc<KeySet>>,
    /// Held for the whole of a fetch: at most one refresh in flight.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// A background refresh has been spawned and not finished.
    background: AtomicBool,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("uri", &self.uri)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache for `uri`, holding the `seed`'s keys if given, else empty; nothing is fetched
    /// until a key is needed.
    pub(crate) fn new(
        uri: String,
        http: HttpClient,
        settings: JwksSettings,
        seed: Option<&JwksSeed>,
    ) -> Self {
        let initial = seed.map(KeySet::seeded).unwrap_or_default();
        Self {
            uri,
            http,
            settings,
            current: RwLock::new(Arc::new(initial)),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
            background: AtomicBool::new(false),
        }
    }

    /// The JWKS URL.
    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn install(&self, set: KeySet) {
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
            Arc::new(set),
        );
        drop(old); // outside the lock
    }

    /// The key that may verify a token with this `kid` and `alg`.
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidToken`] when no published key fits the token;
    /// [`VerifyError::Unavailable`] when the JWKS could not be fetched and no cached key fits,
    /// or the cached keys are older than `max_staleness`.
    pub(crate) async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: JwsAlgorithm,
    ) -> Result<Arc<JwkKey>, VerifyError> {
        // Hot path: one read lock, no allocation.
        let seen_generation = {
            let set = self.current.read().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if set.too_stale(now, self.settings.max_staleness).is_some() {
                // Too old to be trusted: only a fetch can help.
                set.generation
            } else {
                match set.select(kid, alg) {
                    Selection::Found(key) => {
                        if set.is_due(now) && set.may_fetch(now) {
                            let generation = set.generation;
                            drop(set);
                            self.refresh_in_background(generation);
                        }
                        return Ok(key);
                    }
                    Selection::Unusable(reason) => {
                        return Err(VerifyError::invalid_token(reason));
                    }
                    Selection::Missing => set.generation,
                }
            }
        };

        // Slow path: the key may be new (rotation), or the keys too old: refresh once, within
        // the rate limit.
        let set = self.refresh(seen_generation).await;
        if let Some(age) = set.too_stale(Instant::now(), self.settings.max_staleness) {
            return Err(VerifyError::unavailable(format_args!(
                "the signing keys were last fetched {:?} ago, more than the {:?} max_staleness \
                 allows, and cannot be fetched now: {}",
                whole_seconds(age),
                self.settings.max_staleness,
                set.last_error
                    .as_deref()
                    .unwrap_or("a fetch is not due yet"),
            )));
        }
        match set.select(kid, alg) {
            Selection::Found(key) => Ok(key),
            Selection::Unusable(reason) => Err(VerifyError::invalid_token(reason)),
            Selection::Missing => match &set.last_error {
                // The set could not be fetched lately: the key may well exist. Say 503, not 401.
                Some(error) => Err(VerifyError::unavailable(format!(
                    "the signing keys could not be fetched: {error}"
                ))),
                None => Err(VerifyError::invalid_token(if kid.is_some() {
                    "no published key matches the token's `kid`"
                } else {
                    "no published key fits the token's algorithm"
                })),
            },
        }
    }

    /// Spawns one refresh on the current tokio runtime (if any) unless one is already running.
    fn refresh_in_background(self: &Arc<Self>, seen_generation: u64) {
        if self.background.load(Ordering::Relaxed) || self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.background.store(false, Ordering::Release);
            return;
        };
        let cache = Arc::clone(self);
        runtime.spawn(async move {
            // Cleared even if the task is dropped mid-fetch (runtime shutdown).
            let _pending = ClearOnDrop(&cache.background);
            cache.refresh(seen_generation).await;
        });
    }

    /// Fetches the JWKS unless another caller did so since `seen_generation`, or the next
    /// fetch is not allowed yet (cooldown, backoff). Returns the key set to use.
    ///
    /// The fetch runs in its own task holding the single-flight lock, so a caller that is
    /// cancelled (its client went away) neither aborts it nor lets a second fetch start:
    /// the callers waiting on the lock get its result.
    async fn refresh(self: &Arc<Self>, seen_generation: u64) -> Arc<KeySet> {
        // Cooling down or backing off: answer at once, without queueing on the lock.
        let current = self.snapshot();
        if current.generation != seen_generation {
            return current;
        }
        if !current.may_fetch(Instant::now()) {
            crate::metrics::jwks_refresh_suppressed(current.failures > 0);
            return current;
        }
        let single_flight = Arc::clone(&self.refresh).lock_owned().await;
        let current = self.snapshot();
        let now = Instant::now();
        if current.generation != seen_generation {
            return current;
        }
        if !current.may_fetch(now) {
            crate::metrics::jwks_refresh_suppressed(current.failures > 0);
            return current;
        }
        let cache = Arc::clone(self);
        let fetch = async move {
            let _single_flight = single_flight;
            cache.fetch_and_install(&current, now).await;
        };
        match tokio::runtime::Handle::try_current() {
            // A panic in the task (none is expected) just leaves the key set as it was.
            Ok(runtime) => drop(runtime.spawn(fetch).await),
            Err(_) => fetch.await,
        }
        self.snapshot()
    }

    async fn fetch_and_install(&self, current: &KeySet, started: Instant) {
        let timer = crate::metrics::Timer::start();
        let result = self.fetch().await;
        crate::metrics::jwks_fetch(&timer, result.is_ok());
        let now = Instant::now();
        let settings = &self.settings;
        let next = match result {
            Ok((keys, hint)) => {
                let lifetime = settings.lifetime(hint);
                if current.failures > 0 {
                    tracing::info!(
                        jwks_uri = %self.uri,
                        keys = keys.len(),
                        failed_attempts = current.failures,
                        "fetched the JWKS again after failures"
                    );
                } else if current.seeded {
                    tracing::info!(
                        jwks_uri = %self.uri,
                        keys = keys.len(),
                        "fetched the JWKS; it replaces the seeded keys"
                    );
                } else {
                    tracing::debug!(
                        jwks_uri = %self.uri,
                        keys = keys.len(),
                        refresh_in = ?lifetime,
                        "fetched the JWKS"
                    );
                }
                KeySet {
                    keys,
                    generation: current.generation.wrapping_add(1),
                    fetched_at: Some(now),
                    refresh_due: Some(later(now, lifetime)),
                    next_fetch: Some(later(started, settings.refresh_cooldown)),
                    failures: 0,
                    last_error: None,
                    seeded: false,
                }
            }
            Err(error) => {
                let failures = current.failures.saturating_add(1);
                let wait = retry_after(FIRST_JWKS_RETRY, failures, settings.refresh_cooldown);
                match current.too_stale(now, settings.max_staleness) {
                    Some(age) => tracing::error!(
                        jwks_uri = %self.uri,
                        %error,
                        failed_attempts = failures,
                        retry_in = ?wait,
                        keys_age = ?whole_seconds(age),
                        max_staleness = ?settings.max_staleness,
                        "could not fetch the JWKS, and the cached keys are older than \
                         max_staleness: tokens get 503 until it can be fetched"
                    ),
                    None => tracing::warn!(
                        jwks_uri = %self.uri,
                        %error,
                        failed_attempts = failures,
                        retry_in = ?wait,
                        cached_keys = current.keys.len(),
                        "could not fetch the JWKS; keeping the previously fetched keys"
                    ),
                }
                KeySet {
                    keys: current.keys.clone(),
                    generation: current.generation.wrapping_add(1),
                    fetched_at: current.fetched_at,
                    refresh_due: current.refresh_due,
                    next_fetch: Some(later(now, wait)),
                    failures,
                    last_error: Some(error.to_string().into()),
                    seeded: current.seeded,
                }
            }
        };
        self.install(next);
    }

    /// The usable keys at the URL, and the lifetime its `Cache-Control` gives them.
    async fn fetch(&self) -> Result<(Vec<Arc<JwkKey>>, Option<Duration>), FetchError> {
        #[derive(Deserialize)]
        struct JwkSetDocument {
            keys: Vec<Value>,
        }
        let response = self.http.get(&self.uri).await?;
        if !response.status.is_success() {
            return Err(FetchError::Status {
                url: response.url,
                status: response.status,
            });
        }
        let document: JwkSetDocument = response.json()?;
        let keys = parse_keys(&self.uri, &document.keys, self.settings.max_keys);
        Ok((keys, freshness_lifetime(&response.headers)))
    }
}

/// How long a response may be used, as its `Cache-Control` says (RFC 9111 §5.2.2), before
/// our bounds apply: zero for `no-store` or a bare `no-cache`, else the smallest `max-age`
/// less the `Age` header; `None` without a usable directive. Directives that do not parse
/// (and header values that are not visible ASCII) are ignored.
fn freshness_lifetime(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age: Option<u64> = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim())),
                None => (directive.trim(), None),
            };
            // `no-cache="field"` only concerns those header fields.
            if name.eq_ignore_ascii_case("no-store")
                || (name.eq_ignore_ascii_case("no-cache") && argument.is_none())
            {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(seconds) = argument.and_then(delta_seconds)
            {
                max_age = Some(max_age.map_or(seconds, |known| known.min(seconds)));
            }
        }
    }
    let age = headers
        .get(http::header::AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(delta_seconds)
        .unwrap_or(0);
    max_age.map(|max_age| Duration::from_secs(max_age.saturating_sub(age)))
}

/// RFC 9111 §1.2.2 delta-seconds (digits only; quoted tolerated), saturating on overflow.
fn delta_seconds(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// Clears the flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::super::jwk::fixtures::*;
    use super::super::jwk::parse_jwk;
    use super::*;
    use serde_json::json;

    fn set(keys: &[Value]) -> KeySet {
        KeySet {
            keys: keys
                .iter()
                .map(|k| Arc::new(parse_jwk(k).unwrap()))
                .collect(),
            ..KeySet::default()
        }
    }

    #[test]
    fn selection_binds_kid_alg_and_key_type() {
        let keys = set(&[with(rsa_jwk(), "alg", json!("RS256")), p256_jwk(), ed_jwk()]);
        assert!(matches!(
            keys.select(Some("r1"), JwsAlgorithm::Rs256),
            Selection::Found(_)
        ));
        assert!(matches!(
            keys.select(Some("r1"), JwsAlgorithm::Rs384),
            Selection::Unusable(_)
        ));
        assert!(matches!(
            keys.select(Some("e1"), JwsAlgorithm::Es384),
            Selection::Unusable(_)
        ));
        assert!(matches!(
            keys.select(Some("o1"), JwsAlgorithm::EdDsa),
            Selection::Found(_)
        ));
        assert!(matches!(
            keys.select(Some("zz"), JwsAlgorithm::Rs256),
            Selection::Missing
        ));
        // Without a kid: exactly one fitting key, or nothing.
        assert!(matches!(
            keys.select(None, JwsAlgorithm::Es256),
            Selection::Found(_)
        ));
        assert!(matches!(
            keys.select(None, JwsAlgorithm::Ps256),
            Selection::Missing
        ));
        let two_rsa = set(&[rsa_jwk(), with(rsa_jwk(), "kid", json!("r2"))]);
        assert!(matches!(
            two_rsa.select(None, JwsAlgorithm::Rs256),
            Selection::Unusable(_)
        ));
    }

    fn headers(values: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in values {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn cache_control_hints_are_read_and_garbage_is_ignored() {
        let lifetime = |values: &[(&str, &[u8])]| freshness_lifetime(&headers(values));
        let secs = |n| Some(Duration::from_secs(n));
        let cc = "cache-control";
        assert_eq!(lifetime(&[]), None);
        assert_eq!(lifetime(&[(cc, b"public, max-age=300")]), secs(300));
        assert_eq!(lifetime(&[(cc, b"Max-Age = 60 ")]), secs(60));
        assert_eq!(lifetime(&[(cc, b"max-age=\"42\"")]), secs(42));
        // Several max-age directives (over several lines): the smallest.
        assert_eq!(
            lifetime(&[(cc, b"max-age=600"), (cc, b"max-age=120, public")]),
            secs(120)
        );
        // `Age` counts against it.
        assert_eq!(
            lifetime(&[(cc, b"max-age=300"), ("age", b"100")]),
            secs(200)
        );
        assert_eq!(lifetime(&[(cc, b"max-age=300"), ("age", b"999")]), secs(0));
        assert_eq!(lifetime(&[(cc, b"max-age=300"), ("age", b"-5")]), secs(300));
        for no in [
            &b"no-store"[..],
            b"public, no-cache",
            b"NO-STORE, max-age=900",
        ] {
            assert_eq!(lifetime(&[(cc, no)]), secs(0), "{no:?}");
        }
        // Field-qualified no-cache concerns other fields only.
        assert_eq!(
            lifetime(&[(cc, b"no-cache=\"set-cookie\", max-age=30")]),
            secs(30)
        );
        // Overflow saturates (a very long time; bounded by max_age later).
        assert_eq!(
            lifetime(&[(cc, b"max-age=99999999999999999999999999")]),
            secs(u64::MAX)
        );
        let garbage: [&[u8]; 10] = [
            b"max-age=",
            b"max-age=-1",
            b"max-age=1.5",
            b"max-age=0x10",
            b"max-age=\"",
            b"max-age",
            b"=,=,,,",
            b"s-maxage=5",
            b"max-age=\xff\xfe",
            b"max\tage=5, max-age=5x",
        ];
        for value in garbage {
            assert_eq!(lifetime(&[(cc, value)]), None, "{value:?}");
        }
        // A garbage directive does not hide a good one.
        assert_eq!(lifetime(&[(cc, b"max-age=zz, max-age=7")]), secs(7));
    }

    #[test]
    fn the_lifetime_stays_between_the_cooldown_and_max_age() {
        let settings = JwksSettings {
            refresh_cooldown: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
            max_staleness: Duration::from_secs(86_400),
            max_keys: 64,
        };
        let secs = Duration::from_secs;
        assert_eq!(settings.lifetime(None), secs(600));
        assert_eq!(settings.lifetime(Some(secs(300))), secs(300));
        assert_eq!(settings.lifetime(Some(secs(5))), secs(30));
        assert_eq!(settings.lifetime(Some(Duration::ZERO)), secs(30));
        assert_eq!(settings.lifetime(Some(secs(u64::MAX))), secs(600));
        // A cooldown above max_age wins (no panic).
        let crossed = JwksSettings {
            refresh_cooldown: secs(900),
            ..settings
        };
        assert_eq!(crossed.lifetime(None), secs(900));
        let now = Instant::now();
        assert!(later(now, Duration::MAX) >= now);
    }

    #[test]
    fn a_seed_must_be_a_jwks_with_a_usable_key() {
        let seed =
            JwksSeed::from_document("seed", &json!({"keys": [rsa_jwk(), {"kty": "PQC"}]}), 64)
                .unwrap();
        assert_eq!(seed.keys.len(), 1);
        for bad in [
            json!([rsa_jwk()]),
            json!({"keys": rsa_jwk()}),
            json!({"keys": []}),
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            json!("keys"),
        ] {
            assert!(JwksSeed::from_document("seed", &bad, 64).is_err(), "{bad}");
        }
        let set = KeySet::seeded(&seed);
        let now = Instant::now();
        assert!(set.is_due(now) && set.may_fetch(now) && set.seeded);
        assert!(set.too_stale(now, Duration::from_secs(60)).is_none());
        assert!(
            set.too_stale(now + Duration::from_secs(61), Duration::from_secs(60))
                .is_some()
        );
        let unavailable = || VerifyError::unavailable("down");
        assert!(
            seed.key(
                Some("r1"),
                JwsAlgorithm::Rs256,
                Duration::from_secs(60),
                unavailable()
            )
            .is_ok()
        );
        assert!(matches!(
            seed.key(
                Some("zz"),
                JwsAlgorithm::Rs256,
                Duration::from_secs(60),
                unavailable()
            ),
            Err(VerifyError::Unavailable { .. })
        ));
        assert!(matches!(
            seed.key(
                Some("r1"),
                JwsAlgorithm::Es256,
                Duration::from_secs(60),
                unavailable()
            ),
            Err(VerifyError::InvalidToken { .. })
        ));
        assert!(matches!(
            seed.key(
                Some("r1"),
                JwsAlgorithm::Rs256,
                Duration::ZERO,
                unavailable()
            ),
            Err(VerifyError::Unavailable { .. })
        ));
    }
}
