//! [`SessionBindingLayer`], [`SessionBindingService`] and their [`SessionBindingFuture`]:
//! session binding as tower middleware.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::store::{Owner, Registry};
use super::{MCP_SESSION_ID, SessionBinding};
use crate::auth_info::AuthInfo;
use crate::bearer::BearerAuth;
use crate::tower::plumbing::{
    Guarded, call_kept, inner_service_accessors, json_refusal, missing_auth_info, passed_on,
    polled_after_completion, take_ready, take_refusal,
};

/// Session binding as tower middleware: see [`SessionBinding`].
///
/// It must run **after** authentication: it reads the [`AuthInfo`] that
/// [`BearerAuthLayer`](crate::BearerAuthLayer) inserts, and answers a request without one as
/// [`BearerAuthError::MissingAuthInfo`](crate::BearerAuthError::MissingAuthInfo) (500, logged
/// as an error). [`McpGuard`](crate::tower::McpGuard) builds the stack in the right order;
/// stacking by hand, the bearer layer goes outside:
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
    pub(crate) fn disabled(guard: BearerAuth) -> Self {
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

inner_service_accessors!(SessionBindingService);

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
    type Response = Response<Guarded<ResBody>>;
    type Error = S::Error;
    type Future = SessionBindingFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
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
            return refuse(missing_auth_info(&self.shared.guard, "SessionBindingLayer"));
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
    type Output = Result<Response<Guarded<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup } => match ready!(lookup.as_mut().poll(cx)) {
                    Verdict::Allow => {
                        let Some(future) = call_kept(this.inner, this.request, |request| request)
                        else {
                            return Poll::Ready(Ok(polled_after_completion(
                                "SessionBindingService",
                            )));
                        };
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
                        None => return Poll::Ready(passed_on(Ok(response))),
                    }
                }
                StateProj::Record { record, response } => {
                    ready!(record.as_mut().poll(cx));
                    return Poll::Ready(match response.take() {
                        Some(response) => passed_on(Ok(response)),
                        None => Ok(polled_after_completion("SessionBindingService")),
                    });
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(take_refusal(response, "SessionBindingService")));
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
    use std::time::Duration;

    use http::HeaderValue;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::error::VerifyError;
    use crate::tower::SessionBindingBuilder;

    fn guard() -> BearerAuth {
        let verifier = |_token: String| async {
            Err::<AuthInfo, _>(VerifyError::invalid_token("unused in these tests"))
        };
        BearerAuth::builder(
            Arc::new(verifier),
            vec!["https://as".into()],
            Some("https://h/mcp".into()),
            Some("https://h/.well-known/oauth-protected-resource/mcp".into()),
        )
        .build()
        .unwrap()
    }

    fn settings() -> SessionBindingBuilder {
        SessionBinding::builder()
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

        /// A POST by `subject` (client c1) in `session`.
        async fn post_as(
            &self,
            subject: &str,
            session: &str,
        ) -> Response<Either<Full<Bytes>, Full<Bytes>>> {
            self.send(request(
                Method::POST,
                Some(caller(subject, "c1")),
                Some(session),
            ))
            .await
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
        let h = Harness::new(SessionBinding::default());
        let session = h.open(caller("alice", "c1")).await;
        let calls = h.mcp.calls();

        let bob = h.post_as("bob", &session).await;
        assert_eq!(bob.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            h.mcp.calls(),
            calls,
            "bob's request never reached the service"
        );
        assert_eq!(error_code(bob).await, "session_forbidden");

        let alice = h.post_as("alice", &session).await;
        assert_eq!(alice.status(), StatusCode::OK);
        assert_eq!(h.mcp.calls(), calls + 1);
    }

    #[tokio::test]
    async fn owner_is_issuer_subject_and_client_id_not_the_token_or_scopes() {
        let h = Harness::new(SessionBinding::default());
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
        let h = Harness::new(SessionBinding::default());
        let response = h.post_as("alice", "s-made-up").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(h.mcp.calls(), 0);
        assert_eq!(error_code(response).await, "session_not_found");

        // Forwarding: a session made elsewhere (here: directly in the service) is bound to the
        // first caller the service accepts.
        let h = Harness::new(settings().forward_unknown_sessions(true).build().unwrap());
        h.mcp.sessions.lock().unwrap().insert("s-elsewhere".into());
        let alice = h.post_as("alice", "s-elsewhere").await;
        assert_eq!(alice.status(), StatusCode::OK);
        let bob = h.post_as("bob", "s-elsewhere").await;
        assert_eq!(bob.status(), StatusCode::FORBIDDEN);
        // An id the service does not know either is not bound to anyone.
        let ghost = h.post_as("bob", "s-ghost").await;
        assert_eq!(ghost.status(), StatusCode::NOT_FOUND);
        let alice = h.post_as("alice", "s-ghost").await;
        assert_eq!(alice.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn delete_by_the_owner_forgets_the_session_and_delete_by_others_is_refused() {
        let h = Harness::new(SessionBinding::default());
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
        let after = h.post_as("alice", &session).await;
        assert_eq!(after.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_404_from_the_service_forgets_the_session() {
        let h = Harness::new(SessionBinding::default());
        let session = h.open(caller("alice", "c1")).await;
        h.mcp.sessions.lock().unwrap().clear();
        let response = h.post_as("alice", &session).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(h.registry().owners.get(&session).await.is_none());
    }

    #[tokio::test]
    async fn two_session_headers_get_400() {
        let h = Harness::new(SessionBinding::default());
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
        let h = Harness::new(SessionBinding::default());
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
        let h = Harness::new(settings().max_sessions(2).build().unwrap());
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
        let h = Harness::new(
            settings()
                .idle_timeout(Duration::from_millis(50))
                .build()
                .unwrap(),
        );
        let session = h.open(caller("alice", "c1")).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let response = h.post_as("alice", &session).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn huge_idle_timeouts_are_capped_instead_of_panicking() {
        let settings = settings().idle_timeout(Duration::MAX).build().unwrap();
        assert_eq!(settings.idle_timeout(), super::super::LONGEST_TIMEOUT);
        // moka accepts the capped timeout, and a session lives under it.
        let h = Harness::new(settings);
        let session = h.open(caller("alice", "c1")).await;
        let response = h.post_as("alice", &session).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
