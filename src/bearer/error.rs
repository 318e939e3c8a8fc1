//! [`BearerAuthError`]: why the bearer guard refused a request, in mcp-auth's fine-grained terms.

use std::borrow::Cow;

use http::StatusCode;

use crate::error::{VerifyError, bounded_echo};

/// The message of [`BearerAuthError::MissingAuthInfo`], for every adapter that reports it.
const MISSING_AUTH_INFO: &str = "No AuthInfo in the request extensions: the bearer \
     guard does not run in front of this handler. Wrap the route with BearerAuthLayer \
     (`guard.layer()`) or McpGuard's layer (`guard.mcp_guard().layer()`); with actix-web, with \
     BearerAuthMiddleware.";

/// Why the bearer guard refused a request.
///
/// The variant is the fine-grained reason (mcp-auth's `BearerAuthErrorCode`, see
/// [`code`](Self::code)). It is logged with `tracing` and available to adapters through
/// [`BearerRejection::error`](crate::bearer::BearerRejection::error); the client only sees the
/// coarse RFC 6750 answer ([`status`](Self::status), [`oauth_error`](Self::oauth_error)), so a
/// probing client learns no more than the standard says it may.
///
/// | variant | [`code`](Self::code) | status | `error` on the wire |
/// |---|---|---|---|
/// | [`MissingAuthHeader`](Self::MissingAuthHeader) | `missing_auth_header` | 401 | none |
/// | [`UnsupportedScheme`](Self::UnsupportedScheme) | `unsupported_auth_scheme` | 401 | none |
/// | [`MissingBearerToken`](Self::MissingBearerToken) | `missing_bearer_token` | 400 | `invalid_request` |
/// | [`InvalidAuthHeaderFormat`](Self::InvalidAuthHeaderFormat) | `invalid_auth_header_format` | 400 | `invalid_request` |
/// | [`MultipleAuthHeaders`](Self::MultipleAuthHeaders) | `multiple_auth_headers` | 400 | `invalid_request` |
/// | [`HeaderTooLong`](Self::HeaderTooLong) | `auth_header_too_long` | 400 | `invalid_request` |
/// | [`InvalidToken`](Self::InvalidToken) | `invalid_token` | 401 | `invalid_token` |
/// | [`TokenExpired`](Self::TokenExpired) | `token_expired` | 401 | `invalid_token` |
/// | [`MissingExpiry`](Self::MissingExpiry) | `missing_expiry` | 401 | `invalid_token` |
/// | [`InvalidIssuer`](Self::InvalidIssuer) | `invalid_issuer` | 401 | `invalid_token` |
/// | [`InvalidAudience`](Self::InvalidAudience) | `invalid_audience` | 401 | `invalid_token` |
/// | [`MissingRequiredScopes`](Self::MissingRequiredScopes) | `missing_required_scopes` | 403 | `insufficient_scope` |
/// | [`AuthServerUnavailable`](Self::AuthServerUnavailable) | `auth_server_unavailable` | 503 | body only: `temporarily_unavailable` |
/// | [`ServerMisconfigured`](Self::ServerMisconfigured) | `server_misconfigured` | 500 | body only: `server_error` |
/// | [`MissingAuthInfo`](Self::MissingAuthInfo) | `missing_auth_info` | 500 | body only: `server_error` |
/// | [`TokenBindingMismatch`](Self::TokenBindingMismatch) | `token_binding_mismatch` | 401 | `invalid_token` |
/// | [`RequestNeeded`](Self::RequestNeeded) | `request_needed` | 500 | body only: `server_error` |
/// | [`InvalidDpopProof`](Self::InvalidDpopProof) | `invalid_dpop_proof` | 401 | `invalid_dpop_proof` |
/// | [`DpopProofReplayed`](Self::DpopProofReplayed) | `dpop_proof_replayed` | 401 | `invalid_dpop_proof` |
/// | [`UseDpopNonce`](Self::UseDpopNonce) | `use_dpop_nonce` | 401 | `use_dpop_nonce` (and a `DPoP-Nonce` header) |
/// | [`DpopRequired`](Self::DpopRequired) | `dpop_required` | 401 | none |
/// | [`StoreUnavailable`](Self::StoreUnavailable) | `store_unavailable` | 503 | body only: `temporarily_unavailable` |
///
/// No variant ever holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerAuthError {
    /// The request has no `Authorization` header.
    #[error("the request has no Authorization header")]
    MissingAuthHeader,
    /// The `Authorization` header uses a scheme other than `Bearer` (for example `Basic`).
    ///
    /// mcp-auth reports this as `invalid_auth_header_format`; RFC 6750 §3.1 treats it as "no
    /// credentials", so it gets the bare 401 challenge.
    #[error("the Authorization header does not use the Bearer scheme")]
    UnsupportedScheme,
    /// The header is `Bearer` with no token after it.
    #[error("the Authorization header has the Bearer scheme but no token")]
    MissingBearerToken,
    /// The credentials are not `Bearer 1*SP b64token` (RFC 6750 §2.1): extra parts, characters
    /// outside the token alphabet, or a separator other than spaces.
    #[error("the Authorization header is not `Bearer <token>` with a single RFC 6750 token")]
    InvalidAuthHeaderFormat,
    /// The request has more than one `Authorization` header.
    #[error("the request has more than one Authorization header")]
    MultipleAuthHeaders,
    /// The `Authorization` header is longer than the configured limit.
    #[error("the Authorization header is {length} bytes long, over the {limit}-byte limit")]
    HeaderTooLong {
        /// The header's length in bytes.
        length: usize,
        /// The configured limit ([`BearerAuthBuilder::max_header_bytes`](crate::BearerAuthBuilder::max_header_bytes)).
        limit: usize,
    },
    /// The verifier refused the token (malformed, badly signed, expired, inactive, ...).
    #[error("the token verifier refused the token: {reason}")]
    InvalidToken {
        /// The verifier's reason (never the token).
        reason: Cow<'static, str>,
    },
    /// The verifier accepted the token, but the expiry it reports
    /// ([`AuthInfo::expires_at`](crate::AuthInfo::expires_at)) is past, beyond the guard's
    /// [`leeway`](crate::BearerAuthBuilder::leeway). The guard checks this for every verifier.
    #[error("the token expired at {expires_at} (seconds since the epoch)")]
    TokenExpired {
        /// When the token expired, in seconds since the Unix epoch.
        expires_at: i64,
    },
    /// The verifier reports no expiry for the token, and the guard
    /// [requires one](crate::BearerAuthBuilder::require_expiry).
    #[error("the token verifier reports no expiry for the token, and this guard requires one")]
    MissingExpiry,
    /// The token was issued by an authorization server this resource does not trust.
    #[error("the token issuer `{actual}` is not one of the trusted issuers ({})", expected.join(", "))]
    InvalidIssuer {
        /// The trusted issuers.
        expected: Vec<String>,
        /// The token's issuer.
        actual: String,
    },
    /// The token's audience does not include an accepted audience (the resource identifier by
    /// default).
    #[error(
        "the token audience [{}] does not contain an accepted audience ({})",
        actual.join(", "),
        expected.join(", ")
    )]
    InvalidAudience {
        /// The accepted audiences.
        expected: Vec<String>,
        /// The token's audiences.
        actual: Vec<String>,
    },
    /// The token lacks scopes the request requires.
    #[error("the token lacks the required scopes {}", missing.join(" "))]
    MissingRequiredScopes {
        /// Every scope the request requires.
        required: Vec<String>,
        /// The required scopes the token does not grant (directly or through the hierarchy).
        missing: Vec<String>,
        /// The scopes the token grants.
        granted: Vec<String>,
    },
    /// The verifier could not reach the authorization server (network, timeout, 5xx).
    #[error("the authorization server is unavailable: {reason}")]
    AuthServerUnavailable {
        /// What failed.
        reason: String,
    },
    /// Our own configuration prevents verifying tokens.
    #[error("bearer authentication is misconfigured: {reason}")]
    ServerMisconfigured {
        /// What is wrong.
        reason: String,
    },
    /// A layer, extractor or tool that needs the verified [`AuthInfo`](crate::AuthInfo) found
    /// none in the request: the bearer guard does not run in front of it.
    ///
    /// # One answer everywhere
    ///
    /// This is a bug of the server (a route mounted without the guard), never the client's
    /// fault, and it never lets the request through. Every place that reads the `AuthInfo`
    /// answers it the same way, with this variant's message naming the layer to add, and logs
    /// it as an error:
    ///
    /// | where | answer |
    /// |---|---|
    /// | [`SessionBindingLayer`](crate::tower::SessionBindingLayer), [`OperationScopesLayer`](crate::tower::OperationScopesLayer) | 500, body `{"error": "server_error", ..}` |
    /// | the axum and actix-web `AuthInfo` extractors | 500, body `{"error": "server_error", ..}` |
    /// | rmcp `#[tool]` arguments `AuthInfo` and [`GrantedScopes`](crate::scope::GrantedScopes) | JSON-RPC error -32603 (internal error, JSON-RPC's 500) |
    #[error("{}", MISSING_AUTH_INFO)]
    MissingAuthInfo,
    /// The token is bound (`cnf.jkt`: RFC 9449 DPoP key, `cnf.x5t#S256`: RFC 8705 client
    /// certificate) and the request does not prove that binding: no or another DPoP key, a
    /// DPoP-bound token sent as `Bearer`, no or another client certificate, or an unbound token
    /// sent with the `DPoP` scheme.
    #[error("the token's binding is not proven by this request: {reason}")]
    TokenBindingMismatch {
        /// What is missing or different.
        reason: &'static str,
    },
    /// The request needs checks the headers alone cannot give (a DPoP proof's method and URL),
    /// and it was authenticated with [`BearerAuth::authenticate`](crate::BearerAuth::authenticate)
    /// (headers only). A bug of the server's wiring, never a pass: call
    /// [`BearerAuth::authenticate_request`](crate::BearerAuth::authenticate_request) instead.
    #[error(
        "this request needs the method and URL to be checked (DPoP), but the guard was called \
         through BearerAuth::authenticate, which sees headers only; call \
         BearerAuth::authenticate_request with the request's http::request::Parts"
    )]
    RequestNeeded,
    /// The request uses the `DPoP` scheme and its `DPoP` proof header fails one of the checks of
    /// RFC 9449 §4.3: missing or repeated, not a compact JWS, wrong `typ`, an `alg` outside the
    /// allow-list, a private or malformed `jwk`, a bad signature, or `htm`, `htu`, `iat`, `ath`
    /// or `jti` not matching this request and token.
    #[error("the DPoP proof is invalid: {reason}")]
    InvalidDpopProof {
        /// Which check failed.
        reason: &'static str,
    },
    /// The DPoP proof was already used (its `jti`, with the same key, was seen within the
    /// `iat` window): a replay (RFC 9449 §11.1). The client must sign a fresh proof per
    /// request.
    #[error("the DPoP proof was already used (replayed jti)")]
    DpopProofReplayed,
    /// Server nonces are on and the proof carries no nonce, or one that is no longer current
    /// (RFC 9449 §9). The answer's `DPoP-Nonce` header holds the nonce to put in a new proof.
    #[error("the DPoP proof lacks the current server nonce")]
    UseDpopNonce {
        /// The nonce the client must use, sent as `DPoP-Nonce`.
        nonce: String,
    },
    /// The guard [requires DPoP](crate::dpop::DpopConfigBuilder::require) and the request used
    /// the `Bearer` scheme. Like an unsupported scheme, it gets the bare `DPoP` challenge.
    #[error("this resource requires DPoP-bound tokens and the request used the Bearer scheme")]
    DpopRequired,
    /// The state store (DPoP replay detection) failed or timed out; the request is refused
    /// rather than let through unchecked.
    #[error("the state store is unavailable: {reason}")]
    StoreUnavailable {
        /// What failed.
        reason: String,
    },
}

impl BearerAuthError {
    /// The fine-grained code, as in mcp-auth where it has one (`missing_auth_header`,
    /// `invalid_auth_header_format`, `missing_bearer_token`, `invalid_issuer`,
    /// `invalid_audience`, `missing_required_scopes`, `invalid_token`); the codes of the
    /// variants mcp-auth lacks are listed in the type docs. Logged, never sent to the client.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthHeader => "missing_auth_header",
            Self::UnsupportedScheme => "unsupported_auth_scheme",
            Self::MissingBearerToken => "missing_bearer_token",
            Self::InvalidAuthHeaderFormat => "invalid_auth_header_format",
            Self::MultipleAuthHeaders => "multiple_auth_headers",
            Self::HeaderTooLong { .. } => "auth_header_too_long",
            Self::InvalidToken { .. } => "invalid_token",
            Self::TokenExpired { .. } => "token_expired",
            Self::MissingExpiry => "missing_expiry",
            Self::InvalidIssuer { .. } => "invalid_issuer",
            Self::InvalidAudience { .. } => "invalid_audience",
            Self::MissingRequiredScopes { .. } => "missing_required_scopes",
            Self::AuthServerUnavailable { .. } => "auth_server_unavailable",
            Self::ServerMisconfigured { .. } => "server_misconfigured",
            Self::MissingAuthInfo => "missing_auth_info",
            Self::TokenBindingMismatch { .. } => "token_binding_mismatch",
            Self::RequestNeeded => "request_needed",
            Self::InvalidDpopProof { .. } => "invalid_dpop_proof",
            Self::DpopProofReplayed => "dpop_proof_replayed",
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
            Self::DpopRequired => "dpop_required",
            Self::StoreUnavailable { .. } => "store_unavailable",
        }
    }

    /// The HTTP status of the answer: 400, 401, 403, 500 or 503 (see the type docs).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingAuthHeader
            | Self::UnsupportedScheme
            | Self::InvalidToken { .. }
            | Self::TokenExpired { .. }
            | Self::MissingExpiry
            | Self::InvalidIssuer { .. }
            | Self::InvalidAudience { .. }
            | Self::TokenBindingMismatch { .. }
            | Self::InvalidDpopProof { .. }
            | Self::DpopProofReplayed
            | Self::UseDpopNonce { .. }
            | Self::DpopRequired => StatusCode::UNAUTHORIZED,
            Self::MissingBearerToken
            | Self::InvalidAuthHeaderFormat
            | Self::MultipleAuthHeaders
            | Self::HeaderTooLong { .. } => StatusCode::BAD_REQUEST,
            Self::MissingRequiredScopes { .. } => StatusCode::FORBIDDEN,
            Self::AuthServerUnavailable { .. } | Self::StoreUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::ServerMisconfigured { .. } | Self::MissingAuthInfo | Self::RequestNeeded => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The OAuth error code of the answer: the RFC 6750 §3.1 code (`invalid_request`,
    /// `invalid_token`, `insufficient_scope`) that goes into the challenge and the body,
    /// `temporarily_unavailable` / `server_error` (body only, no challenge) for 503 / 500, or
    /// `None` when the request carried no bearer credentials (RFC 6750 §3.1: no error
    /// information then).
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            Self::MissingAuthHeader | Self::UnsupportedScheme | Self::DpopRequired => None,
            Self::MissingBearerToken
            | Self::InvalidAuthHeaderFormat
            | Self::MultipleAuthHeaders
            | Self::HeaderTooLong { .. } => Some("invalid_request"),
            Self::InvalidToken { .. }
            | Self::TokenExpired { .. }
            | Self::MissingExpiry
            | Self::InvalidIssuer { .. }
            | Self::InvalidAudience { .. }
            | Self::TokenBindingMismatch { .. } => Some("invalid_token"),
            Self::InvalidDpopProof { .. } | Self::DpopProofReplayed => Some("invalid_dpop_proof"),
            Self::UseDpopNonce { .. } => Some("use_dpop_nonce"),
            Self::MissingRequiredScopes { .. } => Some("insufficient_scope"),
            Self::AuthServerUnavailable { .. } | Self::StoreUnavailable { .. } => {
                Some("temporarily_unavailable")
            }
            Self::ServerMisconfigured { .. } | Self::MissingAuthInfo | Self::RequestNeeded => {
                Some("server_error")
            }
        }
    }

    /// Whether the answer carries a `WWW-Authenticate` challenge (everything but 500 and 503).
    pub fn has_challenge(&self) -> bool {
        !matches!(
            self,
            Self::AuthServerUnavailable { .. }
                | Self::ServerMisconfigured { .. }
                | Self::MissingAuthInfo
                | Self::RequestNeeded
                | Self::StoreUnavailable { .. }
        )
    }

    /// The `error_description` sent to the client: what went wrong in words a developer can act
    /// on, without the fine-grained detail (that is in [`Display`](std::fmt::Display) and the
    /// logs). The verifier's reason for [`InvalidToken`](Self::InvalidToken) is included, since
    /// [`VerifyError::InvalidToken`] is documented as safe to show, cut to 256 bytes; the
    /// built-in verifiers never put text from the authorization server into it.
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            Self::MissingAuthHeader | Self::UnsupportedScheme => {
                "This resource requires a bearer token in the Authorization header.".into()
            }
            Self::MissingBearerToken => "The Authorization header has no bearer token.".into(),
            Self::InvalidAuthHeaderFormat => {
                "The Authorization header must be the Bearer scheme, one space, and one token.".into()
            }
            Self::MultipleAuthHeaders => {
                "The request must carry exactly one Authorization header.".into()
            }
            Self::HeaderTooLong { limit, .. } => {
                format!("The Authorization header is longer than {limit} bytes.").into()
            }
            Self::InvalidToken { reason } => {
                format!("The access token is invalid: {}", bounded_echo(reason)).into()
            }
            Self::TokenExpired { .. } => "The access token has expired.".into(),
            Self::MissingExpiry => {
                "The access token has no known expiry, and this resource requires one.".into()
            }
            Self::InvalidIssuer { .. } => {
                "The access token was issued by an authorization server this resource does not trust."
                    .into()
            }
            Self::InvalidAudience { .. } => "The access token is not intended for this resource.".into(),
            Self::MissingRequiredScopes { .. } => {
                "The access token does not grant the scopes this request requires.".into()
            }
            Self::AuthServerUnavailable { .. } => {
                "The authorization server could not be reached to verify the access token; try again later."
                    .into()
            }
            Self::ServerMisconfigured { .. } => {
                "The resource server cannot verify access tokens because of a configuration error."
                    .into()
            }
            Self::MissingAuthInfo => MISSING_AUTH_INFO.into(),
            Self::TokenBindingMismatch { reason } => {
                format!("The access token is bound to a key or certificate this request does not prove: {reason}.").into()
            }
            Self::RequestNeeded => {
                "The resource server cannot check this request's proof of possession because of a configuration error."
                    .into()
            }
            Self::InvalidDpopProof { reason } => format!("The DPoP proof is invalid: {reason}.").into(),
            Self::DpopProofReplayed => {
                "The DPoP proof was already used; sign a new proof for every request.".into()
            }
            Self::UseDpopNonce { .. } => {
                "The DPoP proof must carry the nonce given in the DPoP-Nonce header.".into()
            }
            Self::DpopRequired => {
                "This resource requires a DPoP-bound access token: Authorization: DPoP <token> with a DPoP proof header."
                    .into()
            }
            Self::StoreUnavailable { .. } => {
                "The resource server cannot check the request's proof right now; try again later.".into()
            }
        }
    }

    /// Maps a verifier's error. `trusted` is the list of trusted issuers, reported in
    /// [`InvalidIssuer`](Self::InvalidIssuer).
    pub(crate) fn from_verify_error(error: VerifyError, trusted: &[String]) -> Self {
        match error {
            VerifyError::InvalidToken { reason } => Self::InvalidToken { reason },
            VerifyError::UntrustedIssuer { issuer } => Self::InvalidIssuer {
                expected: trusted.to_vec(),
                actual: issuer,
            },
            VerifyError::Unavailable { reason } => Self::AuthServerUnavailable { reason },
            VerifyError::Misconfigured { reason } => Self::ServerMisconfigured { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_errors_map_to_the_documented_statuses() {
        let trusted = vec!["https://as".to_owned()];
        let cases = [
            (
                VerifyError::invalid_token("expired"),
                StatusCode::UNAUTHORIZED,
                "invalid_token",
            ),
            (
                VerifyError::UntrustedIssuer {
                    issuer: "https://evil".into(),
                },
                StatusCode::UNAUTHORIZED,
                "invalid_issuer",
            ),
            (
                VerifyError::unavailable("timeout"),
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_server_unavailable",
            ),
            (
                VerifyError::misconfigured("no jwks_uri"),
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_misconfigured",
            ),
        ];
        for (verify, status, code) in cases {
            let error = BearerAuthError::from_verify_error(verify, &trusted);
            assert_eq!(error.status(), status);
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn untrusted_issuer_reports_the_trusted_list() {
        let error = BearerAuthError::from_verify_error(
            VerifyError::UntrustedIssuer {
                issuer: "https://evil".into(),
            },
            &["https://a".into(), "https://b".into()],
        );
        assert_eq!(
            error,
            BearerAuthError::InvalidIssuer {
                expected: vec!["https://a".into(), "https://b".into()],
                actual: "https://evil".into()
            }
        );
        assert_eq!(error.oauth_error(), Some("invalid_token"));
    }

    #[test]
    fn only_credential_less_requests_have_no_oauth_error() {
        assert_eq!(BearerAuthError::MissingAuthHeader.oauth_error(), None);
        assert_eq!(BearerAuthError::UnsupportedScheme.oauth_error(), None);
        assert_eq!(
            BearerAuthError::MissingBearerToken.oauth_error(),
            Some("invalid_request")
        );
        assert!(!BearerAuthError::ServerMisconfigured { reason: "x".into() }.has_challenge());
        assert!(BearerAuthError::MissingAuthHeader.has_challenge());
    }
}
