//! What the userinfo and introspection verifiers share: asking an endpoint of the
//! authorization server about a token, and reading its answer.
//!
//! The endpoint's URL comes from the server's metadata; the request goes through the bounded
//! [`HttpClient`] (timeout, size cap, https rule); a refused URL is our configuration (500),
//! network trouble and odd statuses are an outage (503), and the token is never logged.

use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value};

use crate::discovery::AuthServer;
use crate::error::{FetchError, VerifyError};
use crate::http_client::{FetchedResponse, HttpClient};
use crate::metadata::AuthorizationServerMetadata;
use crate::verify::cache::token_fingerprint;

/// An endpoint of the authorization server that a verifier asks about each token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenEndpoint {
    /// OpenID Connect userinfo.
    Userinfo,
    /// RFC 7662 token introspection.
    Introspection,
}

impl TokenEndpoint {
    /// Its name in messages.
    fn name(self) -> &'static str {
        match self {
            Self::Userinfo => "userinfo",
            Self::Introspection => "introspection",
        }
    }

    /// Its URL in the metadata, with the name of the metadata member.
    fn url(self, metadata: &AuthorizationServerMetadata) -> (Option<&str>, &'static str) {
        match self {
            Self::Userinfo => (metadata.userinfo_endpoint.as_deref(), "userinfo_endpoint"),
            Self::Introspection => (
                metadata.introspection_endpoint.as_deref(),
                "introspection_endpoint",
            ),
        }
    }

    /// What to use instead when the server has no such endpoint.
    fn alternative(self) -> &'static str {
        match self {
            Self::Userinfo => {
                "another verifier (JWT or introspection) or a server with OpenID Connect userinfo"
            }
            Self::Introspection => "another verifier or a server that supports RFC 7662",
        }
    }
}

/// One endpoint of one authorization server, and the HTTP client that asks it.
#[derive(Clone)]
pub(crate) struct EndpointClient {
    endpoint: TokenEndpoint,
    server: AuthServer,
    /// `None`: the server's own client.
    http: Option<HttpClient>,
}

impl EndpointClient {
    pub(crate) fn new(
        endpoint: TokenEndpoint,
        server: AuthServer,
        http: Option<HttpClient>,
    ) -> Self {
        Self {
            endpoint,
            server,
            http,
        }
    }

    /// The authorization server asked.
    pub(crate) fn server(&self) -> &AuthServer {
        &self.server
    }

    fn http(&self) -> &HttpClient {
        self.http
            .as_ref()
            .unwrap_or_else(|| self.server.http_client())
    }

    /// The endpoint's URL, from the server's metadata (fetched if not cached).
    ///
    /// # Errors
    ///
    /// [`VerifyError::Misconfigured`] when the metadata names no such endpoint, and whatever
    /// [`AuthServer::metadata`] fails with (see `From<DiscoveryError> for VerifyError`).
    pub(crate) async fn url(&self) -> Result<String, VerifyError> {
        let metadata = self.server.metadata().await?;
        let (url, field) = self.endpoint.url(&metadata);
        match url {
            Some(url) => Ok(url.to_owned()),
            None => Err(VerifyError::misconfigured(format_args!(
                "the authorization server `{}` publishes no `{field}`; use {}",
                self.server.issuer(),
                self.endpoint.alternative()
            ))),
        }
    }

    /// Sends `method` to `url` (from [`url`](Self::url)) with `Accept: application/json` and
    /// whatever `prepare` adds, and reads the answer (any status) within the client's size
    /// cap.
    ///
    /// # Errors
    ///
    /// [`VerifyError::Misconfigured`] when the client refuses the URL (plain http, invalid);
    /// [`VerifyError::Unavailable`] when the exchange fails (timeout, network, size cap).
    pub(crate) async fn send(
        &self,
        url: &str,
        method: Method,
        prepare: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<FetchedResponse, VerifyError> {
        let request = self
            .http()
            .request(method, url)
            .map_err(upstream_error)?
            .header(header::ACCEPT, "application/json");
        self.http()
            .send(url, prepare(request))
            .await
            .map_err(upstream_error)
    }

    /// Logs, by the token's fingerprint only, why the endpoint's answer was not accepted.
    pub(crate) fn log_refusal(&self, token: &str, response: &FetchedResponse, error: &VerifyError) {
        tracing::debug!(
            token = %token_fingerprint(token),
            status = response.status.as_u16(),
            %error,
            "{} did not accept the token",
            self.endpoint.name()
        );
    }
}

/// Passes a 2xx answer, hands 400, 401 and 403 to `refused`, and makes any other status
/// [`VerifyError::Unavailable`] (the server is in trouble; the token is not known to be bad).
pub(crate) fn check_status(
    endpoint: TokenEndpoint,
    response: &FetchedResponse,
    refused: impl FnOnce(StatusCode) -> VerifyError,
) -> Result<(), VerifyError> {
    match response.status {
        status @ (StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            Err(refused(status))
        }
        status if status.is_success() => Ok(()),
        status => Err(VerifyError::unavailable(format_args!(
            "the {} endpoint `{}` answered HTTP {}",
            endpoint.name(),
            response.url,
            status.as_u16()
        ))),
    }
}

/// Whether the response's media type is `expected` (parameters ignored).
pub(crate) fn content_type_is(response: &FetchedResponse, expected: &str) -> bool {
    response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// The body as a JSON object; anything else means the server misbehaved (503, not 401: the
/// token is not known to be bad).
pub(crate) fn json_object(
    endpoint: TokenEndpoint,
    response: &FetchedResponse,
) -> Result<Map<String, Value>, VerifyError> {
    match response.json::<Value>() {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(VerifyError::unavailable(format_args!(
            "the {} answer from `{}` is JSON but not an object",
            endpoint.name(),
            response.url
        ))),
        Err(error) => Err(VerifyError::unavailable(error)),
    }
}

/// A header value that holds a secret (a token, a client secret), marked sensitive so that
/// `Debug` never prints it; `None` if it has characters a header cannot carry.
pub(crate) fn secret_header(value: String) -> Option<HeaderValue> {
    let mut value = HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Maps a failed exchange with the authorization server: network trouble is a 503, a URL the
/// client refuses is our configuration (500).
pub(crate) fn upstream_error(error: FetchError) -> VerifyError {
    match error {
        FetchError::InvalidUrl { .. }
        | FetchError::InsecureUrl { .. }
        | FetchError::Client { .. } => VerifyError::misconfigured(error),
        _ => VerifyError::unavailable(error),
    }
}

/// An answer from `url` with `status`, `content_type` and `body`, for the verifiers' tests.
#[cfg(test)]
pub(crate) fn canned_answer(
    url: &str,
    status: u16,
    content_type: &str,
    body: &str,
) -> FetchedResponse {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    FetchedResponse {
        url: url.to_owned(),
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: bytes::Bytes::from(body.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn response(status: u16, content_type: &str, body: &str) -> FetchedResponse {
        canned_answer(
            "https://as.example.com/endpoint",
            status,
            content_type,
            body,
        )
    }

    #[test]
    fn insecure_endpoints_are_misconfiguration_and_timeouts_unavailable() {
        assert!(matches!(
            upstream_error(FetchError::InsecureUrl {
                url: "http://x".into()
            }),
            VerifyError::Misconfigured { .. }
        ));
        assert!(matches!(
            upstream_error(FetchError::Timeout {
                url: "https://x".into(),
                timeout: Duration::from_secs(1)
            }),
            VerifyError::Unavailable { .. }
        ));
    }

    #[test]
    fn refusals_go_to_the_caller_and_other_failures_are_unavailable() {
        let refused = |status: StatusCode| VerifyError::invalid_token(status.to_string());
        for status in [400, 401, 403] {
            let result = check_status(
                TokenEndpoint::Userinfo,
                &response(status, "application/json", "{}"),
                refused,
            );
            assert!(
                matches!(result, Err(VerifyError::InvalidToken { .. })),
                "{status}"
            );
        }
        for status in [404, 408, 429, 500, 502, 503] {
            let result = check_status(
                TokenEndpoint::Introspection,
                &response(status, "application/json", "{}"),
                refused,
            );
            match result {
                Err(VerifyError::Unavailable { reason }) => {
                    assert!(reason.contains("introspection endpoint"), "{reason}")
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        for status in [200, 204] {
            assert!(
                check_status(
                    TokenEndpoint::Userinfo,
                    &response(status, "application/json", "{}"),
                    refused
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn only_a_json_object_is_an_answer_and_media_types_ignore_parameters() {
        let answer = response(200, "Application/JSON; charset=utf-8", r#"{"sub":"u"}"#);
        assert!(content_type_is(&answer, "application/json"));
        assert!(!content_type_is(&answer, "application/jwt"));
        assert_eq!(
            json_object(TokenEndpoint::Userinfo, &answer).unwrap()["sub"],
            "u"
        );
        for body in ["[1]", "\"x\"", "{", ""] {
            assert!(matches!(
                json_object(
                    TokenEndpoint::Userinfo,
                    &response(200, "application/json", body)
                ),
                Err(VerifyError::Unavailable { .. })
            ));
        }
    }

    #[test]
    fn secret_headers_are_sensitive_and_refuse_line_breaks() {
        assert!(secret_header("Bearer a\nb".into()).is_none());
        let value = secret_header("Bearer abc".into()).unwrap();
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("abc"));
    }
}
