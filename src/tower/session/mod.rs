//! Sessions bound to the caller: [`SessionBinding`] (the settings) and its
//! [`SessionBindingBuilder`]; the middleware, [`SessionBindingLayer`],
//! [`SessionBindingService`] and their [`SessionBindingFuture`]; the binding store in
//! `store`. The overview and examples are on [`SessionBinding`].

mod layer;
mod store;

use std::time::Duration;

use http::HeaderName;

pub use layer::{SessionBindingFuture, SessionBindingLayer, SessionBindingService};

use crate::error::ConfigError;

/// The Streamable HTTP session header.
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// Default bound on the number of sessions remembered: 10 000.
pub const DEFAULT_MAX_SESSIONS: u64 = 10_000;

/// Default time a session is remembered without being used: 1 hour (rmcp closes idle
/// sessions after 5 minutes by default, so a live session is never forgotten first).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// moka refuses durations over 1000 years; anything that long means "never" anyway.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The settings of session binding: sessions bound to the caller that created them.
///
/// MCP's Streamable HTTP transport (protocol versions before 2026-07-28) lets a server hand out
/// a session id in the `Mcp-Session-Id` response header; the client sends it back on every
/// request. A session id is not a credential: every request is authenticated on its own, and
/// the MCP Security Best Practices (*Session Hijacking*) ask servers to bind sessions to the
/// user, so that someone who learns a session id cannot act in it. The
/// [`SessionBindingLayer`] does that:
///
/// - when the response that creates a session (a `2xx` carrying `Mcp-Session-Id`) goes out,
///   the layer records who created it: the token's issuer, subject and client id;
/// - a later request with that session id from another caller is refused with `403` and a
///   JSON body (`"error": "session_forbidden"`), without reaching the MCP service;
/// - a request with a session id the layer does not know (never seen, expired, forgotten) is
///   answered `404`, as MCP asks for ended sessions, so the client starts a new session (see
///   [`SessionBindingBuilder::forward_unknown_sessions`] for deployments with several
///   instances);
/// - a successful `DELETE` forgets the session, as does a `404` from the MCP service;
/// - the layer runs after authentication, so a request without a valid token gets the normal
///   `401` whatever session id it carries.
///
/// Entries expire after [`idle_timeout`](SessionBindingBuilder::idle_timeout) without use and
/// are bounded in number ([`max_sessions`](SessionBindingBuilder::max_sessions); the least
/// recently used go first). They live in memory, per layer. [`SessionBinding::default`] has
/// the defaults; [`SessionBinding::builder`] changes them.
///
/// Mount it through [`McpGuard`](crate::tower::McpGuard), which binds sessions by default and
/// puts the layer after authentication:
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::{Either, Full};
/// use mcp_auth::tower::SessionBinding;
/// use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// # let as_metadata = AuthorizationServerMetadata::authorization_code(
/// #     "https://auth.example.com", "https://auth.example.com/authorize",
/// #     "https://auth.example.com/token");
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::from_metadata(as_metadata)),
///     )
///     .build()?;
/// // A verifier for the example: the token is the user's name.
/// let guard = auth
///     .bearer_auth("https://api.example.com/mcp", |token: String| async move {
///         Ok::<_, VerifyError>(
///             AuthInfo::new(token.clone(), "https://auth.example.com")
///                 .with_subject(token)
///                 .with_audience(["https://api.example.com/mcp"]),
///         )
///     })
///     .build()?;
/// // An MCP service that opens session "s-1" on the request without a session id.
/// let mcp = service_fn(|request: Request<Either<Full<Bytes>, Full<Bytes>>>| async move {
///     let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
///     if !request.headers().contains_key("mcp-session-id") {
///         response.headers_mut().insert("mcp-session-id", "s-1".parse().unwrap());
///     }
///     Ok::<_, Infallible>(response)
/// });
/// let sessions = SessionBinding::builder().max_sessions(10_000).build()?;
/// let service = guard.mcp_guard().session_binding(sessions).layer().layer(mcp);
///
/// let request = |user: &str, session: Option<&str>| {
///     let mut request = Request::post("/mcp").header("authorization", format!("Bearer {user}"));
///     if let Some(session) = session {
///         request = request.header("mcp-session-id", session);
///     }
///     request.body(Full::new(Bytes::new()))
/// };
/// let created = service.clone().oneshot(request("alice", None)?).await?;
/// assert_eq!(created.headers()["mcp-session-id"], "s-1");
/// let bob = service.clone().oneshot(request("bob", Some("s-1"))?).await?;
/// assert_eq!(bob.status(), StatusCode::FORBIDDEN);
/// let alice = service.clone().oneshot(request("alice", Some("s-1"))?).await?;
/// assert_eq!(alice.status(), StatusCode::OK);
/// let unknown = service.oneshot(request("alice", Some("s-2"))?).await?;
/// assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
///
/// The binding key is the issuer, the subject and the client id, all three: a user who signs
/// in again (step-up included) keeps the session; the same user through another client does
/// not. Tokens with neither subject nor client id all share one owner per issuer, so such
/// machine tokens gain nothing from the binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionBinding {
    max_sessions: u64,
    idle_timeout: Duration,
    forward_unknown: bool,
}

impl Default for SessionBinding {
    /// 10 000 sessions, each forgotten after 1 hour without use; unknown session ids answered
    /// 404.
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            forward_unknown: false,
        }
    }
}

impl SessionBinding {
    /// Starts from the [defaults](SessionBinding::default).
    pub fn builder() -> SessionBindingBuilder {
        SessionBindingBuilder {
            settings: Self::default(),
        }
    }

    /// The most sessions remembered at once.
    pub fn max_sessions(&self) -> u64 {
        self.max_sessions
    }

    /// How long a session is remembered without a request.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Whether requests with a session id nobody owns here are passed on (see
    /// [`SessionBindingBuilder::forward_unknown_sessions`]).
    pub fn forwards_unknown_sessions(&self) -> bool {
        self.forward_unknown
    }
}

/// The settings of [`SessionBinding`], checked in [`build`](Self::build). From
/// [`SessionBinding::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionBindingBuilder {
    settings: SessionBinding,
}

impl SessionBindingBuilder {
    /// The most sessions remembered at once; beyond it the least recently used is forgotten
    /// (its next request gets 404 and the client starts a new session). Default:
    /// [`DEFAULT_MAX_SESSIONS`]. [`build`](Self::build) refuses 0.
    pub fn max_sessions(mut self, max_sessions: u64) -> Self {
        self.settings.max_sessions = max_sessions;
        self
    }

    /// How long a session is remembered without a request. Default:
    /// [`DEFAULT_SESSION_IDLE_TIMEOUT`]. Keep it at least as long as the MCP service keeps idle
    /// sessions (rmcp: `SessionConfig::keep_alive`, 5 minutes by default), or clients get 404
    /// for sessions that still exist. Values over 100 years count as 100 years;
    /// [`build`](Self::build) refuses zero.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = timeout.min(LONGEST_TIMEOUT);
        self
    }

    /// What to do with a session id this layer has no owner for. Default `false`: answer 404
    /// (as for an ended session), so a session can never be used by someone other than its
    /// creator, even after its entry expired or was evicted.
    ///
    /// `true` passes such requests on to the MCP service, and the first caller the service
    /// accepts (a `2xx`) becomes the owner on this instance. Use it when sessions can be created
    /// where this layer does not see it (several server instances sharing rmcp's
    /// `session_store`, without sticky routing); it is weaker: whoever presents the id first on
    /// an instance owns it there.
    pub fn forward_unknown_sessions(mut self, forward: bool) -> Self {
        self.settings.forward_unknown = forward;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroSetting`] for [`max_sessions`](Self::max_sessions) 0 (no session
    /// could be kept: every request in a session would get 404) or a zero
    /// [`idle_timeout`](Self::idle_timeout) (likewise).
    pub fn build(self) -> Result<SessionBinding, ConfigError> {
        let settings = self.settings;
        if settings.max_sessions == 0 {
            return Err(ConfigError::ZeroSetting {
                setting: "max_sessions",
                advice: "with room for no session, every request in a session would get 404; \
                         keep the default (10 000) or size it for the sessions open at once",
            });
        }
        if settings.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroSetting {
                setting: "idle_timeout",
                advice: "a session forgotten at once gets 404 on its next request; keep it at \
                         least as long as the MCP service keeps idle sessions (default: 1 hour)",
            });
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_keep_no_session_are_refused() {
        for (builder, setting) in [
            (SessionBinding::builder().max_sessions(0), "max_sessions"),
            (
                SessionBinding::builder().idle_timeout(Duration::ZERO),
                "idle_timeout",
            ),
        ] {
            assert!(
                matches!(builder.build(), Err(ConfigError::ZeroSetting { setting: s, .. }) if s == setting),
                "{setting}"
            );
        }
        assert_eq!(
            SessionBinding::builder().build().unwrap(),
            SessionBinding::default()
        );
    }
}
