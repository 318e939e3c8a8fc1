//! [`JwtVerifierBuilder`]: every setting of [`JwtVerifier`], checked once in
//! [`build`](JwtVerifierBuilder::build).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;

use super::issuer::TrustedIssuer;
use super::{Inner, JwtVerifier};
use crate::discovery::AuthServer;
use crate::error::ConfigError;
use crate::http_client::HttpClient;
use crate::verify::JwsAlgorithm;
use crate::verify::cache::CacheSettings;
use crate::verify::claims::{ClaimRules, DEFAULT_LEEWAY};
use crate::verify::jwks::{JwksCache, JwksSeed, JwksSettings};

/// Default minimum time between two fetches of one JWKS (30 s), and the longest wait between
/// two attempts after failed fetches.
pub const DEFAULT_JWKS_REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
/// The wait after a failed JWKS fetch before the next attempt (1 s), doubling after each
/// further failure up to the refresh cooldown.
pub const FIRST_JWKS_RETRY: Duration = Duration::from_secs(1);
/// Default longest age of a JWKS before it is fetched again (10 minutes); a shorter
/// `Cache-Control: max-age` from the JWKS response is honoured down to the refresh cooldown.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// Default longest time after the last successful JWKS fetch that its keys keep verifying
/// tokens while refreshes fail (24 hours).
pub const DEFAULT_JWKS_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);
/// Largest JWKS seed file read (1 MiB, the default response cap of a fetched JWKS).
const MAX_SEED_FILE_BYTES: u64 = 1024 * 1024;
/// Default maximum number of keys kept from one JWKS (64).
pub const DEFAULT_MAX_KEYS: usize = 64;

/// Builder for [`JwtVerifier`]; every setter documents its default, and
/// [`build`](Self::build) refuses every bad setting.
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
    max_staleness: Duration,
    max_keys: usize,
    seeds: Vec<SeedSpec>,
    cache: CacheSettings,
}

#[derive(Debug, Clone)]
enum IssuerSpec {
    AuthServer(AuthServer),
    Jwks { issuer: String, jwks_uri: String },
}

/// A static JWKS to start an issuer's key set with, loaded by [`JwtVerifierBuilder::build`].
#[derive(Debug, Clone)]
struct SeedSpec {
    issuer: String,
    source: SeedSource,
}

#[derive(Debug, Clone)]
enum SeedSource {
    Set(JwkSet),
    File(PathBuf),
}

impl SeedSpec {
    /// The seed's keys, or the typed reason it cannot be used.
    fn load(&self, max_keys: usize) -> Result<JwksSeed, ConfigError> {
        let origin = match &self.source {
            SeedSource::Set(_) => "the `JwkSet` given to `jwks_seed`".to_owned(),
            SeedSource::File(path) => format!("the file {}", path.display()),
        };
        let invalid = |reason: String| ConfigError::InvalidJwksSeed {
            issuer: self.issuer.clone(),
            origin: origin.clone(),
            reason,
        };
        let document = match &self.source {
            SeedSource::Set(set) => serde_json::to_value(set)
                .map_err(|e| invalid(format!("it cannot be serialised ({e})")))?,
            SeedSource::File(path) => {
                let mut bytes = Vec::new();
                std::fs::File::open(path)
                    .and_then(|file| file.take(MAX_SEED_FILE_BYTES + 1).read_to_end(&mut bytes))
                    .map_err(|e| invalid(format!("it cannot be read ({e})")))?;
                if bytes.len() as u64 > MAX_SEED_FILE_BYTES {
                    return Err(invalid(format!(
                        "it is larger than {MAX_SEED_FILE_BYTES} bytes"
                    )));
                }
                serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("it is not JSON ({e})")))?
            }
        };
        JwksSeed::from_document(&origin, &document, max_keys).map_err(|e| invalid(e.to_owned()))
    }
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
            max_staleness: DEFAULT_JWKS_MAX_STALENESS,
            max_keys: DEFAULT_MAX_KEYS,
            seeds: Vec::new(),
            cache: CacheSettings::default(),
        }
    }
}

impl JwtVerifierBuilder {
    /// Trusts tokens whose `iss` is exactly `server.issuer()`, verified with the keys at the
    /// `jwks_uri` of its metadata ([`AuthServer::metadata`], fetched on first use if the
    /// server is discovered). Repeatable, one call per trusted server; an issuer trusted twice
    /// is refused by [`build`](Self::build).
    pub fn authorization_server(mut self, server: AuthServer) -> Self {
        self.sources.push(IssuerSpec::AuthServer(server));
        self
    }

    /// Trusts tokens whose `iss` is exactly `issuer`, verified with the keys at `jwks_uri`
    /// (no metadata discovery). Repeatable. [`build`](Self::build) refuses an empty issuer,
    /// an issuer trusted twice, and a `jwks_uri` the HTTP client would not fetch.
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
    /// Default: 60 s ([`DEFAULT_LEEWAY`]); more than 5 minutes
    /// ([`MAX_LEEWAY`](crate::verify::jwt::MAX_LEEWAY)) is refused by [`build`](Self::build).
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
    /// [`AuthInfo::scopes`](crate::AuthInfo::scopes) holds the full names, so
    /// `required_scopes`, per-tool scopes, `scopes_supported` and the `scope` of every
    /// challenge all use the names clients must request. The claims in
    /// [`AuthInfo::claims`](crate::AuthInfo::claims) are left as the token has them.
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
    /// [`build`](Self::build) refuses an empty prefix, and one with whitespace or control
    /// characters (scopes are space-separated).
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

    /// Minimum time between two fetches of one JWKS after a successful one. A token with an
    /// unknown `kid` triggers a refresh only if the last fetch is older than this; otherwise it
    /// is rejected without a request, so random `kid`s cannot make us hammer the authorization
    /// server. It is also the floor of a `Cache-Control: max-age` hint (see
    /// [`jwks_max_age`](Self::jwks_max_age)).
    ///
    /// A failed fetch is retried sooner, with a backoff: the next attempt may start 1 s after
    /// it ([`FIRST_JWKS_RETRY`], or the cooldown if shorter), then 2 s, 4 s, ... up to the
    /// cooldown; the first success resets it. Meanwhile tokens that need a fetch get 503 at
    /// once, without a request (so a flood of unknown `kid`s during an outage costs a handful
    /// of fetches), and a JWKS endpoint that heals is used again within about a second.
    ///
    /// Default: 30 s ([`DEFAULT_JWKS_REFRESH_COOLDOWN`]); zero is refused by
    /// [`build`](Self::build).
    pub fn jwks_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.refresh_cooldown = cooldown;
        self
    }

    /// Longest age of a JWKS before it is fetched again. The refresh runs in the background
    /// while the cached keys keep working; if it fails, they stay in use (up to
    /// [`jwks_max_staleness`](Self::jwks_max_staleness)) and the failure is logged.
    ///
    /// The JWKS response's `Cache-Control` is honoured within bounds: a `max-age` (less the
    /// response's `Age`) shorter than this is the age used instead, but never shorter than the
    /// [refresh cooldown](Self::jwks_refresh_cooldown); `no-store` and `no-cache` mean the
    /// cooldown; a longer `max-age` is cut to this; a missing or malformed header means this.
    ///
    /// Default: 10 minutes ([`DEFAULT_JWKS_MAX_AGE`]); zero is refused by
    /// [`build`](Self::build).
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Longest time after the last successful fetch of a JWKS (or after [`build`](Self::build)
    /// for [seeded](Self::jwks_seed) keys) that its keys keep verifying tokens while refreshes
    /// fail. Past it, tokens that need those keys get 503 (`temporarily_unavailable`) until a
    /// fetch succeeds; a key the authorization server withdrew during a long outage cannot
    /// verify tokens forever. While fetches succeed it never applies.
    ///
    /// Default: 24 hours ([`DEFAULT_JWKS_MAX_STALENESS`]); [`build`](Self::build) refuses
    /// zero ([`ConfigError::ZeroSetting`]) and a staleness no longer than the refresh cooldown
    /// ([`ConfigError::StalenessWithinCooldown`]: the keys would expire before a fetch may
    /// renew them).
    /// Air-gapped deployments that rely on a seed alone need a staleness as long as the seed
    /// is meant to last.
    pub fn jwks_max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    /// Starts `issuer`'s key set with the keys of `jwks` (a static JWKS, for example from your
    /// deployment's configuration), so tokens verify before, or without, the first fetch:
    /// for cold-start-sensitive or air-gapped deployments. Default: no seed (the keys are
    /// fetched on first use).
    ///
    /// The seeded keys are checked like fetched ones (unusable keys are skipped) and used until
    /// the first successful fetch of the JWKS replaces them; that fetch starts in the
    /// background with the first token (a token with a `kid` the seed lacks makes it at once).
    /// While the authorization server's metadata cannot be fetched (so its `jwks_uri` is not
    /// known), the seed answers alone. For [`jwks_max_staleness`](Self::jwks_max_staleness) the
    /// seed counts as fetched at [`build`](Self::build). `issuer` must be a trusted issuer
    /// (added with [`authorization_server`](Self::authorization_server) or
    /// [`issuer_jwks`](Self::issuer_jwks)); one seed per issuer.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use mcp_auth::verify::{JwkSet, JwtVerifier};
    ///
    /// let jwks: JwkSet = serde_json::from_str(r#"{"keys": [{
    ///     "kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA",
    ///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    /// }]}"#)?;
    /// let verifier = JwtVerifier::builder()
    ///     .issuer_jwks("https://auth.example.com", "https://auth.example.com/jwks.json")
    ///     .jwks_seed("https://auth.example.com", jwks)
    ///     .build()?;
    /// # let _ = verifier;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`build`](Self::build) refuses, with [`ConfigError::InvalidJwksSeed`], a seed with no
    /// usable key, one for an issuer that is not trusted, and a second seed for one issuer.
    pub fn jwks_seed(mut self, issuer: impl Into<String>, jwks: JwkSet) -> Self {
        self.seeds.push(SeedSpec {
            issuer: issuer.into(),
            source: SeedSource::Set(jwks),
        });
        self
    }

    /// Like [`jwks_seed`](Self::jwks_seed), with the JWKS read from the JSON file at `path`
    /// (`{"keys": [...]}`, at most 1 MiB) by [`build`](Self::build), which fails with
    /// [`ConfigError::InvalidJwksSeed`] if the file cannot be read, is not a JWKS, or has no
    /// usable key. Default: no seed.
    pub fn jwks_seed_file(mut self, issuer: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.seeds.push(SeedSpec {
            issuer: issuer.into(),
            source: SeedSource::File(path.into()),
        });
        self
    }

    /// Most keys kept from one JWKS document; further keys are ignored with a warning.
    /// Default: 64 ([`DEFAULT_MAX_KEYS`]); zero is refused by [`build`](Self::build).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Remembers successful verifications, so that a token presented again (a client reuses
    /// its access token for its whole lifetime) skips the signature check. Default: `true`;
    /// `false` turns the verified-token cache off.
    ///
    /// The cache never accepts a token that a fresh verification would refuse at that moment
    /// (see [the module docs](super#the-verified-token-cache)): entries are keyed by the
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

    /// Builds the verifier, checking every setting. Makes no network request (it reads a
    /// [seed file](Self::jwks_seed_file) if one is given).
    ///
    /// # Errors
    ///
    /// - [`ConfigError::NoTrustedIssuer`]: no issuer was added;
    /// - [`ConfigError::EmptyIssuer`], [`ConfigError::IssuerTrustedTwice`]: an issuer is empty
    ///   or added twice;
    /// - [`ConfigError::InvalidJwksUri`]: a JWKS URL is invalid or plain http on a
    ///   non-loopback host (see [`HttpClient`]); [`ConfigError::JwksHttpClient`]: the default
    ///   HTTP client could not be created;
    /// - [`ConfigError::NoAllowedAlgorithm`]: the algorithm list is empty;
    /// - [`ConfigError::LeewayTooLong`]: the leeway exceeds
    ///   [`MAX_LEEWAY`](crate::verify::jwt::MAX_LEEWAY);
    /// - [`ConfigError::InvalidScopePrefix`]: the scope prefix is empty or has whitespace or
    ///   control characters;
    /// - [`ConfigError::ZeroSetting`]: the refresh cooldown, the max age, the max staleness,
    ///   `max_keys`, the cache `ttl` or `max_entries` is zero;
    ///   [`ConfigError::StalenessWithinCooldown`]: the max staleness is not longer than the
    ///   refresh cooldown;
    /// - [`ConfigError::InvalidJwksSeed`]: a seed cannot be read, has no usable key, is for an
    ///   issuer that is not trusted, or is the second one for its issuer.
    pub fn build(self) -> Result<JwtVerifier, ConfigError> {
        if self.sources.is_empty() {
            return Err(ConfigError::NoTrustedIssuer);
        }
        let rules = ClaimRules::new(self.leeway, self.strict_rfc9068, self.scope_prefix)?;
        let jwks_settings = jwks_settings(
            self.refresh_cooldown,
            self.max_age,
            self.max_staleness,
            self.max_keys,
        )?;
        let algorithms = allow_list(self.algorithms)?;
        let verified = self.cache.build()?;
        let mut seeds = load_seeds(&self.seeds, self.max_keys)?;

        let mut default_http: Option<HttpClient> = self.http.clone();
        let mut issuers: Vec<TrustedIssuer> = Vec::with_capacity(self.sources.len());
        for spec in self.sources {
            let trusted = match spec {
                IssuerSpec::AuthServer(server) => {
                    let http = self
                        .http
                        .clone()
                        .unwrap_or_else(|| server.http_client().clone());
                    let seed = take_seed(&mut seeds, server.issuer());
                    TrustedIssuer::with_auth_server(server, http, seed)
                }
                IssuerSpec::Jwks { issuer, jwks_uri } => {
                    let http = match &default_http {
                        Some(http) => http.clone(),
                        None => {
                            let http = HttpClient::builder()
                                .build()
                                .map_err(|source| ConfigError::JwksHttpClient { source })?;
                            default_http = Some(http.clone());
                            http
                        }
                    };
                    if let Err(source) = http.check_url(&jwks_uri) {
                        return Err(ConfigError::InvalidJwksUri { issuer, source });
                    }
                    let seed = take_seed(&mut seeds, &issuer);
                    let jwks = JwksCache::new(jwks_uri, http, jwks_settings, seed.as_ref());
                    TrustedIssuer::with_jwks(issuer, jwks)
                }
            };
            if trusted.issuer.is_empty() {
                return Err(ConfigError::EmptyIssuer);
            }
            if issuers.iter().any(|known| known.issuer == trusted.issuer) {
                return Err(ConfigError::IssuerTrustedTwice {
                    issuer: trusted.issuer,
                });
            }
            issuers.push(trusted);
        }
        if let Some((issuer, _)) = seeds.into_iter().next() {
            return Err(ConfigError::InvalidJwksSeed {
                issuer,
                origin: "`jwks_seed` or `jwks_seed_file`".to_owned(),
                reason: "the issuer is not trusted by this verifier; add it with                          `authorization_server` or `issuer_jwks`, with exactly the same spelling"
                    .to_owned(),
            });
        }

        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                issuers,
                algorithms,
                rules,
                jwks_settings,
                verified,
            }),
        })
    }
}

/// Every seed's keys, by issuer, refusing a second seed for one issuer.
fn load_seeds(specs: &[SeedSpec], max_keys: usize) -> Result<Vec<(String, JwksSeed)>, ConfigError> {
    let mut seeds: Vec<(String, JwksSeed)> = Vec::with_capacity(specs.len());
    for spec in specs {
        if seeds.iter().any(|(issuer, _)| *issuer == spec.issuer) {
            return Err(ConfigError::InvalidJwksSeed {
                issuer: spec.issuer.clone(),
                origin: "a second `jwks_seed` or `jwks_seed_file`".to_owned(),
                reason: "the issuer is already seeded; put all its keys in one JWKS".to_owned(),
            });
        }
        seeds.push((spec.issuer.clone(), spec.load(max_keys)?));
    }
    Ok(seeds)
}

/// Removes and returns the seed of `issuer`, if any.
fn take_seed(seeds: &mut Vec<(String, JwksSeed)>, issuer: &str) -> Option<JwksSeed> {
    let index = seeds.iter().position(|(seeded, _)| seeded == issuer)?;
    Some(seeds.swap_remove(index).1)
}

/// The JWKS cache settings, each of which must be greater than zero.
fn jwks_settings(
    refresh_cooldown: Duration,
    max_age: Duration,
    max_staleness: Duration,
    max_keys: usize,
) -> Result<JwksSettings, ConfigError> {
    if refresh_cooldown.is_zero() {
        return Err(ConfigError::ZeroSetting {
            setting: "jwks_refresh_cooldown",
            advice: "it is the least time between two fetches of a JWKS, so that tokens with \
                     random `kid`s cannot make a fetch each; keep the default of 30 s, or a few \
                     seconds at least",
        });
    }
    if max_age.is_zero() {
        return Err(ConfigError::ZeroSetting {
            setting: "jwks_max_age",
            advice: "it is the age after which a JWKS is fetched again, so zero would fetch it \
                     for every token; keep the default of 10 minutes",
        });
    }
    if max_staleness.is_zero() {
        return Err(ConfigError::ZeroSetting {
            setting: "jwks_max_staleness",
            advice: "it is how long keys keep verifying tokens while the JWKS cannot be \
                     fetched, so zero would refuse every token at the first failed refresh; \
                     keep the default of 24 hours",
        });
    }
    if max_staleness <= refresh_cooldown {
        return Err(ConfigError::StalenessWithinCooldown {
            max_staleness,
            refresh_cooldown,
        });
    }
    if max_keys == 0 {
        return Err(ConfigError::ZeroSetting {
            setting: "max_keys",
            advice: "it is the most keys kept from one JWKS, so zero would keep none and \
                     verify nothing; keep the default of 64",
        });
    }
    Ok(JwksSettings {
        refresh_cooldown,
        max_age,
        max_staleness,
        max_keys,
    })
}

/// The allow-list in the order given, without repeats; all algorithms by default.
fn allow_list(algorithms: Option<Vec<JwsAlgorithm>>) -> Result<Vec<JwsAlgorithm>, ConfigError> {
    let mut allowed: Vec<JwsAlgorithm> = Vec::new();
    for alg in algorithms.unwrap_or_else(|| JwsAlgorithm::ALL.to_vec()) {
        if !allowed.contains(&alg) {
            allowed.push(alg);
        }
    }
    if allowed.is_empty() {
        return Err(ConfigError::NoAllowedAlgorithm);
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::jwt::MAX_LEEWAY;

    #[test]
    fn the_builder_refuses_bad_settings() {
        let base =
            || JwtVerifier::builder().issuer_jwks("https://a.example", "https://a.example/jwks");
        let zero = |result: Result<JwtVerifier, ConfigError>, name: &str| {
            assert!(
                matches!(&result, Err(ConfigError::ZeroSetting { setting, .. }) if *setting == name),
                "{name}: {result:?}"
            );
        };
        assert!(matches!(
            JwtVerifier::builder().build(),
            Err(ConfigError::NoTrustedIssuer)
        ));
        assert!(matches!(
            base().algorithms([]).build(),
            Err(ConfigError::NoAllowedAlgorithm)
        ));
        assert!(matches!(
            base().leeway(Duration::from_secs(301)).build(),
            Err(ConfigError::LeewayTooLong { .. })
        ));
        assert!(base().leeway(MAX_LEEWAY).build().is_ok());
        zero(
            base().jwks_refresh_cooldown(Duration::ZERO).build(),
            "jwks_refresh_cooldown",
        );
        zero(base().jwks_max_age(Duration::ZERO).build(), "jwks_max_age");
        zero(base().max_keys(0).build(), "max_keys");
        zero(base().ttl(Duration::ZERO).build(), "ttl");
        zero(base().cache(false).max_entries(0).build(), "max_entries");
        assert!(matches!(
            base().scope_prefix("").build(),
            Err(ConfigError::InvalidScopePrefix { .. })
        ));
        assert!(matches!(
            base()
                .issuer_jwks("https://a.example", "https://b.example/jwks")
                .build(),
            Err(ConfigError::IssuerTrustedTwice { issuer }) if issuer == "https://a.example"
        ));
        assert!(matches!(
            JwtVerifier::builder()
                .issuer_jwks("", "https://a.example/jwks")
                .build(),
            Err(ConfigError::EmptyIssuer)
        ));
        for bad_uri in ["http://a.example/jwks", "not a url"] {
            assert!(
                matches!(
                    JwtVerifier::builder()
                        .issuer_jwks("https://a.example", bad_uri)
                        .build(),
                    Err(ConfigError::InvalidJwksUri { issuer, .. }) if issuer == "https://a.example"
                ),
                "{bad_uri}"
            );
        }
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
    fn the_builder_refuses_a_bad_staleness_and_misplaced_seeds() {
        let base =
            || JwtVerifier::builder().issuer_jwks("https://a.example", "https://a.example/jwks");
        assert!(matches!(
            base().jwks_max_staleness(Duration::ZERO).build(),
            Err(ConfigError::ZeroSetting {
                setting: "jwks_max_staleness",
                ..
            })
        ));
        assert!(matches!(
            base()
                .jwks_refresh_cooldown(Duration::from_secs(60))
                .jwks_max_staleness(Duration::from_secs(60))
                .build(),
            Err(ConfigError::StalenessWithinCooldown { .. })
        ));
        assert!(
            base()
                .jwks_refresh_cooldown(Duration::from_secs(60))
                .jwks_max_staleness(Duration::from_secs(61))
                .build()
                .is_ok()
        );
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "kid": "k1",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }]}))
        .unwrap();
        assert!(
            base()
                .jwks_seed("https://a.example", jwks.clone())
                .build()
                .is_ok()
        );
        let refused = |builder: JwtVerifierBuilder, needle: &str| {
            let result = builder.build();
            assert!(
                matches!(&result, Err(e @ ConfigError::InvalidJwksSeed { .. }) if e.to_string().contains(needle)),
                "{needle}: {result:?}"
            );
        };
        refused(
            base().jwks_seed("https://b.example", jwks.clone()),
            "not trusted",
        );
        refused(
            base()
                .jwks_seed("https://a.example", jwks.clone())
                .jwks_seed("https://a.example", jwks),
            "already seeded",
        );
        refused(
            base().jwks_seed("https://a.example", JwkSet { keys: Vec::new() }),
            "no usable",
        );
        refused(
            base().jwks_seed_file("https://a.example", "/nonexistent/jwks.json"),
            "cannot be read",
        );
    }
}
