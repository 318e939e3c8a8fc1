//! Steps 2 and 3 of the [JWT checks](super#what-is-checked-in-order): the trusted issuers, and
//! where each one's keys come from. A token's key is looked up in its own issuer's JWKS only.

use std::sync::{Arc, PoisonError, RwLock};

use crate::discovery::AuthServer;
use crate::error::VerifyError;
use crate::http_client::HttpClient;
use crate::verify::JwsAlgorithm;
use crate::verify::jwk::JwkKey;
use crate::verify::jwks::{JwksCache, JwksSeed, JwksSettings};

/// A trusted issuer and where its keys come from.
pub(super) struct TrustedIssuer {
    pub(super) issuer: String,
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
        /// Keys to start with: used while the metadata cannot be fetched, then the first
        /// cache's keys until its first successful fetch.
        seed: Option<JwksSeed>,
    },
}

impl TrustedIssuer {
    /// Trusts `issuer` with the keys at `jwks`.
    pub(super) fn with_jwks(issuer: String, jwks: JwksCache) -> Self {
        Self {
            issuer,
            source: KeySource::Jwks(Arc::new(jwks)),
        }
    }

    /// Trusts `server`'s issuer with the keys at the `jwks_uri` of its metadata, fetched
    /// through `http` on first use, starting from `seed`'s keys if given.
    pub(super) fn with_auth_server(
        server: AuthServer,
        http: HttpClient,
        seed: Option<JwksSeed>,
    ) -> Self {
        Self {
            issuer: server.issuer().to_owned(),
            source: KeySource::AuthServer {
                server,
                http,
                cache: RwLock::new(None),
                seed,
            },
        }
    }

    /// The key for a token of this issuer.
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
        alg: JwsAlgorithm,
        settings: JwksSettings,
    ) -> Result<Arc<JwkKey>, VerifyError> {
        let cache = match self.jwks(settings).await {
            Ok(cache) => cache,
            Err(error) => return self.seeded_key(kid, alg, settings, error),
        };
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

    /// While the `jwks_uri` cannot be known (the metadata cannot be fetched: `error` is a
    /// 503), the seed's key for the token, if there is a seed; else `error`.
    fn seeded_key(
        &self,
        kid: Option<&str>,
        alg: JwsAlgorithm,
        settings: JwksSettings,
        error: VerifyError,
    ) -> Result<Arc<JwkKey>, VerifyError> {
        match (&self.source, &error) {
            (
                KeySource::AuthServer {
                    seed: Some(seed), ..
                },
                VerifyError::Unavailable { .. },
            ) => seed.key(kid, alg, settings.max_staleness, error),
            _ => Err(error),
        }
    }

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
        let (server, http, cache, seed) = match &self.source {
            KeySource::Jwks(cache) => return Ok(Arc::clone(cache)),
            KeySource::AuthServer {
                server,
                http,
                cache,
                seed,
            } => (server, http, cache, seed),
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
        // The seed stands in for a first fetch only: after a move, the keys come from the
        // new URL.
        let seed = seed.as_ref().filter(|_| slot.is_none());
        let fresh = Arc::new(JwksCache::new(uri.to_owned(), http.clone(), settings, seed));
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }
}
