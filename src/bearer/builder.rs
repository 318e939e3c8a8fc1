//! [`BearerAuthBuilder`]: the settings of a [`BearerAuth`] guard, checked once in
//! [`build`](BearerAuthBuilder::build).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::guard::BearerAuth;
use super::header::DEFAULT_MAX_HEADER_BYTES;
use crate::dpop::{DpopConfig, DpopSettings};
use crate::error::ConfigError;
use crate::metadata::ServedDocument;
use crate::mtls::CertificateSource;
use crate::scope::{ScopeHierarchy, check_scopes, is_scope_char};
use crate::verify::TokenVerifier;
use crate::verify::jwt::{DEFAULT_LEEWAY, MAX_LEEWAY};

/// The settings of a [`BearerAuth`] guard. Get one from
/// [`McpAuth::bearer_auth`](crate::McpAuth::bearer_auth),
/// [`bearer_auth_jwt`](crate::McpAuth::bearer_auth_jwt) or
/// [`bearer_auth_jwt_with`](crate::McpAuth::bearer_auth_jwt_with); every setter has a secure
/// default, and [`build`](Self::build) is the one place that can fail.
///
/// ```
/// use mcp_auth::{AuthServer, AuthServerType, ConfigError, McpAuth, ProtectedResource};
///
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::discover("https://auth.example.com", AuthServerType::Oidc)),
///     )
///     .build()?;
/// let guard = auth
///     .bearer_auth_jwt("https://api.example.com/mcp")
///     .required_scopes(["files:read"])
///     .scope_implies("files:admin", ["files:read"])
///     .build()?;
/// assert_eq!(guard.resource(), Some("https://api.example.com/mcp"));
///
/// // A scope no token could grant is refused here, not answered 500 per request later.
/// let err = auth
///     .bearer_auth_jwt("https://api.example.com/mcp")
///     .required_scopes(["files read"])
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, ConfigError::InvalidScope { setting: "required_scopes", .. }));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct BearerAuthBuilder {
    /// What the guard protects, or why that could not be worked out (an unknown resource, a
    /// verifier that failed to build), reported by `build`.
    target: Result<Target, ConfigError>,
    /// The settings as given; `audience` is `None` for the default (the resource).
    settings: Settings<Option<Audience>>,
}

/// What a guard protects: set by [`McpAuth`](crate::McpAuth), not by the user.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) verifier: Arc<dyn TokenVerifier>,
    pub(crate) trusted_issuers: Vec<String>,
    pub(crate) resource: Option<String>,
    pub(crate) resource_metadata_url: Option<String>,
    /// The resource's served metadata, whose derived fields follow what this guard enforces.
    pub(crate) document: Option<Arc<ServedDocument>>,
}

/// The settings of a guard: as given to the builder (`A = Option<Audience>`), or checked, in a
/// built guard.
#[derive(Clone, Debug)]
pub(crate) struct Settings<A = Audience> {
    pub(crate) audience: A,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) hierarchy: ScopeHierarchy,
    pub(crate) show_error_details: bool,
    pub(crate) max_header_bytes: usize,
    pub(crate) realm: Option<String>,
    /// Clock-skew tolerance of the expiry check, in whole seconds.
    pub(crate) leeway: Duration,
    pub(crate) require_expiry: bool,
    /// Where certificate-bound tokens find the request's client certificate (RFC 8705).
    pub(crate) client_certificates: Option<CertificateSource>,
    /// DPoP, when configured: as given (`A = Option<Audience>`), the `htu` base still
    /// unresolved; in a built guard, resolved.
    pub(crate) dpop: Option<DpopSlot>,
}

/// The DPoP settings of a guard, as given or resolved by [`BearerAuthBuilder::build`].
#[derive(Clone, Debug)]
pub(crate) enum DpopSlot {
    Given(DpopConfig),
    Resolved(DpopSettings),
}

impl DpopSlot {
    /// The resolved settings (a built guard holds no other).
    pub(crate) fn settings(&self) -> Option<&DpopSettings> {
        match self {
            DpopSlot::Resolved(settings) => Some(settings),
            DpopSlot::Given(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    Accept(Vec<String>),
    Skip,
}

impl fmt::Debug for BearerAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthBuilder")
            .field(
                "resource",
                &self.target.as_ref().map(|t| t.resource.as_deref()),
            )
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl BearerAuthBuilder {
    /// A builder with the defaults, for `target` (or the error that `build` will report).
    pub(crate) fn new(target: Result<Target, ConfigError>) -> Self {
        Self {
            target,
            settings: Settings {
                audience: None,
                required_scopes: Vec::new(),
                hierarchy: ScopeHierarchy::default(),
                show_error_details: false,
                max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
                realm: None,
                leeway: DEFAULT_LEEWAY,
                require_expiry: false,
                dpop: None,
                client_certificates: None,
            },
        }
    }

    /// Turns on DPoP (RFC 9449) with `config`: the guard then accepts `Authorization: DPoP
    /// <token>` with a `DPoP` proof header, checks the proof (RFC 9449 §4.3) and that the
    /// token's `cnf.jkt` is the proof key's thumbprint, refuses replayed proofs, and offers a
    /// `DPoP algs="…"` challenge beside `Bearer` (or instead of it, when
    /// [`require`](crate::dpop::DpopConfigBuilder::require)d). The [`AuthInfo`](crate::AuthInfo)
    /// of a DPoP request says [`TokenBinding::DpopKey`](crate::TokenBinding::DpopKey). Default:
    /// off (a DPoP-bound token is refused either way: it cannot be used as `Bearer`).
    ///
    /// Only [`BearerAuth::authenticate_request`] (what the tower layer and the actix-web
    /// middleware call) can check a proof: it needs the method and path.
    ///
    /// ```
    /// use mcp_auth::dpop::DpopConfig;
    /// use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
    ///
    /// let auth = McpAuth::builder()
    ///     .protected_resource(
    ///         ProtectedResource::new("https://api.example.com/mcp")
    ///             .authorization_server(AuthServer::discover("https://auth.example.com", AuthServerType::Oidc)),
    ///     )
    ///     .build()?;
    /// let guard = auth
    ///     .bearer_auth_jwt("https://api.example.com/mcp")
    ///     .dpop(DpopConfig::builder().build()?)
    ///     .build()?;
    /// assert!(guard.dpop_config().is_some());
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    pub fn dpop(mut self, config: DpopConfig) -> Self {
        self.settings.dpop = Some(DpopSlot::Given(config));
        self
    }

    /// Scopes every request must carry, all of them (in addition to any set before). Default:
    /// none. They are named in the `scope` parameter of every challenge.
    ///
    /// [`build`](Self::build) refuses a scope that is empty or has characters RFC 6749 §3.3
    /// forbids (space, `"`, `\`, non-ASCII): no token could ever grant it.
    pub fn required_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        for scope in scopes.into_iter().map(Into::into) {
            if !self.settings.required_scopes.contains(&scope) {
                self.settings.required_scopes.push(scope);
            }
        }
        self
    }

    /// Declares that the granted scope `broad` satisfies requirements for each of `narrower`
    /// (for example `files:admin` implies `files:read`). Transitive. Default: no implications.
    /// [`build`](Self::build) refuses invalid scopes here as in
    /// [`required_scopes`](Self::required_scopes).
    pub fn scope_implies(
        mut self,
        broad: impl Into<String>,
        narrower: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let hierarchy = std::mem::take(&mut self.settings.hierarchy);
        self.settings.hierarchy = hierarchy.implies(broad, narrower);
        self
    }

    /// Replaces the scope hierarchy (and every implication declared before).
    pub fn scope_hierarchy(mut self, hierarchy: ScopeHierarchy) -> Self {
        self.settings.hierarchy = hierarchy;
        self
    }

    /// The accepted audiences, replacing the default (the resource identifier): a token passes
    /// when its `aud` contains at least one of them. [`build`](Self::build) refuses an empty
    /// list, which would accept nothing (use [`skip_audience_check`](Self::skip_audience_check)
    /// to turn the check off).
    pub fn audience(mut self, audiences: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.settings.audience = Some(Audience::Accept(
            audiences.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Turns the audience check off. MCP requires resource servers to check that tokens were
    /// issued for them (RFC 8707); only do this when the verifier already guarantees it (for
    /// example an introspection endpoint that only answers for this resource). Logged as a
    /// warning when the guard is built.
    pub fn skip_audience_check(mut self) -> Self {
        self.settings.audience = Some(Audience::Skip);
        self
    }

    /// Adds a `cause` object (fine-grained code, expected and actual values) to error bodies.
    /// Default: `false`. For development: it tells a caller why its token was refused.
    pub fn show_error_details(mut self, show: bool) -> Self {
        self.settings.show_error_details = show;
        self
    }

    /// The longest `Authorization` header accepted, in bytes; longer ones get 400
    /// `invalid_request` before any parsing. Default: 8 KiB
    /// ([`DEFAULT_MAX_HEADER_BYTES`](crate::bearer::DEFAULT_MAX_HEADER_BYTES)).
    /// [`build`](Self::build) refuses 0, which would refuse every token.
    pub fn max_header_bytes(mut self, limit: usize) -> Self {
        self.settings.max_header_bytes = limit;
        self
    }

    /// A `realm` for every challenge. Default: none. [`build`](Self::build) refuses an empty
    /// realm, or one with characters a challenge cannot carry (`"`, `\`, control characters,
    /// non-ASCII).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.settings.realm = Some(realm.into());
        self
    }

    /// The clock-skew tolerance of the guard's own expiry check. Default: 60 s
    /// ([`DEFAULT_LEEWAY`], the JWT verifier's default too); more than 5 minutes
    /// ([`MAX_LEEWAY`]) is refused by [`build`](Self::build). Whole seconds count.
    ///
    /// Whatever the verifier, the guard refuses an [`AuthInfo`](crate::AuthInfo) whose
    /// [`expires_at`](crate::AuthInfo::expires_at) plus this leeway is in the past (401
    /// `invalid_token`), so a custom verifier that forgets `exp` cannot let an expired token
    /// through. The built-in verifiers already check expiry themselves; this is the second
    /// lock.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.settings.leeway = leeway;
        self
    }

    /// Refuses tokens whose verifier reports no expiry (`AuthInfo::expires_at` is `None`), as
    /// the official MCP TypeScript SDK does. Default: `false`.
    ///
    /// Why not by default: the JWT verifier already requires `exp`, and the verifiers that
    /// cannot know an expiry are the ones that ask the authorization server about the token
    /// itself. OIDC userinfo has no `exp` at all, and RFC 7662 makes `exp` optional in
    /// introspection answers; such answers are trusted for at most the verifier's cache TTL
    /// (60 s by default) and then asked again, so a revoked or expired token stops working
    /// within that window. Turn this on when every token your verifier sees carries an
    /// expiry (JWTs, or an introspection endpoint known to send `exp`): then a verifier bug
    /// that drops it refuses instead of accepting a token forever.
    pub fn require_expiry(mut self, require: bool) -> Self {
        self.settings.require_expiry = require;
        self
    }

    /// Where the guard finds a request's client certificate, to prove certificate-bound tokens
    /// (RFC 8705 §3, `cnf.x5t#S256`). Default: none, and every certificate-bound token is
    /// refused (401 `invalid_token`): without the certificate it would be a bearer token.
    ///
    /// With a source, a bound token passes only when the request's certificate has the
    /// token's thumbprint (compared in constant time); no certificate, an unreadable one or
    /// another one gets 401 `invalid_token`. Unbound tokens are unaffected. The resource's
    /// metadata then says `tls_client_certificate_bound_access_tokens: true`
    /// ([`McpAuth::metadata_service`](crate::McpAuth::metadata_service)).
    ///
    /// [`CertificateSource::TrustedProxyHeader`] trusts the proxy that sets the header: read
    /// its docs before using it.
    pub fn client_certificates(mut self, source: CertificateSource) -> Self {
        self.settings.client_certificates = Some(source);
        self
    }

    /// Checks the settings and builds the guard.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::UnknownResource`]: the resource given to
    ///   [`McpAuth::bearer_auth`](crate::McpAuth::bearer_auth) (or its siblings) is not
    ///   configured;
    /// - the error with which [`JwtVerifierBuilder::build`](crate::verify::JwtVerifierBuilder::build)
    ///   refused the verifier's settings (`bearer_auth_jwt_with`);
    /// - [`ConfigError::InvalidScope`]: a required scope, or a scope of the hierarchy, is not a
    ///   scope token;
    /// - [`ConfigError::EmptyAudience`]: [`audience`](Self::audience) was given no audience;
    /// - [`ConfigError::ZeroSetting`]: [`max_header_bytes`](Self::max_header_bytes) is 0;
    /// - [`ConfigError::InvalidRealm`]: the [`realm`](Self::realm) cannot be sent as is;
    /// - [`ConfigError::LeewayTooLong`]: the [`leeway`](Self::leeway) exceeds [`MAX_LEEWAY`];
    /// - [`ConfigError::DpopNoPublicUrl`]: [`dpop`](Self::dpop) is on, and there is neither a
    ///   resource identifier nor a
    ///   [`public_base_url`](crate::dpop::DpopConfigBuilder::public_base_url).
    pub fn build(self) -> Result<BearerAuth, ConfigError> {
        let (target, given) = (self.target?, self.settings);
        check_scopes(
            "required_scopes",
            given.required_scopes.iter().map(String::as_str),
        )?;
        check_scopes("scope_implies", given.hierarchy.named_scopes())?;
        if given.max_header_bytes == 0 {
            return Err(ConfigError::ZeroSetting {
                setting: "max_header_bytes",
                advice: "it is the longest Authorization header accepted, so 0 refuses every \
                         token; keep the default (8 KiB) or raise it for large tokens",
            });
        }
        if let Some(realm) = &given.realm
            && (realm.is_empty() || !realm.bytes().all(|b| b == b' ' || is_scope_char(b)))
        {
            return Err(ConfigError::InvalidRealm {
                realm: realm.clone(),
            });
        }
        if given.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLong {
                leeway: given.leeway,
                max: MAX_LEEWAY,
            });
        }
        let audience = match given.audience {
            Some(Audience::Accept(audiences)) if audiences.is_empty() => {
                return Err(ConfigError::EmptyAudience);
            }
            Some(Audience::Skip) => {
                tracing::warn!(resource = ?target.resource, "the token audience check is turned off");
                Audience::Skip
            }
            Some(accept) => accept,
            None => match &target.resource {
                Some(resource) => Audience::Accept(vec![resource.clone()]),
                None => {
                    tracing::warn!(
                        "bearer guard without a resource identifier: token audiences are not \
                         checked; MCP requires the check, so call `.audience(..)`"
                    );
                    Audience::Skip
                }
            },
        };
        let dpop = match given.dpop {
            Some(DpopSlot::Given(config)) => Some(DpopSlot::Resolved(
                config.for_resource(target.resource.as_deref())?,
            )),
            other => other,
        };
        if given.client_certificates.is_some()
            && let Some(document) = &target.document
        {
            document.advertise_certificate_bound();
        }
        Ok(BearerAuth::from_parts(
            target,
            Settings {
                audience,
                required_scopes: given.required_scopes,
                hierarchy: given.hierarchy,
                show_error_details: given.show_error_details,
                max_header_bytes: given.max_header_bytes,
                realm: given.realm,
                leeway: given.leeway,
                require_expiry: given.require_expiry,
                dpop,
                client_certificates: given.client_certificates,
            },
        ))
    }
}
