//! The examples' configuration: environment variables and `--port`.

use std::fmt;
use std::net::IpAddr;

use mcp_auth::AuthServerType;
use mcp_auth::verify::ApiKeyVerifier;
use url::Url;

/// Which verifier checks the bearer tokens (`MCP_AUTH_VERIFIER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifierKind {
    /// JWT access tokens checked locally with the issuer's JWKS (the default).
    Jwt,
    /// Tokens checked by calling the OpenID Connect userinfo endpoint.
    Userinfo,
    /// Tokens checked with RFC 7662 introspection.
    Introspection,
}

impl VerifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Userinfo => "userinfo",
            Self::Introspection => "introspection",
        }
    }
}

/// Whether the guard checks DPoP (`MCP_AUTH_DPOP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpopMode {
    /// No DPoP: `Bearer` only; DPoP-bound tokens are refused (the default).
    Off,
    /// `Bearer` and `DPoP` both accepted.
    Allow,
    /// `DPoP` only: `Bearer` refused.
    Require,
}

impl DpopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Allow => "allow",
            Self::Require => "require",
        }
    }
}

/// Everything the examples read from their environment and command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `--port` or `PORT`; `0` lets the OS choose.
    pub port: u16,
    /// `MCP_AUTH_ISSUER`; `None` starts the built-in test authorization server.
    pub issuer: Option<String>,
    /// `MCP_AUTH_SERVER_TYPE` (default `oidc`).
    pub server_type: AuthServerType,
    /// `MCP_AUTH_VERIFIER` (default `jwt`).
    pub verifier: VerifierKind,
    /// `MCP_AUTH_CLIENT_ID` / `MCP_AUTH_CLIENT_SECRET`, the introspection credentials.
    pub client_credentials: Option<(String, String)>,
    /// `MCP_AUTH_RESOURCE`; default `http://localhost:<port>/mcp`.
    pub resource: Option<String>,
    /// `MCP_AUTH_AUDIENCE` (space-separated); default: the resource.
    pub audience: Vec<String>,
    /// `MCP_AUTH_REQUIRED_SCOPES` (space-separated); default: none.
    pub required_scopes: Vec<String>,
    /// `MCP_AUTH_API_KEYS`: API keys accepted beside OAuth tokens, as
    /// `name:sha256:<hex>:scope1 scope2` entries separated by `;` or new lines (hashes only,
    /// checked when read). Default: none.
    pub api_keys: Option<String>,
    /// `MCP_AUTH_DPOP` (default `off`).
    pub dpop: DpopMode,
    /// `MCP_AUTH_DPOP_NONCE=1`: server nonces on DPoP proofs (default off).
    pub dpop_nonce: bool,
}

/// A configuration mistake, naming the variable or argument at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `PORT`, `--port`, `MCP_AUTH_ISSUER`, ...
    pub variable: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// What `--help` prints.
pub const USAGE: &str = "\
Options:
  --port <PORT>   port to listen on (also env PORT; 0 picks a free port)
  -h, --help      print this help

Environment (all optional; without MCP_AUTH_ISSUER a built-in TEST authorization server is started):
  PORT                      port to listen on
  MCP_AUTH_ISSUER           issuer URL of your authorization server (https, or http on loopback)
  MCP_AUTH_SERVER_TYPE      oidc | oauth | auto                       (default oidc)
  MCP_AUTH_VERIFIER         jwt | userinfo | introspection            (default jwt)
  MCP_AUTH_CLIENT_ID        introspection client id
  MCP_AUTH_CLIENT_SECRET    introspection client secret
  MCP_AUTH_RESOURCE         the protected resource identifier   (default http://localhost:<port>/mcp)
  MCP_AUTH_AUDIENCE         accepted token audiences, space-separated (default: the resource)
  MCP_AUTH_REQUIRED_SCOPES  scopes every request needs, space-separated (default: none)
  MCP_AUTH_DPOP             off | allow | require: DPoP (RFC 9449) proofs (default off)
  MCP_AUTH_DPOP_NONCE       1: DPoP server nonces (use_dpop_nonce + DPoP-Nonce) (default 0)
  MCP_AUTH_API_KEYS         API keys accepted beside OAuth tokens (default: none): entries
                            name:sha256:<hex>:scope1 scope2, separated by `;` or new lines.
                            Clients send the key as the bearer token; keys start with `mcpk_`.
                            Only the SHA-256 is configured, never the key:
                              KEY=mcpk_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')
                              HASH=sha256:$(printf %s \"$KEY\" | sha256sum | cut -d' ' -f1)
                              MCP_AUTH_API_KEYS=\"ci:$HASH:read\"
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Run the server.
    Run(Config),
    /// Print [`USAGE`] and exit.
    Help,
}

impl Config {
    /// The defaults: the given port, the built-in authorization server, JWT verification.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            issuer: None,
            server_type: AuthServerType::Oidc,
            verifier: VerifierKind::Jwt,
            client_credentials: None,
            resource: None,
            audience: Vec::new(),
            required_scopes: Vec::new(),
            api_keys: None,
            dpop: DpopMode::Off,
            dpop_nonce: false,
        }
    }

    /// Reads the process environment and arguments.
    pub fn from_env(default_port: u16) -> Result<Command, ConfigError> {
        Self::parse(
            default_port,
            |name| std::env::var(name).ok(),
            std::env::args().skip(1),
        )
    }

    /// Reads `env` (a variable lookup) and `args` (without the program name). Empty variables
    /// count as unset.
    pub fn parse(
        default_port: u16,
        env: impl Fn(&str) -> Option<String>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Command, ConfigError> {
        let env = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut config = Self::new(default_port);

        if let Some(port) = env("PORT") {
            config.port = parse_port("PORT", &port)?;
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "--port" => {
                    let value = args.next().ok_or_else(|| {
                        ConfigError::new("--port", "expected a port number after --port")
                    })?;
                    config.port = parse_port("--port", &value)?;
                }
                other => match other.strip_prefix("--port=") {
                    Some(value) => config.port = parse_port("--port", value)?,
                    None => {
                        return Err(ConfigError::new(
                            other,
                            "unknown argument; the only option is --port <PORT> (see --help)",
                        ));
                    }
                },
            }
        }

        if let Some(issuer) = env("MCP_AUTH_ISSUER") {
            check_issuer(&issuer)?;
            config.issuer = Some(issuer);
        }
        if let Some(kind) = env("MCP_AUTH_SERVER_TYPE") {
            config.server_type = kind.parse().map_err(|_| {
                ConfigError::new(
                    "MCP_AUTH_SERVER_TYPE",
                    format!("`{kind}` is not one of oidc, oauth, auto"),
                )
            })?;
        }
        if let Some(verifier) = env("MCP_AUTH_VERIFIER") {
            config.verifier = match verifier.to_ascii_lowercase().as_str() {
                "jwt" => VerifierKind::Jwt,
                "userinfo" => VerifierKind::Userinfo,
                "introspection" => VerifierKind::Introspection,
                _ => {
                    return Err(ConfigError::new(
                        "MCP_AUTH_VERIFIER",
                        format!("`{verifier}` is not one of jwt, userinfo, introspection"),
                    ));
                }
            };
        }
        match (env("MCP_AUTH_CLIENT_ID"), env("MCP_AUTH_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => config.client_credentials = Some((id, secret)),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "MCP_AUTH_CLIENT_SECRET",
                    "is required when MCP_AUTH_CLIENT_ID is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "MCP_AUTH_CLIENT_ID",
                    "is required when MCP_AUTH_CLIENT_SECRET is set",
                ));
            }
            (None, None) => {}
        }
        if config.verifier == VerifierKind::Introspection
            && config.issuer.is_some()
            && config.client_credentials.is_none()
        {
            return Err(ConfigError::new(
                "MCP_AUTH_CLIENT_ID",
                "MCP_AUTH_VERIFIER=introspection with MCP_AUTH_ISSUER needs MCP_AUTH_CLIENT_ID and \
                 MCP_AUTH_CLIENT_SECRET (the resource server's credentials at the introspection endpoint)",
            ));
        }
        if let Some(resource) = env("MCP_AUTH_RESOURCE") {
            check_resource(&resource)?;
            config.resource = Some(resource);
        }
        if let Some(audience) = env("MCP_AUTH_AUDIENCE") {
            config.audience = audience.split_whitespace().map(str::to_owned).collect();
        }
        if let Some(scopes) = env("MCP_AUTH_REQUIRED_SCOPES") {
            config.required_scopes = scopes.split_whitespace().map(str::to_owned).collect();
            if let Some(bad) = config
                .required_scopes
                .iter()
                .find(|s| !s.bytes().all(is_scope_char))
            {
                return Err(ConfigError::new(
                    "MCP_AUTH_REQUIRED_SCOPES",
                    format!("`{bad}` is not a valid scope (printable ASCII without `\"` or `\\`)"),
                ));
            }
        }
        if let Some(mode) = env("MCP_AUTH_DPOP") {
            config.dpop = match mode.as_str() {
                "off" => DpopMode::Off,
                "allow" => DpopMode::Allow,
                "require" => DpopMode::Require,
                other => {
                    return Err(ConfigError::new(
                        "MCP_AUTH_DPOP",
                        format!("`{other}` is not one of off, allow, require"),
                    ));
                }
            };
        }
        if let Some(nonce) = env("MCP_AUTH_DPOP_NONCE") {
            config.dpop_nonce = match nonce.as_str() {
                "1" | "true" => true,
                "0" | "false" | "" => false,
                other => {
                    return Err(ConfigError::new(
                        "MCP_AUTH_DPOP_NONCE",
                        format!("`{other}` is not 1 or 0"),
                    ));
                }
            };
            if config.dpop_nonce && config.dpop == DpopMode::Off {
                return Err(ConfigError::new(
                    "MCP_AUTH_DPOP_NONCE",
                    "needs MCP_AUTH_DPOP=allow or require",
                ));
            }
        }
        if let Some(keys) = env("MCP_AUTH_API_KEYS") {
            // Checked now (hashes, names, scopes), so that a mistake stops the server at start.
            ApiKeyVerifier::from_config(&keys)
                .map_err(|e| ConfigError::new("MCP_AUTH_API_KEYS", e.to_string()))?;
            config.api_keys = Some(keys);
        }
        Ok(Command::Run(config))
    }
}

fn parse_port(variable: &str, value: &str) -> Result<u16, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            variable,
            format!("`{value}` is not a port number (0-65535)"),
        )
    })
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

/// Whether a URL's host is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn check_issuer(issuer: &str) -> Result<(), ConfigError> {
    let url = Url::parse(issuer).map_err(|e| {
        ConfigError::new(
            "MCP_AUTH_ISSUER",
            format!("`{issuer}` is not an absolute URL ({e})"),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                "MCP_AUTH_ISSUER",
                format!(
                    "`{issuer}` uses plain http, which is allowed only for loopback hosts (localhost, 127.0.0.1, ::1); use https"
                ),
            ));
        }
        other => {
            return Err(ConfigError::new(
                "MCP_AUTH_ISSUER",
                format!("`{issuer}` has the scheme `{other}`; an issuer is an https URL"),
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            "MCP_AUTH_ISSUER",
            format!("`{issuer}` must not have a query or fragment"),
        ));
    }
    Ok(())
}

fn check_resource(resource: &str) -> Result<(), ConfigError> {
    let url = Url::parse(resource).map_err(|e| {
        ConfigError::new(
            "MCP_AUTH_RESOURCE",
            format!("`{resource}` is not an absolute URL ({e})"),
        )
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(ConfigError::new(
            "MCP_AUTH_RESOURCE",
            format!("`{resource}` must be an https URL (plain http only on loopback hosts)"),
        )),
    }?;
    if url.fragment().is_some() {
        return Err(ConfigError::new(
            "MCP_AUTH_RESOURCE",
            format!("`{resource}` must not have a fragment"),
        ));
    }
    Ok(())
}
