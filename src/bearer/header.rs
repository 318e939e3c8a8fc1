//! Reading the bearer token from `Authorization` header values (RFC 6750 §2.1).
//!
//! Grammar: `credentials = "Bearer" 1*SP b64token`, with
//! `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`. The scheme is
//! case-insensitive (RFC 9110 §11.1, OAuth 2.1 §5.1.1). Only the header is read: a token in the
//! query string or the body is never looked at (OAuth 2.1 §5.1).

use super::error::BearerAuthError;
use super::is_tchar;

/// Default limit on the length of the `Authorization` header: 8 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// The token in the request's `Authorization` header values, or why there is none.
///
/// - no value: [`BearerAuthError::MissingAuthHeader`];
/// - more than one value: [`BearerAuthError::MultipleAuthHeaders`];
/// - longer than `max_len`: [`BearerAuthError::HeaderTooLong`], before any parsing;
/// - a scheme other than `Bearer`: [`BearerAuthError::UnsupportedScheme`];
/// - `Bearer` alone: [`BearerAuthError::MissingBearerToken`];
/// - anything else that is not `Bearer 1*SP b64token`: [`BearerAuthError::InvalidAuthHeaderFormat`].
///
/// Leading and trailing spaces or tabs around the value are ignored (RFC 9110 §5.5 excludes
/// them from the field value); inside it, only spaces separate scheme and token.
#[cfg(any(test, feature = "__fuzz"))]
pub(crate) fn bearer_token<'a, I>(values: I, max_len: usize) -> Result<&'a str, BearerAuthError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    match credentials(values, max_len, false)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::Dpop, _) => Err(BearerAuthError::UnsupportedScheme),
    }
}

/// The authentication scheme of the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1): the token comes with a `DPoP` proof header.
    Dpop,
}

/// [`bearer_token`] for both schemes: `Bearer` always, `DPoP` when `dpop` is on (otherwise it
/// is [`BearerAuthError::UnsupportedScheme`], a foreign scheme). The same grammar and limits
/// apply to both (RFC 9449 §7.1 uses `token68`, the same alphabet as `b64token`).
pub(crate) fn credentials<'a, I>(
    values: I,
    max_len: usize,
    dpop: bool,
) -> Result<(Scheme, &'a str), BearerAuthError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut values = values.into_iter();
    let value = values.next().ok_or(BearerAuthError::MissingAuthHeader)?;
    if values.next().is_some() {
        return Err(BearerAuthError::MultipleAuthHeaders);
    }
    if value.len() > max_len {
        return Err(BearerAuthError::HeaderTooLong {
            length: value.len(),
            limit: max_len,
        });
    }
    // RFC 9110 §5.6.3 OWS: spaces and tabs only (not CR, LF or form feed).
    let value = trim_ows(value);
    if value.is_empty() {
        return Err(BearerAuthError::MissingAuthHeader);
    }

    let scheme_len = value.iter().take_while(|b| is_tchar(**b)).count();
    let (scheme, rest) = value.split_at(scheme_len);
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case(b"dpop") {
        Scheme::Dpop
    } else {
        return Err(BearerAuthError::UnsupportedScheme);
    };
    if rest.is_empty() {
        return Err(BearerAuthError::MissingBearerToken);
    }
    // `Bearer\tx`, `Bearer,x`, ...: the scheme must be followed by spaces only.
    let spaces = rest.iter().take_while(|b| **b == b' ').count();
    if spaces == 0 {
        return Err(BearerAuthError::InvalidAuthHeaderFormat);
    }
    let token = rest.get(spaces..).unwrap_or_default();
    if !is_b64token(token) {
        return Err(BearerAuthError::InvalidAuthHeaderFormat);
    }
    // b64token is ASCII, so this cannot fail; map rather than unwrap all the same.
    std::str::from_utf8(token)
        .map(|token| (scheme, token))
        .map_err(|_| BearerAuthError::InvalidAuthHeaderFormat)
}

/// `value` without leading and trailing spaces and tabs.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |last| last + 1);
    value.get(start..end).unwrap_or_default()
}

/// RFC 6750 §2.1 `b64token`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token
        .iter()
        .take_while(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
        .count();
    body_len > 0
        && token
            .get(body_len..)
            .is_some_and(|pad| pad.iter().all(|b| *b == b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<&str, BearerAuthError> {
        bearer_token([value.as_bytes()], DEFAULT_MAX_HEADER_BYTES)
    }

    #[test]
    fn bearer_token_is_read_with_any_scheme_case() {
        for value in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "bEaReR abc",
            "Bearer   abc",
            " Bearer abc\t",
        ] {
            assert_eq!(parse(value), Ok("abc"), "{value:?}");
        }
    }

    #[test]
    fn the_whole_b64token_alphabet_is_accepted() {
        let token = "AZaz09-._~+/==";
        assert_eq!(parse(&format!("Bearer {token}")), Ok(token));
        assert_eq!(parse("Bearer eyJ.eyJ.sig"), Ok("eyJ.eyJ.sig"));
    }

    #[test]
    fn missing_or_foreign_credentials_are_bare_401_errors() {
        assert_eq!(
            bearer_token(std::iter::empty::<&[u8]>(), 100),
            Err(BearerAuthError::MissingAuthHeader)
        );
        assert_eq!(parse(""), Err(BearerAuthError::MissingAuthHeader));
        assert_eq!(
            parse("Basic dXNlcjpwYXNz"),
            Err(BearerAuthError::UnsupportedScheme)
        );
        assert_eq!(
            parse("invalid-header"),
            Err(BearerAuthError::UnsupportedScheme)
        );
        assert_eq!(
            parse("Bearerx abc"),
            Err(BearerAuthError::UnsupportedScheme)
        );
        assert_eq!(parse("DPoP abc"), Err(BearerAuthError::UnsupportedScheme));
    }

    #[test]
    fn malformed_bearer_credentials_are_invalid_request() {
        assert_eq!(parse("Bearer"), Err(BearerAuthError::MissingBearerToken));
        assert_eq!(parse("Bearer "), Err(BearerAuthError::MissingBearerToken));
        for value in [
            "Bearer a b",
            "Bearer invalid token format",
            "Bearer\tabc",
            "Bearer,abc",
            "Bearer \"abc\"",
            "Bearer a=b",
            "Bearer =abc",
            "Bearer ab\u{e9}",
            "Bearer a\\b",
        ] {
            assert_eq!(
                parse(value),
                Err(BearerAuthError::InvalidAuthHeaderFormat),
                "{value:?}"
            );
        }
    }

    #[test]
    fn dpop_scheme_is_read_only_when_dpop_is_on() {
        let dpop = |value: &'static str, on| credentials([value.as_bytes()], 100, on);
        assert_eq!(dpop("DPoP abc", true), Ok((Scheme::Dpop, "abc")));
        assert_eq!(dpop("dpop abc", true), Ok((Scheme::Dpop, "abc")));
        assert_eq!(dpop("Bearer abc", true), Ok((Scheme::Bearer, "abc")));
        assert_eq!(
            dpop("DPoP abc", false),
            Err(BearerAuthError::UnsupportedScheme)
        );
        assert_eq!(dpop("DPoP", true), Err(BearerAuthError::MissingBearerToken));
        assert_eq!(
            dpop("DPoP a b", true),
            Err(BearerAuthError::InvalidAuthHeaderFormat)
        );
    }

    #[test]
    fn two_headers_are_refused_even_if_both_are_valid() {
        assert_eq!(
            bearer_token([&b"Bearer a"[..], &b"Bearer a"[..]], 100),
            Err(BearerAuthError::MultipleAuthHeaders)
        );
    }

    #[test]
    fn an_overlong_header_is_refused_before_parsing() {
        let long = format!("Bearer {}", "a".repeat(100));
        assert_eq!(
            bearer_token([long.as_bytes()], 50),
            Err(BearerAuthError::HeaderTooLong {
                length: 107,
                limit: 50
            })
        );
        assert_eq!(bearer_token([long.as_bytes()], 107).map(str::len), Ok(100));
    }

    #[test]
    fn non_ascii_bytes_never_panic() {
        for value in [
            &b"\xff\xfe"[..],
            b"Bearer \xff",
            b"\xc3\xa9 abc",
            b"Bearer \x00",
        ] {
            assert!(bearer_token([value], 100).is_err());
        }
    }
}
