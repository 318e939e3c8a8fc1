//! The `WWW-Authenticate: Bearer` (and `DPoP`) renderer and the strict parser.
//!
//! - Whatever the parameters, the rendered challenge is a valid header value and the strict
//!   RFC 9110 parser reads back exactly the sanitized parameters (characters outside the RFC
//!   6750 sets removed, empty parameters omitted, scope tokens deduplicated).
//! - Whatever the text, the parser never panics, and what it accepts renders to a challenge
//!   that parses back to the same sanitized parameters (render ∘ parse is idempotent).
#![no_main]

use arbitrary::Arbitrary;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use mcp_auth::bearer::{BearerChallenge, ChallengeScheme};

#[derive(Debug, Arbitrary)]
enum Input {
    Render {
        realm: Option<String>,
        error: Option<String>,
        error_description: Option<String>,
        scope: Vec<String>,
        resource_metadata: Option<String>,
        dpop: bool,
        algs: Vec<String>,
    },
    Parse(String),
}

/// RFC 6750 §3 `error` / `error_description` / `realm` characters.
fn text_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

/// RFC 6749 §3.3 scope-token characters.
fn scope_char(c: char) -> bool {
    c != ' ' && text_char(c)
}

/// RFC 9110 `tchar`: the characters of a DPoP `algs` entry.
fn tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn clean(value: &Option<String>, keep: fn(char) -> bool) -> Option<String> {
    let kept: String = value.as_deref()?.chars().filter(|c| keep(*c)).collect();
    (!kept.is_empty()).then_some(kept)
}

fn clean_scopes(scopes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in scopes.iter().flat_map(|s| s.split_ascii_whitespace()) {
        let token: String = token.chars().filter(|c| scope_char(*c)).collect();
        if !token.is_empty() && !out.contains(&token) {
            out.push(token);
        }
    }
    out
}

fn sanitized(c: &BearerChallenge) -> BearerChallenge {
    let mut s = BearerChallenge::default();
    s.realm = clean(&c.realm, text_char);
    s.error = clean(&c.error, text_char);
    s.error_description = clean(&c.error_description, text_char);
    s.scope = clean_scopes(&c.scope);
    s.resource_metadata = clean(&c.resource_metadata, scope_char);
    s.scheme = c.scheme;
    // `algs` is rendered (and parsed) for DPoP only.
    if c.scheme == ChallengeScheme::Dpop {
        s.algs = c
            .algs
            .iter()
            .map(|alg| alg.chars().filter(|c| tchar(*c)).collect::<String>())
            .filter(|alg| !alg.is_empty())
            .collect();
    }
    s
}

fn check_round_trip(challenge: &BearerChallenge) {
    let rendered = challenge.render();
    assert!(
        HeaderValue::from_str(&rendered).is_ok(),
        "not a header value: {rendered:?}"
    );
    assert_eq!(challenge.to_header_value(), rendered.as_str());
    let parsed = BearerChallenge::parse(&rendered)
        .unwrap_or_else(|e| panic!("rendered {rendered:?} does not parse: {e}"));
    assert_eq!(parsed, sanitized(challenge), "rendered {rendered:?}");
    assert_eq!(parsed.render(), rendered, "render is not idempotent");
}

fuzz_target!(|input: Input| {
    match input {
        Input::Render {
            realm,
            error,
            error_description,
            scope,
            resource_metadata,
            dpop,
            algs,
        } => {
            let mut challenge = BearerChallenge::default();
            challenge.realm = realm;
            challenge.error = error;
            challenge.error_description = error_description;
            challenge.scope = scope;
            challenge.resource_metadata = resource_metadata;
            if dpop {
                challenge.scheme = ChallengeScheme::Dpop;
            }
            challenge.algs = algs;
            check_round_trip(&challenge);
        }
        Input::Parse(text) => {
            if let Ok(challenge) = BearerChallenge::parse(&text) {
                check_round_trip(&challenge);
            }
        }
    }
});
