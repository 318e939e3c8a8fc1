//! [`BearerAuth`]: the framework-neutral bearer guard of one protected resource.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use tracing::Instrument as _;

#[cfg(test)]
use super::builder::BearerAuthBuilder;
use super::builder::{Audience, Settings, Target};
use super::challenge::BearerChallenge;
use super::confirmation::Confirmation;
use super::error::BearerAuthError;
use super::header::{Scheme, credentials};
use super::rejection::BearerRejection;
use crate::auth_info::{AuthInfo, TokenBinding};
use crate::scope::{OFFLINE_ACCESS, ScopeHierarchy};
use crate::time::unix_now;
use crate::verify::TokenVerifier;

/// The bearer guard of one protected resource: reads the token from the `Authorization`
/// header, verifies it, and checks issuer, audience and scopes.
///
/// Build one with [`McpAuth::bearer_auth`](crate::McpAuth::bearer_auth) (or
/// [`bearer_auth_jwt`](crate::McpAuth::bearer_auth_jwt)), which gives a [`BearerAuthBuilder`](crate::BearerAuthBuilder)
/// whose [`build`](crate::BearerAuthBuilder::build) checks every setting; mount it with
/// [`layer`](Self::layer) (tower, axum, hyper) or call [`authenticate`](Self::authenticate)
/// from any other framework. Cheap to clone.
///
/// Checks, in order (the first failure answers):
///
/// 1. exactly one `Authorization` header, `Bearer 1*SP b64token` (scheme in any case), at most
///    [`max_header_bytes`](crate::BearerAuthBuilder::max_header_bytes) long. A token in the query
///    string is never read;
/// 2. the [`TokenVerifier`] accepts the token;
/// 3. the token has not expired: its [`expires_at`](AuthInfo::expires_at) plus the
///    [`leeway`](crate::BearerAuthBuilder::leeway) is not in the past, whatever the verifier
///    (and, with [`require_expiry`](crate::BearerAuthBuilder::require_expiry), it has one);
/// 4. the token's issuer is one of the resource's trusted authorization servers (also for
///    custom verifiers);
/// 5. the token's audience contains an accepted audience: the resource identifier by default,
///    see [`audience`](crate::BearerAuthBuilder::audience) and
///    [`skip_audience_check`](crate::BearerAuthBuilder::skip_audience_check). Steps 4 and 5
///    do not apply to [API keys](crate::verify::ApiKeyVerifier)
///    ([`CredentialKind::ApiKey`](crate::CredentialKind::ApiKey)), which this server checks
///    against its own list;
/// 6. every [required scope](crate::BearerAuthBuilder::required_scopes) is granted, directly or
///    through the [scope hierarchy](crate::BearerAuthBuilder::scope_implies).
///
/// Refusals follow RFC 6750 and MCP exactly (see [`BearerAuthError`] for the table): 401
/// without `error` when there are no bearer credentials, 400 `invalid_request` for malformed
/// ones, 401 `invalid_token`, 403 `insufficient_scope` naming every required scope, 503 when
/// the authorization server is unreachable and 500 when the verifier reports a
/// misconfiguration. Every challenge carries `resource_metadata` and `scope` (when scopes are
/// required). The token itself is never logged; the fine-grained reason is logged at `debug`
/// (refusals of the client) or `warn`/`error` (503/500).
#[derive(Clone)]
pub struct BearerAuth {
    config: Arc<Config>,
}

struct Config {
    target: Target,
    settings: Settings,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = &self.config.target;
        f.debug_struct("BearerAuth")
            .field("resource", &target.resource)
            .field("trusted_issuers", &target.trusted_issuers)
            .field("settings", &self.config.settings)
            .finish_non_exhaustive()
    }
}

impl BearerAuth {
    /// Starts a guard that verifies tokens with `verifier` and trusts `trusted_issuers`, for the
    /// crate's unit tests. [`McpAuth::bearer_auth`](crate::McpAuth::bearer_auth) and its
    /// siblings are the way in: they fill these from the configured resource. With a
    /// `resource`, the accepted audience defaults to it and challenges carry
    /// `resource_metadata_url`.
    #[cfg(test)]
    pub(crate) fn builder(
        verifier: Arc<dyn TokenVerifier>,
        trusted_issuers: Vec<String>,
        resource: Option<String>,
        resource_metadata_url: Option<String>,
    ) -> BearerAuthBuilder {
        BearerAuthBuilder::new(Ok(Target {
            verifier,
            trusted_issuers,
            resource,
            resource_metadata_url,
            document: None,
        }))
    }

    /// The guard a validated builder describes (see [`BearerAuthBuilder::build`]).
    pub(super) fn from_parts(target: Target, settings: Settings) -> Self {
        Self {
            config: Arc::new(Config { target, settings }),
        }
    }

    /// The protected resource identifier, if any.
    pub fn resource(&self) -> Option<&str> {
        self.config.target.resource.as_deref()
    }

    /// The RFC 9728 metadata URL sent as `resource_metadata`, if any.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.config.target.resource_metadata_url.as_deref()
    }

    /// The trusted issuers.
    pub fn trusted_issuers(&self) -> &[String] {
        &self.config.target.trusted_issuers
    }

    /// Authenticates a request from its headers. Only `Authorization` is read.
    ///
    /// The header is parsed before this returns; the returned future owns what it needs
    /// (`'static`, `Send`), so it can be spawned or stored.
    ///
    /// The future resolves to the verified [`AuthInfo`], or to a [`BearerRejection`] to send
    /// back as is.
    ///
    /// Headers alone cannot prove possession of a key: a token bound to a DPoP key
    /// (`cnf.jkt`) or to a client certificate (`cnf.x5t#S256`) is refused here (401
    /// `invalid_token`), and a `DPoP` credential, when DPoP is
    /// configured, is answered 500 ([`BearerAuthError::RequestNeeded`]). Adapters call
    /// [`authenticate_request`](Self::authenticate_request), which checks both schemes.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> BoxFuture<'static, Result<AuthInfo, BearerRejection>> {
        self.authenticate_values(
            headers
                .get_all(AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes),
        )
    }

    /// Authenticates a request from the raw values of its `Authorization` headers, for
    /// frameworks whose header types are not `http` 1.x. Otherwise the same as
    /// [`authenticate`](Self::authenticate) (headers only: no DPoP).
    pub fn authenticate_values<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> BoxFuture<'static, Result<AuthInfo, BearerRejection>> {
        match self.extract_credentials(values) {
            Ok((Scheme::Bearer, token)) => Box::pin(self.clone().verify(Presented {
                scheme: Scheme::Bearer,
                token,
                request: None,
            })),
            Ok((Scheme::Dpop, _)) => Box::pin(std::future::ready(Err(
                self.reject(BearerAuthError::RequestNeeded)
            ))),
            Err(error) => Box::pin(std::future::ready(Err(self.reject(error)))),
        }
    }

    /// Authenticates a request from its method, URI, headers and extensions: what every adapter
    /// of this crate calls (the tower layer for axum and hyper, the actix-web middleware).
    ///
    /// Besides [`authenticate`](Self::authenticate)'s checks, it proves the token's binding:
    /// a token whose `cnf` names a key (RFC 9449 DPoP, `cnf.jkt`) or a certificate (RFC 8705,
    /// `cnf.x5t#S256`) passes only with a request that proves it, and the [`AuthInfo`] says
    /// which ([`AuthInfo::binding`]). Only what the checks need is copied out of `parts`; the
    /// returned future is `'static` and `Send`.
    pub fn authenticate_request(
        &self,
        parts: &http::request::Parts,
    ) -> BoxFuture<'static, Result<AuthInfo, BearerRejection>> {
        let values = parts.headers.get_all(AUTHORIZATION);
        match self.extract_credentials(values.iter().map(HeaderValue::as_bytes)) {
            Ok((scheme, token)) => Box::pin(self.clone().verify(Presented {
                scheme,
                token,
                request: Some(RequestContext::from_parts(
                    parts,
                    self.config.settings.client_certificates.as_ref(),
                )),
            })),
            Err(error) => Box::pin(std::future::ready(Err(self.reject(error)))),
        }
    }

    /// The synchronous half: the header checks, giving the scheme and token.
    pub(crate) fn extract_credentials<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Scheme, String), BearerAuthError> {
        credentials(values, self.config.settings.max_header_bytes, false)
            .map(|(scheme, token)| (scheme, token.to_owned()))
    }

    /// The asynchronous half: verifier, issuer, audience, binding, scopes.
    ///
    /// Runs in a span `mcp_auth.authenticate` whose `outcome` and `code` are recorded once
    /// decided (described in the `metrics` module docs with the counters).
    async fn verify(self, presented: Presented) -> Result<AuthInfo, BearerRejection> {
        let span = tracing::info_span!(
            "mcp_auth.authenticate",
            resource = ?self.config.target.resource,
            outcome = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        let checked = self.check(&presented).instrument(span.clone()).await;
        let _entered = span.enter();
        match checked {
            Ok(info) => {
                span.record("outcome", "allowed").record("code", "ok");
                crate::metrics::request_allowed();
                tracing::trace!(
                    resource = ?self.config.target.resource,
                    issuer = %info.issuer,
                    subject = ?info.subject,
                    "bearer token accepted"
                );
                Ok(info)
            }
            Err(error) => {
                span.record("outcome", "refused")
                    .record("code", error.code());
                Err(self.reject(error))
            }
        }
    }

    async fn check(&self, presented: &Presented) -> Result<AuthInfo, BearerAuthError> {
        let (t, c) = (&self.config.target, &self.config.settings);
        let info = t
            .verifier
            .verify(&presented.token)
            .await
            .map_err(|e| BearerAuthError::from_verify_error(e, &t.trusted_issuers))?;

        check_expiry(&info, c.leeway, c.require_expiry, unix_now())?;
        // An API key was checked against this server's own list: no authorization server
        // issued it and it names no audience. Only the built-in `ApiKeyVerifier` can mark an
        // `AuthInfo` so (the variant cannot be built outside the crate).
        let oauth = !info.credential.is_api_key();
        if oauth && !t.trusted_issuers.contains(&info.issuer) {
            return Err(BearerAuthError::InvalidIssuer {
                expected: t.trusted_issuers.clone(),
                actual: info.issuer,
            });
        }
        if oauth
            && let Audience::Accept(accepted) = &c.audience
            && !info.audience.iter().any(|aud| accepted.contains(aud))
        {
            return Err(BearerAuthError::InvalidAudience {
                expected: accepted.clone(),
                actual: info.audience,
            });
        }
        let info = self.check_binding(info, presented)?;
        let missing = c.hierarchy.missing(&info.scopes, &c.required_scopes);
        if !missing.is_empty() {
            return Err(BearerAuthError::MissingRequiredScopes {
                required: c.required_scopes.clone(),
                missing: missing.into_iter().map(str::to_owned).collect(),
                granted: info.scopes,
            });
        }
        Ok(info)
    }

    /// The binding step (after the token is verified, before scopes): the token's `cnf` must be
    /// proven by this request, and [`AuthInfo::binding`] records what was proven. A verifier's
    /// own `binding` is overwritten.
    fn check_binding(
        &self,
        info: AuthInfo,
        presented: &Presented,
    ) -> Result<AuthInfo, BearerAuthError> {
        let cnf = Confirmation::from_claims(&info.claims)?;
        let mut binding = TokenBinding::Unbound;
        if let Some(x5t) = &cnf.x5t_s256 {
            let proven = self.check_certificate_binding(x5t, presented.request.as_ref())?;
            binding = TokenBinding::Certificate { x5t_s256: proven };
        }
        match (presented.scheme, &cnf.jkt) {
            (Scheme::Bearer, None) => {}
            (Scheme::Bearer, Some(_)) => {
                return Err(BearerAuthError::TokenBindingMismatch {
                    reason: "the token is bound to a DPoP key and was sent as a Bearer token \
                             without a DPoP proof",
                });
            }
            (Scheme::Dpop, _) => {
                // The DPoP scheme is only recognised once DPoP is configured.
                return Err(BearerAuthError::RequestNeeded);
            }
        }
        Ok(info.with_binding(binding))
    }

    /// Proves a certificate-bound token (RFC 8705 `cnf.x5t#S256`): the SHA-256 thumbprint of the
    /// request's client certificate, found through the configured
    /// [`client_certificates`](crate::BearerAuthBuilder::client_certificates) source, must equal
    /// `x5t`. Gives the proven thumbprint. Without a source every certificate-bound token is
    /// refused (fail closed): accepting it would use it as a bearer token.
    fn check_certificate_binding(
        &self,
        x5t: &str,
        request: Option<&RequestContext>,
    ) -> Result<String, BearerAuthError> {
        crate::mtls::prove_binding(
            self.config.settings.client_certificates.as_ref(),
            x5t,
            request.map(|r| (&r.extensions, r.client_cert_headers.as_slice())),
        )
    }

    /// The scopes every request must carry (crate-internal: the operation-scope layer adds its
    /// own on top of them).
    pub(crate) fn base_scopes(&self) -> &[String] {
        &self.config.settings.required_scopes
    }

    /// The scope hierarchy (crate-internal: shared with the operation-scope layer).
    pub(crate) fn hierarchy(&self) -> &ScopeHierarchy {
        &self.config.settings.hierarchy
    }

    /// Logs the refusal and renders it.
    pub(crate) fn reject(&self, error: BearerAuthError) -> BearerRejection {
        self.reject_with_scope(error, &self.config.settings.required_scopes)
    }

    /// [`reject`](Self::reject) with `challenge_scope` as the challenge's `scope` instead of the
    /// required scopes: for refusals of one operation (step-up challenges).
    pub(crate) fn reject_with_scope(
        &self,
        error: BearerAuthError,
        challenge_scope: &[String],
    ) -> BearerRejection {
        let (t, c) = (&self.config.target, &self.config.settings);
        let status = error.status();
        crate::metrics::request_refused(error.code(), status);
        if status.is_server_error() {
            tracing::warn!(
                resource = ?t.resource,
                code = error.code(),
                status = status.as_u16(),
                "bearer authentication failed: {error}"
            );
        } else {
            tracing::debug!(
                resource = ?t.resource,
                code = error.code(),
                status = status.as_u16(),
                "bearer authentication refused: {error}"
            );
        }
        let challenge = error.has_challenge().then(|| {
            let mut challenge = BearerChallenge::default();
            challenge.realm.clone_from(&c.realm);
            if let Some(code) = error.oauth_error() {
                challenge.error = Some(code.to_owned());
                challenge.error_description = Some(error.description().into_owned());
            }
            // Never `offline_access` (MCP 2026-07-28: not a resource requirement).
            challenge.scope = challenge_scope
                .iter()
                .filter(|scope| *scope != OFFLINE_ACCESS)
                .cloned()
                .collect();
            challenge
                .resource_metadata
                .clone_from(&t.resource_metadata_url);
            challenge
        });
        BearerRejection::new(error, challenge.as_ref(), c.show_error_details)
    }
}

/// What a request presented: the scheme and token of its `Authorization` header, and what the
/// binding checks need of the rest of the request (none through
/// [`BearerAuth::authenticate`]).
pub(crate) struct Presented {
    pub(crate) scheme: Scheme,
    pub(crate) token: String,
    pub(crate) request: Option<RequestContext>,
}

/// The parts of a request the binding checks read, owned so the check can run in a `'static`
/// future: method and URI (DPoP `htm`/`htu`), the `DPoP` header values, and the extensions
/// (where a client-certificate source puts the TLS peer certificate).
// Read by the DPoP and certificate checks that build on this step.
#[allow(dead_code)]
pub(crate) struct RequestContext {
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) dpop: Vec<HeaderValue>,
    pub(crate) extensions: http::Extensions,
    /// The trusted proxy's client-certificate header values, when that is the source.
    pub(crate) client_cert_headers: Vec<HeaderValue>,
}

impl RequestContext {
    pub(crate) fn from_parts(
        parts: &http::request::Parts,
        certificates: Option<&crate::mtls::CertificateSource>,
    ) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            dpop: parts.headers.get_all("dpop").iter().cloned().collect(),
            extensions: parts.extensions.clone(),
            client_cert_headers: certificates
                .map(|source| source.copy_headers(&parts.headers))
                .unwrap_or_default(),
        }
    }
}

/// The guard's own expiry check, the same rule as the JWT verifier's `exp` check: expired when
/// `expires_at + leeway` is before `now` (seconds since the epoch).
fn check_expiry(
    info: &AuthInfo,
    leeway: std::time::Duration,
    require_expiry: bool,
    now: i64,
) -> Result<(), BearerAuthError> {
    match info.expires_at {
        Some(expires_at) => {
            let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
            if expires_at.saturating_add(leeway) < now {
                return Err(BearerAuthError::TokenExpired { expires_at });
            }
            Ok(())
        }
        None if require_expiry => Err(BearerAuthError::MissingExpiry),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn expiring(expires_at: Option<i64>) -> AuthInfo {
        let info = AuthInfo::new("t", "https://as.example.com");
        match expires_at {
            Some(at) => info.with_expires_at(at),
            None => info,
        }
    }

    #[test]
    fn expiry_is_checked_with_the_leeway_at_its_edges() {
        let minute = Duration::from_secs(60);
        let now = 1_000_000;
        assert!(check_expiry(&expiring(Some(now - 60)), minute, false, now).is_ok());
        assert_eq!(
            check_expiry(&expiring(Some(now - 61)), minute, false, now),
            Err(BearerAuthError::TokenExpired {
                expires_at: now - 61
            })
        );
        assert!(check_expiry(&expiring(Some(now)), Duration::ZERO, false, now).is_ok());
        assert!(check_expiry(&expiring(Some(now - 1)), Duration::ZERO, false, now).is_err());
        assert!(check_expiry(&expiring(Some(i64::MIN)), Duration::MAX, false, now).is_err());
    }

    #[test]
    fn a_missing_expiry_passes_unless_required() {
        let leeway = Duration::from_secs(60);
        assert!(check_expiry(&expiring(None), leeway, false, 5).is_ok());
        assert_eq!(
            check_expiry(&expiring(None), leeway, true, 5),
            Err(BearerAuthError::MissingExpiry)
        );
    }
}
