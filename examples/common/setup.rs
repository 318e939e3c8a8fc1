//! The authorization set-up shared by every whoami example: the authorization server (built-in
//! or real), the protected resource and its metadata, the verifier and the bearer guard.

use std::fmt;
use std::net::SocketAddr;

use mcp_auth::testing::TestAuthServer;
use mcp_auth::tower::{McpChecksService, McpGuard, OperationScopes};
use mcp_auth::verify::{IntrospectionVerifier, UserinfoVerifier};
use mcp_auth::{
    AuthServer, BearerAuth, McpAuth, ProtectedResource, protected_resource_metadata_url,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tower::Layer;
use url::Url;

use super::config::{Config, VerifierKind, is_loopback};
use super::tool::{ADMIN_SCOPE, WhoAmI};

/// The hosts rmcp accepts in the `Host` header by default (DNS-rebinding protection).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why the server cannot start. `variable` names the configuration at fault, if any.
#[derive(Debug)]
pub struct SetupError {
    pub variable: Option<&'static str>,
    pub problem: String,
}

impl SetupError {
    fn config(variable: &'static str, problem: impl fmt::Display) -> Self {
        Self {
            variable: Some(variable),
            problem: problem.to_string(),
        }
    }

    fn other(problem: impl fmt::Display) -> Self {
        Self {
            variable: None,
            problem: problem.to_string(),
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variable {
            Some(variable) => write!(f, "{variable}: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

/// Binds `127.0.0.1:<config.port>`.
pub async fn bind(config: &Config) -> Result<tokio::net::TcpListener, SetupError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        SetupError::config(
            "PORT",
            format!("cannot listen on {addr}: {e}; choose another port with PORT=<port> or --port <port> (0 picks a free one)"),
        )
    })
}

/// The protected MCP server's authorization, ready to mount.
pub struct Setup {
    pub config: Config,
    /// Where the server listens.
    pub local_addr: SocketAddr,
    /// The resource identifier (token audience, `resource` in the metadata).
    pub resource: String,
    /// The path the MCP endpoint is served at (the resource's path).
    pub mcp_path: String,
    /// The URL clients call (the resource when it is a loopback URL, else the local address).
    pub mcp_url: String,
    /// The RFC 9728 metadata URL of the resource.
    pub metadata_url: String,
    /// The trusted authorization server's issuer.
    pub issuer: String,
    pub auth: McpAuth,
    pub guard: BearerAuth,
    /// The built-in test authorization server, when no issuer is configured.
    pub dev_server: Option<TestAuthServer>,
    /// rmcp's legacy session mode (`Mcp-Session-Id`). Off in the examples, so that the
    /// printed curl lines need no session id; the tests turn it on to exercise session
    /// binding, which the guard applies either way.
    pub sessions: bool,
}

impl Setup {
    /// Starts the built-in authorization server if needed, discovers the configured one
    /// otherwise, and builds the guard for the server listening on `local_addr`.
    pub async fn new(config: Config, local_addr: SocketAddr) -> Result<Self, SetupError> {
        let resource = match &config.resource {
            Some(resource) => resource.clone(),
            None => format!("http://localhost:{}/mcp", local_addr.port()),
        };
        let resource_url =
            Url::parse(&resource).map_err(|e| SetupError::config("MCP_AUTH_RESOURCE", e))?;
        let mcp_path = match resource_url.path() {
            "" => "/".to_owned(),
            path => path.to_owned(),
        };
        let mcp_url = if is_loopback(&resource_url)
            && resource_url.port_or_known_default() == Some(local_addr.port())
        {
            resource.clone()
        } else {
            format!("http://localhost:{}{mcp_path}", local_addr.port())
        };
        let metadata_url = protected_resource_metadata_url(&resource)
            .map_err(|e| SetupError::config("MCP_AUTH_RESOURCE", e))?;

        let (server, dev_server) = match &config.issuer {
            Some(issuer) => {
                let server = AuthServer::discover(issuer.clone(), config.server_type);
                // Fail now, with the variable's name, rather than on the first request.
                server.metadata().await.map_err(|e| {
                    SetupError::config(
                        "MCP_AUTH_ISSUER",
                        format!(
                            "cannot use the authorization server `{issuer}` (MCP_AUTH_SERVER_TYPE={}): {e}",
                            config.server_type
                        ),
                    )
                })?;
                (server, None)
            }
            None => {
                let mut scopes: Vec<String> =
                    ["openid", "profile", "email", "read", "write", ADMIN_SCOPE]
                        .map(String::from)
                        .to_vec();
                for scope in &config.required_scopes {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
                let dev = TestAuthServer::builder()
                    .scopes_supported(scopes)
                    .start()
                    .await
                    .map_err(|e| {
                        SetupError::other(format!(
                            "cannot start the built-in authorization server: {e}"
                        ))
                    })?;
                (
                    AuthServer::discover(dev.issuer(), config.server_type),
                    Some(dev),
                )
            }
        };
        let issuer = server.issuer().to_owned();

        let mut protected = ProtectedResource::new(resource.clone())
            .authorization_server(server.clone())
            .resource_name("mcp-auth whoami example");
        if !config.required_scopes.is_empty() {
            protected = protected.scopes_supported(config.required_scopes.clone());
        }
        let auth = McpAuth::builder()
            .protected_resource(protected)
            .build()
            .map_err(|e| SetupError::config("MCP_AUTH_RESOURCE", e))?;

        let resource_err = |e| SetupError::config("MCP_AUTH_RESOURCE", e);
        let guard = match config.verifier {
            // mcp-auth's 'jwt' mode: keys from the authorization server's jwks_uri.
            VerifierKind::Jwt => auth
                .bearer_auth_jwt(resource.as_str())
                .map_err(resource_err)?,
            VerifierKind::Userinfo => auth
                .bearer_auth(resource.as_str(), UserinfoVerifier::new(server.clone()))
                .map_err(resource_err)?,
            VerifierKind::Introspection => {
                let (id, secret) = match (&config.client_credentials, &dev_server) {
                    (Some((id, secret)), _) => (id.clone(), secret.clone()),
                    (None, Some(dev)) => {
                        (dev.client_id().to_owned(), dev.client_secret().to_owned())
                    }
                    (None, None) => {
                        return Err(SetupError::config(
                            "MCP_AUTH_CLIENT_ID",
                            "introspection needs client credentials",
                        ));
                    }
                };
                let verifier = IntrospectionVerifier::builder(server.clone())
                    .client_secret_basic(id, secret)
                    .build()
                    .map_err(|e| SetupError::config("MCP_AUTH_CLIENT_ID", e))?;
                auth.bearer_auth(resource.as_str(), verifier)
                    .map_err(resource_err)?
            }
        };
        let mut guard = guard
            .required_scopes(config.required_scopes.clone())
            // A development aid: refusals say why (expected vs actual audience, scopes, ...).
            .show_error_details(true);
        if !config.audience.is_empty() {
            guard = guard.audience(config.audience.clone());
        }
        if config.verifier == VerifierKind::Userinfo {
            // Userinfo answers carry no audience: the check cannot be made (see the banner).
            guard = guard.skip_audience_check();
        }

        Ok(Self {
            config,
            local_addr,
            resource,
            mcp_path,
            mcp_url,
            metadata_url,
            issuer,
            auth,
            guard,
            dev_server,
            sessions: false,
        })
    }

    /// The per-tool scopes: `secret` needs `admin` on top of the required scopes. A token
    /// without it gets 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
    /// scope="..."`, and MCP clients re-authorize with that scope (step-up). The challenge
    /// also repeats the granted scopes this server cares about (the default strategy), among
    /// them the OpenID ones: the identity claims (and the userinfo verifier) depend on them,
    /// and clients that request exactly the challenged scopes would otherwise drop them.
    pub fn operation_scopes(&self) -> OperationScopes {
        OperationScopes::new()
            .tool("secret", [ADMIN_SCOPE])
            .known_scopes(["openid", "profile", "email"])
    }

    /// The bearer guard with the MCP-aware checks, in order: authentication, sessions bound to
    /// the caller that created them (the default), then the per-tool scopes. Mount it with
    /// `.layer()` around [`mcp_service`](Self::mcp_service).
    pub fn mcp_guard(&self) -> McpGuard {
        self.guard.with_operation_scopes(self.operation_scopes())
    }

    /// A token for the built-in server's sample user, for this resource, with the required
    /// scopes (or `read write`), and the user's name, email and username claims. `None` with a
    /// real authorization server.
    pub fn sample_token(&self) -> Option<String> {
        let dev = self.dev_server.as_ref()?;
        let user = dev.sample_user();
        let scope = if self.config.required_scopes.is_empty() {
            "read write".to_owned()
        } else {
            self.config.required_scopes.join(" ")
        };
        let audience = match self.config.audience.first() {
            Some(audience) => audience.clone(),
            None => self.resource.clone(),
        };
        let mut token = dev.token().audience(audience).scope(scope);
        for (claim, value) in [
            ("name", &user.name),
            ("email", &user.email),
            ("username", &user.username),
        ] {
            if let Some(value) = value {
                token = token.claim(claim, value.clone());
            }
        }
        Some(token.sign())
    }

    /// rmcp's Streamable HTTP configuration: stateless, JSON answers (one POST, one JSON
    /// reply: simple for curl, fine for MCP clients), or sessions when
    /// [`sessions`](Self::sessions) is set. rmcp only accepts loopback `Host` headers
    /// by default (DNS-rebinding protection); a non-loopback resource host is added here. For
    /// a public deployment list your hostnames with `with_allowed_hosts`.
    pub fn rmcp_config(&self) -> StreamableHttpServerConfig {
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.map(String::from).to_vec();
        if let Ok(url) = Url::parse(&self.resource)
            && let Some(host) = url.host_str()
            && !is_loopback(&url)
        {
            hosts.push(host.to_owned());
        }
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(self.sessions)
            .with_json_response(!self.sessions)
            .with_allowed_hosts(hosts)
    }

    /// [`mcp_service`](Self::mcp_service) behind the guard's MCP-aware checks (session
    /// binding, per-tool scopes) but without authentication, for stacks whose own middleware
    /// authenticates and hands the `AuthInfo` over in the request extensions (actix-web).
    pub fn mcp_service_with_checks(
        &self,
    ) -> McpChecksService<StreamableHttpService<WhoAmI, LocalSessionManager>> {
        self.mcp_guard().checks_layer().layer(self.mcp_service())
    }

    /// The MCP service (rmcp Streamable HTTP) serving the `whoami` and `secret` tools. Not
    /// guarded: put `self.mcp_guard().layer()` around it.
    pub fn mcp_service(&self) -> StreamableHttpService<WhoAmI, LocalSessionManager> {
        StreamableHttpService::new(|| Ok(WhoAmI::new()), Default::default(), self.rmcp_config())
    }
}
