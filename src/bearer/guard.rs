//! [`BearerAuth`]: the framework-neutral bearer guard of one protected resource.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use super::challenge::BearerChallenge;
use super::error::BearerAuthError;
use super::header::{DEFAULT_MAX_HEADER_BYTES, bearer_token};
use super::rejection::BearerRejection;
use super::scope::ScopeHierarchy;
use crate::auth_info::AuthInfo;
use crate::metadata::is_scope_char;
use crate::verify::TokenVerifier;

/// The bearer guard of one protected resource: reads the token from the `Authorization`
/// header, verifies it, and checks issuer, audience and scopes.
///
/// Get one from [`McpAuth::bearer_auth`](crate::McpAuth::bearer_auth); tune it with the
/// builder-style methods below; mount it with [`layer`](Self::layer) (tower, axum, hyper) or
/// call [`authenticate`](Self::authenticate) from any other framework. Cheap to clone.
///
/// Checks, in order (the first failure answers):
///
/// 1. exactly one `Authorization` header, `Bearer 1*SP b64token` (scheme in any case), at most
///    [`max_header_bytes`](Self::max_header_bytes) long. A token in the query string is never
///    read;
/// 2. the [`TokenVerifier`] accepts the token;
/// 3. the token's issuer is one of the resource's trusted authorization servers (also for
///    custom verifiers);
/// 4. the token's audience contains an accepted audience: the resource identifier by default,
///    see [`audience`](Self::audience) and [`skip_audience_check`](Self::skip_audience_check);
/// 5. every [required scope](Self::required_scopes) is granted, directly or through the
///    [scope hierarchy](Self::scope_implies).
///
/// Refusals follow RFC 6750 and MCP exactly (see [`BearerAuthError`] for the table): 401
/// without `error` when there are no bearer credentials, 400 `invalid_request` for malformed
/// ones, 401 `invalid_token`, 403 `insufficient_scope` naming every required scope, 503 when
/// the authorization server is unreachable and 500 for a misconfiguration. Every challenge
/// carries `resource_metadata` and `scope` (when scopes are required). The token itself is
/// never logged; the fine-grained reason is logged at `debug` (refusals of the client) or
/// `warn`/`error` (503/500).
#[derive(Clone)]
pub struct BearerAuth {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    verifier: Arc<dyn TokenVerifier>,
    trusted_issuers: Vec<String>,
    resource: Option<String>,
    resource_metadata_url: Option<String>,
    audience: Audience,
    required_scopes: Vec<String>,
    hierarchy: ScopeHierarchy,
    show_error_details: bool,
    max_header_bytes: usize,
    realm: Option<String>,
    /// A setting that cannot work; every request is answered 500 while it is set.
    misconfiguration: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Audience {
    Accept(Vec<String>),
    Skip,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("BearerAuth")
            .field("resource", &c.resource)
            .field("trusted_issuers", &c.trusted_issuers)
            .field("audience", &c.audience)
            .field("required_scopes", &c.required_scopes)
            .field("hierarchy", &c.hierarchy)
            .field("show_error_details", &c.show_error_details)
            .field("max_header_bytes", &c.max_header_bytes)
            .finish_non_exhaustive()
    }
}

impl BearerAuth {
    /// A guard trusting `trusted_issuers`. With a `resource`, the accepted audience defaults to
    /// it and challenges carry `resource_metadata_url`; without one (the deprecated
    /// authorization-server mode), the audience is not checked unless
    /// [`audience`](Self::audience) is set.
    pub(crate) fn new(
        verifier: Arc<dyn TokenVerifier>,
        trusted_issuers: Vec<String>,
        resource: Option<String>,
        resource_metadata_url: Option<String>,
    ) -> Self {
        let audience = match &resource {
            Some(resource) => Audience::Accept(vec![resource.clone()]),
            None => {
                tracing::warn!(
                    "bearer guard without a resource identifier: token audiences are not checked; \
                     MCP requires the check, so pass the resource or call `.audience(..)`"
                );
                Audience::Skip
            }
        };
        Self {
            config: Arc::new(Config {
                verifier,
                trusted_issuers,
                resource,
                resource_metadata_url,
                audience,
                required_scopes: Vec::new(),
                hierarchy: ScopeHierarchy::default(),
                show_error_details: false,
                max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
                realm: None,
                misconfiguration: None,
            }),
        }
    }

    fn update(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// Scopes every request must carry, all of them (in addition to any set before). Default:
    /// none. They are named in the `scope` parameter of every challenge.
    ///
    /// A scope that is empty or has characters RFC 6749 §3.3 forbids (space, `"`, `\`,
    /// non-ASCII) can never be granted; it is logged as an error and every request is answered
    /// 500 until it is fixed.
    #[must_use]
    pub fn required_scopes(self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.update(|c| {
            for scope in scopes {
                if scope.is_empty() || !scope.bytes().all(is_scope_char) {
                    let problem = format!(
                        "the required scope {scope:?} is not a valid scope token (RFC 6749 §3.3: \
                         printable ASCII without space, `\"` or `\\`)"
                    );
                    tracing::error!(resource = ?c.resource, "{problem}; every request will be refused with 500");
                    c.misconfiguration.get_or_insert(problem);
                } else if !c.required_scopes.contains(&scope) {
                    c.required_scopes.push(scope);
                }
            }
        })
    }

    /// Declares that the granted scope `broad` satisfies requirements for each of `narrower`
    /// (for example `files:admin` implies `files:read`). Transitive. Default: no implications.
    #[must_use]
    pub fn scope_implies(
        self,
        broad: impl Into<String>,
        narrower: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let (broad, narrower): (String, Vec<String>) =
            (broad.into(), narrower.into_iter().map(Into::into).collect());
        self.update(|c| c.hierarchy = std::mem::take(&mut c.hierarchy).implies(broad, narrower))
    }

    /// Replaces the scope hierarchy.
    #[must_use]
    pub fn scope_hierarchy(self, hierarchy: ScopeHierarchy) -> Self {
        self.update(|c| c.hierarchy = hierarchy)
    }

    /// The accepted audiences, replacing the default (the resource identifier): a token passes
    /// when its `aud` contains at least one of them. An empty list accepts nothing; it is logged
    /// as an error and every request is answered 500 (use
    /// [`skip_audience_check`](Self::skip_audience_check) to turn the check off).
    #[must_use]
    pub fn audience(self, audiences: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let audiences: Vec<String> = audiences.into_iter().map(Into::into).collect();
        self.update(|c| {
            if audiences.is_empty() {
                let problem = "the accepted audience list is empty, so no token can pass; \
                               call `skip_audience_check()` to turn the audience check off";
                tracing::error!(resource = ?c.resource, "{problem}; every request will be refused with 500");
                c.misconfiguration.get_or_insert_with(|| problem.to_owned());
            }
            c.audience = Audience::Accept(audiences);
        })
    }

    /// Turns the audience check off. MCP requires resource servers to check that tokens were
    /// issued for them (RFC 8707); only do this when the verifier already guarantees it (for
    /// example an introspection endpoint that only answers for this resource). Logged as a
    /// warning.
    #[must_use]
    pub fn skip_audience_check(self) -> Self {
        self.update(|c| {
            tracing::warn!(resource = ?c.resource, "the token audience check is turned off");
            c.audience = Audience::Skip;
        })
    }

    /// Adds a `cause` object (fine-grained code, expected and actual values) to error bodies.
    /// Default: `false`. For development: it tells a caller why its token was refused.
    #[must_use]
    pub fn show_error_details(self, show: bool) -> Self {
        self.update(|c| c.show_error_details = show)
    }

    /// The longest `Authorization` header accepted, in bytes; longer ones get 400
    /// `invalid_request` before any parsing. Default: 8 KiB ([`DEFAULT_MAX_HEADER_BYTES`](crate::bearer::DEFAULT_MAX_HEADER_BYTES)).
    #[must_use]
    pub fn max_header_bytes(self, limit: usize) -> Self {
        self.update(|c| c.max_header_bytes = limit)
    }

    /// A `realm` for every challenge. Default: none.
    #[must_use]
    pub fn realm(self, realm: impl Into<String>) -> Self {
        let realm = realm.into();
        self.update(|c| c.realm = Some(realm))
    }

    /// The protected resource identifier, if any.
    pub fn resource(&self) -> Option<&str> {
        self.config.resource.as_deref()
    }

    /// The RFC 9728 metadata URL sent as `resource_metadata`, if any.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.config.resource_metadata_url.as_deref()
    }

    /// The trusted issuers.
    pub fn trusted_issuers(&self) -> &[String] {
        &self.config.trusted_issuers
    }

    /// Authenticates a request from its headers. Only `Authorization` is read.
    ///
    /// The header is parsed before this returns; the returned future owns what it needs
    /// (`'static`, `Send`), so it can be spawned or stored.
    ///
    /// The future resolves to the verified [`AuthInfo`], or to a [`BearerRejection`] to send
    /// back as is.
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
    /// frameworks whose header types are not `http` 1.x (actix-web 4). Otherwise the same as
    /// [`authenticate`](Self::authenticate).
    pub fn authenticate_values<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> BoxFuture<'static, Result<AuthInfo, BearerRejection>> {
        match self.extract_token(values) {
            Ok(token) => Box::pin(self.clone().verify_token(token)),
            Err(error) => Box::pin(std::future::ready(Err(self.reject(error)))),
        }
    }

    /// The synchronous half: configuration and header checks, giving the token.
    pub(crate) fn extract_token<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<String, BearerAuthError> {
        if let Some(problem) = &self.config.misconfiguration {
            return Err(BearerAuthError::ServerMisconfigured {
                reason: problem.clone(),
            });
        }
        bearer_token(values, self.config.max_header_bytes).map(str::to_owned)
    }

    /// The asynchronous half: verifier, issuer, audience, scopes.
    pub(crate) async fn verify_token(self, token: String) -> Result<AuthInfo, BearerRejection> {
        match self.check(&token).await {
            Ok(info) => {
                tracing::trace!(
                    resource = ?self.config.resource,
                    issuer = %info.issuer,
                    subject = ?info.subject,
                    "bearer token accepted"
                );
                Ok(info)
            }
            Err(error) => Err(self.reject(error)),
        }
    }

    async fn check(&self, token: &str) -> Result<AuthInfo, BearerAuthError> {
        let c = &self.config;
        let info = c
            .verifier
            .verify(token)
            .await
            .map_err(|e| BearerAuthError::from_verify_error(e, &c.trusted_issuers))?;

        if !c.trusted_issuers.contains(&info.issuer) {
            return Err(BearerAuthError::InvalidIssuer {
                expected: c.trusted_issuers.clone(),
                actual: info.issuer,
            });
        }
        if let Audience::Accept(accepted) = &c.audience
            && !info.audience.iter().any(|aud| accepted.contains(aud))
        {
            return Err(BearerAuthError::InvalidAudience {
                expected: accepted.clone(),
                actual: info.audience,
            });
        }
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

    /// The scopes every request must carry (crate-internal: the operation-scope layer adds its
    /// own on top of them).
    pub(crate) fn base_scopes(&self) -> &[String] {
        &self.config.required_scopes
    }

    /// The scope hierarchy (crate-internal: shared with the operation-scope layer).
    pub(crate) fn hierarchy(&self) -> &ScopeHierarchy {
        &self.config.hierarchy
    }

    /// Logs the refusal and renders it.
    pub(crate) fn reject(&self, error: BearerAuthError) -> BearerRejection {
        self.reject_with_scope(error, &self.config.required_scopes)
    }

    /// [`reject`](Self::reject) with `challenge_scope` as the challenge's `scope` instead of the
    /// required scopes: for refusals of one operation (step-up challenges).
    pub(crate) fn reject_with_scope(
        &self,
        error: BearerAuthError,
        challenge_scope: &[String],
    ) -> BearerRejection {
        let c = &self.config;
        let status = error.status();
        if status.is_server_error() {
            tracing::warn!(
                resource = ?c.resource,
                code = error.code(),
                status = status.as_u16(),
                "bearer authentication failed: {error}"
            );
        } else {
            tracing::debug!(
                resource = ?c.resource,
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
            challenge.scope = challenge_scope.to_vec();
            challenge
                .resource_metadata
                .clone_from(&c.resource_metadata_url);
            challenge
        });
        BearerRejection::new(error, challenge.as_ref(), c.show_error_details)
    }
}
