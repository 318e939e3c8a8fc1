//! [`BearerChallenge`]: rendering and parsing `WWW-Authenticate: Bearer` (and `DPoP`)
//! challenges.

use std::borrow::Cow;
use std::fmt::Write as _;

use http::HeaderValue;

use super::is_tchar;
use crate::scope::is_scope_char;

/// A `Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1), or a `DPoP` one (RFC 9449 §7.1, with
/// [`scheme`](Self::scheme) [`ChallengeScheme::Dpop`]): the parameters of a `WWW-Authenticate`
/// header.
///
/// Build one with [`Default`] and the public fields, render it with [`render`](Self::render) or
/// [`to_header_value`](Self::to_header_value), read one with the strict [`parse`](Self::parse).
///
/// Rendering uses one fixed parameter order, `realm`, `error`, `error_description`, `scope`,
/// `resource_metadata` and (DPoP only) `algs`, each a quoted-string, joined by `", "`. Empty
/// parameters are omitted.
/// Characters outside the sets RFC 6750 §3 allows are **removed**, never escaped:
///
/// - `realm`, `error`, `error_description`: `%x20-21 / %x23-5B / %x5D-7E`;
/// - `scope`: tokens of `%x21 / %x23-5B / %x5D-7E`, joined by one space;
/// - `resource_metadata`: visible ASCII without `"` and `\`;
/// - `algs`: tokens of `tchar`, joined by one space.
///
/// So a value never contains `"`, `\` or a non-ASCII byte, and the header is always a valid
/// `HeaderValue`.
///
/// ```
/// use mcp_auth::bearer::BearerChallenge;
///
/// let mut challenge = BearerChallenge::default();
/// challenge.error = Some("invalid_token".into());
/// challenge.error_description = Some("The \"token\" expired".into());
/// challenge.scope = vec!["read".into(), "write".into()];
/// challenge.resource_metadata =
///     Some("https://h/.well-known/oauth-protected-resource/mcp".into());
/// let rendered = challenge.render();
/// assert_eq!(
///     rendered,
///     "Bearer error=\"invalid_token\", error_description=\"The token expired\", \
///      scope=\"read write\", resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\""
/// );
/// let parsed = BearerChallenge::parse(&rendered)?;
/// assert_eq!(parsed.error_description.as_deref(), Some("The token expired"));
/// assert_eq!(parsed.scope, ["read", "write"]);
/// # Ok::<(), mcp_auth::bearer::ChallengeParseError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerChallenge {
    /// `realm`: the protection space. Optional; this crate sets none by default.
    pub realm: Option<String>,
    /// `error`: an RFC 6750 §3.1 code. Absent when the request carried no credentials.
    pub error: Option<String>,
    /// `error_description`: text for developers.
    pub error_description: Option<String>,
    /// `scope`: the scopes the request needs (rendered space-separated).
    pub scope: Vec<String>,
    /// `resource_metadata`: the RFC 9728 metadata URL of the resource (RFC 9728 §5.1).
    pub resource_metadata: Option<String>,
    /// The authentication scheme: `Bearer` (the default) or `DPoP`.
    pub scheme: ChallengeScheme,
    /// `algs` (DPoP only, RFC 9449 §7.1): the JWS algorithms accepted in proofs. Not rendered
    /// for `Bearer`.
    pub algs: Vec<String>,
}

/// The scheme of a [`BearerChallenge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeScheme {
    /// `Bearer` (RFC 6750).
    #[default]
    Bearer,
    /// `DPoP` (RFC 9449 §7.1).
    Dpop,
}

impl ChallengeScheme {
    /// The scheme's name as sent: `Bearer` or `DPoP`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeScheme::Bearer => "Bearer",
            ChallengeScheme::Dpop => "DPoP",
        }
    }
}

impl BearerChallenge {
    /// The header value: `Bearer` (or `DPoP`) followed by the non-empty parameters in the fixed
    /// order, with disallowed characters removed (see the type docs). A challenge without any
    /// parameter renders as the scheme alone.
    pub fn render(&self) -> String {
        let mut out = String::from(self.scheme.as_str());
        let mut first = true;
        let mut param = |name: &str, value: String| {
            if value.is_empty() {
                return;
            }
            out.push_str(if first { " " } else { ", " });
            first = false;
            // Writing to a String cannot fail.
            let _ = write!(out, "{name}=\"{value}\"");
        };
        if let Some(realm) = &self.realm {
            param("realm", keep(realm, is_text_char));
        }
        if let Some(error) = &self.error {
            param("error", keep(error, is_text_char));
        }
        if let Some(description) = &self.error_description {
            param("error_description", keep(description, is_text_char));
        }
        param("scope", scope_list(&self.scope));
        if let Some(url) = &self.resource_metadata {
            param("resource_metadata", keep(url, is_scope_char));
        }
        if self.scheme == ChallengeScheme::Dpop {
            let algs: Vec<String> = self
                .algs
                .iter()
                .map(|alg| keep(alg, is_tchar))
                .filter(|alg| !alg.is_empty())
                .collect();
            param("algs", algs.join(" "));
        }
        out
    }

    /// [`render`](Self::render) as a [`HeaderValue`].
    pub fn to_header_value(&self) -> HeaderValue {
        // Rendered text is printable ASCII by construction, so this never falls back.
        HeaderValue::from_str(&self.render())
            .unwrap_or_else(|_| HeaderValue::from_static(self.scheme.as_str()))
    }

    /// Parses a single `Bearer` or `DPoP` challenge strictly: the scheme (any case), then
    /// comma-separated `name=value` parameters whose value is a token or a quoted-string.
    /// Only `realm`, `error`, `error_description`, `error_uri`, `scope`, `resource_metadata`
    /// and, for `DPoP`, `algs` are known; `error_uri` is checked but not kept.
    ///
    /// Meant for tests and clients checking a server's answer.
    ///
    /// # Errors
    ///
    /// [`ChallengeParseError`] for another scheme, a syntax error, a parameter that appears
    /// twice (names compare case-insensitively, RFC 9110 §11.2) or an unknown parameter.
    pub fn parse(value: &str) -> Result<Self, ChallengeParseError> {
        let mut parser = Parser {
            rest: value.trim_matches([' ', '\t']),
        };
        let scheme = parser.token();
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            ChallengeScheme::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            ChallengeScheme::Dpop
        } else {
            return Err(ChallengeParseError::new(format!(
                "the scheme is `{scheme}`, not `Bearer` or `DPoP`"
            )));
        };
        let mut challenge = Self {
            scheme,
            ..Self::default()
        };
        if parser.rest.is_empty() {
            return Ok(challenge);
        }
        if !parser.rest.starts_with(' ') {
            return Err(ChallengeParseError::new(
                "the scheme must be followed by a space",
            ));
        }
        let mut seen: Vec<String> = Vec::new();
        loop {
            parser.skip_ows();
            let name = parser.token().to_ascii_lowercase();
            if name.is_empty() {
                return Err(ChallengeParseError::new("expected a parameter name"));
            }
            parser.skip_ows();
            if !parser.eat('=') {
                return Err(ChallengeParseError::new(format!(
                    "parameter `{name}` has no `=`"
                )));
            }
            parser.skip_ows();
            let value = parser.value()?;
            if seen.contains(&name) {
                return Err(ChallengeParseError::new(format!(
                    "parameter `{name}` appears twice"
                )));
            }
            match name.as_str() {
                "realm" => challenge.realm = Some(value),
                "error" => challenge.error = Some(value),
                "error_description" => challenge.error_description = Some(value),
                "error_uri" => {}
                "scope" => {
                    challenge.scope = value
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "resource_metadata" => challenge.resource_metadata = Some(value),
                "algs" if scheme == ChallengeScheme::Dpop => {
                    challenge.algs = value
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                _ => {
                    return Err(ChallengeParseError::new(format!(
                        "unknown parameter `{name}`"
                    )));
                }
            }
            seen.push(name);
            parser.skip_ows();
            if parser.rest.is_empty() {
                return Ok(challenge);
            }
            if !parser.eat(',') {
                return Err(ChallengeParseError::new(
                    "parameters must be separated by `,`",
                ));
            }
        }
    }
}

/// A `WWW-Authenticate` value is not a well-formed `Bearer` challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Bearer or DPoP challenge: {reason}")]
pub struct ChallengeParseError {
    reason: Cow<'static, str>,
}

impl ChallengeParseError {
    fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// `error` / `error_description` characters (RFC 6750 §3): `%x20-21 / %x23-5B / %x5D-7E`.
fn is_text_char(b: u8) -> bool {
    b == b' ' || is_scope_char(b)
}

fn keep(value: &str, allowed: fn(u8) -> bool) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii() && allowed(*c as u8))
        .collect()
}

/// Scope tokens, cleaned, without empties or repeats, joined by one space.
pub(crate) fn scope_list(scopes: &[String]) -> String {
    let mut tokens: Vec<String> = Vec::new();
    for token in scopes.iter().flat_map(|s| s.split_ascii_whitespace()) {
        let token = keep(token, is_scope_char);
        if !token.is_empty() && !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    tokens.join(" ")
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn token(&mut self) -> &'a str {
        let end = self
            .rest
            .find(|c: char| !c.is_ascii() || !is_tchar(c as u8))
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }

    fn skip_ows(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn value(&mut self) -> Result<String, ChallengeParseError> {
        if !self.eat('"') {
            let token = self.token();
            if token.is_empty() {
                return Err(ChallengeParseError::new(
                    "expected a token or a quoted-string",
                ));
            }
            return Ok(token.to_owned());
        }
        let mut value = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = self.rest.get(i + 1..).unwrap_or_default();
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c if c == '\t'
                    || (c.is_ascii() && (0x20..0x7f).contains(&(c as u32)))
                    || !c.is_ascii() =>
                {
                    value.push(c);
                }
                _ => {
                    return Err(ChallengeParseError::new(
                        "control character in a quoted-string",
                    ));
                }
            }
        }
        Err(ChallengeParseError::new("unterminated quoted-string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(
        error: Option<&str>,
        description: Option<&str>,
        scope: &[&str],
        metadata: Option<&str>,
    ) -> BearerChallenge {
        BearerChallenge {
            realm: None,
            error: error.map(Into::into),
            error_description: description.map(Into::into),
            scope: scope.iter().map(|s| (*s).to_owned()).collect(),
            resource_metadata: metadata.map(Into::into),
            ..BearerChallenge::default()
        }
    }

    #[test]
    fn dpop_challenges_render_algs_last_and_round_trip() {
        let c = BearerChallenge {
            scheme: ChallengeScheme::Dpop,
            error: Some("invalid_dpop_proof".into()),
            algs: vec!["ES256".into(), "Ed\"DSA".into()],
            resource_metadata: Some("https://h/.well-known/oauth-protected-resource".into()),
            ..BearerChallenge::default()
        };
        let rendered = c.render();
        assert_eq!(
            rendered,
            "DPoP error=\"invalid_dpop_proof\", \
             resource_metadata=\"https://h/.well-known/oauth-protected-resource\", \
             algs=\"ES256 EdDSA\""
        );
        let parsed = BearerChallenge::parse(&rendered).unwrap();
        assert_eq!(parsed.scheme, ChallengeScheme::Dpop);
        assert_eq!(parsed.algs, ["ES256", "EdDSA"]);
        // `algs` is a DPoP parameter only.
        assert!(BearerChallenge::parse("Bearer algs=\"ES256\"").is_err());
        let bearer = BearerChallenge {
            algs: vec!["ES256".into()],
            ..BearerChallenge::default()
        };
        assert_eq!(bearer.render(), "Bearer");
    }

    #[test]
    fn parameters_render_in_the_fixed_order() {
        let c = challenge(
            Some("insufficient_scope"),
            Some("need more"),
            &["files:read", "files:write"],
            Some("https://h/.well-known/oauth-protected-resource"),
        );
        assert_eq!(
            c.render(),
            "Bearer error=\"insufficient_scope\", error_description=\"need more\", \
             scope=\"files:read files:write\", \
             resource_metadata=\"https://h/.well-known/oauth-protected-resource\""
        );
    }

    #[test]
    fn bare_challenge_has_no_error_parameters() {
        let c = challenge(
            None,
            None,
            &["read"],
            Some("https://h/.well-known/oauth-protected-resource"),
        );
        assert_eq!(
            c.render(),
            "Bearer scope=\"read\", resource_metadata=\"https://h/.well-known/oauth-protected-resource\""
        );
        assert_eq!(BearerChallenge::default().render(), "Bearer");
    }

    #[test]
    fn empty_parameters_are_omitted() {
        let c = challenge(Some(""), Some("\"\\"), &["", " "], Some(""));
        assert_eq!(c.render(), "Bearer");
        let with_realm = BearerChallenge {
            realm: Some("example".into()),
            error: Some("invalid_token".into()),
            ..BearerChallenge::default()
        };
        assert_eq!(
            with_realm.render(),
            "Bearer realm=\"example\", error=\"invalid_token\""
        );
    }

    #[test]
    fn disallowed_characters_are_removed_never_escaped() {
        let c = challenge(
            Some("invalid_token"),
            Some("Expected \"Bearer <token>\" \\ caf\u{e9}\r\n\t!"),
            &["a\"b", "c\\d", "\u{e9}t\u{e9}", "x y"],
            Some("https://h/\".well-known\\/x y\u{7f}"),
        );
        let rendered = c.render();
        assert_eq!(
            rendered,
            "Bearer error=\"invalid_token\", error_description=\"Expected Bearer <token>  caf!\", \
             scope=\"ab cd t x y\", resource_metadata=\"https://h/.well-known/xy\""
        );
        assert!(HeaderValue::from_str(&rendered).is_ok());
        assert_eq!(c.to_header_value(), rendered.as_str());
    }

    #[test]
    fn scopes_are_deduplicated_in_order() {
        assert_eq!(
            scope_list(&["b".into(), "a".into(), "b".into(), "a c".into()]),
            "b a c"
        );
    }

    #[test]
    fn render_then_parse_round_trips() {
        let c = challenge(
            Some("invalid_token"),
            Some("The access token is invalid: expired"),
            &["read", "write"],
            Some("https://h:8443/.well-known/oauth-protected-resource/a/b/"),
        );
        assert_eq!(BearerChallenge::parse(&c.render()), Ok(c));
    }

    #[test]
    fn parser_accepts_tokens_quoted_pairs_and_any_case() {
        let parsed = BearerChallenge::parse(
            "bearer ERROR=invalid_token ,Error_Description = \"a \\\"b\\\"\"",
        )
        .unwrap();
        assert_eq!(parsed.error.as_deref(), Some("invalid_token"));
        assert_eq!(parsed.error_description.as_deref(), Some("a \"b\""));
    }

    #[test]
    fn parser_is_strict() {
        for bad in [
            "Basic realm=\"x\"",
            "Bearer error=\"a\", error=\"b\"",
            "Bearer error=\"a\", ERROR=\"b\"",
            "Bearer error=\"a\" scope=\"b\"",
            "Bearer error=",
            "Bearer error=\"unterminated",
            "Bearer =\"x\"",
            "Bearer foo=\"bar\"",
            "Bearer, error=\"a\"",
            "Bearererror=\"a\"",
        ] {
            assert!(BearerChallenge::parse(bad).is_err(), "{bad:?}");
        }
    }
}
