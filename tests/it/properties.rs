//! Property tests (proptest) for the parser and renderer invariants, run by `cargo test`:
//!
//! - the `Authorization` header check never panics and accepts exactly RFC 6750's
//!   `Bearer 1*SP b64token` (an independent reading of the grammar decides every verdict);
//! - any challenge renders to a valid header value that the strict parser reads back as the
//!   same parameters, sanitized; whatever the parser accepts renders and parses back the same;
//! - the scope hierarchy is monotone: more granted scopes or more implications never leave
//!   more scopes missing, and what is reported missing is exactly what the expansion lacks.
//!
//! The same invariants are fuzzed for longer by `fuzz/` (see fuzz/README.md).
#![cfg(feature = "test-util")]

use std::collections::HashSet;

use futures_util::FutureExt as _;
use http::{HeaderValue, StatusCode};
use mcp_auth::ScopeHierarchy;
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::{
    AuthInfo, AuthServer, AuthorizationServerMetadata, BearerAuth, BearerAuthError, McpAuth,
    ProtectedResource,
};
use proptest::prelude::*;

const RESOURCE: &str = "https://api.example.com/mcp";
const ISSUER: &str = "https://auth.example.com";

// ---------------------------------------------------------------------------------------------
// The Authorization header

/// A guard whose verifier accepts any token it is given, so the verdict is the header check's.
fn guard(max_header_bytes: usize) -> BearerAuth {
    let metadata = AuthorizationServerMetadata::authorization_code(
        ISSUER,
        format!("{ISSUER}/authorize"),
        format!("{ISSUER}/token"),
    );
    McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::from_metadata(metadata)),
        )
        .build()
        .expect("configuration")
        .bearer_auth(RESOURCE, |token: String| async move {
            Ok(AuthInfo::new(token, ISSUER).with_audience([RESOURCE]))
        })
        .max_header_bytes(max_header_bytes)
        .build()
        .expect("guard")
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Token(String),
    Missing,
    Multiple,
    TooLong,
    Unsupported,
    NoToken,
    Malformed,
}

fn verdict(guard: &BearerAuth, values: &[Vec<u8>]) -> Verdict {
    let result = guard
        .authenticate_values(values.iter().map(Vec::as_slice))
        .now_or_never()
        .expect("a header verdict and this verifier never wait");
    match result {
        Ok(info) => Verdict::Token(info.token),
        Err(rejection) => {
            let expected_status = match rejection.error() {
                BearerAuthError::MissingAuthHeader | BearerAuthError::UnsupportedScheme => {
                    StatusCode::UNAUTHORIZED
                }
                _ => StatusCode::BAD_REQUEST,
            };
            assert_eq!(rejection.status(), expected_status);
            assert!(rejection.www_authenticate().is_some());
            match rejection.error() {
                BearerAuthError::MissingAuthHeader => Verdict::Missing,
                BearerAuthError::MultipleAuthHeaders => Verdict::Multiple,
                BearerAuthError::HeaderTooLong { .. } => Verdict::TooLong,
                BearerAuthError::UnsupportedScheme => Verdict::Unsupported,
                BearerAuthError::MissingBearerToken => Verdict::NoToken,
                BearerAuthError::InvalidAuthHeaderFormat => Verdict::Malformed,
                other => panic!("not a header error: {other:?}"),
            }
        }
    }
}

const B64TOKEN_BODY: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";

/// RFC 6750 §2.1, read independently of the crate.
fn expected(values: &[Vec<u8>], limit: usize) -> Verdict {
    let value = match values {
        [] => return Verdict::Missing,
        [one] => one.as_slice(),
        _ => return Verdict::Multiple,
    };
    if value.len() > limit {
        return Verdict::TooLong;
    }
    let value = trim_ows(value);
    if value.is_empty() {
        return Verdict::Missing;
    }
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let scheme_len = value.iter().take_while(|b| tchar(**b)).count();
    if !value[..scheme_len].eq_ignore_ascii_case(b"bearer") {
        return Verdict::Unsupported;
    }
    let rest = &value[scheme_len..];
    if rest.is_empty() {
        return Verdict::NoToken;
    }
    let spaces = rest.iter().take_while(|b| **b == b' ').count();
    let token = &rest[spaces..];
    let body = token
        .iter()
        .take_while(|b| B64TOKEN_BODY.contains(b))
        .count();
    if spaces == 0 || body == 0 || !token[body..].iter().all(|b| *b == b'=') {
        return Verdict::Malformed;
    }
    Verdict::Token(String::from_utf8(token.to_vec()).expect("ASCII"))
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// Bytes biased towards the interesting ones: the scheme's letters, spaces, tabs, `=`, the
/// token alphabet, separators, controls and non-ASCII.
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(b"BbEeAaRr".to_vec()),
        3 => prop::sample::select(b"  \t=".to_vec()),
        4 => prop::sample::select(B64TOKEN_BODY.to_vec()),
        1 => prop::sample::select(b",;\"\\:()<>@?!*$%".to_vec()),
        1 => any::<u8>(),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(header_byte(), 0..40),
        (
            prop::sample::select(vec!["Bearer", "bearer", "BEARER", "Basic", "Bearerx", ""]),
            prop::collection::vec(header_byte(), 0..40),
        )
            .prop_map(|(scheme, rest)| [scheme.as_bytes(), &rest].concat()),
    ]
}

fn b64token() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(B64TOKEN_BODY.to_vec()), 1..64),
        0..4usize,
    )
        .prop_map(|(body, padding)| {
            let mut token = String::from_utf8(body).expect("ASCII");
            token.push_str(&"=".repeat(padding));
            token
        })
}

proptest! {
    #[test]
    fn the_header_check_agrees_with_the_grammar_on_any_bytes(
        values in prop::collection::vec(header_value(), 0..3),
        // 0 is refused when the guard is built (it would refuse every token).
        limit in prop_oneof![Just(8 * 1024), 1..48usize],
    ) {
        let guard = guard(limit);
        prop_assert_eq!(verdict(&guard, &values), expected(&values, limit));
    }

    #[test]
    fn every_b64token_is_accepted_as_is_whatever_the_scheme_case_and_spacing(
        token in b64token(),
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER", "bEaReR"]),
        spaces in 1..5usize,
        leading in "[ \t]{0,3}",
        trailing in "[ \t]{0,3}",
    ) {
        let value = format!("{leading}{scheme}{}{token}{trailing}", " ".repeat(spaces));
        let verdict = verdict(&guard(8 * 1024), &[value.into_bytes()]);
        prop_assert_eq!(verdict, Verdict::Token(token));
    }

    #[test]
    fn a_token_with_any_character_outside_the_alphabet_is_malformed(
        prefix in b64token(),
        bad in any::<u8>().prop_filter("outside b64token", |b| {
            !B64TOKEN_BODY.contains(b) && *b != b'='
        }),
        suffix in "[A-Za-z0-9]{1,8}",
    ) {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(prefix.trim_end_matches('=').as_bytes());
        value.push(bad);
        value.extend_from_slice(suffix.as_bytes());
        prop_assert_eq!(verdict(&guard(8 * 1024), &[value]), Verdict::Malformed);
    }

    #[test]
    fn a_header_over_the_limit_is_refused_by_length_whatever_it_holds(
        value in prop::collection::vec(any::<u8>(), 2..200),
    ) {
        let limit = value.len() - 1;
        prop_assert_eq!(verdict(&guard(limit), &[value]), Verdict::TooLong);
    }
}

// ---------------------------------------------------------------------------------------------
// The challenge

fn text_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

fn scope_char(c: char) -> bool {
    c != ' ' && text_char(c)
}

fn clean(value: &Option<String>, keep: fn(char) -> bool) -> Option<String> {
    let kept: String = value.as_deref()?.chars().filter(|c| keep(*c)).collect();
    (!kept.is_empty()).then_some(kept)
}

/// What the renderer promises to keep of a challenge (see `BearerChallenge`'s docs).
fn sanitized(c: &BearerChallenge) -> BearerChallenge {
    let mut scopes: Vec<String> = Vec::new();
    for token in c.scope.iter().flat_map(|s| s.split_ascii_whitespace()) {
        let token: String = token.chars().filter(|c| scope_char(*c)).collect();
        if !token.is_empty() && !scopes.contains(&token) {
            scopes.push(token);
        }
    }
    let mut s = BearerChallenge::default();
    s.realm = clean(&c.realm, text_char);
    s.error = clean(&c.error, text_char);
    s.error_description = clean(&c.error_description, text_char);
    s.scope = scopes;
    s.resource_metadata = clean(&c.resource_metadata, scope_char);
    s
}

/// Strings biased towards the characters the renderer must remove or keep with care.
fn challenge_text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '"',
        '\\',
        ' ',
        '\t',
        '\r',
        '\n',
        ',',
        '=',
        '\u{7f}',
        '\u{0}',
        'é',
        '€',
        '\u{1F600}',
        'a',
        'Z',
        '0',
        ':',
        '/',
        '.',
    ]);
    prop::collection::vec(prop_oneof![3 => any::<char>(), 2 => special], 0..24)
        .prop_map(|chars| chars.into_iter().collect())
}

fn challenge() -> impl Strategy<Value = BearerChallenge> {
    (
        prop::option::of(challenge_text()),
        prop::option::of(challenge_text()),
        prop::option::of(challenge_text()),
        prop::collection::vec(challenge_text(), 0..5),
        prop::option::of(challenge_text()),
    )
        .prop_map(
            |(realm, error, error_description, scope, resource_metadata)| {
                let mut c = BearerChallenge::default();
                c.realm = realm;
                c.error = error;
                c.error_description = error_description;
                c.scope = scope;
                c.resource_metadata = resource_metadata;
                c
            },
        )
}

proptest! {
    #[test]
    fn any_rendered_challenge_parses_back_to_the_sanitized_parameters(c in challenge()) {
        let rendered = c.render();
        prop_assert!(HeaderValue::from_str(&rendered).is_ok(), "{:?}", rendered);
        prop_assert_eq!(c.to_header_value(), rendered.as_str());
        let parsed = BearerChallenge::parse(&rendered);
        prop_assert_eq!(parsed, Ok(sanitized(&c)), "{:?}", rendered);
    }

    #[test]
    fn what_the_parser_accepts_renders_and_parses_back_the_same(
        // (text, whether the parser must accept it): arbitrary text and a rendered challenge
        // followed by noise may be refused; a rendered challenge never may, so the round trip
        // below is exercised on every run.
        (text, must_parse) in prop_oneof![
            challenge_text().prop_map(|text| (text, false)),
            challenge().prop_map(|c| (c.render(), true)),
            (challenge(), challenge_text())
                .prop_map(|(c, noise)| (format!("{}{noise}", c.render()), false)),
        ],
    ) {
        match BearerChallenge::parse(&text) {
            Ok(parsed) => {
                let rendered = parsed.render();
                let again = BearerChallenge::parse(&rendered);
                prop_assert_eq!(again, Ok(sanitized(&parsed)), "{:?} -> {:?}", text, rendered);
            }
            Err(error) => prop_assert!(!must_parse, "a rendered challenge was refused: {:?}: {:?}", text, error),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scope hierarchy

fn scope_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "admin",
        "write",
        "read",
        "files:read",
        "files:*",
        "mail",
        "x",
    ])
    .prop_map(str::to_owned)
}

fn hierarchy_edges() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    prop::collection::vec(
        (scope_name(), prop::collection::vec(scope_name(), 0..3)),
        0..6,
    )
}

fn hierarchy(edges: &[(String, Vec<String>)]) -> ScopeHierarchy {
    edges
        .iter()
        .fold(ScopeHierarchy::new(), |h, (broad, narrower)| {
            h.implies(broad.clone(), narrower.clone())
        })
}

fn scopes() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(scope_name(), 0..5)
}

proptest! {
    #[test]
    fn granting_more_scopes_never_leaves_more_missing(
        edges in hierarchy_edges(),
        granted in scopes(),
        extra in scopes(),
        required in scopes(),
    ) {
        let h = hierarchy(&edges);
        let more: Vec<String> = granted.iter().chain(&extra).cloned().collect();
        let before: HashSet<&str> = h.missing(&granted, &required).into_iter().collect();
        let after: HashSet<&str> = h.missing(&more, &required).into_iter().collect();
        prop_assert!(after.is_subset(&before), "{:?} ⊄ {:?}", after, before);
    }

    #[test]
    fn declaring_more_implications_never_leaves_more_missing(
        edges in hierarchy_edges(),
        extra_edges in hierarchy_edges(),
        granted in scopes(),
        required in scopes(),
    ) {
        let small = hierarchy(&edges);
        let all: Vec<_> = edges.iter().chain(&extra_edges).cloned().collect();
        let big = hierarchy(&all);
        let before: HashSet<&str> = small.missing(&granted, &required).into_iter().collect();
        let after: HashSet<&str> = big.missing(&granted, &required).into_iter().collect();
        prop_assert!(after.is_subset(&before), "{:?} ⊄ {:?}", after, before);
    }

    #[test]
    fn missing_is_the_required_scopes_the_expansion_lacks_in_order(
        edges in hierarchy_edges(),
        granted in scopes(),
        required in scopes(),
    ) {
        let h = hierarchy(&edges);
        let expansion = h.expand(&granted);
        // Every granted scope stands for itself.
        for scope in &granted {
            prop_assert!(h.satisfies(&granted, scope));
        }
        let want: Vec<&str> = required
            .iter()
            .map(String::as_str)
            .filter(|scope| !expansion.contains(scope))
            .collect();
        prop_assert_eq!(h.missing(&granted, &required), want);
    }

    #[test]
    fn implications_are_transitive(
        edges in hierarchy_edges(),
        broad in scope_name(),
    ) {
        let h = hierarchy(&edges);
        let granted = vec![broad];
        let expansion = h.expand(&granted);
        // Closed under one more step: whatever an expanded scope implies is in the expansion.
        for scope in &expansion {
            let one_step = h.expand(std::slice::from_ref(&(*scope).to_owned()))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>();
            for implied in one_step {
                prop_assert!(expansion.contains(implied.as_str()), "{} -> {}", scope, implied);
            }
        }
    }
}
