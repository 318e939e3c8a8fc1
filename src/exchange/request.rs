//! What a token exchange asks for ([`ExchangeRequest`]), in which request shape
//! ([`GrantShape`]), and the form body sent to the token endpoint.

use aws_lc_rs::digest;
use url::form_urlencoded;

use super::ExchangeError;
use super::{ACCESS_TOKEN_TYPE, JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT};
use crate::scope::is_scope_token;
use crate::verify::cache::TokenHash;
use crate::verify::introspection::ClientCredentials;

/// The request shape a [`TokenExchange`](super::TokenExchange) sends to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantShape {
    /// RFC 8693 token exchange (the default):
    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token`,
    /// `subject_token_type=urn:ietf:params:oauth:token-type:access_token`, `resource` and/or
    /// `audience`, `scope`, and `requested_token_type` when set.
    #[default]
    TokenExchange,
    /// Microsoft Entra ID's on-behalf-of flow, which predates RFC 8693 and is not it:
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion` (the caller's
    /// token), `requested_token_use=on_behalf_of`, `scope` (which names the upstream API, e.g.
    /// `api://<app id>/.default`), and `client_id` in the body whatever the client
    /// authentication. Requests with a `resource`, an `audience` or a `requested_token_type`
    /// are refused in this shape ([`ExchangeError::InvalidRequest`]), as are requests
    /// without a scope.
    EntraOnBehalfOf,
}

impl GrantShape {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::TokenExchange => "token-exchange",
            Self::EntraOnBehalfOf => "entra-on-behalf-of",
        }
    }
}

/// What token to ask for: the upstream API it is for (`resource`, RFC 8707, and/or
/// `audience`), the scopes, and optionally the token type.
///
/// Start with [`for_resource`](Self::for_resource) or [`for_audience`](Self::for_audience):
/// an RFC 8693 request must name its target, so that the authorization server never answers
/// with a token for the MCP server itself (a passthrough by another name).
///
/// ```
/// use mcp_auth::exchange::ExchangeRequest;
///
/// let request = ExchangeRequest::for_resource("https://calendar.example.com/api")
///     .scope("calendar:read");
/// assert_eq!(request.resources(), ["https://calendar.example.com/api"]);
/// assert_eq!(request.requested_scopes(), ["calendar:read"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct ExchangeRequest {
    resources: Vec<String>,
    audiences: Vec<String>,
    scopes: Vec<String>,
    requested_token_type: Option<String>,
}

impl ExchangeRequest {
    /// A request with no target yet: add one with [`resource`](Self::resource) or
    /// [`audience`](Self::audience) (RFC 8693), or only scopes
    /// ([`GrantShape::EntraOnBehalfOf`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A token for the API at `resource`, an absolute URI without fragment (RFC 8707).
    pub fn for_resource(resource: impl Into<String>) -> Self {
        Self::new().resource(resource)
    }

    /// A token for the logical audience `audience` (RFC 8693 §2.1), e.g. a client id.
    pub fn for_audience(audience: impl Into<String>) -> Self {
        Self::new().audience(audience)
    }

    /// Adds a `resource` (several are sent as several parameters).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Adds an `audience` (several are sent as several parameters).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Adds one scope, or several separated by spaces. Default: none (the authorization
    /// server's default for the target).
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes
            .extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// Adds scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The `requested_token_type` (RFC 8693 §3). Default: not sent, and the answer must be
    /// an access token (`urn:ietf:params:oauth:token-type:access_token`).
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// The resources asked for.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The audiences asked for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The scopes asked for.
    pub fn requested_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The token type the answer must have: the requested one, else an access token.
    pub(crate) fn expected_token_type(&self) -> &str {
        self.requested_token_type
            .as_deref()
            .unwrap_or(ACCESS_TOKEN_TYPE)
    }

    /// Refuses what cannot be sent in `shape`.
    pub(crate) fn check(&self, shape: GrantShape) -> Result<(), ExchangeError> {
        if let Some(scope) = self.scopes.iter().find(|scope| !is_scope_token(scope)) {
            return Err(ExchangeError::invalid_request(format_args!(
                "{scope:?} is not a scope token (RFC 6749 §3.3)"
            )));
        }
        match shape {
            GrantShape::TokenExchange => {
                if self.resources.is_empty() && self.audiences.is_empty() {
                    return Err(ExchangeError::invalid_request(
                        "name the upstream API with `ExchangeRequest::for_resource` or \
                         `for_audience`: without a target the authorization server may issue a \
                         token for this server itself",
                    ));
                }
                for resource in &self.resources {
                    let valid = url::Url::parse(resource).is_ok_and(|url| url.fragment().is_none());
                    if !valid {
                        return Err(ExchangeError::invalid_request(format_args!(
                            "the resource {resource:?} is not an absolute URI without fragment \
                             (RFC 8707)"
                        )));
                    }
                }
                if self.audiences.iter().any(String::is_empty)
                    || self.requested_token_type.as_deref() == Some("")
                {
                    return Err(ExchangeError::invalid_request(
                        "an audience or the requested token type is empty",
                    ));
                }
            }
            GrantShape::EntraOnBehalfOf => {
                if !self.resources.is_empty()
                    || !self.audiences.is_empty()
                    || self.requested_token_type.is_some()
                {
                    return Err(ExchangeError::invalid_request(
                        "Entra's on-behalf-of flow names the upstream API in the scope \
                         (`api://<app id>/.default`); it takes no resource, audience or \
                         requested token type",
                    ));
                }
                if self.scopes.is_empty() {
                    return Err(ExchangeError::invalid_request(
                        "Entra's on-behalf-of flow needs a scope naming the upstream API, e.g. \
                         `api://<app id>/.default`",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The scopes as sent: in order, without repeats.
    fn scope_parameter(&self) -> String {
        let mut seen: Vec<&str> = Vec::with_capacity(self.scopes.len());
        for scope in &self.scopes {
            if !seen.contains(&scope.as_str()) {
                seen.push(scope);
            }
        }
        seen.join(" ")
    }

    /// The form body of the token request. It holds the subject token and perhaps our secret:
    /// never logged.
    pub(crate) fn form_body(
        &self,
        shape: GrantShape,
        subject_token: &str,
        client_id: &str,
        credentials: &ClientCredentials,
    ) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        match shape {
            GrantShape::TokenExchange => {
                form.append_pair("grant_type", TOKEN_EXCHANGE_GRANT)
                    .append_pair("subject_token", subject_token)
                    .append_pair("subject_token_type", ACCESS_TOKEN_TYPE);
                for resource in &self.resources {
                    form.append_pair("resource", resource);
                }
                for audience in &self.audiences {
                    form.append_pair("audience", audience);
                }
                if let Some(token_type) = &self.requested_token_type {
                    form.append_pair("requested_token_type", token_type);
                }
            }
            GrantShape::EntraOnBehalfOf => {
                form.append_pair("grant_type", JWT_BEARER_GRANT)
                    .append_pair("assertion", subject_token)
                    .append_pair("requested_token_use", "on_behalf_of");
            }
        }
        let scope = self.scope_parameter();
        if !scope.is_empty() {
            form.append_pair("scope", &scope);
        }
        match credentials {
            ClientCredentials::Post {
                client_id,
                client_secret,
            } => {
                form.append_pair("client_id", client_id)
                    .append_pair("client_secret", client_secret);
            }
            // Entra wants `client_id` in the body of an on-behalf-of request in any case.
            _ if shape == GrantShape::EntraOnBehalfOf => {
                form.append_pair("client_id", client_id);
            }
            _ => {}
        }
        form.finish()
    }

    /// The cache key: SHA-256 over the shape, the subject token and the request, each part
    /// length-prefixed (so no two different tuples hash the same input), with resources,
    /// audiences and scopes sorted (their order does not change the token asked for).
    pub(crate) fn cache_key(&self, shape: GrantShape, subject_token: &str) -> TokenHash {
        let mut context = digest::Context::new(&digest::SHA256);
        let mut part = |bytes: &[u8]| {
            context.update(&(bytes.len() as u64).to_be_bytes());
            context.update(bytes);
        };
        part(shape.name().as_bytes());
        part(subject_token.as_bytes());
        for (tag, list) in [
            ("resource", &self.resources),
            ("audience", &self.audiences),
            ("scope", &self.scopes),
        ] {
            let mut sorted: Vec<&str> = list.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            sorted.dedup();
            part(tag.as_bytes());
            part(&(sorted.len() as u64).to_be_bytes());
            for item in sorted {
                part(item.as_bytes());
            }
        }
        part(self.expected_token_type().as_bytes());
        let digest = context.finish();
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> ClientCredentials {
        ClientCredentials::Post {
            client_id: "mcp server".into(),
            client_secret: "s3cret&".into(),
        }
    }

    fn pairs(body: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn rfc_8693_body_names_subject_target_scope_and_post_credentials() {
        let request = ExchangeRequest::for_resource("https://api.example.com/a")
            .resource("https://api.example.com/b")
            .audience("billing")
            .scope("read write read")
            .requested_token_type("urn:ietf:params:oauth:token-type:jwt");
        let body = request.form_body(GrantShape::TokenExchange, "tok+/=", "mcp server", &post());
        assert_eq!(
            pairs(&body),
            [
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", "tok+/="),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("resource", "https://api.example.com/a"),
                ("resource", "https://api.example.com/b"),
                ("audience", "billing"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:jwt"
                ),
                ("scope", "read write"),
                ("client_id", "mcp server"),
                ("client_secret", "s3cret&"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn basic_credentials_keep_the_body_free_of_client_fields_except_for_entra() {
        let basic = ClientCredentials::basic("id", "secret").unwrap();
        let request = ExchangeRequest::for_audience("api");
        let body = request.form_body(GrantShape::TokenExchange, "t", "id", &basic);
        assert!(
            !body.contains("client_id") && !body.contains("secret"),
            "{body}"
        );

        let obo = ExchangeRequest::new().scope("api://downstream/.default");
        let body = obo.form_body(GrantShape::EntraOnBehalfOf, "t", "id", &basic);
        assert_eq!(
            pairs(&body),
            [
                ("grant_type", JWT_BEARER_GRANT),
                ("assertion", "t"),
                ("requested_token_use", "on_behalf_of"),
                ("scope", "api://downstream/.default"),
                ("client_id", "id"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn requests_without_a_target_or_with_bad_parts_are_refused() {
        let shape = GrantShape::TokenExchange;
        assert!(ExchangeRequest::new().scope("read").check(shape).is_err());
        assert!(
            ExchangeRequest::for_resource("/relative")
                .check(shape)
                .is_err()
        );
        assert!(
            ExchangeRequest::for_resource("https://a.example/#f")
                .check(shape)
                .is_err()
        );
        assert!(ExchangeRequest::for_audience("").check(shape).is_err());
        assert!(
            ExchangeRequest::for_audience("api")
                .scopes(["bad\"scope"])
                .check(shape)
                .is_err()
        );
        assert!(
            ExchangeRequest::for_audience("api")
                .scope("a b")
                .check(shape)
                .is_ok()
        );

        let obo = GrantShape::EntraOnBehalfOf;
        assert!(
            ExchangeRequest::new().check(obo).is_err(),
            "a scope is needed"
        );
        assert!(
            ExchangeRequest::for_resource("https://a.example")
                .scope("x")
                .check(obo)
                .is_err()
        );
        assert!(
            ExchangeRequest::new()
                .scope("api://a/.default")
                .check(obo)
                .is_ok()
        );
    }

    #[test]
    fn cache_keys_ignore_order_and_separate_every_part() {
        let shape = GrantShape::TokenExchange;
        let a = ExchangeRequest::for_resource("https://a.example").scope("x y");
        let b = ExchangeRequest::for_resource("https://a.example").scope("y x");
        assert_eq!(a.cache_key(shape, "t"), b.cache_key(shape, "t"));
        assert_ne!(
            a.cache_key(shape, "t"),
            a.cache_key(shape, "u"),
            "subject token"
        );
        assert_ne!(
            a.cache_key(shape, "t"),
            a.cache_key(GrantShape::EntraOnBehalfOf, "t"),
            "shape"
        );
        let other_scope = ExchangeRequest::for_resource("https://a.example").scope("x");
        assert_ne!(a.cache_key(shape, "t"), other_scope.cache_key(shape, "t"));
        // The same string as a resource or as an audience is a different request.
        let as_audience = ExchangeRequest::for_audience("https://a.example").scope("x y");
        assert_ne!(a.cache_key(shape, "t"), as_audience.cache_key(shape, "t"));
        let typed = a.clone().requested_token_type("urn:x");
        assert_ne!(a.cache_key(shape, "t"), typed.cache_key(shape, "t"));
    }
}
