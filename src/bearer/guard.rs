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
use super::challenge::{BearerChallenge, ChallengeScheme};
use super::confirmation::Confirmation;
use super::dpop_step::{DpopPolicy, consume_proof, prove_dpop};
use super::error::BearerAuthError;
use super::header::{Scheme, credentials};
use super::rejection::BearerRejection;
use crate::auth_info::{AuthInfo, TokenBinding};
use crate::dpop::{CheckedProof, DpopSettings};
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
/// 6. the token's binding (`cnf`) is proven: with [DPoP](crate::BearerAuthBuilder::dpop) on,
///    an `Authorization: DPoP <token>` request's `DPoP` proof passes RFC 9449 §4.3 and its key
///    is the token's `cnf.jkt`; a DPoP-bound token sent as `Bearer` is always refused;
/// 7. every [required scope](crate::BearerAuthBuilder::required_scopes) is granted, directly or
///    through the [scope hierarchy](crate::BearerAuthBuilder::scope_implies);
/// 8. with DPoP, the proof's `jti` was not used before (then it is recorded, so a replay is
///    refused).
///
/// Refusals follow RFC 6750 and MCP exactly (see [`BearerAuthError`] for the table): 401
/// without `error` when there are no bearer credentials, 400 `invalid_request` for malformed
/// ones, 401 `invalid_token`, 403 `insufficient_scope` naming every required scope, 503 when
/// the authorization server is unreachable and 500 when the verifier reports a
/// misconfiguration. Every challenge carries `resource_metadata` and `scope` (when scopes are
/// required); with DPoP on, the `DPoP` challenge (with `algs`) is offered beside `Bearer`, and
/// errors go in the challenge of the scheme the request used. The token itself is never logged; the fine-grained reason is logged at `debug`
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
            Err(error) => {
                let scheme = self.scheme_named(values.iter().map(HeaderValue::as_bytes));
                Box::pin(std::future::ready(Err(self.reject_as(
                    error,
                    scheme,
                    &self.config.settings.required_scopes,
                ))))
            }
        }
    }

    /// The DPoP settings, when [`dpop`](crate::BearerAuthBuilder::dpop) is on: the accepted
    /// proof algorithms ([`DpopConfig::algorithms`](crate::dpop::DpopConfig::algorithms)) and
    /// whether DPoP is required, as the protected-resource metadata publishes them.
    pub fn dpop_config(&self) -> Option<DpopPolicy<'_>> {
        self.dpop().map(|settings| DpopPolicy { settings })
    }

    fn dpop(&self) -> Option<&DpopSettings> {
        self.config
            .settings
            .dpop
            .as_ref()
            .and_then(|slot| slot.settings())
    }

    /// The scheme a single `Authorization` value names, for placing a header error in the
    /// right challenge; `None` when there are several values (ambiguous, RFC 9449 §7.2) or none.
    fn scheme_named<'a>(&self, values: impl IntoIterator<Item = &'a [u8]>) -> Option<Scheme> {
        let mut values = values.into_iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return None;
        };
        let value = value.trim_ascii_start();
        let named = |scheme: &[u8]| {
            value.len() >= scheme.len()
                && value
                    .get(..scheme.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
                && value.get(scheme.len()).is_none_or(|b| !super::is_tchar(*b))
        };
        if named(b"bearer") {
            Some(Scheme::Bearer)
        } else if self.dpop().is_some() && named(b"dpop") {
            Some(Scheme::Dpop)
        } else {
            None
        }
    }

    /// The synchronous half: the header checks, giving the scheme and token.
    pub(crate) fn extract_credentials<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Scheme, String), BearerAuthError> {
        let dpop = self.dpop();
        let (scheme, token) = credentials(
            values,
            self.config.settings.max_header_bytes,
            dpop.is_some(),
        )?;
        if scheme == Scheme::Bearer && dpop.is_some_and(|d| d.require) {
            return Err(BearerAuthError::DpopRequired);
        }
        Ok((scheme, token.to_owned()))
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
                Err(self.reject_as(
                    error,
                    Some(presented.scheme),
                    &self.config.settings.required_scopes,
                ))
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
        let (info, proof) = self.check_binding(info, presented)?;
        let missing = c.hierarchy.missing(&info.scopes, &c.required_scopes);
        if !missing.is_empty() {
            return Err(BearerAuthError::MissingRequiredScopes {
                required: c.required_scopes.clone(),
                missing: missing.into_iter().map(str::to_owned).collect(),
                granted: info.scopes,
            });
        }
        // Last: a proof is used up only by a request that passed every other check.
        if let (Some(proof), Some(dpop)) = (proof, self.dpop()) {
            consume_proof(dpop, &proof).await?;
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
    ) -> Result<(AuthInfo, Option<CheckedProof>), BearerAuthError> {
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
            (Scheme::Dpop, jkt) => {
                // The DPoP scheme is only recognised once DPoP is configured, and only
                // `authenticate_request` has the method and path a proof names.
                let (Some(dpop), Some(request)) = (self.dpop(), presented.request.as_ref()) else {
                    return Err(BearerAuthError::RequestNeeded);
                };
                let (binding, proof) = prove_dpop(dpop, request, &presented.token, jkt.as_deref())?;
                return Ok((info.with_binding(binding), Some(proof)));
            }
        }
        Ok((info.with_binding(binding), None))
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
            request.and_then(|r| r.certificate.as_ref()),
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

    /// Logs the refusal and renders it (the scheme the request used unknown: an error goes in
    /// every challenge offered).
    pub(crate) fn reject(&self, error: BearerAuthError) -> BearerRejection {
        self.reject_as(error, None, &self.config.settings.required_scopes)
    }

    /// [`reject`](Self::reject) with `challenge_scope` as the challenge's `scope` instead of the
    /// required scopes, for refusals of one operation (step-up challenges) of a request
    /// authenticated with `binding`: a DPoP-bound request's refusal uses the `DPoP` challenge.
    pub(crate) fn reject_for_binding(
        &self,
        error: BearerAuthError,
        challenge_scope: &[String],
        binding: &TokenBinding,
    ) -> BearerRejection {
        let scheme = match binding {
            TokenBinding::DpopKey { .. } => Scheme::Dpop,
            _ => Scheme::Bearer,
        };
        self.reject_as(error, Some(scheme), challenge_scope)
    }

    /// Logs the refusal and renders it for a request that used `scheme` (`None`: unknown or
    /// ambiguous).
    ///
    /// Challenges: without DPoP, one `Bearer` challenge. With DPoP (RFC 9449 §7.1, §7.2): when
    /// the request had no credentials, a bare `Bearer` and a bare `DPoP algs=".."` challenge;
    /// an error of a `Bearer` request goes in the `Bearer` challenge, followed by the bare
    /// `DPoP` one; an error of a `DPoP` request in the `DPoP` challenge alone; an error of an
    /// ambiguous request (several `Authorization` headers) in both. With DPoP required, only
    /// the `DPoP` challenge, carrying any error.
    pub(crate) fn reject_as(
        &self,
        error: BearerAuthError,
        scheme: Option<Scheme>,
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
        let challenge = |scheme: ChallengeScheme, with_error: bool| {
            let mut challenge = BearerChallenge {
                scheme,
                ..BearerChallenge::default()
            };
            challenge.realm.clone_from(&c.realm);
            if with_error && let Some(code) = error.oauth_error() {
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
            if scheme == ChallengeScheme::Dpop
                && let Some(dpop) = self.dpop()
            {
                challenge.algs = dpop.algorithm_names();
            }
            challenge
        };
        let (bearer, dpop) = (ChallengeScheme::Bearer, ChallengeScheme::Dpop);
        let challenges = if !error.has_challenge() {
            Vec::new()
        } else {
            match self.dpop() {
                None => vec![challenge(bearer, true)],
                Some(d) if d.require => vec![challenge(dpop, true)],
                Some(_) => match (error.oauth_error(), scheme) {
                    (None, _) => vec![challenge(bearer, false), challenge(dpop, false)],
                    (Some(_), Some(Scheme::Bearer)) => {
                        vec![challenge(bearer, true), challenge(dpop, false)]
                    }
                    (Some(_), Some(Scheme::Dpop)) => vec![challenge(dpop, true)],
                    (Some(_), None) => vec![challenge(bearer, true), challenge(dpop, true)],
                },
            }
        };
        BearerRejection::new(error, &challenges, c.show_error_details)
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
/// future: method and URI (DPoP `htm`/`htu`), the `DPoP` header values, and what the configured
/// client-certificate source reads (only that: the request's extensions are not copied).
pub(crate) struct RequestContext {
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) dpop: Vec<HeaderValue>,
    /// The client certificate as the configured source found it; `None` without a source.
    pub(crate) certificate: Option<crate::mtls::PresentedCertificate>,
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
            certificate: certificates.map(|source| source.capture(parts)),
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
