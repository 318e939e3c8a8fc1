//! The MCP 2026-07-28 request headers (Streamable HTTP, *Request Metadata*): which revision a
//! request speaks (`MCP-Protocol-Version`), the operation it declares (`Mcp-Method`,
//! `Mcp-Name`, with the `=?base64?…?=` encoding), the check that the body agrees, and the
//! `400` answer with the JSON-RPC error `-32020` (`HeaderMismatch`) when it does not.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use super::probe::{Incoming, Probe};

/// `MCP-Protocol-Version`: the MCP revision a request speaks (from 2025-06-18). Header names
/// are case-insensitive; this is the lowercase form `http` uses.
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// `Mcp-Method` (MCP 2026-07-28): a copy of the request body's `method`, required on every
/// request.
pub const MCP_METHOD: &str = "mcp-method";

/// `Mcp-Name` (MCP 2026-07-28): a copy of `params.name` (`tools/call`, `prompts/get`) or
/// `params.uri` (`resources/read`), required for those methods; `=?base64?…?=` when the value
/// is not plain header-safe ASCII.
pub const MCP_NAME: &str = "mcp-name";

/// The JSON-RPC error code of `HeaderMismatch` (MCP 2026-07-28, Streamable HTTP *Server
/// Validation*): the headers are missing, malformed, or do not match the body.
pub const HEADER_MISMATCH_CODE: i64 = -32020;

/// The revisions before the request headers: a request naming one of them (or no
/// `MCP-Protocol-Version` at all: 2025-03-26, as the transport allows) is decided from its
/// body.
const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The revisions whose header rules this crate knows (and rmcp 3.11 checks): only for these
/// may [`mcp_headers_checked_by_service`](super::OperationScopesBuilder::mcp_headers_checked_by_service)
/// skip the body.
const CHECKED_VERSIONS: [&str; 1] = ["2026-07-28"];

const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// What a request's `MCP-Protocol-Version` says about how to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Revision {
    /// Absent, or a revision before 2026-07-28: the body decides.
    Legacy,
    /// 2026-07-28, a later revision, or a value this crate cannot read: the request headers
    /// are required and must agree with the body. `known` when it is exactly a revision in
    /// [`CHECKED_VERSIONS`].
    Modern { known: bool },
}

/// The operation a 2026-07-28 request declares in its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Declared {
    pub(super) method: String,
    /// The decoded `Mcp-Name`, for the methods that require it (and only for them).
    pub(super) name: Option<String>,
}

/// Which body member `Mcp-Name` copies for `method`, if it needs one.
fn name_source(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("params.name"),
        "resources/read" => Some("params.uri"),
        _ => None,
    }
}

/// Why a request's MCP request headers were refused: answered `400 Bad Request` with the
/// JSON-RPC error `-32020` (`HeaderMismatch`), as MCP 2026-07-28 (Streamable HTTP, *Server
/// Validation*) requires. The message says which header and what to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderMismatch {
    /// A header MCP 2026-07-28 requires is absent: `Mcp-Method` on every request, `Mcp-Name`
    /// for `tools/call`, `prompts/get` and `resources/read`.
    #[error(
        "the request has no `{header}` header; MCP 2026-07-28 requires it: copy {copies} into it"
    )]
    Missing {
        /// The header.
        header: &'static str,
        /// What the header must copy.
        copies: &'static str,
    },
    /// A header appears more than once (which value counts would be up to each reader).
    #[error("the `{header}` header appears more than once; send it once")]
    Repeated {
        /// The header.
        header: &'static str,
    },
    /// A header value that cannot be read: characters outside visible ASCII, space and tab,
    /// an empty method, or a `=?base64?…?=` value that is not Base64 of UTF-8.
    #[error("the `{header}` header is malformed: {reason}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header does not match the body member it copies.
    #[error(
        "the `{header}` header does not match `{member}` in the request body; send the same value in both"
    )]
    Differs {
        /// The header.
        header: &'static str,
        /// The body member: `method`, `params.name` or `params.uri`.
        member: &'static str,
    },
    /// The body is a JSON-RPC batch (an array): from MCP 2026-07-28 (and since 2025-06-18) a
    /// POST carries exactly one message.
    #[error("the request body is a JSON-RPC batch; send one message per POST")]
    Batch,
    /// The body is not one JSON object (not JSON, a scalar, or bytes after the value), so it
    /// cannot carry the operation the headers name.
    #[error("the request body is not one JSON-RPC message; send one JSON object")]
    NotAMessage,
    /// A member the headers are compared with appears twice in the body.
    #[error("the request body has the member `{member}` more than once; send it once")]
    DuplicateMember {
        /// `method`, `params`, `params.name` or `params.uri`.
        member: &'static str,
    },
}

/// How `headers` say the request is to be read.
///
/// # Errors
///
/// [`HeaderMismatch::Repeated`] for two `MCP-Protocol-Version` headers.
pub(super) fn revision(headers: &HeaderMap) -> Result<Revision, HeaderMismatch> {
    let Some(value) = single(headers, MCP_PROTOCOL_VERSION)? else {
        return Ok(Revision::Legacy);
    };
    // A value this crate cannot read is treated as the newest revision: then the headers are
    // required and checked, which is the stricter reading (fail closed).
    Ok(match value.to_str() {
        Ok(version) if LEGACY_VERSIONS.contains(&version) => Revision::Legacy,
        Ok(version) => Revision::Modern {
            known: CHECKED_VERSIONS.contains(&version),
        },
        Err(_) => Revision::Modern { known: false },
    })
}

/// The operation the `Mcp-Method` and `Mcp-Name` headers declare.
///
/// # Errors
///
/// [`HeaderMismatch::Missing`], [`Repeated`](HeaderMismatch::Repeated) or
/// [`Malformed`](HeaderMismatch::Malformed).
pub(super) fn declared(headers: &HeaderMap) -> Result<Declared, HeaderMismatch> {
    let method = single(headers, MCP_METHOD)?.ok_or(HeaderMismatch::Missing {
        header: "Mcp-Method",
        copies: "the body's `method`",
    })?;
    let method = method.to_str().map_err(|_| HeaderMismatch::Malformed {
        header: "Mcp-Method",
        reason: "it has characters outside visible ASCII",
    })?;
    if method.is_empty() {
        return Err(HeaderMismatch::Malformed {
            header: "Mcp-Method",
            reason: "it is empty",
        });
    }
    let name = single(headers, MCP_NAME)?;
    let name = match name_source(method) {
        Some(source) => {
            let value = name.ok_or(HeaderMismatch::Missing {
                header: "Mcp-Name",
                copies: match source {
                    "params.uri" => "the body's `params.uri`",
                    _ => "the body's `params.name`",
                },
            })?;
            Some(decode(value)?)
        }
        // Other methods carry no name: a stray one decides nothing and is not compared.
        None => None,
    };
    Ok(Declared {
        method: method.to_owned(),
        name,
    })
}

/// Whether `body` is the one message `declared` names: same `method`, and for the methods
/// with a name, the same `params.name` or `params.uri` (exact, case-sensitive).
///
/// # Errors
///
/// The mismatch, and the message's `id` (for the error answer) when the body had one.
pub(super) fn check_body(
    declared: &Declared,
    body: &[u8],
) -> Result<(), (HeaderMismatch, Option<Value>)> {
    let message: Probe = match Incoming::parse(body) {
        Incoming::One(message) => message,
        Incoming::Batch(_) => return Err((HeaderMismatch::Batch, None)),
        Incoming::Other => return Err((HeaderMismatch::NotAMessage, None)),
    };
    let fail = |error| Err((error, message.id.clone()));
    if let Some(member) = message.duplicate {
        return fail(HeaderMismatch::DuplicateMember { member });
    }
    if message.method.as_deref() != Some(declared.method.as_str()) {
        return fail(HeaderMismatch::Differs {
            header: "Mcp-Method",
            member: "method",
        });
    }
    let body_name = match name_source(&declared.method) {
        Some("params.uri") => (&message.uri, "params.uri"),
        Some(_) => (&message.name, "params.name"),
        None => return Ok(()),
    };
    if body_name.0.as_deref() != declared.name.as_deref() {
        return fail(HeaderMismatch::Differs {
            header: "Mcp-Name",
            member: body_name.1,
        });
    }
    Ok(())
}

/// The `400 Bad Request` for `error`: a JSON-RPC error response with code `-32020`
/// (`HeaderMismatch`), `id` when it is known (MCP 2026-07-28 makes it optional in error
/// responses), `Content-Type: application/json` and `Cache-Control: no-store`.
pub(super) fn refusal(error: &HeaderMismatch, id: Option<Value>) -> Response<Full<Bytes>> {
    tracing::debug!("operation scopes: refusing the MCP request headers: {error}");
    let mut body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": HEADER_MISMATCH_CODE, "message": format!("Header mismatch: {error}") },
    });
    if let (Some(id), Some(object)) = (id, body.as_object_mut()) {
        object.insert("id".into(), id);
    }
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The one value of `name`: `None` when absent.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a HeaderValue>, HeaderMismatch> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(HeaderMismatch::Repeated {
            header: display_name(name),
        });
    }
    Ok(first)
}

fn display_name(name: &'static str) -> &'static str {
    match name {
        MCP_PROTOCOL_VERSION => "MCP-Protocol-Version",
        MCP_METHOD => "Mcp-Method",
        _ => "Mcp-Name",
    }
}

/// An `Mcp-Name` value: plain header-safe ASCII as is, `=?base64?…?=` (markers exactly so,
/// lowercase) decoded from standard padded Base64 to UTF-8.
fn decode(value: &HeaderValue) -> Result<String, HeaderMismatch> {
    let malformed = |reason| HeaderMismatch::Malformed {
        header: "Mcp-Name",
        reason,
    };
    let text = value.to_str().map_err(|_| {
        malformed(
            "it has characters outside visible ASCII; send such names as =?base64?<Base64 of UTF-8>?=",
        )
    })?;
    let Some(encoded) = text
        .strip_prefix(BASE64_PREFIX)
        .and_then(|rest| rest.strip_suffix(BASE64_SUFFIX))
    else {
        return Ok(text.to_owned());
    };
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| malformed("its =?base64?…?= value is not valid (padded, standard) Base64"))?;
    String::from_utf8(bytes).map_err(|_| malformed("its =?base64?…?= value is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_revision_is_legacy_only_for_absent_or_known_older_versions() {
        assert_eq!(revision(&headers(&[])), Ok(Revision::Legacy));
        for old in LEGACY_VERSIONS {
            let map = headers(&[("MCP-Protocol-Version", old.as_bytes())]);
            assert_eq!(revision(&map), Ok(Revision::Legacy), "{old}");
        }
        let modern = headers(&[("mcp-protocol-version", b"2026-07-28")]);
        assert_eq!(revision(&modern), Ok(Revision::Modern { known: true }));
        for odd in [
            &b"2027-01-01"[..],
            b"2025-11-25x",
            b"2025-11-25,2026-07-28",
            b"",
            b"garbage",
            b"2025-\xff",
        ] {
            let map = headers(&[("MCP-Protocol-Version", odd)]);
            assert_eq!(
                revision(&map),
                Ok(Revision::Modern { known: false }),
                "{odd:?}"
            );
        }
        let twice = headers(&[
            ("MCP-Protocol-Version", b"2025-11-25"),
            ("mcp-protocol-version", b"2025-11-25"),
        ]);
        assert_eq!(
            revision(&twice),
            Err(HeaderMismatch::Repeated {
                header: "MCP-Protocol-Version"
            })
        );
    }

    #[test]
    fn names_are_required_for_the_three_named_methods_and_decoded() {
        let call = headers(&[("Mcp-Method", b"tools/call"), ("Mcp-Name", b"get_weather")]);
        assert_eq!(
            declared(&call).unwrap().name.as_deref(),
            Some("get_weather")
        );
        // The transport page's example: "Hello, 世界".
        let encoded = headers(&[
            ("Mcp-Method", b"prompts/get"),
            ("Mcp-Name", b"=?base64?SGVsbG8sIOS4lueVjA==?="),
        ]);
        assert_eq!(
            declared(&encoded).unwrap().name.as_deref(),
            Some("Hello, 世界")
        );
        // The markers are case-sensitive: upper case is a plain value.
        let upper = headers(&[
            ("Mcp-Method", b"tools/call"),
            ("Mcp-Name", b"=?BASE64?YQ==?="),
        ]);
        assert_eq!(
            declared(&upper).unwrap().name.as_deref(),
            Some("=?BASE64?YQ==?=")
        );
        let read = headers(&[("Mcp-Method", b"resources/read")]);
        assert!(matches!(
            declared(&read),
            Err(HeaderMismatch::Missing { header: "Mcp-Name", copies }) if copies.contains("uri")
        ));
        // Other methods carry no name, and a stray one is ignored.
        let list = headers(&[("Mcp-Method", b"tools/list"), ("Mcp-Name", b"x")]);
        assert_eq!(declared(&list).unwrap().name, None);
    }

    /// Request headers as (name, value) pairs.
    type Pairs<'a> = &'a [(&'a str, &'a [u8])];

    #[test]
    // The table's type is spelled once, here; an alias would only move it.
    #[allow(clippy::type_complexity)]
    fn missing_repeated_and_malformed_headers_are_refused() {
        let cases: [(Pairs<'_>, HeaderMismatch); 7] = [
            (
                &[],
                HeaderMismatch::Missing {
                    header: "Mcp-Method",
                    copies: "the body's `method`",
                },
            ),
            (
                &[("Mcp-Method", b"tools/list"), ("MCP-METHOD", b"tools/list")],
                HeaderMismatch::Repeated {
                    header: "Mcp-Method",
                },
            ),
            (
                &[
                    ("Mcp-Method", b"tools/call"),
                    ("Mcp-Name", b"a"),
                    ("mcp-name", b"b"),
                ],
                HeaderMismatch::Repeated { header: "Mcp-Name" },
            ),
            (
                &[("Mcp-Method", b"")],
                HeaderMismatch::Malformed {
                    header: "Mcp-Method",
                    reason: "it is empty",
                },
            ),
            (
                &[("Mcp-Method", b"tools/\xe9")],
                HeaderMismatch::Malformed {
                    header: "Mcp-Method",
                    reason: "it has characters outside visible ASCII",
                },
            ),
            (
                &[
                    ("Mcp-Method", b"tools/call"),
                    ("Mcp-Name", b"=?base64?!!!?="),
                ],
                HeaderMismatch::Malformed {
                    header: "Mcp-Name",
                    reason: "its =?base64?…?= value is not valid (padded, standard) Base64",
                },
            ),
            (
                // Base64 of the bytes ff fe: not UTF-8.
                &[
                    ("Mcp-Method", b"tools/call"),
                    ("Mcp-Name", b"=?base64?//4=?="),
                ],
                HeaderMismatch::Malformed {
                    header: "Mcp-Name",
                    reason: "its =?base64?…?= value is not UTF-8",
                },
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(declared(&headers(pairs)), Err(expected), "{pairs:?}");
        }
    }

    fn call(name: &str) -> Declared {
        Declared {
            method: "tools/call".into(),
            name: Some(name.into()),
        }
    }

    #[test]
    fn the_body_must_be_the_one_message_the_headers_name() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete"}}"#;
        assert_eq!(check_body(&call("delete"), body), Ok(()));
        assert_eq!(
            check_body(&call("list"), body),
            Err((
                HeaderMismatch::Differs {
                    header: "Mcp-Name",
                    member: "params.name"
                },
                Some(7.into())
            ))
        );
        let read = Declared {
            method: "resources/read".into(),
            name: Some("file:///a".into()),
        };
        let read_body = br#"{"id":"r","method":"resources/read","params":{"uri":"file:///b","name":"file:///a"}}"#;
        assert_eq!(
            check_body(&read, read_body),
            Err((
                HeaderMismatch::Differs {
                    header: "Mcp-Name",
                    member: "params.uri"
                },
                Some("r".into())
            ))
        );
        let other_method = br#"{"id":1,"method":"prompts/get","params":{"name":"delete"}}"#;
        assert!(matches!(
            check_body(&call("delete"), other_method),
            Err((
                HeaderMismatch::Differs {
                    header: "Mcp-Method",
                    ..
                },
                _
            ))
        ));
        let no_name = br#"{"id":1,"method":"tools/call","params":{"name":5}}"#;
        assert!(check_body(&call("5"), no_name).is_err());
    }

    #[test]
    fn batches_duplicates_and_non_messages_never_agree() {
        let batch = br#"[{"id":1,"method":"tools/call","params":{"name":"delete"}}]"#;
        assert_eq!(
            check_body(&call("delete"), batch),
            Err((HeaderMismatch::Batch, None))
        );
        for body in [
            &b"not json"[..],
            b"",
            b"42",
            br#"{"method":"tools/call"} x"#,
        ] {
            assert_eq!(
                check_body(&call("delete"), body),
                Err((HeaderMismatch::NotAMessage, None)),
                "{body:?}"
            );
        }
        // The header names the last `name`, the first, or either: refused whichever.
        let twice = br#"{"id":1,"method":"tools/call","params":{"name":"list","name":"delete"}}"#;
        assert_eq!(
            check_body(&call("delete"), twice),
            Err((
                HeaderMismatch::DuplicateMember {
                    member: "params.name"
                },
                Some(1.into())
            ))
        );
        let escaped = br#"{"id":1,"meth\u006fd":"tools/call","params":{"name":"del\u0065te"}}"#;
        assert_eq!(check_body(&call("delete"), escaped), Ok(()));
    }

    #[test]
    fn the_refusal_is_a_json_rpc_header_mismatch_error() {
        let response = refusal(&HeaderMismatch::Batch, Some("a".into()));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let without_id = refusal(&HeaderMismatch::Batch, None);
        assert_eq!(without_id.status(), StatusCode::BAD_REQUEST);
    }
}
