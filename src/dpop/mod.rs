//! DPoP (RFC 9449) in the resource server: proof-of-possession for access tokens bound to a
//! client key (`cnf.jkt`).
//!
//! Turn it on with [`BearerAuthBuilder::dpop`](crate::BearerAuthBuilder::dpop). The guard then
//! accepts `Authorization: DPoP <token>` with a `DPoP: <proof>` header (and, unless
//! [`require`](DpopConfigBuilder::require)d, still `Bearer`), checks the proof exactly as RFC 9449
//! §4.3 lists, the token's `cnf.jkt` against the proof key's RFC 7638 thumbprint, and refuses a
//! replayed proof through a [`StateStore`] (in memory by default,
//! Redis for replicas). See the guide's "DPoP" section.
//!
//! ```
//! use mcp_auth::dpop::DpopConfig;
//! use mcp_auth::verify::JwsAlgorithm;
//!
//! let dpop = DpopConfig::builder()
//!     .algorithms([JwsAlgorithm::Es256, JwsAlgorithm::EdDsa])
//!     .require(true)
//!     .public_base_url("https://api.example.com")
//!     .nonces(true)
//!     .build()?;
//! assert!(dpop.required());
//! # Ok::<(), mcp_auth::ConfigError>(())
//! ```

mod htu;
mod nonce;
mod proof;
mod thumbprint;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use nonce::Nonces;
pub use nonce::{DEFAULT_NONCE_WINDOW, MAX_NONCE_WINDOW, MIN_NONCE_WINDOW, NonceConfig};
pub(crate) use proof::{CheckedProof, ProofTarget, check_proof};
#[cfg(feature = "test-util")]
pub(crate) use thumbprint::jwk_thumbprint;

use crate::error::ConfigError;
use crate::store::{MemoryStore, StateStore};
use crate::verify::JwsAlgorithm;

/// The proof algorithms accepted by default: `ES256`, `ES384`, `EdDSA`, `PS256`, `RS256`.
pub const DEFAULT_DPOP_ALGORITHMS: [JwsAlgorithm; 5] = [
    JwsAlgorithm::Es256,
    JwsAlgorithm::Es384,
    JwsAlgorithm::EdDsa,
    JwsAlgorithm::Ps256,
    JwsAlgorithm::Rs256,
];
/// How old a proof may be by default (its `iat`): 60 s.
pub const DEFAULT_IAT_PAST: Duration = Duration::from_secs(60);
/// How far in the future a proof may be dated by default (clock skew): 30 s. Clients date
/// proofs with their own clock, and laptops run seconds to tens of seconds fast; a window of a
/// few seconds refuses them (the interop suite saw a client 10 s ahead refused with 5 s).
pub const DEFAULT_IAT_FUTURE: Duration = Duration::from_secs(30);
/// The longest `iat` window into the past accepted: 10 minutes.
pub const MAX_IAT_PAST: Duration = Duration::from_secs(600);
/// The longest `iat` window into the future accepted: 5 minutes.
pub const MAX_IAT_FUTURE: Duration = Duration::from_secs(300);

/// Why a proof was refused: a bad proof, or a missing / stale server nonce (the fresh one).
#[derive(Debug)]
pub(crate) enum ProofError {
    Invalid(&'static str),
    UseNonce(String),
}

/// DPoP settings for a guard: build with [`DpopConfig::builder`], give to
/// [`BearerAuthBuilder::dpop`](crate::BearerAuthBuilder::dpop).
#[derive(Clone)]
pub struct DpopConfig {
    settings: DpopSettings,
}

/// The checked settings the guard runs with. `public_base_url` is the configured one until
/// [`DpopConfig::for_resource`] fills in the default (the resource's origin).
#[derive(Clone)]
pub(crate) struct DpopSettings {
    pub(crate) algorithms: Vec<JwsAlgorithm>,
    pub(crate) require: bool,
    pub(crate) public_base_url: Option<String>,
    pub(crate) iat_past: Duration,
    pub(crate) iat_future: Duration,
    pub(crate) nonces: Option<Nonces>,
    pub(crate) store: Arc<dyn StateStore>,
}

impl fmt::Debug for DpopSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopSettings")
            .field("algorithms", &self.algorithms)
            .field("require", &self.require)
            .field("public_base_url", &self.public_base_url)
            .field("iat_past", &self.iat_past)
            .field("iat_future", &self.iat_future)
            .field("nonces", &self.nonces)
            .field("store", &self.store.name())
            .finish()
    }
}

impl fmt::Debug for DpopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt(f)
    }
}

impl DpopConfig {
    /// A builder with the defaults (see each setter).
    pub fn builder() -> DpopConfigBuilder {
        DpopConfigBuilder::default()
    }

    /// The allowed proof algorithms, as published in `dpop_signing_alg_values_supported`.
    pub fn algorithms(&self) -> &[JwsAlgorithm] {
        &self.settings.algorithms
    }

    /// Whether DPoP is required (`Bearer` refused), as published in
    /// `dpop_bound_access_tokens_required`.
    pub fn required(&self) -> bool {
        self.settings.require
    }

    /// The settings of a guard for `resource`: the `htu` base defaults to the resource's
    /// origin.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DpopNoPublicUrl`] when there is neither a public base URL nor a resource
    /// identifier with an http(s) origin.
    pub(crate) fn for_resource(self, resource: Option<&str>) -> Result<DpopSettings, ConfigError> {
        let mut settings = self.settings;
        if settings.public_base_url.is_none() {
            let origin = resource
                .and_then(origin_of)
                .ok_or(ConfigError::DpopNoPublicUrl)?;
            settings.public_base_url = Some(check_base_url(&origin)?);
        }
        Ok(settings)
    }
}

impl DpopSettings {
    /// The `algs` of the DPoP challenge and `dpop_signing_alg_values_supported`.
    pub(crate) fn algorithm_names(&self) -> Vec<String> {
        self.algorithms
            .iter()
            .map(|alg| alg.as_str().to_owned())
            .collect()
    }

    /// How long a used `jti` is remembered: the whole `iat` window.
    pub(crate) fn replay_ttl(&self) -> Duration {
        self.iat_past.saturating_add(self.iat_future)
    }

    /// The URL a proof's `htu` must name for a request to `path`, or `None` when no URL can
    /// be formed (then no proof can match).
    pub(crate) fn expected_htu(&self, path: &str) -> Option<String> {
        htu::expected(self.public_base_url.as_deref()?, path)
    }
}

/// The builder of a [`DpopConfig`]; [`build`](Self::build) checks every setting.
#[derive(Clone, Default)]
#[must_use]
pub struct DpopConfigBuilder {
    algorithms: Option<Vec<JwsAlgorithm>>,
    require: bool,
    public_base_url: Option<String>,
    iat_window: Option<(Duration, Duration)>,
    nonces: Option<NonceConfig>,
    store: Option<Arc<dyn StateStore>>,
}

impl fmt::Debug for DpopConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopConfigBuilder")
            .field("algorithms", &self.algorithms)
            .field("require", &self.require)
            .field("public_base_url", &self.public_base_url)
            .field("iat_window", &self.iat_window)
            .field("nonces", &self.nonces)
            .finish_non_exhaustive()
    }
}

impl DpopConfigBuilder {
    /// The proof algorithms accepted. Default: [`DEFAULT_DPOP_ALGORITHMS`]. Only asymmetric
    /// algorithms exist in [`JwsAlgorithm`], so `HS*` and `none` cannot be named;
    /// [`build`](Self::build) refuses an empty list ([`ConfigError::NoAllowedAlgorithm`]).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = JwsAlgorithm>) -> Self {
        let mut list = Vec::new();
        for alg in algorithms {
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        self.algorithms = Some(list);
        self
    }

    /// Requires DPoP: `Bearer` credentials are refused and challenges name `DPoP` only.
    /// Default: `false` (both schemes; a DPoP-bound token is refused as `Bearer` either way).
    pub fn require(mut self, require: bool) -> Self {
        self.require = require;
        self
    }

    /// The externally visible base URL the proofs' `htu` must name, for servers behind a proxy
    /// (`https://public.example.com`, optionally with a path prefix the proxy strips). Default:
    /// the scheme, host and port of the guard's resource identifier. A forwarded header is
    /// never used. [`build`](Self::build) refuses a URL that is not absolute http(s) or has a
    /// query or fragment ([`ConfigError::DpopPublicBaseUrl`]).
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// How old (`past`) and how far in the future (`future`) a proof's `iat` may be. Default:
    /// 60 s and 30 s; at most 10 minutes and 5 minutes ([`ConfigError::DpopIatWindow`]). Accepted
    /// `jti`s are remembered for `past + future`.
    pub fn iat_window(mut self, past: Duration, future: Duration) -> Self {
        self.iat_window = Some((past, future));
        self
    }

    /// Server nonces (RFC 9449 §9): `true` for a random secret and a 5-minute window, a
    /// [`NonceConfig`] to choose, `false` (the default) for none. With nonces, a proof without
    /// a current nonce gets 401 `use_dpop_nonce` and a `DPoP-Nonce` header; a nonce is accepted
    /// in the window it was issued in and the next one.
    pub fn nonces(mut self, nonces: impl Into<NonceSetting>) -> Self {
        self.nonces = match nonces.into() {
            NonceSetting(Some(config)) => Some(config),
            NonceSetting(None) => None,
        };
        self
    }

    /// Where used proof `jti`s are remembered (replay detection). Default: a fresh
    /// [`MemoryStore`] for this guard; give replicas one shared store (Redis) so a proof used
    /// on one is refused on the others. A store error refuses the request (503).
    pub fn store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoAllowedAlgorithm`], [`ConfigError::DpopPublicBaseUrl`],
    /// [`ConfigError::DpopIatWindow`], [`ConfigError::DpopNonceWindow`],
    /// [`ConfigError::DpopNonceSecretTooShort`], [`ConfigError::DpopRandomUnavailable`].
    pub fn build(self) -> Result<DpopConfig, ConfigError> {
        let algorithms = self
            .algorithms
            .unwrap_or_else(|| DEFAULT_DPOP_ALGORITHMS.to_vec());
        if algorithms.is_empty() {
            return Err(ConfigError::NoAllowedAlgorithm);
        }
        let public_base_url = match self.public_base_url {
            Some(url) => Some(check_base_url(&url)?),
            None => None,
        };
        let (iat_past, iat_future) = self
            .iat_window
            .unwrap_or((DEFAULT_IAT_PAST, DEFAULT_IAT_FUTURE));
        if iat_past > MAX_IAT_PAST || iat_future > MAX_IAT_FUTURE {
            return Err(ConfigError::DpopIatWindow {
                past: iat_past,
                future: iat_future,
                max_past: MAX_IAT_PAST,
                max_future: MAX_IAT_FUTURE,
            });
        }
        let nonces = self.nonces.map(Nonces::from_config).transpose()?;
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new()) as Arc<dyn StateStore>);
        Ok(DpopConfig {
            settings: DpopSettings {
                algorithms,
                require: self.require,
                public_base_url,
                iat_past,
                iat_future,
                nonces,
                store,
            },
        })
    }
}

/// The argument of [`DpopConfigBuilder::nonces`]: `bool` or [`NonceConfig`].
#[derive(Debug, Clone)]
pub struct NonceSetting(Option<NonceConfig>);

impl From<bool> for NonceSetting {
    fn from(on: bool) -> Self {
        Self(on.then(NonceConfig::new))
    }
}

impl From<NonceConfig> for NonceSetting {
    fn from(config: NonceConfig) -> Self {
        Self(Some(config))
    }
}

/// `url` as a base for `htu`: absolute http(s) with a host, no query or fragment; kept as
/// given but without a trailing slash.
fn check_base_url(url: &str) -> Result<String, ConfigError> {
    let refuse = || ConfigError::DpopPublicBaseUrl {
        url: url.to_owned(),
    };
    let parsed = url::Url::parse(url).map_err(|_| refuse())?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(refuse());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// The origin (scheme, host, port) of a resource identifier, the default `htu` base.
fn origin_of(resource: &str) -> Option<String> {
    let parsed = url::Url::parse(resource).ok()?;
    match parsed.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_typed_config_errors() {
        assert!(matches!(
            DpopConfig::builder().algorithms([]).build(),
            Err(ConfigError::NoAllowedAlgorithm)
        ));
        for url in [
            "ftp://h",
            "/relative",
            "https://h/?q=1",
            "https://h/#f",
            "https://u@h",
        ] {
            assert!(
                matches!(
                    DpopConfig::builder().public_base_url(url).build(),
                    Err(ConfigError::DpopPublicBaseUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            DpopConfig::builder()
                .iat_window(Duration::from_secs(601), Duration::ZERO)
                .build(),
            Err(ConfigError::DpopIatWindow { .. })
        ));
        let config = DpopConfig::builder().build().unwrap();
        assert!(matches!(
            config.clone().for_resource(None),
            Err(ConfigError::DpopNoPublicUrl)
        ));
        assert!(matches!(
            config.for_resource(Some("urn:example:mcp")),
            Err(ConfigError::DpopNoPublicUrl)
        ));
    }

    #[test]
    fn the_htu_base_defaults_to_the_resource_origin_and_keeps_a_configured_prefix() {
        let default = DpopConfig::builder()
            .build()
            .unwrap()
            .for_resource(Some("https://API.example.com:443/a/mcp"))
            .unwrap();
        assert_eq!(
            default.expected_htu("/a/mcp").as_deref(),
            Some("https://api.example.com/a/mcp")
        );
        let proxied = DpopConfig::builder()
            .public_base_url("https://public.example.com/prefix/")
            .build()
            .unwrap()
            .for_resource(Some("http://127.0.0.1:3001/mcp"))
            .unwrap();
        assert_eq!(
            proxied.expected_htu("/mcp").as_deref(),
            Some("https://public.example.com/prefix/mcp")
        );
        assert_eq!(proxied.replay_ttl(), DEFAULT_IAT_PAST + DEFAULT_IAT_FUTURE);
        assert_eq!(
            proxied.algorithm_names(),
            ["ES256", "ES384", "EdDSA", "PS256", "RS256"]
        );
    }
}
