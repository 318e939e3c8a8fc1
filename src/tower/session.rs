//! Sessions bound to the caller: [`SessionBinding`] (the settings), [`SessionBindingLayer`],
//! [`SessionBindingService`] and their [`SessionBindingFuture`]. The overview and examples are
//! on [`SessionBinding`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::operation_scopes::json_refusal;
use crate::auth_info::AuthInfo;
use crate::bearer::{BearerAuth, BearerAuthError};

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
///   [`SessionBinding::forward_unknown_sessions`] for deployments with several instances);
/// - a successful `DELETE` forgets the session, as does a `404` from the MCP service;
/// - the layer runs after authentication, so a request without a valid token gets the normal
///   `401` whatever session id it carries.
///
/// Entries expire after [`idle_timeout`](SessionBinding::idle_timeout) without use and are
/// bounded in number ([`max_sessions`](SessionBinding::max_sessions); the least recently used
/// go first). They live in memory, per layer.
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
/// # let mut as_metadata = AuthorizationServerMetadata::new(
/// #     "https://auth.example.com", "https://auth.example.com/authorize",
/// #     "https://auth.example.com/token", ["code"]);
/// # as_metadata.code_challenge_methods_supported = Some(vec!["S256".into()]);
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::from_metadata(as_metadata)),
///     )
///     .build()?;
/// // A verifier for the example: the token is the user's name.
/// let guard = auth.bearer_auth("https://api.example.com/mcp", |token: String| async move {
///     Ok::<_, VerifyError>(
///         AuthInfo::new(token.clone(), "https://auth.example.com")
///             .with_subject(token)
///             .with_audience(["https://api.example.com/mcp"]),
///     )
/// })?;
/// // An MCP service that opens session "s-1" on the request without a session id.
/// let mcp = service_fn(|request: Request<Either<Full<Bytes>, Full<Bytes>>>| async move {
///     let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
///     if !request.headers().contains_key("mcp-session-id") {
///         response.headers_mut().insert("mcp-session-id", "s-1".parse().unwrap());
///     }
///     Ok::<_, Infallible>(response)
/// });
/// let service = guard
///     .with_session_binding(SessionBinding::new().max_sessions(10_000))
///     .layer()
///     .layer(mcp);
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
#[must_use]
pub struct SessionBinding {
    max_sessions: u64,
    idle_timeout: Duration,
    forward_unknown: bool,
}

impl Default for SessionBinding {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            forward_unknown: false,
        }
    }
}

impl SessionBinding {
    /// The defaults: 10 000 sessions, forgotten after 1 hour without use; unknown session ids
    /// answered 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most sessions remembered at once; beyond it the least recently used is forgotten
    /// (its next request gets 404 and the client starts a new session). Default:
    /// [`DEFAULT_MAX_SESSIONS`].
    pub fn max_sessions(mut self, max_sessions: u64) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// How long a session is remembered without a request. Default:
    /// [`DEFAULT_SESSION_IDLE_TIMEOUT`]. Keep it at least as long as the MCP service keeps idle
    /// sessions (rmcp: `SessionConfig::keep_alive`, 5 minutes by default), or clients get 404
    /// for sessions that still exist. Values over 100 years count as 100 years.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.min(LONGEST_TIMEOUT);
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
        self.forward_unknown = forward;
        self
    }
}

/// Who created a session.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    issuer: String,
    subject: Option<String>,
    client_id: Option<String>,
}

impl Owner {
    fn of(info: &AuthInfo) -> Self {
        Self {
            issuer: info.issuer.clone(),
            subject: info.subject.clone(),
            client_id: info.client_id.clone(),
        }
    }
}

/// The sessions seen, shared by every service a layer makes.
#[derive(Clone)]
struct Registry {
    owners: Cache<String, Arc<Owner>>,
    forward_unknown: bool,
}

impl Registry {
    fn new(settings: &SessionBinding) -> Self {
        let owners = Cache::builder()
            .max_capacity(settings.max_sessions)
            .time_to_idle(settings.idle_timeout)
            // LRU: a new session is always admitted, evicting the least recently used one
            // (TinyLFU could refuse to admit it, and its creator would get 404 at once).
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Self {
            owners,
            forward_unknown: settings.forward_unknown,
        }
    }

    /// Records `owner` for `session` unless someone already owns it.
    async fn bind(&self, session: String, owner: Arc<Owner>) {
        let entry = self.owners.entry(session).or_insert(owner.clone()).await;
        if !entry.is_fresh() && entry.value() != &owner {
            tracing::warn!(
                "the MCP service answered with the id of a session another caller owns; the \
                 first owner keeps it"
            );
        }
    }
}

/// Session binding as tower middleware: see [`SessionBinding`].
///
/// It must run **after** authentication: it reads the [`AuthInfo`] that
/// [`BearerAuthLayer`](crate::BearerAuthLayer) inserts, and answers 500 (logged as an error)
/// when there is none. [`McpGuard`](crate::tower::McpGuard) builds the stack in the right
/// order; stacking by hand, the bearer layer goes outside:
/// `bearer_layer.layer(session_binding_layer.layer(mcp_service))`.
///
/// The request body is passed on untouched; the response body is `Either<ResBody, Full<Bytes>>`
/// (the inner service's, or a refusal's JSON). Clones of the layer, and every service it
/// makes, share one set of sessions.
#[derive(Clone)]
pub struct SessionBindingLayer {
    shared: Arc<Shared>,
}

struct Shared {
    guard: BearerAuth,
    /// `None`: binding is off and the layer passes everything through.
    registry: Option<Registry>,
}

impl fmt::Debug for SessionBindingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBindingLayer")
            .field("enabled", &self.shared.registry.is_some())
            .field(
                "sessions",
                &self
                    .shared
                    .registry
                    .as_ref()
                    .map(|r| r.owners.entry_count()),
            )
            .finish_non_exhaustive()
    }
}

impl SessionBindingLayer {
    /// A layer binding sessions with `settings`; its 500 answers (when it runs before
    /// authentication) use `guard`'s settings.
    pub fn new(guard: BearerAuth, settings: SessionBinding) -> Self {
        Self {
            shared: Arc::new(Shared {
                guard,
                registry: Some(Registry::new(&settings)),
            }),
        }
    }

    /// A layer that passes everything through (binding turned off in [`McpGuard`]).
    ///
    /// [`McpGuard`]: crate::tower::McpGuard
    pub(super) fn disabled(guard: BearerAuth) -> Self {
        Self {
            shared: Arc::new(Shared {
                guard,
                registry: None,
            }),
        }
    }
}

impl<S> Layer<S> for SessionBindingLayer {
    type Service = SessionBindingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBindingService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A service that keeps each `Mcp-Session-Id` to the caller that created it before calling
/// `S`: see [`SessionBindingLayer`].
#[derive(Clone)]
pub struct SessionBindingService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for SessionBindingService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBindingService")
            .field("inner", &self.inner)
            .field("enabled", &self.shared.registry.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> SessionBindingService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The one session id of a request, `Ok(None)` without one, `Err` for several.
fn session_id(headers: &HeaderMap) -> Result<Option<String>, ()> {
    let mut values = headers.get_all(MCP_SESSION_ID).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    // Not visible ASCII: no MCP server issues such an id, so nobody owns it (lossy is fine).
    Ok(Some(String::from_utf8_lossy(first.as_bytes()).into_owned()))
}

fn forbidden() -> Response<Full<Bytes>> {
    json_refusal(
        StatusCode::FORBIDDEN,
        "session_forbidden",
        "This MCP session was started by another user or client; a session id is not a \
         credential. Start your own session with an initialize request (without Mcp-Session-Id).",
    )
}

fn not_found() -> Response<Full<Bytes>> {
    json_refusal(
        StatusCode::NOT_FOUND,
        "session_not_found",
        "This MCP session is unknown or has ended. Start a new session with an initialize \
         request (without Mcp-Session-Id).",
    )
}

/// What to do once the inner service answered.
struct After {
    registry: Registry,
    owner: Arc<Owner>,
    method: Method,
    /// The session id the request carried.
    session: Option<String>,
}

impl After {
    /// The bookkeeping the answer calls for, if any.
    fn bookkeeping(
        self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<BoxFuture<'static, ()>> {
        let Self {
            registry,
            owner,
            method,
            session,
        } = self;
        if let Some(session) = &session
            && ((method == Method::DELETE && status.is_success())
                // The service does not know the session (ended there): forget it here too.
                || status == StatusCode::NOT_FOUND)
        {
            let session = session.clone();
            return Some(Box::pin(async move {
                registry.owners.invalidate(&session).await;
            }));
        }
        if !status.is_success() {
            return None;
        }
        // A session the answer creates, and (forwarding unknown sessions) one first seen here.
        let created = headers
            .get(MCP_SESSION_ID)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|id| Some(id) != session.as_ref());
        let first_seen = session.filter(|_| registry.forward_unknown);
        let ids: Vec<String> = created.into_iter().chain(first_seen).collect();
        if ids.is_empty() {
            return None;
        }
        Some(Box::pin(async move {
            for id in ids {
                registry.bind(id, owner.clone()).await;
            }
        }))
    }
}

/// The owner check's verdict.
enum Verdict {
    Allow,
    Refuse(Response<Full<Bytes>>),
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionBindingService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = SessionBindingFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Take the service that was driven to readiness and leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let refuse = |response: Response<Full<Bytes>>| SessionBindingFuture {
            state: State::Refused {
                response: Some(response),
            },
            inner: None,
            request: None,
            after: None,
        };

        let Some(registry) = &self.shared.registry else {
            let future = inner.call(request);
            return SessionBindingFuture {
                state: State::Call { future },
                inner: None,
                request: None,
                after: None,
            };
        };
        let Some(info) = request.extensions().get::<AuthInfo>() else {
            tracing::error!(
                "SessionBindingLayer got a request without a verified AuthInfo: it must run \
                 inside BearerAuthLayer (use `guard.with_session_binding(..).layer()`)"
            );
            return refuse(
                self.shared
                    .guard
                    .reject(BearerAuthError::ServerMisconfigured {
                        reason: "the session-binding layer runs before authentication".to_owned(),
                    })
                    .into_response(),
            );
        };
        let owner = Arc::new(Owner::of(info));
        let session = match session_id(request.headers()) {
            Ok(session) => session,
            Err(()) => {
                return refuse(json_refusal(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The request carries more than one Mcp-Session-Id header; send one.",
                ));
            }
        };
        let after = After {
            registry: registry.clone(),
            owner: owner.clone(),
            method: request.method().clone(),
            session: session.clone(),
        };
        let Some(session) = session else {
            let future = inner.call(request);
            return SessionBindingFuture {
                state: State::Call { future },
                inner: None,
                request: None,
                after: Some(after),
            };
        };

        let registry = registry.clone();
        let lookup = Box::pin(async move {
            match registry.owners.get(&session).await {
                Some(recorded) if recorded == owner => Verdict::Allow,
                Some(recorded) => {
                    tracing::warn!(
                        issuer = %owner.issuer,
                        subject = ?owner.subject,
                        client_id = ?owner.client_id,
                        owner_subject = ?recorded.subject,
                        owner_client_id = ?recorded.client_id,
                        "refused a request in an MCP session another caller started"
                    );
                    Verdict::Refuse(forbidden())
                }
                None if registry.forward_unknown => Verdict::Allow,
                None => {
                    tracing::debug!("refused a request with an unknown MCP session id");
                    Verdict::Refuse(not_found())
                }
            }
        });
        SessionBindingFuture {
            state: State::Lookup { lookup },
            inner: Some(inner),
            request: Some(request),
            after: Some(after),
        }
    }
}

pin_project! {
    /// Response future of [`SessionBindingService`]: check the session's owner, call the inner
    /// service, then record or forget the session.
    pub struct SessionBindingFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S::Future, ResBody>,
        inner: Option<S>,
        request: Option<Request<ReqBody>>,
        after: Option<After>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ResBody> {
        Lookup {
            lookup: BoxFuture<'static, Verdict>,
        },
        Call {
            #[pin]
            future: F,
        },
        Record {
            record: BoxFuture<'static, ()>,
            response: Option<Response<ResBody>>,
        },
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<S, ReqBody, ResBody> fmt::Debug for SessionBindingFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBindingFuture")
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Future for SessionBindingFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<Either<ResBody, Full<Bytes>>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup } => match ready!(lookup.as_mut().poll(cx)) {
                    Verdict::Allow => {
                        let (Some(request), Some(mut inner)) =
                            (this.request.take(), this.inner.take())
                        else {
                            return Poll::Ready(Ok(super::polled_after_completion(
                                "SessionBindingService",
                            )));
                        };
                        let future = inner.call(request);
                        this.state.set(State::Call { future });
                    }
                    Verdict::Refuse(response) => {
                        return Poll::Ready(Ok(response.map(Either::Right)));
                    }
                },
                StateProj::Call { future } => {
                    let response = match ready!(future.poll(cx)) {
                        Ok(response) => response,
                        Err(error) => return Poll::Ready(Err(error)),
                    };
                    let record = this
                        .after
                        .take()
                        .and_then(|after| after.bookkeeping(response.status(), response.headers()));
                    match record {
                        Some(record) => this.state.set(State::Record {
                            record,
                            response: Some(response),
                        }),
                        None => return Poll::Ready(Ok(response.map(Either::Left))),
                    }
                }
                StateProj::Record { record, response } => {
                    ready!(record.as_mut().poll(cx));
                    return Poll::Ready(Ok(match response.take() {
                        Some(response) => response.map(Either::Left),
                        None => super::polled_after_completion("SessionBindingService"),
                    }));
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(match response.take() {
                        Some(response) => response.map(Either::Right),
                        None => super::polled_after_completion("SessionBindingService"),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::convert::Infallible;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::HeaderValue;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::error::VerifyError;

    fn guard() -> BearerAuth {
        let verifier = |_token: String| async {
            Err::<AuthInfo, _>(VerifyError::invalid_token("unused in these tests"))
        };
        BearerAuth::new(
            Arc::new(verifier),
            vec!["https://as".into()],
            Some("https://h/mcp".into()),
            Some("https://h/.well-known/oauth-protected-resource/mcp".into()),
        )
    }

    fn caller(subject: &str, client: &str) -> AuthInfo {
        AuthInfo::new("t", "https://as")
            .with_subject(subject)
            .with_client_id(client)
    }

    /// A stand-in for rmcp's session handling: a POST without a session id opens `s-<n>`, a
    /// known id is served (200), an unknown one is 404, DELETE closes (202).
    #[derive(Clone, Default)]
    struct FakeMcp {
        sessions: Arc<Mutex<HashSet<String>>>,
        calls: Arc<AtomicUsize>,
    }

    impl FakeMcp {
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn service(
            &self,
        ) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone
        {
            let this = self.clone();
            tower::service_fn(move |request: Request<()>| {
                let this = this.clone();
                async move {
                    let n = this.calls.fetch_add(1, Ordering::SeqCst);
                    let mut sessions = this.sessions.lock().unwrap();
                    let id = request
                        .headers()
                        .get(MCP_SESSION_ID)
                        .map(|v| v.to_str().unwrap().to_owned());
                    let mut response = Response::new(Full::new(Bytes::new()));
                    match id {
                        None => {
                            let id = format!("s-{n}");
                            sessions.insert(id.clone());
                            response
                                .headers_mut()
                                .insert(MCP_SESSION_ID, HeaderValue::from_str(&id).unwrap());
                        }
                        Some(id) if !sessions.contains(&id) => {
                            *response.status_mut() = StatusCode::NOT_FOUND;
                        }
                        Some(id) if request.method() == Method::DELETE => {
                            sessions.remove(&id);
                            *response.status_mut() = StatusCode::ACCEPTED;
                        }
                        Some(_) => {}
                    }
                    Ok(response)
                }
            })
        }
    }

    fn request(method: Method, who: Option<AuthInfo>, session: Option<&str>) -> Request<()> {
        let mut request = Request::builder()
            .method(method)
            .uri("/mcp")
            .body(())
            .unwrap();
        if let Some(who) = who {
            request.extensions_mut().insert(who);
        }
        if let Some(session) = session {
            request
                .headers_mut()
                .insert(MCP_SESSION_ID, HeaderValue::from_str(session).unwrap());
        }
        request
    }

    struct Harness {
        mcp: FakeMcp,
        layer: SessionBindingLayer,
    }

    impl Harness {
        fn new(settings: SessionBinding) -> Self {
            Self {
                mcp: FakeMcp::default(),
                layer: SessionBindingLayer::new(guard(), settings),
            }
        }

        async fn send(&self, request: Request<()>) -> Response<Either<Full<Bytes>, Full<Bytes>>> {
            self.layer
                .layer(self.mcp.service())
                .oneshot(request)
                .await
                .unwrap()
        }

        /// alice (client c1) opens a session; its id.
        async fn open(&self, who: AuthInfo) -> String {
            let response = self.send(request(Method::POST, Some(who), None)).await;
            assert_eq!(response.status(), StatusCode::OK);
            response.headers()[MCP_SESSION_ID]
                .to_str()
                .unwrap()
                .to_owned()
        }

        fn registry(&self) -> &Registry {
            self.layer.shared.registry.as_ref().unwrap()
        }
    }

    async fn error_code(response: Response<Either<Full<Bytes>, Full<Bytes>>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        body["error"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn the_creator_uses_its_session_and_another_user_gets_403() {
        let h = Harness::new(SessionBinding::new());
        let session = h.open(caller("alice", "c1")).await;
        let calls = h.mcp.calls();

        let bob = h
            .send(request(
                Method::POST,
                Some(caller("bob", "c1")),
                Some(&session),
            ))
            .await;
        assert_eq!(bob.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            h.mcp.calls(),
            calls,
            "bob's request never reached the service"
        );
        assert_eq!(error_code(bob).await, "session_forbidden");

        let alice = h
            .send(request(
                Method::POST,
                Some(caller("alice", "c1")),
                Some(&session),
            ))
            .await;
        assert_eq!(alice.status(), StatusCode::OK);
        assert_eq!(h.mcp.calls(), calls + 1);
    }

    #[tokio::test]
    async fn owner_is_issuer_subject_and_client_id_not_the_token_or_scopes() {
        let h = Harness::new(SessionBinding::new());
        let session = h.open(caller("alice", "c1")).await;
        let other_client = h
            .send(request(
                Method::GET,
                Some(caller("alice", "c2")),
                Some(&session),
            ))
            .await;
        assert_eq!(other_client.status(), StatusCode::FORBIDDEN);
        let mut other_issuer = caller("alice", "c1");
        other_issuer.issuer = "https://other-as".into();
        let other_issuer = h
            .send(request(Method::GET, Some(other_issuer), Some(&session)))
            .await;
        assert_eq!(other_issuer.status(), StatusCode::FORBIDDEN);
        // A new token for the same user and client (after step-up: more scopes) keeps it.
        let stepped_up = AuthInfo::new("another-token", "https://as")
            .with_subject("alice")
            .with_client_id("c1")
            .with_scopes(["admin"]);
        let response = h
            .send(request(Method::POST, Some(stepped_up), Some(&session)))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_session_ids_get_404_unless_forwarded() {
        let h = Harness::new(SessionBinding::new());
        let response = h
            .send(request(
                Method::POST,
                Some(caller("alice", "c1")),
                Some("s-made-up"),
            ))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(h.mcp.calls(), 0);
        assert_eq!(error_code(response).await, "session_not_found");

        // Forwarding: a session made elsewhere (here: directly in the service) is bound to the
        // first caller the service accepts.
        let h = Harness::new(SessionBinding::new().forward_unknown_sessions(true));
        h.mcp.sessions.lock().unwrap().insert("s-elsewhere".into());
        let alice = h
            .send(request(
                Method::POST,
                Some(caller("alice", "c1")),
                Some("s-elsewhere"),
            ))
            .await;
        assert_eq!(alice.status(), StatusCode::OK);
        let bob = h
            .send(request(
                Method::POST,
                Some(caller("bob", "c1")),
                Some("s-elsewhere"),
            ))
            .await;
        assert_eq!(bob.status(), StatusCode::FORBIDDEN);
        // An id the service does not know either is not bound to anyone.
        let ghost = h
            .send(request(
                Method::POST,
                Some(caller("bob", "c1")),
                Some("s-ghost"),
            ))
            .await;
        assert_eq!(ghost.status(), StatusCode::NOT_FOUND);
        let alice = h
            .send(request(
                Method::POST,
                Some(caller("alice", "c1")),
                Some("s-ghost"),
            ))
            .await;
        assert_eq!(alice.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn delete_by_the_owner_forgets_the_session_and_delete_by_others_is_refused() {
        let h = Harness::new(SessionBinding::new());
        let session = h.open(caller("alice", "c1")).await;
        let bob = h
            .send(request(
                Method::DELETE,
                Some(caller("bob", "c1")),
                Some(&session),
            ))
            .await;
        assert_eq!(bob.status(), StatusCode::FORBIDDEN);
        assert!(h.mcp.sessions.lock().unwrap().contains(&session));

        let alice = h
            .send(request(
                Method::DELETE,
                Some(caller("alice", "c1")),
                Some(&session),
            ))
            .await;
        assert_eq!(alice.status(), StatusCode::ACCEPTED);
        assert!(h.registry().owners.get(&session).await.is_none());
        let after = h
            .send(request(
                Method::POST,
                Some(caller("alice", "c1")),
                Some(&session),
            ))
            .await;
        assert_eq!(after.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_404_from_the_service_forgets_the_session() {
        let h = Harness::new(SessionBinding::new());
        let session = h.open(caller("alice", "c1")).await;
        h.mcp.sessions.lock().unwrap().clear();
        let response = h
            .send(request(
                Method::POST,
                Some(caller("alice", "c1")),
                Some(&session),
            ))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(h.registry().owners.get(&session).await.is_none());
    }

    #[tokio::test]
    async fn two_session_headers_get_400() {
        let h = Harness::new(SessionBinding::new());
        let session = h.open(caller("alice", "c1")).await;
        let mut req = request(Method::POST, Some(caller("bob", "c1")), Some("s-bobs"));
        req.headers_mut()
            .append(MCP_SESSION_ID, HeaderValue::from_str(&session).unwrap());
        let response = h.send(req).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(h.mcp.calls(), 1);
    }

    #[tokio::test]
    async fn without_auth_info_the_layer_answers_500() {
        let h = Harness::new(SessionBinding::new());
        let response = h.send(request(Method::POST, None, None)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(h.mcp.calls(), 0);
    }

    #[tokio::test]
    async fn a_disabled_layer_passes_everything_through() {
        let mcp = FakeMcp::default();
        mcp.sessions.lock().unwrap().insert("s-x".into());
        let response = SessionBindingLayer::disabled(guard())
            .layer(mcp.service())
            .oneshot(request(Method::POST, None, Some("s-x")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(mcp.calls(), 1);
    }

    #[tokio::test]
    async fn sessions_are_bounded_in_number_least_recently_used_first() {
        let h = Harness::new(SessionBinding::new().max_sessions(2));
        let alice = caller("alice", "c1");
        let first = h.open(alice.clone()).await;
        let second = h.open(alice.clone()).await;
        h.registry().owners.run_pending_tasks().await;
        // Use the first again, so the second is the least recently used.
        h.send(request(Method::POST, Some(alice.clone()), Some(&first)))
            .await;
        h.registry().owners.run_pending_tasks().await;
        let third = h.open(alice.clone()).await;
        h.registry().owners.run_pending_tasks().await;
        assert_eq!(h.registry().owners.entry_count(), 2);
        for (session, status) in [
            (&first, StatusCode::OK),
            (&second, StatusCode::NOT_FOUND),
            (&third, StatusCode::OK),
        ] {
            let response = h
                .send(request(Method::POST, Some(alice.clone()), Some(session)))
                .await;
            assert_eq!(response.status(), status, "{session}");
        }
    }

    #[tokio::test]
    async fn sessions_expire_after_the_idle_timeout() {
        let h = Harness::new(SessionBinding::new().idle_timeout(Duration::from_millis(50)));
        let session = h.open(caller("alice", "c1")).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let response = h
            .send(request(
                Method::POST,
                Some(caller("alice", "c1")),
                Some(&session),
            ))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn huge_idle_timeouts_are_capped_instead_of_panicking() {
        let settings = SessionBinding::new().idle_timeout(Duration::MAX);
        let _layer = SessionBindingLayer::new(guard(), settings);
    }
}
