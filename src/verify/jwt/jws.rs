//! Step 1 of the [JWT checks](super#what-is-checked-in-order): the JWS compact serialization,
//! read strictly and without any network request. Three base64url segments; a header whose
//! `alg` is allowed and that names no key of its own; a payload with unique claim names.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::VerifyError;
use crate::verify::JwsAlgorithm;

/// A token split into its three segments, still encoded.
pub(super) struct CompactJws<'a> {
    pub(super) header: &'a str,
    pub(super) payload: &'a str,
    pub(super) signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    pub(super) signing_input: &'a str,
}

impl<'a> CompactJws<'a> {
    /// Splits `token` at its two dots.
    pub(super) fn split(token: &'a str) -> Result<Self, VerifyError> {
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(VerifyError::invalid_token(
                "the token is not a JWS in compact form (three dot-separated parts)",
            ));
        };
        let Some(signing_input) = token.get(..header.len() + 1 + payload.len()) else {
            return Err(VerifyError::invalid_token(
                "the token is not a JWS in compact form",
            ));
        };
        Ok(Self {
            header,
            payload,
            signature,
            signing_input,
        })
    }
}

/// The header members we look at. Borrowed from the decoded bytes; unknown members ignored.
#[derive(Deserialize)]
pub(super) struct RawHeader<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
}

impl<'a> RawHeader<'a> {
    /// Parses decoded header bytes: UTF-8 JSON (RFC 7515 §5.2), an object whose `alg`, `kid`
    /// and `typ` are strings when present.
    pub(super) fn parse(json: &'a [u8]) -> Result<Self, VerifyError> {
        // Skipped members are not otherwise checked, so check the whole header is UTF-8.
        if std::str::from_utf8(json).is_err() {
            return Err(VerifyError::invalid_token("the token header is not UTF-8"));
        }
        parse_object(json).ok_or(VerifyError::invalid_token(
            "the token header is not a JSON object with string `alg`, `kid` and `typ`",
        ))
    }

    /// The header's algorithm if it is on the allow-list, after refusing what no token may
    /// carry: `crit` (no extension is understood) and a key of its own (`jku`, `x5u`, `jwk`,
    /// `x5c`: a token never chooses its key, and those URLs are never fetched).
    pub(super) fn allowed_algorithm(
        &self,
        allowed: &[JwsAlgorithm],
    ) -> Result<JwsAlgorithm, VerifyError> {
        let Some(name) = self.alg.as_deref() else {
            return Err(VerifyError::invalid_token("the token header has no `alg`"));
        };
        let Some(alg) = allowed.iter().copied().find(|alg| alg.as_str() == name) else {
            return Err(VerifyError::invalid_token(
                if name.eq_ignore_ascii_case("none") {
                    "unsigned tokens (`alg: none`) are not accepted"
                } else {
                    "the token's signing algorithm is not allowed"
                },
            ));
        };
        if self.crit {
            return Err(VerifyError::invalid_token(
                "the token header has `crit` extensions, none of which are supported",
            ));
        }
        if self.jku || self.x5u || self.jwk || self.x5c {
            return Err(VerifyError::invalid_token(
                "tokens that name their own key (`jku`, `x5u`, `jwk` or `x5c`) are not accepted",
            ));
        }
        Ok(alg)
    }
}

/// `true` whenever the member exists, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer)?;
    Ok(true)
}

/// Decoded payload bytes as a claim set with unique top-level names. RFC 7519 §4 lets a
/// parser take the last of duplicated names, but two parsers can then read different claims
/// from one token (for example `{"sub":"mallory","sub":"alice"}`), so such tokens are refused.
pub(super) fn parse_claims(json: &[u8]) -> Result<Map<String, Value>, VerifyError> {
    serde_json::from_slice(json)
        .map(|UniqueClaims(claims)| claims)
        .map_err(|_| {
            VerifyError::invalid_token(
                "the token payload is not a JSON object with unique claim names",
            )
        })
}

struct UniqueClaims(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueClaims;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with unique member names")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                let mut claims = Map::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if claims.contains_key(&name) {
                        return Err(serde::de::Error::custom("duplicate claim name"));
                    }
                    claims.insert(name, value);
                }
                Ok(UniqueClaims(claims))
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// Base64url without padding (RFC 7515 §2), strictly.
pub(super) fn decode_segment(segment: &str, reason: &'static str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| VerifyError::invalid_token(reason))
}

/// Parses a JSON object (a derived struct would also accept a JSON array, positionally).
/// Duplicate members of the derived struct are an error.
fn parse_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(json).ok()
}
