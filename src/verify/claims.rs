//! The claim checks of [`JwtVerifier`](crate::verify::JwtVerifier), in the manner of
//! jsonwebtoken's `Validation`: the settings as plain data ([`ClaimRules`]) and pure functions
//! of the claims and the time. Nothing here does I/O or reads the clock; `now` is passed in.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::auth_info::numeric_date;
use crate::error::{ConfigError, VerifyError};

/// Default clock-skew leeway for `exp` and `nbf` (60 s).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Largest leeway [`JwtVerifierBuilder::leeway`](crate::verify::JwtVerifierBuilder::leeway)
/// accepts (5 minutes; RFC 7519 speaks of "a few minutes" at most).
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// What a JWT's header `typ` and claims must satisfy, beyond its signature and issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimRules {
    /// Tolerance for `exp` and `nbf`, in seconds (at most [`MAX_LEEWAY`]).
    pub(crate) leeway: i64,
    /// The RFC 9068 profile: `typ: at+jwt`, and `client_id`, `jti`, `iat`, `aud` required.
    pub(crate) strict_rfc9068: bool,
    /// Prepended to each granted scope that lacks it.
    pub(crate) scope_prefix: Option<String>,
}

impl ClaimRules {
    /// Checks the settings as the builder received them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::LeewayTooLong`] above [`MAX_LEEWAY`]; [`ConfigError::InvalidScopePrefix`]
    /// for an empty prefix or one with whitespace or control characters.
    pub(crate) fn new(
        leeway: Duration,
        strict_rfc9068: bool,
        scope_prefix: Option<String>,
    ) -> Result<Self, ConfigError> {
        if leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLong {
                leeway,
                max: MAX_LEEWAY,
            });
        }
        if let Some(prefix) = &scope_prefix
            && (prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(ConfigError::InvalidScopePrefix {
                prefix: prefix.clone(),
            });
        }
        Ok(Self {
            // At most MAX_LEEWAY, so the conversion cannot fail; fractions are dropped.
            leeway: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
            strict_rfc9068,
            scope_prefix,
        })
    }

    /// The header's `typ`, checked before any key is looked up: in strict RFC 9068 mode it
    /// must be `at+jwt` or `application/at+jwt` (any case); otherwise it is not looked at.
    pub(crate) fn check_type(&self, typ: Option<&str>) -> Result<(), VerifyError> {
        if self.strict_rfc9068 && !typ.is_some_and(is_access_token_type) {
            return Err(VerifyError::invalid_token(
                "the token's `typ` is not `at+jwt` (RFC 9068 access token)",
            ));
        }
        Ok(())
    }

    /// The claims of a token whose signature is valid, at `now` (seconds since the epoch):
    /// times, then `sub`, then (strict mode) the RFC 9068 claims.
    pub(crate) fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: i64,
    ) -> Result<(), VerifyError> {
        check_times(claims, now, self.leeway)?;
        check_subject(claims)?;
        if self.strict_rfc9068 {
            check_rfc9068_claims(claims)?;
        }
        Ok(())
    }

    /// The granted scopes as the protected resource names them (see
    /// [`JwtVerifierBuilder::scope_prefix`](crate::verify::JwtVerifierBuilder::scope_prefix)).
    pub(crate) fn name_scopes(&self, scopes: &mut Vec<String>) {
        if let Some(prefix) = &self.scope_prefix {
            prefix_scopes(scopes, prefix);
        }
    }
}

/// `exp` is required and must not be past, `nbf` (if present) must not be in the future,
/// both with `leeway` seconds of tolerance (RFC 7519 §4.1.4, §4.1.5; RFC 9068 §4). A token
/// whose `exp` equals `now - leeway` is still accepted. Fractional NumericDates are truncated.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    leeway: i64,
) -> Result<(), VerifyError> {
    let exp = match claims.get("exp") {
        None | Some(Value::Null) => {
            return Err(VerifyError::invalid_token("the token has no `exp` claim"));
        }
        Some(Value::Number(exp)) => numeric_date(exp),
        Some(_) => None,
    }
    .ok_or(VerifyError::invalid_token(
        "the `exp` claim is not a valid NumericDate",
    ))?;
    if exp.saturating_add(leeway) < now {
        return Err(VerifyError::invalid_token("the token has expired"));
    }
    let nbf = match claims.get("nbf") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Number(nbf)) => numeric_date(nbf),
        Some(_) => None,
    }
    .ok_or(VerifyError::invalid_token(
        "the `nbf` claim is not a valid NumericDate",
    ))?;
    if nbf > now.saturating_add(leeway) {
        return Err(VerifyError::invalid_token(
            "the token is not valid yet (`nbf`)",
        ));
    }
    Ok(())
}

/// `sub` is required in every mode, as a non-empty string.
pub(crate) fn check_subject(claims: &Map<String, Value>) -> Result<(), VerifyError> {
    if !is_non_empty_string(claims.get("sub")) {
        return Err(VerifyError::invalid_token(
            "the `sub` claim is missing or is not a non-empty string",
        ));
    }
    Ok(())
}

/// RFC 9068 §2.2: `client_id`, `jti`, `iat` and `aud` are required (`iss`, `exp`, `sub` are
/// required in every mode).
pub(crate) fn check_rfc9068_claims(claims: &Map<String, Value>) -> Result<(), VerifyError> {
    if !is_non_empty_string(claims.get("client_id")) {
        return Err(VerifyError::invalid_token(
            "the `client_id` claim is required (RFC 9068) and missing or empty",
        ));
    }
    if !is_non_empty_string(claims.get("jti")) {
        return Err(VerifyError::invalid_token(
            "the `jti` claim is required (RFC 9068) and missing or empty",
        ));
    }
    if !matches!(claims.get("iat"), Some(Value::Number(_))) {
        return Err(VerifyError::invalid_token(
            "the `iat` claim is required (RFC 9068) and missing or not a number",
        ));
    }
    let has_audience = match claims.get("aud") {
        Some(Value::String(aud)) => !aud.is_empty(),
        Some(Value::Array(auds)) => !auds.is_empty(),
        _ => false,
    };
    if !has_audience {
        return Err(VerifyError::invalid_token(
            "the `aud` claim is required (RFC 9068) and missing or empty",
        ));
    }
    Ok(())
}

/// Prepends `prefix` to each scope that lacks it, keeping the order and dropping the
/// duplicates this can make (`read` and `api://x/read` are the same permission).
pub(crate) fn prefix_scopes(scopes: &mut Vec<String>, prefix: &str) {
    let mut named: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes.drain(..) {
        let full = if scope.starts_with(prefix) {
            scope
        } else {
            format!("{prefix}{scope}")
        };
        if !named.contains(&full) {
            named.push(full);
        }
    }
    *scopes = named;
}

fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

fn is_non_empty_string(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::String(s)) if !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(strict: bool) -> ClaimRules {
        ClaimRules::new(Duration::ZERO, strict, None).unwrap()
    }

    #[test]
    fn exp_and_nbf_are_checked_with_the_leeway_at_its_edges() {
        let check = |claims: Value, leeway: i64| {
            check_times(claims.as_object().unwrap(), 1_000_000, leeway).map_err(|e| e.to_string())
        };
        assert!(check(json!({"exp": 1_000_000}), 0).is_ok());
        assert!(
            check(json!({"exp": 999_999}), 0)
                .unwrap_err()
                .contains("expired")
        );
        assert!(check(json!({"exp": 999_940}), 60).is_ok());
        assert!(check(json!({"exp": 999_939}), 60).is_err());
        assert!(check(json!({"exp": 999_999.9}), 0).is_err());
        assert!(check(json!({"exp": 1_000_000.5}), 0).is_ok());
        for bad in [json!("1000001"), json!(1e300), json!(true), json!([1])] {
            assert!(
                check(json!({"exp": bad}), 0)
                    .unwrap_err()
                    .contains("NumericDate")
            );
        }
        for missing in [json!({}), json!({"exp": null})] {
            assert!(check(missing, 0).unwrap_err().contains("no `exp`"));
        }
        let exp = 2_000_000;
        assert!(check(json!({"exp": exp, "nbf": 1_000_000}), 0).is_ok());
        assert!(
            check(json!({"exp": exp, "nbf": 1_000_001}), 0)
                .unwrap_err()
                .contains("not valid yet")
        );
        assert!(check(json!({"exp": exp, "nbf": 1_000_060}), 60).is_ok());
        assert!(check(json!({"exp": exp, "nbf": 1_000_061}), 60).is_err());
        assert!(
            check(json!({"exp": exp, "nbf": "soon"}), 60)
                .unwrap_err()
                .contains("NumericDate")
        );
        assert!(check(json!({"exp": exp, "nbf": null}), 0).is_ok());
    }

    #[test]
    fn rfc9068_claims_are_all_required_in_strict_mode() {
        let full = json!({"client_id": "c", "jti": "j", "iat": 1, "aud": "r"});
        assert!(check_rfc9068_claims(full.as_object().unwrap()).is_ok());
        for (name, bad) in [
            ("client_id", json!("")),
            ("jti", json!(null)),
            ("iat", json!("1")),
            ("aud", json!([])),
        ] {
            let mut claims = full.as_object().unwrap().clone();
            claims.insert(name.into(), bad);
            assert!(check_rfc9068_claims(&claims).is_err(), "{name}");
            claims.remove(name);
            assert!(check_rfc9068_claims(&claims).is_err(), "{name}");
        }
    }

    #[test]
    fn the_rules_check_times_then_sub_then_the_rfc9068_claims_in_strict_mode_only() {
        let token = json!({"exp": 100, "sub": "alice"});
        let claims = token.as_object().unwrap();
        assert!(rules(false).check_claims(claims, 100).is_ok());
        let strict = rules(true).check_claims(claims, 100).unwrap_err();
        assert!(strict.to_string().contains("client_id"), "{strict}");
        let expired = rules(true).check_claims(claims, 101).unwrap_err();
        assert!(expired.to_string().contains("expired"), "{expired}");
        for sub in [json!(""), json!(7), json!(null)] {
            let token = json!({"exp": 100, "sub": sub});
            let error = rules(false)
                .check_claims(token.as_object().unwrap(), 100)
                .unwrap_err();
            assert!(error.to_string().contains("`sub`"), "{error}");
        }
    }

    #[test]
    fn the_type_is_checked_in_strict_mode_only() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            assert!(rules(true).check_type(Some(typ)).is_ok(), "{typ}");
        }
        for typ in [Some("JWT"), Some("at+jwt; x"), None] {
            assert!(rules(true).check_type(typ).is_err(), "{typ:?}");
            assert!(rules(false).check_type(typ).is_ok(), "{typ:?}");
        }
    }

    #[test]
    fn a_scope_prefix_completes_bare_names_keeps_the_order_and_drops_duplicates() {
        let rules = ClaimRules::new(Duration::ZERO, false, Some("api://x/".into())).unwrap();
        let mut scopes = vec![
            "read".to_owned(),
            "api://x/write".into(),
            "api://x/read".into(),
        ];
        rules.name_scopes(&mut scopes);
        assert_eq!(scopes, ["api://x/read", "api://x/write"]);
        let mut untouched = vec!["read".to_owned()];
        self::rules(false).name_scopes(&mut untouched);
        assert_eq!(untouched, ["read"]);
    }

    #[test]
    fn bad_claim_settings_are_refused() {
        assert!(ClaimRules::new(MAX_LEEWAY, false, None).is_ok());
        assert!(matches!(
            ClaimRules::new(MAX_LEEWAY + Duration::from_secs(1), false, None),
            Err(ConfigError::LeewayTooLong {
                max: MAX_LEEWAY,
                ..
            })
        ));
        for prefix in ["", "api://my api/", "api://x/\n"] {
            assert!(
                matches!(
                    ClaimRules::new(DEFAULT_LEEWAY, false, Some(prefix.into())),
                    Err(ConfigError::InvalidScopePrefix { prefix: p }) if p == prefix
                ),
                "{prefix:?}"
            );
        }
        assert_eq!(
            ClaimRules::new(Duration::from_millis(1_900), false, None)
                .unwrap()
                .leeway,
            1
        );
    }
}
