//! `McpAuth` configuration: the resource-server mode's validation errors, per-resource guards,
//! and the deprecated authorization-server mode.
#![cfg(feature = "test-util")]
#![allow(deprecated)] // DelegatedAuth is deprecated on purpose; it is tested here.

use crate::support::logs;

use crate::support::fixtures::{as_metadata, resolved};
use http::{HeaderMap, HeaderValue, StatusCode};
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, ConfigError, DelegatedAuth, DiscoveryError, McpAuth,
    MetadataError, ProtectedResource, VerifyError,
};

/// Accepts any token as coming from the issuer encoded before the first `~`, for `audience`,
/// with the scopes encoded after it (see [`token_from`]).
fn verifier(audience: &'static str) -> impl mcp_auth::TokenVerifier {
    move |token: String| async move {
        let (issuer, scopes) = token.split_once('~').unwrap_or((token.as_str(), ""));
        let issuer = issuer.replace("_", ":").replace("-", "/");
        Ok::<_, VerifyError>(
            AuthInfo::new(token.clone(), issuer)
                .with_audience([audience])
                .with_scopes(
                    scopes
                        .split('+')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.replace('_', ":")),
                ),
        )
    }
}

/// A b64token-safe token naming an issuer and scopes: `:` becomes `_`, `/` becomes `-`, and
/// scopes are joined by `+`.
fn token_from(issuer: &str, scopes: &str) -> String {
    format!(
        "{}~{}",
        issuer.replace(':', "_").replace('/', "-"),
        scopes.replace(':', "_").replace(' ', "+")
    )
}

/// `https://api.example.com/mcp`, trusting `https://as.example.com` (resolved).
fn one_resource() -> McpAuth {
    McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://api.example.com/mcp")
                .authorization_server(resolved("https://as.example.com")),
        )
        .build()
        .unwrap()
}

fn headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

#[test]
fn a_configuration_without_resources_is_refused() {
    assert!(matches!(
        McpAuth::builder().build(),
        Err(ConfigError::Empty)
    ));
}

#[test]
fn a_duplicate_resource_is_refused_naming_it() {
    let err = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://api.example.com/mcp")
                .authorization_server(resolved("https://as1.example.com")),
        )
        .protected_resource(
            ProtectedResource::new("https://api.example.com/mcp")
                .authorization_server(resolved("https://as2.example.com")),
        )
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::DuplicateResource { resource } if resource == "https://api.example.com/mcp"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the protected resource `https://api.example.com/mcp` is configured more than once"
    );
}

#[test]
fn the_same_issuer_twice_under_one_resource_is_refused_resolved_or_discovered() {
    for second in [
        resolved("https://as1.example.com"),
        AuthServer::discover("https://as1.example.com", AuthServerType::Oidc),
    ] {
        let err = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new("https://api.example.com/resource3")
                    .authorization_server(resolved("https://as1.example.com"))
                    .authorization_server(second),
            )
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the authorization server `https://as1.example.com` is listed more than once for resource \
             `https://api.example.com/resource3`"
        );
    }
}

#[test]
fn the_same_server_may_protect_several_resources() {
    let shared = resolved("https://as1.example.com");
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://api.example.com/a")
                .authorization_server(shared.clone()),
        )
        .protected_resource(
            ProtectedResource::new("https://api.example.com/b").authorization_server(shared),
        )
        .build()
        .unwrap();
    assert_eq!(
        auth.resources().collect::<Vec<_>>(),
        ["https://api.example.com/a", "https://api.example.com/b"]
    );
}

#[test]
fn invalid_resource_metadata_is_refused() {
    let build = |r: ProtectedResource| {
        McpAuth::builder()
            .protected_resource(r)
            .build()
            .unwrap_err()
    };
    assert!(matches!(
        build(ProtectedResource::new("https://api.example.com/mcp")),
        ConfigError::Metadata(MetadataError::Empty {
            field: "authorization_servers",
            ..
        })
    ));
    for identifier in [
        "not a url",
        "http://api.example.com/mcp",
        "https://api.example.com/mcp#x",
    ] {
        let err = build(
            ProtectedResource::new(identifier)
                .authorization_server(resolved("https://as.example.com")),
        );
        assert!(
            matches!(
                err,
                ConfigError::Metadata(MetadataError::InvalidUrl {
                    field: "resource",
                    ..
                })
            ),
            "{identifier}: {err:?}"
        );
    }
    let err = build(
        ProtectedResource::new("https://api.example.com/mcp")
            .authorization_server(resolved("https://as.example.com"))
            .scopes_supported(["read", "bad scope"]),
    );
    assert!(matches!(
        err,
        ConfigError::Metadata(MetadataError::InvalidValue {
            field: "scopes_supported",
            ..
        })
    ));
}

#[test]
fn loopback_http_resources_are_allowed_for_development() {
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("http://localhost:3001/mcp")
                .authorization_server(resolved("http://127.0.0.1:9")),
        )
        .build()
        .unwrap();
    let guard = auth
        .bearer_auth("http://localhost:3001/mcp", verifier("x"))
        .build()
        .unwrap();
    assert_eq!(
        guard.resource_metadata_url(),
        Some("http://localhost:3001/.well-known/oauth-protected-resource/mcp")
    );
}

#[test]
fn resources_whose_metadata_would_share_a_path_are_refused() {
    let err = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://a.example.com/mcp")
                .authorization_server(resolved("https://as.example.com")),
        )
        .protected_resource(
            ProtectedResource::new("https://b.example.com/mcp")
                .authorization_server(resolved("https://as.example.com")),
        )
        .build()
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, ConfigError::MetadataPathTaken { first, second, path }
            if first == "https://a.example.com/mcp"
                && second == "https://b.example.com/mcp"
                && path == "/.well-known/oauth-protected-resource/mcp"),
        "{err:?}"
    );
    assert!(message.contains("separate McpAuth instances"), "{message}");
    assert!(
        message.contains("`https://a.example.com/mcp`")
            && message.contains("`https://b.example.com/mcp`"),
        "{message}"
    );
    assert!(
        message.contains("/.well-known/oauth-protected-resource/mcp"),
        "{message}"
    );
}

#[test]
fn a_resolved_server_that_fails_validation_is_refused_in_both_modes() {
    let mut no_pkce = as_metadata("https://as.example.com");
    no_pkce.code_challenge_methods_supported = None;
    let mut implicit_only = as_metadata("https://as.example.com");
    implicit_only.response_types_supported = vec!["token".into()];
    for metadata in [no_pkce, implicit_only] {
        let err = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new("https://api.example.com/mcp")
                    .authorization_server(AuthServer::from_metadata(metadata.clone())),
            )
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Discovery(DiscoveryError::Invalid { issuer, .. }) if issuer == "https://as.example.com"),
            "{err:?}"
        );
        let err = DelegatedAuth::new(AuthServer::from_metadata(metadata)).unwrap_err();
        assert!(
            matches!(err, ConfigError::Discovery(DiscoveryError::Invalid { .. })),
            "{err:?}"
        );
    }
}

#[test]
fn validation_warnings_are_logged_not_refused() {
    logs::capture();
    let mut no_registration = as_metadata("https://warned.example.com");
    no_registration.registration_endpoint = None;
    McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://api.example.com/mcp")
                .authorization_server(AuthServer::from_metadata(no_registration)),
        )
        .build()
        .unwrap();
    let text = logs::text();
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("https://warned.example.com")
            && l.contains("warnings")),
        "{text}"
    );
}

#[test]
fn servers_discovered_on_first_use_need_no_network_at_construction() {
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://api.example.com/mcp").authorization_server(
                AuthServer::discover("https://unreachable.invalid", AuthServerType::Oidc),
            ),
        )
        .build()
        .unwrap();
    let metadata = auth
        .protected_resource_metadata("https://api.example.com/mcp")
        .unwrap();
    assert_eq!(
        metadata.authorization_servers,
        ["https://unreachable.invalid"]
    );
}

#[test]
fn asking_for_an_unknown_resource_names_it_and_the_configured_ones() {
    let auth = one_resource();
    let err = auth
        .bearer_auth("https://api.example.com/other", verifier("x"))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownResource { resource, .. } if resource == "https://api.example.com/other")
    );
    assert_eq!(
        err.to_string(),
        "no protected resource `https://api.example.com/other` is configured; configured resources: \
         https://api.example.com/mcp"
    );
    // Exact match only: no trailing-slash or case normalisation.
    assert!(
        auth.bearer_auth("https://api.example.com/mcp/", verifier("x"))
            .build()
            .is_err()
    );
    assert!(
        auth.bearer_auth_jwt("https://api.example.com/other")
            .build()
            .is_err()
    );
    assert!(
        auth.trusted_servers("https://api.example.com/other")
            .is_err()
    );
    assert!(
        auth.protected_resource_metadata("https://api.example.com/other")
            .is_none()
    );
}

#[test]
fn resource_mode_requires_a_resource_for_the_guard() {
    // The resource is a `&str` the type system requires; the empty one names no resource.
    let auth = one_resource();
    assert!(matches!(
        auth.bearer_auth("", verifier("x")).build(),
        Err(ConfigError::UnknownResource { resource, .. }) if resource.is_empty()
    ));
}

#[tokio::test]
async fn each_resource_trusts_only_its_own_servers() {
    const R1: &str = "https://api.example.com/resource1";
    const R2: &str = "https://api.example.com/resource2";
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(R1).authorization_server(resolved("https://as1.example.com")),
        )
        .protected_resource(
            ProtectedResource::new(R2).authorization_server(resolved("https://as2.example.com")),
        )
        .build()
        .unwrap();
    let guard1 = auth
        .bearer_auth(R1, verifier(R1))
        .required_scopes(["read:resource1"])
        .build()
        .unwrap();
    let guard2 = auth.bearer_auth(R2, verifier(R2)).build().unwrap();
    assert_eq!(guard1.trusted_issuers(), ["https://as1.example.com"]);
    assert_eq!(guard1.resource(), Some(R1));

    let as1_read = token_from("https://as1.example.com", "read:resource1");
    let as1_write = token_from("https://as1.example.com", "write:resource1");
    let as2 = token_from("https://as2.example.com", "");
    assert_eq!(
        guard1
            .authenticate(&headers(&as1_read))
            .await
            .unwrap()
            .issuer,
        "https://as1.example.com"
    );
    assert_eq!(
        guard1
            .authenticate(&headers(&as1_write))
            .await
            .unwrap_err()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        guard1
            .authenticate(&headers(&as2))
            .await
            .unwrap_err()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        guard2.authenticate(&headers(&as2)).await.unwrap().issuer,
        "https://as2.example.com"
    );
    assert_eq!(
        guard2.resource_metadata_url(),
        Some("https://api.example.com/.well-known/oauth-protected-resource/resource2")
    );
}

#[tokio::test]
async fn delegated_mode_trusts_its_one_server_and_logs_the_deprecation() {
    logs::capture();
    let auth = DelegatedAuth::new(resolved("https://as.example.com")).unwrap();
    assert_eq!(auth.server().issuer(), "https://as.example.com");
    let text = logs::text();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("deprecated")),
        "{text}"
    );

    // Without an audience: no audience check, no resource_metadata.
    let guard = auth
        .bearer_auth(verifier("https://anything.example.com"))
        .build()
        .unwrap();
    assert_eq!(guard.resource(), None);
    let ok = token_from("https://as.example.com", "read");
    assert!(guard.authenticate(&headers(&ok)).await.is_ok());
    let foreign = token_from("https://other.example.com", "read");
    let rejection = guard.authenticate(&headers(&foreign)).await.unwrap_err();
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    let challenge =
        BearerChallenge::parse(rejection.www_authenticate().unwrap().to_str().unwrap()).unwrap();
    assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
    assert_eq!(challenge.resource_metadata, None);

    let scoped = auth
        .bearer_auth(verifier("https://anything.example.com"))
        .required_scopes(["read", "write"])
        .build()
        .unwrap();
    let rejection = scoped.authenticate(&HeaderMap::new()).await.unwrap_err();
    assert_eq!(
        rejection.www_authenticate().unwrap(),
        "Bearer scope=\"read write\""
    );
    assert_eq!(
        scoped
            .authenticate(&headers(&ok))
            .await
            .unwrap_err()
            .status(),
        StatusCode::FORBIDDEN
    );

    // With an audience set on the guard: it is checked.
    let guard = auth
        .bearer_auth(verifier("https://elsewhere.example.com"))
        .audience(["https://api.example.com"])
        .build()
        .unwrap();
    assert_eq!(guard.resource_metadata_url(), None);
    assert_eq!(
        guard
            .authenticate(&headers(&ok))
            .await
            .unwrap_err()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let guard = auth
        .bearer_auth(verifier("https://api.example.com"))
        .audience(["https://api.example.com"])
        .build()
        .unwrap();
    assert!(guard.authenticate(&headers(&ok)).await.is_ok());
}

#[test]
fn mcp_auth_is_cheap_to_clone_and_thread_safe() {
    // The Send + Sync + Clone bounds are compile-time assertions in the crate; this checks a
    // clone is usable from another thread.
    let auth = DelegatedAuth::new(resolved("https://as.example.com")).unwrap();
    let clone = auth.clone();
    std::thread::spawn(move || assert_eq!(clone.server().issuer(), "https://as.example.com"))
        .join()
        .unwrap();
    let auth = one_resource();
    let clone = auth.clone();
    std::thread::spawn(move || {
        assert_eq!(
            clone.resources().collect::<Vec<_>>(),
            ["https://api.example.com/mcp"]
        );
    })
    .join()
    .unwrap();
}
