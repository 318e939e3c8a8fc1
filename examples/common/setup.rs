//! What the environment gives every whoami example, before any mcp-auth wiring: the settings,
//! where the server listens, the resource it serves, and the authorization server it trusts
//! (the one of `MCP_AUTH_ISSUER`, discovered in the background, or the built-in test server,
//! started now).

use std::fmt;
use std::net::SocketAddr;
use std::process::ExitCode;

use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::{ApiKeyVerifier, IntrospectionVerifier, JwtVerifier};
use mcp_auth::{AuthServer, AuthServerType, ConfigError, protected_resource_metadata_url};
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use url::Url;

use super::config::{Config, DpopMode, is_loopback};
use super::tool::ADMIN_SCOPE;

/// The hosts rmcp accepts in the `Host` header by default (DNS-rebinding protection).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why the server cannot start. `variable` names the configuration at fault, if any.
#[derive(Debug)]
pub struct SetupError {
    pub variable: Option<&'static str>,
    pub problem: String,
}

impl SetupError {
    /// A problem with the setting `variable`: the example exits with code 2.
    pub fn config(variable: &'static str, problem: impl fmt::Display) -> Self {
        Self {
            variable: Some(variable),
            problem: problem.to_string(),
        }
    }

    /// A problem no setting can fix (a port that cannot be read, a server that stopped): the
    /// example exits with code 1.
    pub fn other(problem: impl fmt::Display) -> Self {
        Self {
            variable: None,
            problem: problem.to_string(),
        }
    }

    /// mcp-auth refused the protected resource's configuration: the resource
    /// (`MCP_AUTH_RESOURCE`) is the setting that shapes it.
    pub fn resource(error: ConfigError) -> Self {
        Self::config("MCP_AUTH_RESOURCE", error)
    }

    /// Prints the error and gives the exit code: 2 when a setting is at fault, 1 otherwise.
    pub fn report(&self) -> ExitCode {
        eprintln!("error: {self}");
        if self.variable.is_some() {
            ExitCode::from(2)
        } else {
            ExitCode::FAILURE
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

/// The first discovery of a configured authorization server: says loudly, once, when it fails,
/// what that means for the server (it keeps running, and answers 503 until the authorization
/// server can be used).
async fn warm_up(server: AuthServer, server_type: AuthServerType) {
    if let Err(error) = server.metadata().await {
        eprintln!(
            "warning: the authorization server `{}` (MCP_AUTH_SERVER_TYPE={server_type}) cannot \
             be used yet: {error}\nwarning: the server runs anyway: requests get 503 until the \
             authorization server answers, which is retried with backoff (check \
             MCP_AUTH_ISSUER if this does not heal)",
            server.issuer()
        );
    }
}

/// The whoami server's surroundings, ready for the mcp-auth wiring of each example.
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
    /// The trusted authorization server: `MCP_AUTH_ISSUER`'s, or the built-in one's.
    pub authorization_server: AuthServer,
    /// The built-in test authorization server, when no issuer is configured.
    pub dev_server: Option<TestAuthServer>,
    /// rmcp's legacy session mode (`Mcp-Session-Id`). Off in the examples, so that the
    /// printed curl lines need no session id; the tests turn it on to exercise session
    /// binding, which the guard applies either way.
    pub sessions: bool,
}

impl Setup {
    /// Starts the built-in authorization server if no issuer is configured, or starts
    /// discovering the configured one in the background (a failure is reported, naming
    /// `MCP_AUTH_ISSUER`, but does not stop the server), for the server listening on
    /// `local_addr`.
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

        let (authorization_server, dev_server) = match &config.issuer {
            Some(issuer) => {
                let server = AuthServer::discover(issuer.clone(), config.server_type);
                // Discover now, but do not wait for it: a server whose authorization server is
                // down (or serves garbage) still starts, answers 503 until discovery succeeds,
                // and heals on its own (the library retries with backoff and logs at a bounded
                // rate). Only settings that can never work (checked above) stop it.
                tokio::spawn(warm_up(server.clone(), config.server_type));
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
        let issuer = authorization_server.issuer().to_owned();

        Ok(Self {
            config,
            local_addr,
            resource,
            mcp_path,
            mcp_url,
            metadata_url,
            issuer,
            authorization_server,
            dev_server,
            sessions: false,
        })
    }

    /// The introspection verifier (`MCP_AUTH_VERIFIER=introspection`), with the MCP server's
    /// own credentials at the introspection endpoint: `MCP_AUTH_CLIENT_ID` and
    /// `MCP_AUTH_CLIENT_SECRET`, or the built-in server's client.
    pub fn introspection_verifier(&self) -> Result<IntrospectionVerifier, SetupError> {
        let (id, secret) = match (&self.config.client_credentials, &self.dev_server) {
            (Some((id, secret)), _) => (id.clone(), secret.clone()),
            (None, Some(dev)) => (dev.client_id().to_owned(), dev.client_secret().to_owned()),
            (None, None) => {
                return Err(SetupError::config(
                    "MCP_AUTH_CLIENT_ID",
                    "introspection needs client credentials",
                ));
            }
        };
        IntrospectionVerifier::builder(self.authorization_server.clone())
            .client_secret_basic(id, secret)
            .build()
            .map_err(|e| SetupError::config("MCP_AUTH_CLIENT_ID", e))
    }

    /// The JWT verifier (`MCP_AUTH_VERIFIER=jwt`): the keys of the authorization server's
    /// JWKS, with the defaults (what `McpAuth::bearer_auth_jwt` builds).
    pub fn jwt_verifier(&self) -> Result<JwtVerifier, SetupError> {
        JwtVerifier::builder()
            .authorization_server(self.authorization_server.clone())
            .build()
            .map_err(|e| SetupError::config("MCP_AUTH_ISSUER", e))
    }

    /// The API-key verifier of `MCP_AUTH_API_KEYS`, if set. Its `AuthInfo`s name this
    /// resource as their issuer (the keys are the server's own).
    /// The DPoP settings `MCP_AUTH_DPOP` and `MCP_AUTH_DPOP_NONCE` ask for, `None` when off.
    pub fn dpop_config(&self) -> Result<Option<mcp_auth::dpop::DpopConfig>, SetupError> {
        if self.config.dpop == DpopMode::Off {
            return Ok(None);
        }
        mcp_auth::dpop::DpopConfig::builder()
            .require(self.config.dpop == DpopMode::Require)
            .nonces(self.config.dpop_nonce)
            .build()
            .map(Some)
            .map_err(|error| SetupError::config("MCP_AUTH_DPOP", error))
    }

    pub fn api_key_verifier(&self) -> Result<Option<ApiKeyVerifier>, SetupError> {
        let Some(keys) = &self.config.api_keys else {
            return Ok(None);
        };
        ApiKeyVerifier::builder()
            .issuer(self.resource.clone())
            .keys_from_str(keys)
            .build()
            .map(Some)
            .map_err(|e| SetupError::config("MCP_AUTH_API_KEYS", e))
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
}
