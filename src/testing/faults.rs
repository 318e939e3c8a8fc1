//! Endpoints of the test authorization server and the faults tests can inject into them.

use std::fmt;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use tokio::sync::watch;

use super::respond;

/// One endpoint of the [`TestAuthServer`](super::TestAuthServer), for fault injection and
/// request counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// RFC 8414 metadata: `/.well-known/oauth-authorization-server{issuer path}`.
    OAuthMetadata,
    /// OpenID Connect discovery: `{issuer}/.well-known/openid-configuration`, and also
    /// `/.well-known/openid-configuration{issuer path}` when the issuer has a path.
    OidcMetadata,
    /// The JWKS document (`jwks_uri`).
    Jwks,
    /// The OpenID Connect userinfo endpoint.
    Userinfo,
    /// The RFC 7662 token introspection endpoint.
    Introspection,
    /// The RFC 7591 dynamic client registration endpoint.
    Registration,
    /// The authorization endpoint (auto-approving).
    Authorize,
    /// The token endpoint.
    Token,
    /// The RFC 7009 token revocation endpoint.
    Revocation,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::OAuthMetadata,
        Endpoint::OidcMetadata,
        Endpoint::Jwks,
        Endpoint::Userinfo,
        Endpoint::Introspection,
        Endpoint::Registration,
        Endpoint::Authorize,
        Endpoint::Token,
        Endpoint::Revocation,
    ];

    /// A short name, e.g. `"jwks"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::OAuthMetadata => "oauth_metadata",
            Endpoint::OidcMetadata => "oidc_metadata",
            Endpoint::Jwks => "jwks",
            Endpoint::Userinfo => "userinfo",
            Endpoint::Introspection => "introspection",
            Endpoint::Registration => "registration",
            Endpoint::Authorize => "authorize",
            Endpoint::Token => "token",
            Endpoint::Revocation => "revocation",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A misbehaviour injected with [`TestAuthServer::fail`](super::TestAuthServer::fail) or
/// [`TestAuthServer::fail_times`](super::TestAuthServer::fail_times).
///
/// A fault replaces the endpoint's normal answer (except [`Fault::Delay`], which answers
/// normally afterwards). The request is still counted and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a small JSON error body
    /// (`{"error": "...", "error_description": "injected fault"}`).
    /// A number outside 100..=999 is answered with 500.
    Status(u16),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Answer with exactly this status, `Content-Type` and body (garbage, HTML, truncated JSON).
    Body {
        /// The status code (outside 100..=999: 500).
        status: u16,
        /// The `Content-Type` header value (left out when not a valid header value).
        content_type: String,
        /// The body bytes.
        body: Bytes,
    },
    /// Answer 200 with a valid JSON object of at least this many bytes, streamed in chunks
    /// without a `Content-Length`, like `{"padding":"xxxx…"}`.
    Oversized(usize),
    /// Answer 200 `application/json` and send a `total`-byte JSON object `chunk` bytes at a
    /// time, waiting `interval` before each chunk (slowloris).
    Trickle {
        /// Bytes per chunk (0 counts as 1).
        chunk: usize,
        /// The pause before each chunk.
        interval: Duration,
        /// Total body size in bytes.
        total: usize,
    },
    /// Answer with this redirect status and `Location` header, and an empty body.
    Redirect {
        /// The status code, e.g. 302 or 307 (outside 100..=999: 500).
        status: u16,
        /// The `Location` header value, absolute or relative.
        location: String,
    },
    /// Never answer: the request stays open until the client gives up or the server stops.
    Hang,
}

/// A fault armed for one endpoint, either forever or for a number of requests.
#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub(crate) fault: Fault,
    pub(crate) remaining: Option<usize>,
}

impl FaultRule {
    /// Consumes one use of the rule. Returns the fault and whether the rule is now spent.
    pub(crate) fn take(&mut self) -> (Fault, bool) {
        match &mut self.remaining {
            None => (self.fault.clone(), false),
            Some(remaining) => {
                *remaining = remaining.saturating_sub(1);
                (self.fault.clone(), *remaining == 0)
            }
        }
    }
}

const STREAM_CHUNK: usize = 64 * 1024;

/// Answers `fault`. `None` means "now answer normally" (after a [`Fault::Delay`]).
pub(crate) async fn respond(fault: Fault, mut shutdown: watch::Receiver<bool>) -> Option<Response> {
    match fault {
        Fault::Status(code) => {
            let status = status_or_500(code);
            let error = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request"
            };
            let body = json!({ "error": error, "error_description": "injected fault" });
            Some(respond::json(status, &body))
        }
        Fault::Delay(delay) => {
            tokio::select! {
                () = tokio::time::sleep(delay) => None,
                _ = shutdown.wait_for(|stopped| *stopped) => Some(respond::shutting_down()),
            }
        }
        Fault::Body {
            status,
            content_type,
            body,
        } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status_or_500(status);
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            Some(response)
        }
        Fault::Oversized(size) => Some(streamed_json(oversized_body(size))),
        Fault::Trickle {
            chunk,
            interval,
            total,
        } => Some(streamed_json(trickle_body(
            chunk.max(1),
            interval,
            total,
            shutdown,
        ))),
        Fault::Redirect { status, location } => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status_or_500(status);
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Some(response)
        }
        Fault::Hang => {
            // Wake on shutdown so that a graceful stop does not wait forever.
            let _ = shutdown.wait_for(|stopped| *stopped).await;
            Some(respond::shutting_down())
        }
    }
}

fn status_or_500(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn streamed_json(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"padding":"xxx…"}` of at least `size` bytes, produced lazily chunk by chunk.
fn oversized_body(size: usize) -> Body {
    const HEAD: &[u8] = b"{\"padding\":\"";
    const TAIL: &[u8] = b"\"}";
    static FILLER: [u8; STREAM_CHUNK] = [b'x'; STREAM_CHUNK];
    enum Part {
        Head,
        Filler(usize),
        Done,
    }
    let filler = size.saturating_sub(HEAD.len() + TAIL.len());
    let chunks = futures_util::stream::unfold(Part::Head, move |part| async move {
        let (chunk, next) = match part {
            Part::Head => (Bytes::from_static(HEAD), Part::Filler(filler)),
            Part::Filler(0) => (Bytes::from_static(TAIL), Part::Done),
            Part::Filler(remaining) => {
                let take = remaining.min(STREAM_CHUNK);
                let filler = FILLER.get(..take).unwrap_or(FILLER.as_slice());
                (Bytes::from_static(filler), Part::Filler(remaining - take))
            }
            Part::Done => return None,
        };
        Some((Ok::<_, std::io::Error>(chunk), next))
    });
    Body::from_stream(chunks)
}

/// A `total`-byte JSON object (`{` spaces `}`) sent `chunk` bytes per `interval`.
fn trickle_body(
    chunk: usize,
    interval: Duration,
    total: usize,
    shutdown: watch::Receiver<bool>,
) -> Body {
    let mut document = vec![b' '; total];
    if let [first, .., last] = document.as_mut_slice() {
        (*first, *last) = (b'{', b'}');
    }
    let document = Bytes::from(document);
    let chunks = futures_util::stream::unfold((0usize, shutdown), move |(sent, mut shutdown)| {
        let document = document.clone();
        async move {
            if sent >= document.len() {
                return None;
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stopped| *stopped) => return None,
            }
            let end = (sent + chunk).min(document.len());
            Some((
                Ok::<_, std::io::Error>(document.slice(sent..end)),
                (end, shutdown),
            ))
        }
    });
    Body::from_stream(chunks)
}
