//! The `Authorization` header parser of the bearer guard, against an independent reading of
//! RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token` (scheme in any case, the field value
//! trimmed of spaces and tabs), `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
//! "/" ) *"="`. Any difference in the verdict, or a panic, is a finding.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_auth::BearerAuthError;
use mcp_auth::fuzz_api::bearer_token;

#[derive(Debug, Arbitrary)]
struct Input {
    values: Vec<Vec<u8>>,
    max_len: u16,
}

/// What the guard must answer, computed without its code.
#[derive(Debug, PartialEq)]
enum Expected {
    Token(Vec<u8>),
    Missing,
    Multiple,
    TooLong { length: usize, limit: usize },
    Unsupported,
    NoToken,
    Malformed,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_b64token(token: &[u8]) -> bool {
    let body = token.iter().position(|b| *b == b'=').unwrap_or(token.len());
    body > 0
        && token[..body]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
        && token[body..].iter().all(|b| *b == b'=')
}

fn expected(values: &[Vec<u8>], limit: usize) -> Expected {
    let value = match values {
        [] => return Expected::Missing,
        [one] => one,
        _ => return Expected::Multiple,
    };
    if value.len() > limit {
        return Expected::TooLong {
            length: value.len(),
            limit,
        };
    }
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    let value = &value[start..end];
    if value.is_empty() {
        return Expected::Missing;
    }
    let scheme_end = value
        .iter()
        .position(|b| !is_tchar(*b))
        .unwrap_or(value.len());
    if !value[..scheme_end].eq_ignore_ascii_case(b"Bearer") {
        return Expected::Unsupported;
    }
    let rest = &value[scheme_end..];
    if rest.is_empty() {
        return Expected::NoToken;
    }
    let spaces = rest.iter().take_while(|b| **b == b' ').count();
    if spaces == 0 {
        return Expected::Malformed;
    }
    let token = &rest[spaces..];
    if is_b64token(token) {
        Expected::Token(token.to_vec())
    } else {
        Expected::Malformed
    }
}

fn observed(result: Result<String, BearerAuthError>) -> Expected {
    match result {
        Ok(token) => Expected::Token(token.into_bytes()),
        Err(BearerAuthError::MissingAuthHeader) => Expected::Missing,
        Err(BearerAuthError::MultipleAuthHeaders) => Expected::Multiple,
        Err(BearerAuthError::HeaderTooLong { length, limit }) => {
            Expected::TooLong { length, limit }
        }
        Err(BearerAuthError::UnsupportedScheme) => Expected::Unsupported,
        Err(BearerAuthError::MissingBearerToken) => Expected::NoToken,
        Err(BearerAuthError::InvalidAuthHeaderFormat) => Expected::Malformed,
        Err(other) => panic!("the header check returned a non-header error: {other:?}"),
    }
}

fuzz_target!(|input: Input| {
    let limit = usize::from(input.max_len);
    let values: Vec<&[u8]> = input.values.iter().map(Vec::as_slice).collect();
    let got = observed(bearer_token(&values, limit));
    let want = expected(&input.values, limit);
    assert_eq!(got, want, "values {:?} limit {limit}", input.values);
});
