//! `validate_server_config`: does an authorization server fit MCP?

use url::Url;

use super::fetch::AuthServerConfig;

macro_rules! codes {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $desc:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// The mcp-auth code, e.g. `pkce_not_supported`.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $code, )* }
            }

            /// The human description mcp-auth gives for this code.
            pub fn description(self) -> &'static str {
                match self { $( Self::$variant => $desc, )* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

codes! {
    /// Why an authorization server does not fit MCP.
    AuthServerConfigErrorCode {
        /// The metadata is not valid (issuer or endpoints are not absolute URLs, ...).
        InvalidServerMetadata = "invalid_server_metadata" =>
            "The server metadata is not a valid object or does not conform to the expected schema.",
        /// No `response_types_supported` entry contains `code`.
        CodeResponseTypeNotSupported = "code_response_type_not_supported" =>
            "The server does not support the \"code\" response type or the \"code\" response type is not included in one of the supported response types.",
        /// The grant types do not include `authorization_code`.
        AuthorizationCodeGrantNotSupported = "authorization_code_grant_not_supported" =>
            "The server does not support the \"authorization_code\" grant type.",
        /// No `code_challenge_methods_supported`.
        PkceNotSupported = "pkce_not_supported" =>
            "The server does not support Proof Key for Code Exchange (PKCE).",
        /// `code_challenge_methods_supported` lacks `S256`.
        S256CodeChallengeMethodNotSupported = "s256_code_challenge_method_not_supported" =>
            "The server does not support the \"S256\" code challenge method for Proof Key for Code Exchange (PKCE).",
    }
}

codes! {
    /// Something that works but may limit MCP clients.
    AuthServerConfigWarningCode {
        /// No `registration_endpoint`.
        DynamicRegistrationNotSupported = "dynamic_registration_not_supported" =>
            "Dynamic Client Registration (RFC 7591) is not supported by the server.",
    }
}

codes! {
    /// A check that passed (reported in verbose mode).
    AuthServerSuccessCode {
        /// The metadata is valid.
        ServerMetadataValid = "server_metadata_valid" =>
            "The server metadata is valid and conforms to the expected schema.",
        /// `code` response type supported.
        CodeResponseTypeSupported = "code_response_type_supported" =>
            "The \"code\" response type is supported by the server.",
        /// Authorization-code grant supported.
        AuthorizationCodeGrantSupported = "authorization_code_grant_supported" =>
            "The \"authorization_code\" grant type is supported by the server.",
        /// PKCE supported.
        PkceSupported = "pkce_supported" =>
            "Proof Key for Code Exchange (PKCE) is supported by the server.",
        /// S256 supported.
        S256CodeChallengeMethodSupported = "s256_code_challenge_method_supported" =>
            "The \"S256\" code challenge method for Proof Key for Code Exchange (PKCE) is supported by the server.",
        /// Dynamic registration supported.
        DynamicRegistrationSupported = "dynamic_registration_supported" =>
            "Dynamic Client Registration (RFC 7591) is supported by the server.",
    }
}

/// One finding of [`validate_server_config`]: a code, its description and, for errors, detail.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationIssue<C> {
    /// The code.
    pub code: C,
    /// The code's description.
    pub description: &'static str,
    /// What exactly was wrong, when there is more to say.
    pub cause: Option<String>,
}

/// The result of [`validate_server_config`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationResult {
    /// `true` when there are no errors (warnings allowed).
    pub is_valid: bool,
    /// What makes the server unusable for MCP.
    pub errors: Vec<ValidationIssue<AuthServerConfigErrorCode>>,
    /// What limits MCP clients.
    pub warnings: Vec<ValidationIssue<AuthServerConfigWarningCode>>,
    /// The checks that passed; present only in verbose mode.
    pub successes: Option<Vec<ValidationIssue<AuthServerSuccessCode>>>,
}

/// Checks that an authorization server can serve MCP clients, with mcp-auth's codes and
/// semantics:
///
/// 1. `invalid_server_metadata`: issuer, authorization and token endpoints must be absolute
///    URLs (the issuer without query or fragment); on failure nothing else is checked;
/// 2. `code_response_type_not_supported`: some `response_types_supported` entry must contain
///    `code` (multi-value entries like `"code id_token"` count);
/// 3. `authorization_code_grant_not_supported`: the grant types (absent means
///    `authorization_code` + `implicit`; an empty list is an error) must include
///    `authorization_code`;
/// 4. `pkce_not_supported` when `code_challenge_methods_supported` is absent, else
///    `s256_code_challenge_method_not_supported` when it lacks `S256` (an empty list gives this
///    one, as in the JS library);
/// 5. warning `dynamic_registration_not_supported` without a `registration_endpoint`.
///
/// ```
/// use mcp_auth::{AuthServerConfig, AuthServerType, AuthorizationServerMetadata, validate_server_config};
///
/// let mut metadata = AuthorizationServerMetadata::authorization_code("https://auth.example.com", "https://auth.example.com/authorize", "https://auth.example.com/token");
/// let result = validate_server_config(&AuthServerConfig::new(metadata, AuthServerType::OAuth));
/// assert!(result.is_valid);
/// assert_eq!(result.warnings[0].code.as_str(), "dynamic_registration_not_supported");
/// ```
pub fn validate_server_config(config: &AuthServerConfig) -> ValidationResult {
    validate(config, false)
}

/// [`validate_server_config`] that also lists the checks that passed (`successes`).
pub fn validate_server_config_verbose(config: &AuthServerConfig) -> ValidationResult {
    validate(config, true)
}

fn issue<C>(code: C, description: &'static str, cause: Option<String>) -> ValidationIssue<C> {
    ValidationIssue {
        code,
        description,
        cause,
    }
}

fn validate(config: &AuthServerConfig, verbose: bool) -> ValidationResult {
    use AuthServerConfigErrorCode as E;
    use AuthServerSuccessCode as S;

    let m = &config.metadata;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut successes = Vec::new();
    let mut ok = |code: S| successes.push(issue(code, code.description(), None));

    if let Some(cause) = metadata_problem(config) {
        errors.push(issue(
            E::InvalidServerMetadata,
            E::InvalidServerMetadata.description(),
            Some(cause),
        ));
        return ValidationResult {
            is_valid: false,
            errors,
            warnings,
            successes: verbose.then(Vec::new),
        };
    }
    ok(S::ServerMetadataValid);

    let code_supported = m
        .response_types_supported
        .iter()
        .any(|entry| entry.split(' ').any(|t| t == "code"));
    if code_supported {
        ok(S::CodeResponseTypeSupported);
    } else {
        let e = E::CodeResponseTypeNotSupported;
        errors.push(issue(e, e.description(), None));
    }

    if m.effective_grant_types().contains(&"authorization_code") {
        ok(S::AuthorizationCodeGrantSupported);
    } else {
        let e = E::AuthorizationCodeGrantNotSupported;
        errors.push(issue(e, e.description(), None));
    }

    match &m.code_challenge_methods_supported {
        None => {
            let e = E::PkceNotSupported;
            errors.push(issue(e, e.description(), None));
        }
        Some(methods) => {
            ok(S::PkceSupported);
            if methods.iter().any(|method| method == "S256") {
                ok(S::S256CodeChallengeMethodSupported);
            } else {
                let e = E::S256CodeChallengeMethodNotSupported;
                errors.push(issue(e, e.description(), None));
            }
        }
    }

    if m.registration_endpoint.is_some() {
        ok(S::DynamicRegistrationSupported);
    } else {
        let w = AuthServerConfigWarningCode::DynamicRegistrationNotSupported;
        warnings.push(issue(w, w.description(), None));
    }

    ValidationResult {
        is_valid: errors.is_empty(),
        errors,
        warnings,
        successes: verbose.then_some(successes),
    }
}

fn metadata_problem(config: &AuthServerConfig) -> Option<String> {
    let m = &config.metadata;
    let issuer = match Url::parse(&m.issuer) {
        Ok(url) if url.has_host() => url,
        _ => return Some(format!("`issuer` is not an absolute URL: `{}`", m.issuer)),
    };
    if issuer.query().is_some() || issuer.fragment().is_some() {
        return Some(format!(
            "`issuer` must not have a query or fragment (RFC 8414 §2): `{}`",
            m.issuer
        ));
    }
    for (field, value) in [
        ("authorization_endpoint", &m.authorization_endpoint),
        ("token_endpoint", &m.token_endpoint),
    ] {
        if !Url::parse(value).is_ok_and(|u| u.has_host()) {
            return Some(format!("`{field}` is not an absolute URL: `{value}`"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthServerType, AuthorizationServerMetadata};

    fn full() -> AuthorizationServerMetadata {
        let mut m = AuthorizationServerMetadata::authorization_code(
            "https://auth.example.com",
            "https://auth.example.com/authorize",
            "https://auth.example.com/token",
        );
        m.registration_endpoint = Some("https://auth.example.com/register".into());
        m.grant_types_supported = Some(vec!["authorization_code".into(), "refresh_token".into()]);
        m
    }

    fn check(m: AuthorizationServerMetadata) -> ValidationResult {
        validate_server_config(&AuthServerConfig::new(m, AuthServerType::OAuth))
    }

    fn error_codes(r: &ValidationResult) -> Vec<&'static str> {
        r.errors.iter().map(|e| e.code.as_str()).collect()
    }

    #[test]
    fn full_config_is_valid_without_warnings() {
        let r = check(full());
        assert!(r.is_valid);
        assert!(r.errors.is_empty() && r.warnings.is_empty());
        assert_eq!(r.successes, None);
    }

    #[test]
    fn absent_grant_types_default_to_authorization_code() {
        let mut m = full();
        m.grant_types_supported = None;
        assert!(check(m).is_valid);
    }

    #[test]
    fn empty_grant_types_are_an_error() {
        let mut m = full();
        m.grant_types_supported = Some(vec![]);
        assert_eq!(
            error_codes(&check(m)),
            ["authorization_code_grant_not_supported"]
        );
    }

    #[test]
    fn token_response_type_only_fails_code_and_pkce_and_warns_on_registration() {
        let mut m = full();
        m.response_types_supported = vec!["token".into()];
        m.code_challenge_methods_supported = None;
        m.registration_endpoint = None;
        let r = check(m);
        assert!(!r.is_valid);
        assert_eq!(
            error_codes(&r),
            ["code_response_type_not_supported", "pkce_not_supported"]
        );
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(
            r.warnings[0].code,
            AuthServerConfigWarningCode::DynamicRegistrationNotSupported
        );
    }

    #[test]
    fn multi_value_response_types_count() {
        let mut m = full();
        m.response_types_supported = vec!["code id_token".into()];
        assert!(check(m).is_valid);
    }

    #[test]
    fn plain_only_or_empty_methods_lack_s256() {
        for methods in [vec!["plain".to_owned()], vec![]] {
            let mut m = full();
            m.code_challenge_methods_supported = Some(methods);
            assert_eq!(
                error_codes(&check(m)),
                ["s256_code_challenge_method_not_supported"]
            );
        }
    }

    #[test]
    fn missing_registration_gives_exactly_one_warning() {
        let mut m = full();
        m.registration_endpoint = None;
        let r = check(m);
        assert!(r.is_valid);
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn invalid_metadata_stops_the_checks() {
        let mut m = full();
        m.issuer = "not a url".into();
        m.response_types_supported = vec![];
        let r = check(m);
        assert_eq!(error_codes(&r), ["invalid_server_metadata"]);
        assert!(r.errors[0].cause.as_deref().unwrap().contains("not a url"));
    }

    #[test]
    fn verbose_lists_the_six_successes_in_order() {
        let r =
            validate_server_config_verbose(&AuthServerConfig::new(full(), AuthServerType::OAuth));
        let codes: Vec<_> = r
            .successes
            .unwrap()
            .iter()
            .map(|s| s.code.as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "server_metadata_valid",
                "code_response_type_supported",
                "authorization_code_grant_supported",
                "pkce_supported",
                "s256_code_challenge_method_supported",
                "dynamic_registration_supported",
            ]
        );
    }

    #[test]
    fn every_code_has_the_mcp_auth_description() {
        assert_eq!(
            AuthServerConfigErrorCode::PkceNotSupported.description(),
            "The server does not support Proof Key for Code Exchange (PKCE)."
        );
        assert_eq!(
            AuthServerConfigWarningCode::DynamicRegistrationNotSupported.description(),
            "Dynamic Client Registration (RFC 7591) is not supported by the server."
        );
    }
}
