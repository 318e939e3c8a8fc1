//! Sessions bound to the caller: [`SessionBinding`] (the settings) and its
//! [`SessionBindingBuilder`]; the middleware, [`SessionBindingLayer`],
//! [`SessionBindingService`] and their [`SessionBindingFuture`]; the binding store in
//! `store` and its tombstones in `tombstones`. The overview, the design and the memory bound
//! are on [`SessionBinding`].

mod layer;
mod shared;
mod store;
mod tombstones;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

pub use layer::{SessionBindingFuture, SessionBindingLayer, SessionBindingService};

use crate::error::ConfigError;
use crate::store::StateStore;

/// The Streamable HTTP session header.
pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// Default bound on the number of sessions remembered: 10 000.
pub const DEFAULT_MAX_SESSIONS: u64 = 10_000;

/// Default bound on the sessions of one principal (issuer + subject + client id): 16.
///
/// An MCP client opens one session per connection; 16 leaves room for a user's several windows
/// and reconnects without DELETE, while filling the default [`DEFAULT_MAX_SESSIONS`] takes 625
/// principals, not one. A principal opening a 17th session forgets its own least recently used
/// one.
pub const DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: u64 = 16;

/// Default capacity of the tombstones (forgotten session ids, kept only when
/// [forwarding unknown sessions](SessionBindingBuilder::forward_unknown_sessions)): one
/// million ids at under 1 % false positives, in 1.25 MB.
pub const DEFAULT_TOMBSTONE_CAPACITY: u64 = 1_000_000;

/// The largest [`tombstone_capacity`](SessionBindingBuilder::tombstone_capacity) accepted: one
/// billion ids, 1.25 GB.
pub const MAX_TOMBSTONE_CAPACITY: u64 = 1_000_000_000;

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
/// - when the response that creates a session goes out (a `2xx` carrying `Mcp-Session-Id`, to
///   a request without one: the `initialize` request), the layer records who created it: the
///   token's issuer, subject and client id. That is the only way a session this layer sees
///   created gets an owner; a session id in any other answer is ignored;
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
/// # Nobody can push anybody else out
///
/// The bindings are bounded three ways, each checked in the request that needs it (no
/// background task: when the answer goes out, the bookkeeping is done):
///
/// - per principal ([`max_sessions_per_principal`](SessionBindingBuilder::max_sessions_per_principal),
///   16 by default): a caller opening one more session than that forgets **its own** least
///   recently used one, never another caller's;
/// - in all ([`max_sessions`](SessionBindingBuilder::max_sessions), 10 000): a new session in
///   a full store forgets the least recently used one. With the per-principal cap, filling the
///   store takes at least `max_sessions / max_sessions_per_principal` principals (625 by
///   default), each holding a valid token;
/// - in time ([`idle_timeout`](SessionBindingBuilder::idle_timeout), 1 hour without use).
///
/// # Forgetting never hands a session to someone else
///
/// A forgotten session's next request gets 404 and its client starts a new session; the id is
/// never served to anyone again. With the default (unknown ids answered 404) that holds by
/// construction: a binding is made only when the service creates a session, so a forgotten id
/// can never gain an owner again.
///
/// [Forwarding unknown ids](SessionBindingBuilder::forward_unknown_sessions) must bind ids it
/// did not see created (sessions made on another instance), to their first presenter; that
/// alone would let anyone claim an id this layer forgot, by presenting it next. So, when
/// forwarding, every id the layer stops binding (evicted, idle, ended) becomes a tombstone,
/// and a tombstoned id is refused with 404 for everyone, its former owner included, never
/// forwarded and never bound again. The tombstones are a Bloom filter of the ids' digests:
/// bounded memory, and no overflow, because a Bloom filter never loses an entry. Past its
/// [capacity](SessionBindingBuilder::tombstone_capacity) only its false positives grow: some
/// ids this layer never saw are then taken for forgotten ones and refused (404) instead of
/// forwarded, which is what the default does with them. It degrades toward refusing, never
/// toward claiming. What forwarding cannot protect is an id presented first by someone other
/// than its creator on an instance that never bound it; bindings are in memory, so a restart
/// forgets them (tombstones included). Use sticky routing and keep forwarding off where you
/// can.
///
/// # Memory
///
/// Keys are digests (16 bytes of SHA-256) of the session id and of the principal, so a
/// binding costs the same whatever the length of the ids and claims; the store keeps no ids
/// and no identities. Measured (bytes requested from the allocator, with a counting
/// allocator): at most about **320 bytes per session** when every session has its own
/// principal (273 B each at 10 000 sessions), 163 B at 16 sessions per principal. The bound
/// is `max_sessions × 320 B` (3.2 MB by default), plus, when forwarding unknown sessions, the
/// tombstones: `tombstone_capacity × 1.25 B` (1.25 MB by default), allocated when the layer
/// is made. Each layer (each [`McpGuard::layer`](crate::tower::McpGuard::layer) call) has its
/// own.
///
/// [`SessionBinding::default`] has the defaults; [`SessionBinding::builder`] changes them.
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
#[derive(Clone)]
pub struct SessionBinding {
    max_sessions: u64,
    max_sessions_per_principal: u64,
    idle_timeout: Duration,
    forward_unknown: bool,
    tombstone_capacity: u64,
    store: Option<Arc<dyn StateStore>>,
}

impl fmt::Debug for SessionBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBinding")
            .field("max_sessions", &self.max_sessions)
            .field(
                "max_sessions_per_principal",
                &self.max_sessions_per_principal,
            )
            .field("idle_timeout", &self.idle_timeout)
            .field("forward_unknown", &self.forward_unknown)
            .field("tombstone_capacity", &self.tombstone_capacity)
            .field("store", &self.store.as_ref().map(|store| store.name()))
            .finish()
    }
}

/// Equal settings; two stores are equal when they are the same instance.
impl PartialEq for SessionBinding {
    fn eq(&self, other: &Self) -> bool {
        let same_store = match (&self.store, &other.store) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_store
            && self.max_sessions == other.max_sessions
            && self.max_sessions_per_principal == other.max_sessions_per_principal
            && self.idle_timeout == other.idle_timeout
            && self.forward_unknown == other.forward_unknown
            && self.tombstone_capacity == other.tombstone_capacity
    }
}

impl Eq for SessionBinding {}

impl Default for SessionBinding {
    /// 10 000 sessions, at most 16 per principal, each forgotten after 1 hour without use;
    /// unknown session ids answered 404 (so no tombstones are kept).
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_sessions_per_principal: DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
            idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            forward_unknown: false,
            tombstone_capacity: DEFAULT_TOMBSTONE_CAPACITY,
            store: None,
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

    /// The most sessions remembered for one principal (issuer + subject + client id).
    pub fn max_sessions_per_principal(&self) -> u64 {
        self.max_sessions_per_principal
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

    /// The forgotten session ids the tombstones hold at under 1 % false positives (used only
    /// when [forwarding unknown sessions](Self::forwards_unknown_sessions)).
    pub fn tombstone_capacity(&self) -> u64 {
        self.tombstone_capacity
    }

    /// The name of the shared store the bindings are kept in (`redis`, ...), or `None` for
    /// this process's memory (the default).
    pub fn store_name(&self) -> Option<&'static str> {
        self.store.as_ref().map(|store| store.name())
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
    /// [`DEFAULT_MAX_SESSIONS`]. With the per-principal cap, a full store means at least
    /// `max_sessions / max_sessions_per_principal` principals. Memory: at most about
    /// 320 bytes per session, whatever the length of the ids and claims (see
    /// [`SessionBinding`], *Memory*). [`build`](Self::build) refuses 0.
    pub fn max_sessions(mut self, max_sessions: u64) -> Self {
        self.settings.max_sessions = max_sessions;
        self
    }

    /// The most sessions remembered for one principal (the token's issuer, subject and client
    /// id); a principal opening one more forgets **its own** least recently used session,
    /// never another principal's, so one caller cannot push everyone else out. Default:
    /// [`DEFAULT_MAX_SESSIONS_PER_PRINCIPAL`] (16).
    ///
    /// Its own oldest goes, rather than the new session being refused: clients that reconnect
    /// without `DELETE` leave idle sessions behind, and refusing would lock such a user out
    /// until they expire; forgetting its own oldest harms nobody else. Tokens with neither
    /// subject nor client id share one principal per issuer, so they share this cap: raise it
    /// for such machine clients. Values above [`max_sessions`](Self::max_sessions) act as
    /// `max_sessions`; [`build`](Self::build) refuses 0.
    pub fn max_sessions_per_principal(mut self, max_sessions: u64) -> Self {
        self.settings.max_sessions_per_principal = max_sessions;
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

    /// What to do with a session id this layer has never bound. Default `false`: answer 404
    /// (as for an ended session), so a session can only ever be used by its creator.
    ///
    /// `true` passes such requests on to the MCP service, and the first caller the service
    /// accepts (a `2xx`) becomes the owner on this instance. Use it when sessions can be created
    /// where this layer does not see it (several server instances sharing rmcp's
    /// `session_store`, without sticky routing); it is weaker: whoever presents an id created
    /// elsewhere first on an instance owns it there. An id this layer **has** bound and then
    /// forgot (evicted, idle, ended) is still refused with 404 for everyone: the layer keeps
    /// [tombstones](Self::tombstone_capacity) so that forgetting never makes an id claimable.
    pub fn forward_unknown_sessions(mut self, forward: bool) -> Self {
        self.settings.forward_unknown = forward;
        self
    }

    /// How many forgotten session ids the tombstones hold at under 1 % false positives; only
    /// used with [`forward_unknown_sessions(true)`](Self::forward_unknown_sessions). Default:
    /// [`DEFAULT_TOMBSTONE_CAPACITY`] (one million). Memory: 1.25 bytes per id of capacity,
    /// allocated when the layer is made (1.25 MB by default).
    ///
    /// The tombstones never lose an id: past the capacity, only the share of never-seen ids
    /// that are taken for forgotten ones grows (0.8 % at capacity, 14 % at twice, 40 % at
    /// three times), and those get 404 instead of being forwarded: the layer drifts
    /// toward the default (no forwarding), never toward handing a forgotten session to
    /// someone. A warning is logged once the capacity is passed. Size it for the sessions
    /// this instance binds between restarts. [`build`](Self::build) refuses 0 and more than
    /// [`MAX_TOMBSTONE_CAPACITY`].
    pub fn tombstone_capacity(mut self, ids: u64) -> Self {
        self.settings.tombstone_capacity = ids;
        self
    }

    /// Keeps the bindings in `store`, shared by every replica that uses it, instead of this
    /// process's memory (the default: no store). For several replicas behind a load balancer
    /// without sticky sessions, with a `RedisStore` (feature `redis`): a session
    /// created through one replica is then refused to other callers, and served to its owner,
    /// on all of them.
    ///
    /// With a store:
    ///
    /// - a session's owner is recorded with one atomic
    ///   [`insert_if_absent`](StateStore::insert_if_absent) (value: the 16-byte digest of the
    ///   principal; key: a digest of the session id), living
    ///   [`idle_timeout`](Self::idle_timeout); each request in the session is one
    ///   [`get_and_refresh`](StateStore::get_and_refresh), which restarts that timer;
    /// - **every store error fails closed**: the request is answered `503` (with
    ///   `Retry-After: 1`) and never reaches the MCP service, and the error is counted in
    ///   `mcp_auth_session_store_errors_total{store}`. A session created while the store
    ///   cannot record it is answered 503 too, so no session exists without an owner;
    /// - [`max_sessions`](Self::max_sessions) and
    ///   [`max_sessions_per_principal`](Self::max_sessions_per_principal) are not applied (the
    ///   store's own memory bound is; each binding is about 120 bytes in Redis), and
    ///   [`forward_unknown_sessions`](Self::forward_unknown_sessions) is refused by
    ///   [`build`](Self::build): every replica's sessions are known, so an unknown id is 404.
    pub fn store(mut self, store: impl StateStore) -> Self {
        self.settings.store = Some(Arc::new(store));
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::ZeroSetting`] for [`max_sessions`](Self::max_sessions),
    ///   [`max_sessions_per_principal`](Self::max_sessions_per_principal) or
    ///   [`tombstone_capacity`](Self::tombstone_capacity) 0, or a zero
    ///   [`idle_timeout`](Self::idle_timeout) (no session could be kept: every request in a
    ///   session would get 404);
    /// - [`ConfigError::SettingTooLarge`] for a `tombstone_capacity` over
    ///   [`MAX_TOMBSTONE_CAPACITY`];
    /// - [`ConfigError::ForwardingWithSharedSessions`] for a [`store`](Self::store) with
    ///   `forward_unknown_sessions(true)`.
    pub fn build(self) -> Result<SessionBinding, ConfigError> {
        let settings = self.settings;
        if settings.store.is_some() && settings.forward_unknown {
            return Err(ConfigError::ForwardingWithSharedSessions);
        }
        if settings.max_sessions == 0 {
            return Err(ConfigError::ZeroSetting {
                setting: "max_sessions",
                advice: "with room for no session, every request in a session would get 404; \
                         keep the default (10 000) or size it for the sessions open at once",
            });
        }
        if settings.max_sessions_per_principal == 0 {
            return Err(ConfigError::ZeroSetting {
                setting: "max_sessions_per_principal",
                advice: "with room for no session per caller, every request in a session would \
                         get 404; keep the default (16) or size it for one user's open sessions",
            });
        }
        if settings.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroSetting {
                setting: "idle_timeout",
                advice: "a session forgotten at once gets 404 on its next request; keep it at \
                         least as long as the MCP service keeps idle sessions (default: 1 hour)",
            });
        }
        if settings.tombstone_capacity == 0 {
            return Err(ConfigError::ZeroSetting {
                setting: "tombstone_capacity",
                advice: "the tombstones keep forgotten session ids from being claimed when \
                         unknown sessions are forwarded; keep the default (one million)",
            });
        }
        if settings.tombstone_capacity > MAX_TOMBSTONE_CAPACITY {
            return Err(ConfigError::SettingTooLarge {
                setting: "tombstone_capacity",
                value: settings.tombstone_capacity,
                max: MAX_TOMBSTONE_CAPACITY,
                advice: "the tombstones take 1.25 bytes each, allocated at once; size them for \
                         the sessions one instance binds between restarts",
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
                SessionBinding::builder().max_sessions_per_principal(0),
                "max_sessions_per_principal",
            ),
            (
                SessionBinding::builder().idle_timeout(Duration::ZERO),
                "idle_timeout",
            ),
            (
                SessionBinding::builder().tombstone_capacity(0),
                "tombstone_capacity",
            ),
        ] {
            assert!(
                matches!(builder.build(), Err(ConfigError::ZeroSetting { setting: s, .. }) if s == setting),
                "{setting}"
            );
        }
        let huge = SessionBinding::builder()
            .tombstone_capacity(MAX_TOMBSTONE_CAPACITY + 1)
            .build();
        assert!(
            matches!(
                &huge,
                Err(ConfigError::SettingTooLarge {
                    setting: "tombstone_capacity",
                    ..
                })
            ),
            "{huge:?}"
        );
        assert_eq!(
            SessionBinding::builder().build().unwrap(),
            SessionBinding::default()
        );
    }

    #[test]
    fn the_defaults_cap_each_principal_and_forward_nothing() {
        let defaults = SessionBinding::default();
        assert_eq!(defaults.max_sessions(), 10_000);
        assert_eq!(defaults.max_sessions_per_principal(), 16);
        assert!(!defaults.forwards_unknown_sessions());
        assert_eq!(defaults.tombstone_capacity(), 1_000_000);
    }
}
