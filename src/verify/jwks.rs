//! The JWKS cache behind [`JwtVerifier`](crate::verify::JwtVerifier): one [`JwksCache`] per
//! `jwks_uri`.
//!
//! - Keys are fetched lazily (on the first token that needs them) through the bounded
//!   [`HttpClient`], parsed once, and kept as ready [`DecodingKey`]s.
//! - The hot path is a `std::sync::RwLock` read, a short scan and one `Arc` clone; no async
//!   lock and no allocation.
//! - A `kid` not in the set triggers a refresh, but only one refresh runs at a time (callers
//!   that arrive meanwhile wait for it and look again), and refreshes are at least
//!   `refresh_cooldown` apart, so random `kid`s cannot make us hammer the authorization
//!   server.
//! - After `max_age` the set is refreshed in the background while the current keys keep
//!   working; if a refresh fails, the last good keys stay in use (stale-if-error) and the
//!   failure is logged.
//! - JWKS hygiene (RFC 7517): keys with an unknown `kty` or curve, missing or malformed
//!   members, `use` other than `sig`, `key_ops` without `verify`, an `alg` we do not verify
//!   with, symmetric (`oct`) keys, private members, or RSA moduli under 2048 bits are skipped
//!   (logged) without affecting the other keys. At most `max_keys` keys are kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::algorithm::JwsAlgorithm;
use crate::error::{FetchError, VerifyError};
use crate::http_client::HttpClient;

/// Smallest RSA modulus accepted, in bytes (2048 bits; RFC 7518 §3.3).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Tuning of a [`JwksCache`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwksSettings {
    /// Minimum time between two fetches of the JWKS.
    pub(crate) refresh_cooldown: Duration,
    /// Age after which the keys are refreshed (in the background).
    pub(crate) max_age: Duration,
    /// Most keys kept from one JWKS document.
    pub(crate) max_keys: usize,
}

/// The key family (and curve) of a JWK, which fixes the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: JwsAlgorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                JwsAlgorithm::Rs256
                    | JwsAlgorithm::Rs384
                    | JwsAlgorithm::Rs512
                    | JwsAlgorithm::Ps256
                    | JwsAlgorithm::Ps384
                    | JwsAlgorithm::Ps512
            ),
            KeyKind::EcP256 => alg == JwsAlgorithm::Es256,
            KeyKind::EcP384 => alg == JwsAlgorithm::Es384,
            KeyKind::Ed25519 => alg == JwsAlgorithm::EdDsa,
        }
    }
}

/// One usable verification key from a JWKS.
pub(crate) struct JwkKey {
    kid: Option<Box<str>>,
    /// The JWK's `alg`, when it names one: the only algorithm the key may verify.
    alg: Option<JwsAlgorithm>,
    kind: KeyKind,
    decoding_key: DecodingKey,
}

impl std::fmt::Debug for JwkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwkKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl JwkKey {
    /// The key, ready for `jsonwebtoken::decode`.
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding_key
    }

    /// Whether this key may verify a token signed with `alg` (RFC 8725 §3.1: one key, one
    /// algorithm, and the key type must fit).
    fn supports(&self, alg: JwsAlgorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && self.kind.fits(alg)
    }
}

/// What a lookup in one key set found.
enum Selection {
    Found(Arc<JwkKey>),
    /// No key with this `kid` (or, without a `kid`, no key for the algorithm): a refresh may
    /// help.
    Missing,
    /// A refresh would not help: the reason is final.
    Unusable(&'static str),
}

/// One immutable generation of the cache.
#[derive(Default)]
struct KeySet {
    keys: Vec<Arc<JwkKey>>,
    /// Bumped by every fetch attempt, successful or not.
    generation: u64,
    /// When the keys were last fetched successfully; `None` before the first success.
    fetched_at: Option<Instant>,
    /// When the last fetch attempt started.
    last_attempt: Option<Instant>,
    /// Why the last fetch attempt failed; `None` if it succeeded (or none was made).
    last_error: Option<Arc<str>>,
}

impl KeySet {
    fn select(&self, kid: Option<&str>, alg: JwsAlgorithm) -> Selection {
        match kid {
            Some(kid) => {
                let mut named = false;
                for key in &self.keys {
                    if key.kid.as_deref() == Some(kid) {
                        if key.supports(alg) {
                            return Selection::Found(Arc::clone(key));
                        }
                        named = true;
                    }
                }
                if named {
                    Selection::Unusable(
                        "the key named by the token's `kid` is not for the token's algorithm",
                    )
                } else {
                    Selection::Missing
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|key| key.supports(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Selection::Found(Arc::clone(key)),
                    (None, _) => Selection::Missing,
                    (Some(_), Some(_)) => Selection::Unusable(
                        "the token has no `kid` and several keys could have signed it",
                    ),
                }
            }
        }
    }

    fn is_stale(&self, now: Instant, max_age: Duration) -> bool {
        self.fetched_at
            .is_none_or(|at| now.saturating_duration_since(at) >= max_age)
    }

    fn may_fetch(&self, now: Instant, cooldown: Duration) -> bool {
        self.last_attempt
            .is_none_or(|at| now.saturating_duration_since(at) >= cooldown)
    }
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

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("uri", &self.uri)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// An empty cache for `uri`; nothing is fetched until a key is needed.
    pub(crate) fn new(uri: String, http: HttpClient, settings: JwksSettings) -> Self {
        Self {
            uri,
            http,
            settings,
            current: RwLock::new(Arc::new(KeySet::default())),
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
    /// [`VerifyError::Unavailable`] when the JWKS could not be fetched and no cached key fits.
    pub(crate) async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: JwsAlgorithm,
    ) -> Result<Arc<JwkKey>, VerifyError> {
        // Hot path: one read lock, no allocation.
        let seen_generation = {
            let set = self.current.read().unwrap_or_else(PoisonError::into_inner);
            match set.select(kid, alg) {
                Selection::Found(key) => {
                    let now = Instant::now();
                    if set.is_stale(now, self.settings.max_age)
                        && set.may_fetch(now, self.settings.refresh_cooldown)
                    {
                        let generation = set.generation;
                        drop(set);
                        self.refresh_in_background(generation);
                    }
                    return Ok(key);
                }
                Selection::Unusable(reason) => return Err(VerifyError::invalid_token(reason)),
                Selection::Missing => set.generation,
            }
        };

        // Slow path: the key may be new (rotation): refresh once, within the rate limit.
        let set = self.refresh(seen_generation).await;
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

    /// Fetches the JWKS unless another caller did so since `seen_generation`, or the last
    /// attempt is more recent than the cooldown. Returns the key set to use.
    ///
    /// The fetch runs in its own task holding the single-flight lock, so a caller that is
    /// cancelled (its client went away) neither aborts it nor lets a second fetch start:
    /// the callers waiting on the lock get its result.
    async fn refresh(self: &Arc<Self>, seen_generation: u64) -> Arc<KeySet> {
        let single_flight = Arc::clone(&self.refresh).lock_owned().await;
        let current = self.snapshot();
        let now = Instant::now();
        if current.generation != seen_generation
            || !current.may_fetch(now, self.settings.refresh_cooldown)
        {
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
        let next = match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(jwks_uri = %self.uri, keys = keys.len(), "fetched the JWKS");
                KeySet {
                    keys,
                    generation: current.generation.wrapping_add(1),
                    fetched_at: Some(Instant::now()),
                    last_attempt: Some(started),
                    last_error: None,
                }
            }
            Err(error) => {
                tracing::warn!(
                    jwks_uri = %self.uri,
                    %error,
                    cached_keys = current.keys.len(),
                    "could not fetch the JWKS; keeping the previously fetched keys"
                );
                KeySet {
                    keys: current.keys.clone(),
                    generation: current.generation.wrapping_add(1),
                    fetched_at: current.fetched_at,
                    last_attempt: Some(started),
                    last_error: Some(error.to_string().into()),
                }
            }
        };
        self.install(next);
    }

    async fn fetch(&self) -> Result<Vec<Arc<JwkKey>>, FetchError> {
        #[derive(Deserialize)]
        struct JwkSetDocument {
            keys: Vec<Value>,
        }
        let document: JwkSetDocument = self.http.get_json(&self.uri).await?;
        Ok(parse_keys(
            &self.uri,
            &document.keys,
            self.settings.max_keys,
        ))
    }
}

/// Clears the flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The usable keys of a JWKS `keys` array, at most `max_keys` of them.
fn parse_keys(uri: &str, jwks: &[Value], max_keys: usize) -> Vec<Arc<JwkKey>> {
    let mut keys = Vec::new();
    let mut ignored_over_cap = 0usize;
    for (index, jwk) in jwks.iter().enumerate() {
        match parse_jwk(jwk) {
            Ok(key) if keys.len() < max_keys => keys.push(Arc::new(key)),
            Ok(_) => ignored_over_cap += 1,
            Err(Skip::Quietly(reason)) => {
                tracing::debug!(jwks_uri = %uri, index, reason, "ignoring a JWK");
            }
            Err(Skip::Loudly(reason)) => {
                tracing::warn!(jwks_uri = %uri, index, reason, "ignoring a JWK");
            }
        }
    }
    if ignored_over_cap > 0 {
        tracing::warn!(
            jwks_uri = %uri,
            max_keys,
            ignored = ignored_over_cap,
            "the JWKS has more usable keys than the configured maximum; the extra keys are ignored \
             (raise `JwtVerifierBuilder::max_keys` if this is expected)"
        );
    }
    keys
}

/// Why a JWK was not used. `Loudly` marks a publishing mistake worth a warning.
#[derive(Debug, PartialEq, Eq)]
enum Skip {
    Quietly(&'static str),
    Loudly(&'static str),
}

fn parse_jwk(jwk: &Value) -> Result<JwkKey, Skip> {
    let Value::Object(jwk) = jwk else {
        return Err(Skip::Loudly("not a JSON object"));
    };
    let kty = string_member(jwk, "kty")?.ok_or(Skip::Loudly("no `kty`"))?;
    if string_member(jwk, "use")?.is_some_and(|usage| usage != "sig") {
        return Err(Skip::Quietly("`use` is not `sig`"));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err(Skip::Loudly("`key_ops` is not an array"));
        };
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(Skip::Quietly("`key_ops` does not include `verify`"));
        }
    }
    let alg = match string_member(jwk, "alg")? {
        None => None,
        Some(name) => Some(JwsAlgorithm::from_name(name).ok_or(Skip::Quietly(
            "its `alg` is not an algorithm we verify with",
        ))?),
    };
    let kid = string_member(jwk, "kid")?.map(Box::from);
    if jwk.contains_key("d") || jwk.contains_key("p") || jwk.contains_key("q") {
        // A published private key means anyone can sign: never trust it (OIDC Discovery §3).
        return Err(Skip::Loudly(
            "it contains private key material; the authorization server's key is compromised",
        ));
    }
    let (kind, decoding_key) = match kty {
        "RSA" => {
            let n = b64_member(jwk, "n")?;
            let e = b64_member(jwk, "e")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err(Skip::Loudly("RSA modulus shorter than 2048 bits"));
            }
            if e.is_empty() || e.iter().all(|b| *b == 0) || e.len() > 8 {
                return Err(Skip::Loudly("invalid RSA exponent"));
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (kind, size) = match string_member(jwk, "crv")? {
                Some("P-256") => (KeyKind::EcP256, 32),
                Some("P-384") => (KeyKind::EcP384, 48),
                _ => return Err(Skip::Quietly("unsupported or missing EC curve")),
            };
            let x = b64_member(jwk, "x")?;
            let y = b64_member(jwk, "y")?;
            if x.len() != size || y.len() != size {
                return Err(Skip::Loudly("EC coordinates of the wrong length"));
            }
            // Uncompressed SEC1 point, the form jsonwebtoken's `from_ec_components` builds.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (kind, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            if string_member(jwk, "crv")? != Some("Ed25519") {
                return Err(Skip::Quietly("unsupported or missing OKP curve"));
            }
            let x = b64_member(jwk, "x")?;
            if x.len() != 32 {
                return Err(Skip::Loudly("Ed25519 key of the wrong length"));
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
        }
        "oct" => {
            return Err(Skip::Loudly(
                "symmetric keys are never used to verify tokens",
            ));
        }
        _ => return Err(Skip::Quietly("unsupported `kty`")),
    };
    if alg.is_some_and(|alg| !kind.fits(alg)) {
        return Err(Skip::Loudly("its `alg` does not fit its key type"));
    }
    Ok(JwkKey {
        kid,
        alg,
        kind,
        decoding_key,
    })
}

fn string_member<'a>(
    jwk: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, Skip> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Skip::Loudly("a member that must be a string is not")),
    }
}

/// A required base64url member, decoded (trailing `=` padding tolerated).
fn b64_member(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Skip> {
    let text = string_member(jwk, name)?.ok_or(Skip::Loudly("a required key member is missing"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| Skip::Loudly("a key member is not valid base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk() -> Value {
        let mut n = vec![0xC5u8; 256];
        n[255] = 0x01;
        json!({"kty": "RSA", "kid": "r1", "n": b64(&n), "e": "AQAB"})
    }

    fn p256_jwk() -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": "e1", "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    fn ed_jwk() -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "o1", "x": b64(&[3; 32])})
    }

    fn with(mut jwk: Value, name: &str, value: Value) -> Value {
        jwk.as_object_mut().unwrap().insert(name.into(), value);
        jwk
    }

    #[test]
    fn well_formed_keys_of_each_type_are_used() {
        assert_eq!(parse_jwk(&rsa_jwk()).unwrap().kind, KeyKind::Rsa);
        assert_eq!(parse_jwk(&p256_jwk()).unwrap().kind, KeyKind::EcP256);
        assert_eq!(parse_jwk(&ed_jwk()).unwrap().kind, KeyKind::Ed25519);
        let p384 = json!({"kty": "EC", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[2; 48])});
        assert_eq!(parse_jwk(&p384).unwrap().kind, KeyKind::EcP384);
    }

    #[test]
    fn encryption_keys_and_keys_without_verify_are_skipped() {
        assert!(parse_jwk(&with(rsa_jwk(), "use", json!("enc"))).is_err());
        assert!(parse_jwk(&with(rsa_jwk(), "use", json!("sig"))).is_ok());
        assert!(parse_jwk(&with(rsa_jwk(), "key_ops", json!(["encrypt"]))).is_err());
        assert!(parse_jwk(&with(rsa_jwk(), "key_ops", json!("verify"))).is_err());
        assert!(parse_jwk(&with(rsa_jwk(), "key_ops", json!(["sign", "verify"]))).is_ok());
    }

    #[test]
    fn malformed_or_foreign_keys_are_skipped() {
        let bad = [
            json!("RSA"),
            json!({"n": "AQAB"}),
            json!({"kty": "RSA", "e": "AQAB"}),
            with(rsa_jwk(), "n", json!("not*base64")),
            with(rsa_jwk(), "n", json!(b64(&[0xC5; 128]))),
            with(rsa_jwk(), "e", json!("")),
            with(rsa_jwk(), "kid", json!(7)),
            with(rsa_jwk(), "alg", json!("HS256")),
            with(rsa_jwk(), "alg", json!("ES256")),
            with(rsa_jwk(), "alg", json!("RSA-OAEP")),
            with(rsa_jwk(), "d", json!("AQAB")),
            with(p256_jwk(), "crv", json!("P-521")),
            with(p256_jwk(), "x", json!(b64(&[1; 31]))),
            with(p256_jwk(), "alg", json!("ES384")),
            with(ed_jwk(), "crv", json!("Ed448")),
            with(ed_jwk(), "x", json!(b64(&[3; 57]))),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "PQC", "x": "AA"}),
        ];
        for jwk in bad {
            assert!(parse_jwk(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn a_bad_entry_does_not_break_the_others_and_the_cap_applies() {
        let keys = [
            json!({"kty": "PQC"}),
            rsa_jwk(),
            json!(null),
            p256_jwk(),
            ed_jwk(),
        ];
        assert_eq!(parse_keys("u", &keys, 64).len(), 3);
        let capped = parse_keys("u", &keys, 2);
        assert_eq!(capped.len(), 2);
        assert_eq!(capped[0].kid.as_deref(), Some("r1"));
        assert_eq!(capped[1].kid.as_deref(), Some("e1"));
    }

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
}
