//! [`BearerRejection`]: a refused request's answer as plain HTTP parts.

use std::fmt;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use super::challenge::BearerChallenge;
use super::error::BearerAuthError;
use crate::error::bounded_echo;

/// `DPoP-Nonce` (RFC 9449 §8.1): the server nonce a DPoP proof must carry.
pub(crate) const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// The answer to a refused request: status, headers (`WWW-Authenticate` when there is a
/// challenge, `Content-Type: application/json`, `Cache-Control: no-store`) and a JSON body.
///
/// Framework-neutral: [`into_response`](Self::into_response) gives an `http::Response`, and the
/// accessors let adapters for other HTTP stacks copy every byte.
///
/// The JSON body is `{"error": .., "error_description": ..}`, where `error` is the same code as
/// the challenge (`invalid_request`, `invalid_token`, `insufficient_scope`), `server_error` (500),
/// `temporarily_unavailable` (503) or, when the request had no bearer credentials, `unauthorized`
/// (the challenge then has no `error`, as RFC 6750 §3.1 asks). A 403 adds `missing_scopes`.
/// With `show_error_details`, a `cause` object gives the fine-grained `code` and the
/// expected/actual values.
#[derive(Clone)]
pub struct BearerRejection {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    error: BearerAuthError,
}

impl BearerRejection {
    /// The answer to `error`, with one `WWW-Authenticate` header per challenge (in order) and,
    /// for [`BearerAuthError::UseDpopNonce`], the `DPoP-Nonce` header.
    pub(crate) fn new(
        error: BearerAuthError,
        challenges: &[BearerChallenge],
        show_error_details: bool,
    ) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for challenge in challenges {
            headers.append(WWW_AUTHENTICATE, challenge.to_header_value());
        }
        if let BearerAuthError::UseDpopNonce { nonce } = &error
            && let Ok(value) = HeaderValue::from_str(nonce)
        {
            headers.insert(DPOP_NONCE, value);
        }
        let body = json_body(&error, show_error_details);
        Self {
            status: error.status(),
            headers,
            body,
            error,
        }
    }

    /// The status: 400, 401, 403, 500 or 503.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The (first) `WWW-Authenticate` value, absent for 500 and 503. With DPoP configured an
    /// answer can carry two challenges, `Bearer` and `DPoP`: see
    /// [`challenges`](Self::challenges).
    pub fn www_authenticate(&self) -> Option<&HeaderValue> {
        self.headers.get(WWW_AUTHENTICATE)
    }

    /// Every `WWW-Authenticate` value, in order (one per scheme offered).
    pub fn challenges(&self) -> impl Iterator<Item = &HeaderValue> {
        self.headers.get_all(WWW_AUTHENTICATE).iter()
    }

    /// The JSON body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The fine-grained reason.
    pub fn error(&self) -> &BearerAuthError {
        &self.error
    }

    /// The answer as an `http::Response` with any body type built from [`Bytes`]
    /// (`http_body_util::Full<Bytes>`, `axum::body::Body`, ...).
    pub fn into_response<B: From<Bytes>>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

impl fmt::Debug for BearerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerRejection")
            .field("status", &self.status)
            .field("www_authenticate", &self.www_authenticate())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.error.code(), self.error)
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

fn json_body(error: &BearerAuthError, show_error_details: bool) -> Bytes {
    let mut body = Map::new();
    body.insert(
        "error".into(),
        error.oauth_error().unwrap_or("unauthorized").into(),
    );
    body.insert(
        "error_description".into(),
        error.description().into_owned().into(),
    );
    if show_error_details {
        body.insert("cause".into(), cause(error));
    }
    if let BearerAuthError::MissingRequiredScopes { missing, .. } = error {
        body.insert("missing_scopes".into(), json!(missing));
    }
    // Serialising a map of strings cannot fail; an empty object is the harmless fallback.
    Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_else(|_| b"{}".to_vec()))
}

/// The most items of a list from the token or the authorization server (granted scopes, token
/// audiences) that the `cause` object repeats.
const MAX_ECHO_ITEMS: usize = 16;

/// A list from the network as the `cause` object shows it: at most [`MAX_ECHO_ITEMS`] items,
/// each cut to 256 bytes.
fn echo_list(items: &[String]) -> Value {
    json!(
        items
            .iter()
            .take(MAX_ECHO_ITEMS)
            .map(|item| bounded_echo(item))
            .collect::<Vec<_>>()
    )
}

/// The `cause` object of [`show_error_details`](crate::BearerAuthBuilder::show_error_details).
/// Every value that came from the token or the authorization server is cut to 256 bytes (and
/// lists to 16 items), so a hostile answer cannot make the response large.
fn cause(error: &BearerAuthError) -> Value {
    let mut cause = Map::new();
    cause.insert("code".into(), error.code().into());
    match error {
        BearerAuthError::InvalidIssuer { expected, actual } => {
            cause.insert("expected".into(), json!(expected));
            cause.insert("actual".into(), bounded_echo(actual).into());
        }
        BearerAuthError::InvalidAudience { expected, actual } => {
            cause.insert("expected".into(), json!(expected));
            cause.insert("actual".into(), echo_list(actual));
        }
        BearerAuthError::MissingRequiredScopes {
            required, granted, ..
        } => {
            cause.insert("expected".into(), json!(required));
            cause.insert("actual".into(), echo_list(granted));
        }
        BearerAuthError::HeaderTooLong { length, limit } => {
            cause.insert("expected".into(), json!(limit));
            cause.insert("actual".into(), json!(length));
        }
        BearerAuthError::TokenExpired { expires_at } => {
            cause.insert("expires_at".into(), json!(expires_at));
        }
        BearerAuthError::InvalidToken { reason } => {
            cause.insert("reason".into(), bounded_echo(reason).into());
        }
        BearerAuthError::AuthServerUnavailable { reason }
        | BearerAuthError::ServerMisconfigured { reason } => {
            cause.insert("reason".into(), bounded_echo(reason).into());
        }
        _ => {}
    }
    Value::Object(cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(error: BearerAuthError, details: bool) -> Value {
        serde_json::from_slice(BearerRejection::new(error, &[], details).body()).unwrap()
    }

    #[test]
    fn body_keys_come_in_a_fixed_order() {
        let rejection = BearerRejection::new(
            BearerAuthError::MissingRequiredScopes {
                required: vec!["a".into(), "b".into()],
                missing: vec!["b".into()],
                granted: vec!["a".into()],
            },
            &[],
            true,
        );
        assert_eq!(
            std::str::from_utf8(rejection.body()).unwrap(),
            "{\"error\":\"insufficient_scope\",\"error_description\":\"The access token does not grant \
             the scopes this request requires.\",\"cause\":{\"code\":\"missing_required_scopes\",\
             \"expected\":[\"a\",\"b\"],\"actual\":[\"a\"]},\"missing_scopes\":[\"b\"]}"
        );
    }

    #[test]
    fn cause_is_only_present_with_details() {
        let error = BearerAuthError::InvalidAudience {
            expected: vec!["https://h/mcp".into()],
            actual: vec!["x".into()],
        };
        assert!(body(error.clone(), false).get("cause").is_none());
        assert_eq!(
            body(error, true)["cause"],
            json!({"code": "invalid_audience", "expected": ["https://h/mcp"], "actual": ["x"]})
        );
    }

    #[test]
    fn server_side_failures_have_no_challenge_and_oauth_codes() {
        let r = BearerRejection::new(
            BearerAuthError::AuthServerUnavailable {
                reason: "down".into(),
            },
            &[],
            false,
        );
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.www_authenticate().is_none());
        assert_eq!(
            body(r.error().clone(), false)["error"],
            "temporarily_unavailable"
        );
        assert_eq!(
            body(
                BearerAuthError::ServerMisconfigured { reason: "x".into() },
                false
            )["error"],
            "server_error"
        );
    }

    #[test]
    fn into_response_copies_status_headers_and_body() {
        let challenge = BearerChallenge {
            error: Some("invalid_token".into()),
            ..BearerChallenge::default()
        };
        let r = BearerRejection::new(
            BearerAuthError::InvalidToken {
                reason: "bad".into(),
            },
            std::slice::from_ref(&challenge),
            false,
        );
        let response: http::Response<Bytes> = r.clone().into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(response.body(), r.body());
    }
}
