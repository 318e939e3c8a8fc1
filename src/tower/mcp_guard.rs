//! [`McpGuard`]: the bearer guard plus MCP-aware authorization (per-operation scopes, sessions
//! bound to the caller), stacked in the one order that is safe, as one tower layer.

use std::fmt;

use tower_layer::Layer;

use super::bearer::{BearerAuthLayer, BearerAuthService};
use super::operation_scopes::{OperationScopes, OperationScopesLayer, OperationScopesService};
use super::session::{SessionBinding, SessionBindingLayer, SessionBindingService};
use crate::bearer::BearerAuth;

/// The service an [`McpGuardLayer`] makes: authentication, then session binding, then the
/// per-operation scope check, then `S`.
pub type McpGuardService<S> = BearerAuthService<SessionBindingService<OperationScopesService<S>>>;

impl BearerAuth {
    /// This guard with the MCP-aware checks on top: sessions bound to their caller (on by
    /// default) and a per-operation scope policy (empty by default). See [`McpGuard`].
    ///
    /// `guard.mcp_guard().layer()` replaces `guard.layer()` in front of an MCP service.
    pub fn mcp_guard(&self) -> McpGuard {
        McpGuard::new(self.clone())
    }
}

/// The bearer guard of an MCP endpoint together with its MCP-aware checks, mounted as one
/// tower layer so they always run in the right order:
///
/// 1. [`BearerAuthLayer`]: every request is authenticated (401/400/403 as usual); nothing
///    below runs for a request that fails, and no body is read;
/// 2. [`SessionBindingLayer`]: a `Mcp-Session-Id` is only honoured for the caller that created
///    the session (403 otherwise, 404 for unknown ids). **On by default**, with
///    [`SessionBinding::default`]; it has no effect on servers that do not issue sessions
///    (stateless Streamable HTTP, MCP 2026-07-28);
/// 3. [`OperationScopesLayer`]: the operation's scopes (403 `insufficient_scope` step-up
///    challenge), from the body, or for MCP 2026-07-28 requests from their `Mcp-Method` /
///    `Mcp-Name` headers, which must be present and agree with the body (400 with the JSON-RPC
///    error `-32020` otherwise). Empty by default: no body is read (the 2026-07-28 headers are
///    still required), and tool handlers still get [`GrantedScopes`](crate::scope::GrantedScopes).
///
/// Get one from [`BearerAuth::mcp_guard`] (or [`McpGuard::new`]), set it up with
/// [`operation_scopes`](Self::operation_scopes) and [`session_binding`](Self::session_binding)
/// (or [`no_session_binding`](Self::no_session_binding)); [`layer`](Self::layer) gives the
/// tower layer. The inner service
/// receives `Request<Either<ReqBody, Full<Bytes>>>` (see [`OperationScopesLayer`]), which rmcp's
/// `StreamableHttpService` and axum routers accept.
///
/// ```
/// use mcp_auth::tower::{ChallengeScopes, OperationScopes, SessionBinding};
/// use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
/// use std::time::Duration;
///
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::discover("https://auth.example.com", AuthServerType::Oidc))
///             .scopes_supported(["files:read"]),
///     )
///     .build()?;
/// let guard = auth
///     .bearer_auth_jwt("https://api.example.com/mcp")
///     .required_scopes(["files:read"])
///     .build()?;
/// let policy = OperationScopes::builder()
///     .tool("delete_file", ["files:write"])
///     .challenge_scopes(ChallengeScopes::Required)
///     .build()?;
/// let sessions = SessionBinding::builder()
///     .idle_timeout(Duration::from_secs(900))
///     .build()?;
/// let layer = guard
///     .mcp_guard()
///     .operation_scopes(policy)
///     .session_binding(sessions)
///     .layer();
/// // axum: Router::new().route_service("/mcp", layer.layer(streamable_http_service))
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct McpGuard {
    guard: BearerAuth,
    policy: OperationScopes,
    sessions: Option<SessionBinding>,
}

impl fmt::Debug for McpGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpGuard")
            .field("guard", &self.guard)
            .field("policy", &self.policy)
            .field("sessions", &self.sessions)
            .finish()
    }
}

impl McpGuard {
    /// `guard` with session binding on (defaults) and an empty scope policy.
    pub fn new(guard: BearerAuth) -> Self {
        Self {
            guard,
            policy: OperationScopes::default(),
            sessions: Some(SessionBinding::default()),
        }
    }

    /// The per-operation scope policy (replacing the previous one). Default: the empty
    /// [`OperationScopes`], which never reads a body.
    pub fn operation_scopes(mut self, policy: OperationScopes) -> Self {
        self.policy = policy;
        self
    }

    /// Binds sessions with `settings` (replacing the previous ones, and turning binding back
    /// on after [`no_session_binding`](Self::no_session_binding)). Default:
    /// [`SessionBinding::default`].
    pub fn session_binding(mut self, settings: SessionBinding) -> Self {
        self.sessions = Some(settings);
        self
    }

    /// Turns session binding off: session ids are passed on without any check (they are
    /// still never a credential: every request is authenticated).
    pub fn no_session_binding(mut self) -> Self {
        self.sessions = None;
        self
    }

    /// The bearer guard.
    pub fn guard(&self) -> &BearerAuth {
        &self.guard
    }

    /// The tower layer. Each call makes a new set of remembered sessions; clones of one
    /// layer (and the services it makes) share theirs.
    pub fn layer(&self) -> McpGuardLayer {
        let sessions = match &self.sessions {
            Some(settings) => SessionBindingLayer::new(self.guard.clone(), settings.clone()),
            None => SessionBindingLayer::disabled(self.guard.clone()),
        };
        McpGuardLayer {
            bearer: self.guard.layer(),
            sessions,
            scopes: OperationScopesLayer::new(self.guard.clone(), self.policy.clone()),
        }
    }

    /// Only the MCP-aware checks (session binding, then the per-operation scopes), for stacks
    /// whose own middleware authenticates with this guard and puts the verified
    /// [`AuthInfo`](crate::AuthInfo) into the `http::Request` extensions before the MCP
    /// service (for example actix-web, whose middleware cannot wrap a tower service: the
    /// handler bridges each request to the tower service, AuthInfo included). Requests that
    /// reach it without an `AuthInfo` are answered as
    /// [`BearerAuthError::MissingAuthInfo`](crate::BearerAuthError::MissingAuthInfo) (500).
    /// Prefer [`layer`](Self::layer)
    /// wherever tower middleware can do the authentication.
    pub fn checks_layer(&self) -> McpChecksLayer {
        self.layer().into_checks()
    }
}

/// The MCP-aware checks of an [`McpGuard`] without the authentication in front: session
/// binding, then the per-operation scopes. See [`McpGuard::checks_layer`].
pub type McpChecksLayer = tower_layer::Stack<OperationScopesLayer, SessionBindingLayer>;

/// The service an [`McpChecksLayer`] makes.
pub type McpChecksService<S> = SessionBindingService<OperationScopesService<S>>;

/// The tower layer of an [`McpGuard`]: makes [`McpGuardService`]s.
#[derive(Clone, Debug)]
pub struct McpGuardLayer {
    bearer: BearerAuthLayer,
    sessions: SessionBindingLayer,
    scopes: OperationScopesLayer,
}

impl McpGuardLayer {
    fn into_checks(self) -> McpChecksLayer {
        tower_layer::Stack::new(self.scopes, self.sessions)
    }
}

impl<S> Layer<S> for McpGuardLayer {
    type Service = McpGuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.bearer
            .layer(self.sessions.layer(self.scopes.layer(inner)))
    }
}
