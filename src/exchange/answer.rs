//! Reading the token endpoint's answer: an [`ExchangedToken`] or an [`ExchangeError`].

use std::fmt;

use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::{ACCESS_TOKEN_TYPE, ExchangeError, ExchangeRequest};
use crate::error::bounded_echo;
use crate::http_client::FetchedResponse;
use crate::verify::jwt::MAX_TOKEN_BYTES;

/// A token issued by a [`TokenExchange`](super::TokenExchange), for the upstream API named
/// in the [`ExchangeRequest`].
///
/// `Debug` never prints the token. Send it with
/// [`authorization_header`](Self::authorization_header) to the upstream API only: it is the
/// user's credential there.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExchangedToken {
    /// The issued token (`access_token`).
    pub access_token: String,
    /// `token_type`: `Bearer` (checked, whatever its case, when an access token was asked for).
    pub token_type: String,
    /// `issued_token_type` (RFC 8693 §2.2.1), if the server sent it; when sent, it is the type
    /// asked for (checked).
    pub issued_token_type: Option<String>,
    /// Expiry in seconds since the Unix epoch, from `expires_in`; `None` if the server did
    /// not say.
    pub expires_at: Option<i64>,
    /// The granted scopes: the answer's `scope`, else the scopes asked for (RFC 6749 §5.1).
    pub scopes: Vec<String>,
    /// `Bearer <token>`, marked sensitive.
    header: HeaderValue,
}

impl ExchangedToken {
    /// `Bearer <access_token>`, marked sensitive (so that `Debug` of a request does not print
    /// it), for the upstream request's `Authorization` header.
    pub fn authorization_header(&self) -> HeaderValue {
        self.header.clone()
    }
}

impl fmt::Debug for ExchangedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangedToken")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("issued_token_type", &self.issued_token_type)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Interprets the token endpoint's answer to `request` at `now` (seconds since the epoch).
/// `check_type`: whether the answer's token type must be the one asked for (RFC 8693; the
/// on-behalf-of answer has no `issued_token_type`).
pub(crate) fn read(
    response: &FetchedResponse,
    request: &ExchangeRequest,
    check_type: bool,
    now: i64,
) -> Result<ExchangedToken, ExchangeError> {
    match response.status {
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(refusal(response));
        }
        status if status.is_success() => {}
        status => {
            return Err(ExchangeError::unavailable(format_args!(
                "the token endpoint `{}` answered HTTP {}",
                response.url,
                status.as_u16()
            )));
        }
    }
    let object = json_object(response)?;
    let access_token = match object.get("access_token") {
        Some(Value::String(token)) if is_token_text(token) => token.clone(),
        Some(Value::String(_)) => {
            return Err(ExchangeError::malformed(format_args!(
                "the `access_token` is empty, longer than {MAX_TOKEN_BYTES} bytes, or has \
                 characters an HTTP header cannot carry"
            )));
        }
        _ => return Err(ExchangeError::malformed("no `access_token` string")),
    };
    let token_type = match object.get("token_type") {
        Some(Value::String(token_type)) => token_type.clone(),
        _ => return Err(ExchangeError::malformed("no `token_type` string")),
    };
    let expected = request.expected_token_type();
    if expected == ACCESS_TOKEN_TYPE && !token_type.eq_ignore_ascii_case("bearer") {
        return Err(ExchangeError::malformed(format_args!(
            "the `token_type` is {:?}, not `Bearer` (this client sends no DPoP proofs)",
            bounded_echo(&token_type)
        )));
    }
    let issued_token_type = match object.get("issued_token_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(issued)) if !check_type || issued == expected => Some(issued.clone()),
        Some(other) => {
            return Err(ExchangeError::malformed(format_args!(
                "the `issued_token_type` is {}, not the `{expected}` asked for",
                bounded_echo(&other.to_string())
            )));
        }
    };
    let expires_at = match object.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(value) => Some(now.saturating_add(lifetime(value)?)),
    };
    let scopes = match object.get("scope") {
        None | Some(Value::Null) => request.requested_scopes().to_vec(),
        Some(Value::String(scope)) => scope.split_whitespace().map(str::to_owned).collect(),
        Some(_) => return Err(ExchangeError::malformed("the `scope` is not a string")),
    };
    let mut header = HeaderValue::try_from(format!("Bearer {access_token}"))
        .map_err(|_| ExchangeError::malformed("the `access_token` cannot be sent in a header"))?;
    header.set_sensitive(true);
    Ok(ExchangedToken {
        access_token,
        token_type,
        issued_token_type,
        expires_at,
        scopes,
        header,
    })
}

/// `expires_in`: a non-negative whole number of seconds (as a JSON number, or as a string of
/// digits, which some servers send).
fn lifetime(value: &Value) -> Result<i64, ExchangeError> {
    let seconds = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse::<u64>().ok()
        }
        _ => None,
    };
    seconds
        .map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX))
        .ok_or_else(|| {
            ExchangeError::malformed(format_args!(
                "the `expires_in` {} is not a non-negative whole number of seconds",
                bounded_echo(&value.to_string())
            ))
        })
}

/// A token an HTTP header can carry: visible ASCII, not empty, bounded.
fn is_token_text(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token.bytes().all(|b| b.is_ascii_graphic())
}

fn json_object(response: &FetchedResponse) -> Result<Map<String, Value>, ExchangeError> {
    match response.json::<Value>() {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ExchangeError::malformed(format_args!(
            "the answer from `{}` is JSON but not an object",
            response.url
        ))),
        Err(error) => Err(ExchangeError::malformed(error)),
    }
}

/// A 400, 401 or 403: [`ExchangeError::Refused`] with the server's error code, or
/// [`ExchangeError::MalformedAnswer`] if it sent none that can be repeated.
fn refusal(response: &FetchedResponse) -> ExchangeError {
    let status = response.status.as_u16();
    let object = response.json::<Map<String, Value>>().ok();
    let field = |name: &str| object.as_ref()?.get(name)?.as_str();
    // RFC 6749 §5.2: the code is printable ASCII without `"` and `\`.
    let code = field("error").filter(|code| {
        !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    });
    match code {
        Some(code) => ExchangeError::Refused {
            status,
            code: code.to_owned(),
            description: field("error_description").map(bounded_echo),
        },
        None => ExchangeError::malformed(format_args!(
            "the token endpoint `{}` answered HTTP {status} without an OAuth error code",
            response.url
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn answer(status: u16, body: &str) -> Result<ExchangedToken, ExchangeError> {
        let response = FetchedResponse {
            url: "https://as.example/token".to_owned(),
            status: StatusCode::from_u16(status).unwrap(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        };
        read(
            &response,
            &ExchangeRequest::for_audience("api").scope("read write"),
            true,
            NOW,
        )
    }

    fn ok(body: Value) -> Result<ExchangedToken, ExchangeError> {
        answer(200, &body.to_string())
    }

    #[test]
    fn a_token_response_becomes_an_exchanged_token() {
        let token = ok(json!({
            "access_token": "new.jwt.token", "token_type": "bearer",
            "issued_token_type": ACCESS_TOKEN_TYPE, "expires_in": 300, "scope": "read",
        }))
        .unwrap();
        assert_eq!(token.access_token, "new.jwt.token");
        assert_eq!(token.issued_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(token.expires_at, Some(NOW + 300));
        assert_eq!(token.scopes, ["read"]);
        assert_eq!(token.authorization_header(), "Bearer new.jwt.token");
        assert!(token.authorization_header().is_sensitive());
        assert!(!format!("{token:?}").contains("new.jwt.token"));
        // No scope, no expires_in, no issued_token_type (the on-behalf-of answer has none):
        // the scopes asked for, no known expiry.
        let token =
            ok(json!({"access_token": "t", "token_type": "Bearer", "expires_in": "60"})).unwrap();
        assert_eq!(token.scopes, ["read", "write"]);
        assert_eq!(token.expires_at, Some(NOW + 60));
        assert_eq!(token.issued_token_type, None);
    }

    #[test]
    fn answers_that_are_not_usable_bearer_access_tokens_are_malformed() {
        for body in [
            json!({"token_type": "Bearer"}),
            json!({"access_token": "", "token_type": "Bearer"}),
            json!({"access_token": "a b", "token_type": "Bearer"}),
            json!({"access_token": 5, "token_type": "Bearer"}),
            json!({"access_token": "t"}),
            json!({"access_token": "t", "token_type": "DPoP"}),
            json!({"access_token": "t", "token_type": "N_A"}),
            json!({"access_token": "t", "token_type": "Bearer",
                   "issued_token_type": "urn:ietf:params:oauth:token-type:id_token"}),
            json!({"access_token": "t", "token_type": "Bearer", "expires_in": -1}),
            json!({"access_token": "t", "token_type": "Bearer", "expires_in": 1.5}),
            json!({"access_token": "t", "token_type": "Bearer", "expires_in": "soon"}),
            json!({"access_token": "t", "token_type": "Bearer", "scope": ["read"]}),
            json!({"access_token": "x".repeat(MAX_TOKEN_BYTES + 1), "token_type": "Bearer"}),
        ] {
            assert!(
                matches!(ok(body.clone()), Err(ExchangeError::MalformedAnswer { .. })),
                "{body}"
            );
        }
        for body in ["<html>", "[1]", ""] {
            assert!(matches!(
                answer(200, body),
                Err(ExchangeError::MalformedAnswer { .. })
            ));
        }
    }

    #[test]
    fn oauth_errors_are_refusals_with_bounded_text_and_other_statuses_unavailable() {
        let long = "d".repeat(5000);
        let body = json!({"error": "invalid_grant", "error_description": long}).to_string();
        match answer(400, &body) {
            Err(ExchangeError::Refused {
                status,
                code,
                description,
            }) => {
                assert_eq!((status, code.as_str()), (400, "invalid_grant"));
                assert!(description.unwrap().len() < 300);
            }
            other => panic!("{other:?}"),
        }
        let refused = answer(401, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(refused.code(), Some("invalid_client"));
        assert!(!refused.is_retryable());
        for body in [r#"{"error":"bad\"code"}"#, "{}", "<html>"] {
            assert!(matches!(
                answer(403, body),
                Err(ExchangeError::MalformedAnswer { .. })
            ));
        }
        for status in [404, 429, 500, 503] {
            let error = answer(status, r#"{"error":"server_error"}"#).unwrap_err();
            assert!(error.is_retryable(), "{status}: {error:?}");
        }
    }
}
