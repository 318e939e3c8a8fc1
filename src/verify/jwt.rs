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
//! fits, or cached keys older than [`JwtVerifierBuilder::jwks_max_staleness`] (24 h by default)
//! while refreshes fail ([`VerifyError::Unavailable`], 503); and an authorization server whose
//! metadata has no `jwks_uri` ([`VerifyError::Misconfigured`], 500).
//!
//! # When the JWKS endpoint fails
//!
//! - A failed fetch (timeout, error status, garbage) is retried with a backoff: 1 s
//!   ([`FIRST_JWKS_RETRY`]), then 2 s, 4 s, ... up to the refresh cooldown (30 s by default),
//!   reset by a success. Meanwhile tokens that need a fetch get 503 at once, without a request:
//!   a valid token verifies again about a second after the endpoint heals, and a flood of
//!   unknown `kid`s costs a handful of fetches.
//! - Keys already fetched keep verifying (stale-if-error) for
//!   [`jwks_max_staleness`](JwtVerifierBuilder::jwks_max_staleness) after the last successful
//!   fetch, then 503 until a fetch succeeds.
//! - The refresh age follows the JWKS response's `Cache-Control: max-age`, never below the
//!   cooldown nor above [`jwks_max_age`](JwtVerifierBuilder::jwks_max_age).
//! - [`jwks_seed`](JwtVerifierBuilder::jwks_seed) and
//!   [`jwks_seed_file`](JwtVerifierBuilder::jwks_seed_file) start the key set from a static
//!   JWKS, used until the first successful fetch replaces it.
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

mod builder;
mod issuer;
mod jws;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use serde_json::Value;

pub use self::builder::{
    DEFAULT_JWKS_MAX_AGE, DEFAULT_JWKS_MAX_STALENESS, DEFAULT_JWKS_REFRESH_COOLDOWN,
    DEFAULT_MAX_KEYS, FIRST_JWKS_RETRY, JwtVerifierBuilder,
};
pub use super::claims::{DEFAULT_LEEWAY, MAX_LEEWAY};

use self::issuer::TrustedIssuer;
use self::jws::{CompactJws, RawHeader, decode_segment, parse_claims};
use super::cache::{Expiring, ExpiringCache, token_hash, with_token, without_token};
use super::claims::ClaimRules;
use super::jwk::JwkKey;
use super::jwks::JwksSettings;
use super::{JwsAlgorithm, TokenVerifier};
use crate::auth_info::AuthInfo;
use crate::error::VerifyError;
use crate::time::unix_now;

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

/// Everything [`JwtVerifierBuilder::build`] checked.
struct Inner {
    issuers: Vec<TrustedIssuer>,
    algorithms: Vec<JwsAlgorithm>,
    rules: ClaimRules,
    jwks_settings: JwksSettings,
    /// Successful verifications, when the cache is on.
    verified: Option<ExpiringCache<Verified>>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuers", &self.trusted_issuers().collect::<Vec<_>>())
            .field("algorithms", &self.allowed_algorithms().collect::<Vec<_>>())
            .field("strict_rfc9068", &self.inner.rules.strict_rfc9068)
            .field("scope_prefix", &self.inner.rules.scope_prefix)
            .field("jwks", &self.inner.jwks_settings)
            .field("verified_token_cache", &self.inner.verified)
            .finish_non_exhaustive()
    }
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
                crate::metrics::cache_lookup(crate::metrics::Cache::Jwt, true);
                return Ok(with_token(&hit.info, token));
            }
            cache.invalidate(&hash).await;
        }
        crate::metrics::cache_lookup(crate::metrics::Cache::Jwt, false);
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
        let jws = CompactJws::split(token)?;

        // 1. Header, before anything else and without any network request.
        let header_json = decode_segment(jws.header, "the token header is not valid base64url")?;
        let header = RawHeader::parse(&header_json)?;
        let alg = header.allowed_algorithm(&inner.algorithms)?;
        inner.rules.check_type(header.typ.as_deref())?;

        // 2. Issuer, still without any network request.
        let payload_json = decode_segment(jws.payload, "the token payload is not valid base64url")?;
        let claims = parse_claims(&payload_json)?;
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
        match jsonwebtoken::crypto::verify(
            jws.signature,
            jws.signing_input.as_bytes(),
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
        inner.rules.check_claims(&claims, unix_now())?;
        let binding = KeyBinding {
            issuer: issuer_index,
            kid: header.kid.map(|kid| kid.into()),
            alg,
            key,
        };
        let mut info = AuthInfo::from_claims(token, claims)?;
        inner.rules.name_scopes(&mut info.scopes);
        Ok((info, binding))
    }
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
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    fn signature_failures_map_to_short_reasons() {
        let reason = |kind: ErrorKind| reject(&kind).to_string();
        assert!(reason(ErrorKind::InvalidSignature).contains("signature is invalid"));
        assert!(reason(ErrorKind::InvalidKeyFormat).contains("signing key"));
        assert!(reason(ErrorKind::UnsupportedAlgorithm).contains("could not be verified"));
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
