//! [`ExchangeError`]: why a token exchange produced no token.

/// Why [`TokenExchange::exchange`](super::TokenExchange::exchange) produced no token.
///
/// No variant ever contains a token or the client secret; text the authorization server sent
/// is cut to a few hundred bytes. Failures are never cached: the next call asks again.
///
/// | Variant | Cause | What to do |
/// |---|---|---|
/// | [`Refused`](Self::Refused) | HTTP 400/401/403 with an OAuth `error` (`invalid_grant`, `invalid_target`, `invalid_scope`, `invalid_client`, `unauthorized_client`, ...) | the caller's token cannot be exchanged for this target (tell the user), or our client is not allowed to exchange (`invalid_client`, `unauthorized_client`: an operator) |
/// | [`Unavailable`](Self::Unavailable) | timeout, network error, HTTP 5xx or another status, metadata that cannot be fetched | retry later |
/// | [`MalformedAnswer`](Self::MalformedAnswer) | a body that is not a token response: not JSON, no `access_token`, not a Bearer token, a wrong `issued_token_type`, larger than the size cap, an error answer without an error code | the authorization server misbehaves |
/// | [`Misconfigured`](Self::Misconfigured) | no usable `token_endpoint` (missing, plain http, on a foreign origin), metadata that cannot be trusted | an operator |
/// | [`InvalidRequest`](Self::InvalidRequest) | the request cannot be sent: no target, a bad resource URI or scope, an expired subject token, a subject from another issuer | fix the calling code |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The authorization server refused the exchange with an OAuth error (RFC 6749 §5.2).
    #[error(
        "the authorization server refused the token exchange (HTTP {status}, `{code}`){}",
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Refused {
        /// The HTTP status: 400, 401 or 403.
        status: u16,
        /// The OAuth `error` code, for example `invalid_grant`.
        code: String,
        /// The `error_description`, cut to a bounded length.
        description: Option<String>,
    },
    /// The token endpoint could not be reached or is in trouble (timeout, network, 5xx).
    #[error("the authorization server is unavailable for token exchange: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
    },
    /// The token endpoint answered with something that is not a usable token response.
    #[error("the token endpoint's answer is not a usable token response: {reason}")]
    MalformedAnswer {
        /// What is wrong with it.
        reason: String,
    },
    /// Our configuration prevents the exchange (no usable token endpoint).
    #[error("token exchange is misconfigured: {reason}")]
    Misconfigured {
        /// What is missing or wrong.
        reason: String,
    },
    /// The request cannot be sent as given.
    #[error("invalid token-exchange request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
}

impl ExchangeError {
    /// The OAuth `error` code of a [`Refused`](Self::Refused) exchange.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether asking again later may succeed: true for [`Unavailable`](Self::Unavailable)
    /// only.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub(crate) fn unavailable(reason: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn malformed(reason: impl std::fmt::Display) -> Self {
        Self::MalformedAnswer {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn misconfigured(reason: impl std::fmt::Display) -> Self {
        Self::Misconfigured {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid_request(reason: impl std::fmt::Display) -> Self {
        Self::InvalidRequest {
            reason: reason.to_string(),
        }
    }
}
