//! Requests as the endpoints see them, and as tests see them afterwards.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri, header};
use serde_json::Value;
use url::form_urlencoded;

use super::respond::OAuthError;

/// A request received by the test server, kept for assertions
/// (see [`TestAuthServer::requests`](super::TestAuthServer::requests)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: Method,
    /// The path and query, e.g. `/introspect` or `/authorize?client_id=...`.
    pub path_and_query: String,
    /// The request headers (names are lowercase).
    pub headers: HeaderMap,
    /// The request body (empty when it was over the server's 1 MiB limit).
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive), if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or_default()
    }

    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, query)| query)
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs (whatever the
    /// `Content-Type` says).
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The first value of form field `name` in the body.
    pub fn form_value(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(&self.body)
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `(client_id, client_secret)` of an `Authorization: Basic` header, decoded as
    /// RFC 6749 §2.3.1 says (base64, then form-urlencoding of each part).
    pub fn basic_auth(&self) -> Option<(String, String)> {
        parse_basic(self.header(header::AUTHORIZATION.as_str())?)
    }
}

/// A request with its body read, handed to an endpoint.
#[derive(Debug)]
pub(crate) struct IncomingRequest {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl IncomingRequest {
    pub(crate) fn query(&self) -> Params {
        Params::parse(self.uri.query().unwrap_or_default().as_bytes())
    }

    /// The body as form parameters; the `Content-Type` must say so.
    pub(crate) fn form(&self) -> Result<Params, OAuthError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Ok(Params::parse(&self.body))
    }

    /// The single `Authorization` header, if any. Two or more are an `invalid_request`.
    pub(crate) fn authorization(&self) -> Result<Option<&str>, OAuthError> {
        let mut values = self.headers.get_all(header::AUTHORIZATION).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => value
                .to_str()
                .map(Some)
                .map_err(|_| OAuthError::invalid_request("Authorization header is not text")),
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(
                "more than one Authorization header",
            )),
        }
    }

    /// The Bearer token of the `Authorization` header: `Ok(None)` when there is no
    /// Bearer credential at all, `Err` when it is malformed.
    pub(crate) fn bearer_token(&self) -> Result<Option<&str>, OAuthError> {
        let Some(authorization) = self.authorization()? else {
            return Ok(None);
        };
        let Some((scheme, token)) = authorization.split_once(' ') else {
            return Ok(None);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        let token = token.trim();
        if token.is_empty() || token.contains(' ') {
            return Err(OAuthError::invalid_request("malformed Bearer credential"));
        }
        Ok(Some(token))
    }

    /// Client credentials from `Authorization: Basic` or from the form
    /// (`client_id` + `client_secret`), as `(client_id, secret)`. Using both at once is an
    /// `invalid_request` (RFC 6749 §2.3).
    pub(crate) fn client_credentials(
        &self,
        form: &Params,
    ) -> Result<Option<(String, Option<String>)>, OAuthError> {
        let form_id = form.one("client_id")?;
        let form_secret = form.one("client_secret")?;
        let basic = match self.authorization()? {
            Some(value) if is_scheme(value, "basic") => Some(
                parse_basic(value)
                    .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?,
            ),
            _ => None,
        };
        match (basic, form_id) {
            (Some(_), _) if form_secret.is_some() => Err(OAuthError::invalid_request(
                "client credentials sent both in the Authorization header and in the body",
            )),
            (Some((id, _)), Some(form_id)) if form_id != id => Err(OAuthError::invalid_client(
                "client_id does not match the Basic credentials",
            )),
            (Some((id, secret)), _) => Ok(Some((id, Some(secret)))),
            (None, Some(id)) => Ok(Some((id.to_owned(), form_secret.map(str::to_owned)))),
            (None, None) => Ok(None),
        }
    }
}

fn is_scheme(authorization: &str, scheme: &str) -> bool {
    authorization
        .split_once(' ')
        .is_some_and(|(given, _)| given.eq_ignore_ascii_case(scheme))
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` → `(id, secret)`.
fn parse_basic(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn form_decode(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(index + 1..index + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 2;
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8(out).ok()
}

/// Decoded query or form parameters, in order, repeats kept.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    fn parse(input: &[u8]) -> Self {
        Params(form_urlencoded::parse(input).into_owned().collect())
    }

    /// The value of a parameter that may appear at most once (RFC 6749 §3.1); empty counts
    /// as absent.
    pub(crate) fn one(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.all(name).into_iter();
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            ))),
            (value, _) => Ok(value.filter(|value| !value.is_empty())),
        }
    }

    /// Like [`Params::one`], but absent is an `invalid_request` too.
    pub(crate) fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is required")))
    }

    /// Every value of a parameter that may repeat (`resource`).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:s%3Ac+r%2Bt"));
        assert_eq!(
            parse_basic(&header),
            Some(("my client".into(), "s:c r+t".into()))
        );
    }

    #[test]
    fn malformed_percent_escapes_are_rejected() {
        assert_eq!(form_decode("abc%2"), None);
        assert_eq!(form_decode("abc%zz"), None);
        assert_eq!(form_decode("%"), None);
        assert_eq!(form_decode("%+1"), None);
    }
}
