//! Reading the `cnf` (confirmation) claim of a verified token: the key (RFC 9449 §6, `jkt`) or
//! certificate (RFC 8705 §3.1, `x5t#S256`) the token is bound to.
//!
//! JWT access tokens carry `cnf` in their payload, introspection answers at the top level
//! (RFC 9449 §6.2, RFC 8705 §3.2); both end up in [`AuthInfo::claims`](crate::AuthInfo::claims).
//! A malformed `cnf` is refused, never ignored: ignoring it would turn a bound token into a
//! bearer token.

use serde_json::{Map, Value};

use super::error::BearerAuthError;

/// The longest thumbprint accepted: a base64url SHA-256 is 43 characters; anything much longer
/// is not a thumbprint.
const MAX_THUMBPRINT_LEN: usize = 128;

/// What a token's `cnf` claim binds it to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Confirmation {
    /// `cnf.jkt`: the RFC 7638 thumbprint of the DPoP key.
    pub(crate) jkt: Option<String>,
    /// `cnf.x5t#S256`: the SHA-256 thumbprint of the client certificate.
    pub(crate) x5t_s256: Option<String>,
}

impl Confirmation {
    /// The confirmation in `claims`, or `invalid_token` when `cnf` is not an object, a known
    /// member is not a non-empty bounded string, or (RFC 9449 §6.2) an answer with a
    /// `token_type` and a `cnf.jkt` does not say `DPoP`.
    pub(crate) fn from_claims(claims: &Map<String, Value>) -> Result<Self, BearerAuthError> {
        let Some(cnf) = claims.get("cnf") else {
            return Ok(Self::default());
        };
        let Value::Object(cnf) = cnf else {
            return Err(invalid("the `cnf` claim is not a JSON object"));
        };
        let confirmation = Self {
            jkt: member(cnf, "jkt")?,
            x5t_s256: member(cnf, "x5t#S256")?,
        };
        if confirmation.jkt.is_some()
            && let Some(token_type) = claims.get("token_type")
        {
            let is_dpop = token_type
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("DPoP"));
            if !is_dpop {
                return Err(invalid(
                    "the token is bound to a DPoP key (cnf.jkt) but its token_type is not DPoP",
                ));
            }
        }
        Ok(confirmation)
    }
}

fn member(cnf: &Map<String, Value>, name: &'static str) -> Result<Option<String>, BearerAuthError> {
    match cnf.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_THUMBPRINT_LEN => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(invalid(match name {
            "jkt" => "the cnf.jkt member is not a thumbprint string",
            _ => "the cnf.x5t#S256 member is not a thumbprint string",
        })),
    }
}

fn invalid(reason: &'static str) -> BearerAuthError {
    BearerAuthError::InvalidToken {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(v: Value) -> Result<Confirmation, BearerAuthError> {
        Confirmation::from_claims(v.as_object().unwrap())
    }

    #[test]
    fn jkt_and_x5t_are_read_and_absence_is_unbound() {
        assert_eq!(read(json!({})), Ok(Confirmation::default()));
        let c = read(json!({"cnf": {"jkt": "abc", "x5t#S256": "def", "other": 1}})).unwrap();
        assert_eq!(c.jkt.as_deref(), Some("abc"));
        assert_eq!(c.x5t_s256.as_deref(), Some("def"));
        assert_eq!(read(json!({"cnf": {}})), Ok(Confirmation::default()));
    }

    #[test]
    fn a_malformed_cnf_is_invalid_token() {
        for bad in [
            json!({"cnf": "abc"}),
            json!({"cnf": ["abc"]}),
            json!({"cnf": {"jkt": 5}}),
            json!({"cnf": {"jkt": ""}}),
            json!({"cnf": {"jkt": "a".repeat(129)}}),
            json!({"cnf": {"x5t#S256": null}}),
        ] {
            assert!(
                matches!(read(bad.clone()), Err(BearerAuthError::InvalidToken { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn introspection_token_type_must_say_dpop_for_a_jkt() {
        assert!(read(json!({"token_type": "DPoP", "cnf": {"jkt": "k"}})).is_ok());
        assert!(read(json!({"token_type": "dpop", "cnf": {"jkt": "k"}})).is_ok());
        assert!(read(json!({"token_type": "Bearer", "cnf": {"jkt": "k"}})).is_err());
        assert!(read(json!({"token_type": 3, "cnf": {"jkt": "k"}})).is_err());
        assert!(read(json!({"token_type": "Bearer"})).is_ok());
    }
}
