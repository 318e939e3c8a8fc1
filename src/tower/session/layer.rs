//! [`SessionBindingLayer`], [`SessionBindingService`] and their [`SessionBindingFuture`]:
//! session binding as tower middleware.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::store::{Bound, Lookup, Origin, PrincipalKey, Registry, SessionKey};
use super::{MCP_SESSION_ID, SessionBinding};
use crate::auth_info::AuthInfo;
use crate::bearer::BearerAuth;
use crate::tower::plumbing::{
    Guarded, inner_service_accessors, json_refusal, missing_auth_info, passed_on, take_ready,
    take_refusal,
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
                &self.shared.registry.as_ref().map(Registry::len),
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

/// The one session id of a request, as its key; `Ok(None)` without one, `Err` for several.
fn session_key(headers: &HeaderMap) -> Result<Option<SessionKey>, ()> {
    let mut values = headers.get_all(MCP_SESSION_ID).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    Ok(Some(SessionKey::of(first.as_bytes())))
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
    principal: PrincipalKey,
    method: Method,
    /// The session id the request carried, and whether it was forwarded unknown.
    session: Option<(SessionKey, bool)>,
}

impl After {
    /// The bookkeeping the answer calls for.
    fn record(self, status: StatusCode, headers: &HeaderMap) {
        let Self {
            registry,
            principal,
            method,
            session,
        } = self;
        match session {
            // The session ended at the service (DELETE), or the service does not know it:
            // forget it here too.
            Some((session, _))
                if (method == Method::DELETE && status.is_success())
                    || status == StatusCode::NOT_FOUND =>
            {
                registry.with(|table, now| table.end(&session, now));
            }
            // Forwarding: an id created elsewhere, accepted by the service; the first caller
            // it accepts here owns it here, unless this layer bound and forgot it meanwhile.
            Some((session, true)) if status.is_success() => {
                let bound = registry
                    .with(|table, now| table.bind(session, principal, Origin::FirstSeen, now));
                if bound == Bound::OtherOwner {
                    tracing::debug!(
                        "two callers presented a new MCP session id at once; the first keeps it"
                    );
                }
            }
            // A session is created by a request without one (initialize), and only then.
            None if status.is_success() => {
                let Some(created) = headers.get(MCP_SESSION_ID) else {
                    return;
                };
                let created = SessionKey::of(created.as_bytes());
                let bound = registry
                    .with(|table, now| table.bind(created, principal, Origin::Created, now));
                if bound == Bound::OtherOwner {
                    tracing::warn!(
                        "the MCP service answered with the id of a session another caller \
                         owns; the first owner keeps it"
                    );
                }
            }
            _ => {}
        }
    }
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
            after: None,
            _body: PhantomData,
        };
        let Some(registry) = &self.shared.registry else {
            return SessionBindingFuture {
                state: State::Call {
                    future: inner.call(request),
                },
                after: None,
                _body: PhantomData,
            };
        };
        let Some(info) = request.extensions().get::<AuthInfo>() else {
            return refuse(missing_auth_info(&self.shared.guard, "SessionBindingLayer"));
        };
        let principal = PrincipalKey::of(info);
        let session = match session_key(request.headers()) {
            Ok(session) => session,
            Err(()) => {
                return refuse(json_refusal(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The request carries more than one Mcp-Session-Id header; send one.",
                ));
            }
        };
        let session = match session {
            None => None,
            Some(session) => {
                match registry.with(|table, now| table.lookup(&session, &principal, now)) {
                    Lookup::Owner => Some((session, false)),
                    Lookup::Unknown if registry.forward_unknown => Some((session, true)),
                    Lookup::OtherOwner => {
                        tracing::warn!(
                            issuer = %info.issuer,
                            subject = ?info.subject,
                            client_id = ?info.client_id,
                            "refused a request in an MCP session another caller started"
                        );
                        crate::metrics::session_refused("other_owner");
                        return refuse(forbidden());
                    }
                    Lookup::Forgotten => {
                        tracing::debug!(
                            "refused a request with the id of an MCP session this layer \
                             forgot (evicted, idle or ended); it is not forwarded"
                        );
                        crate::metrics::session_refused("forgotten");
                        return refuse(not_found());
                    }
                    Lookup::Unknown => {
                        tracing::debug!("refused a request with an unknown MCP session id");
                        crate::metrics::session_refused("unknown");
                        return refuse(not_found());
                    }
                }
            }
        };
        let after = After {
            registry: registry.clone(),
            principal,
            method: request.method().clone(),
            session,
        };
        SessionBindingFuture {
            state: State::Call {
                future: inner.call(request),
            },
            after: Some(after),
            _body: PhantomData,
        }
    }
}

pin_project! {
    /// Response future of [`SessionBindingService`]: the inner service's answer, after which
    /// the session is recorded or forgotten; or a refusal.
    pub struct SessionBindingFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S::Future>,
        after: Option<After>,
        _body: PhantomData<fn() -> ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Call {
            #[pin]
            future: F,
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
        let this = self.project();
        match this.state.project() {
            StateProj::Call { future } => {
                let response = ready!(future.poll(cx));
                if let (Ok(response), Some(after)) = (&response, this.after.take()) {
                    after.record(response.status(), response.headers());
                }
                Poll::Ready(passed_on(response))
            }
            StateProj::Refused { response } => {
                Poll::Ready(Ok(take_refusal(response, "SessionBindingService")))
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
    use http_body_util::{BodyExt, Either};
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
        assert_eq!(h.registry().len(), 0);
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
        assert_eq!(h.registry().len(), 0);
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
        // Use the first again, so the second is the least recently used.
        h.send(request(Method::POST, Some(alice.clone()), Some(&first)))
            .await;
        let third = h.open(alice.clone()).await;
        assert_eq!(h.registry().len(), 2);
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
    async fn a_caller_over_its_cap_loses_its_own_oldest_session_not_anothers() {
        let h = Harness::new(
            settings()
                .max_sessions(3)
                .max_sessions_per_principal(2)
                .build()
                .unwrap(),
        );
        let alices = h.open(caller("alice", "c1")).await;
        let mallorys: Vec<String> = {
            let mut opened = Vec::new();
            for _ in 0..5 {
                opened.push(h.open(caller("mallory", "c1")).await);
            }
            opened
        };
        assert_eq!(h.post_as("alice", &alices).await.status(), StatusCode::OK);
        for (n, session) in mallorys.iter().enumerate() {
            let expected = if n < 3 {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            assert_eq!(
                h.post_as("mallory", session).await.status(),
                expected,
                "{n}"
            );
        }
    }

    #[tokio::test]
    async fn forwarding_an_evicted_session_is_refused_for_everyone_and_never_reaches_the_service() {
        let h = Harness::new(
            settings()
                .max_sessions(1)
                .forward_unknown_sessions(true)
                .build()
                .unwrap(),
        );
        let alices = h.open(caller("alice", "c1")).await;
        // Bob's session pushes alice's out; the service still has it.
        let bobs = h.open(caller("bob", "c1")).await;
        assert!(h.mcp.sessions.lock().unwrap().contains(&alices));
        let calls = h.mcp.calls();
        for who in ["mallory", "alice", "mallory"] {
            let response = h.post_as(who, &alices).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{who}");
            assert_eq!(error_code(response).await, "session_not_found");
        }
        assert_eq!(h.mcp.calls(), calls, "nothing reached the service");
        assert_eq!(h.post_as("bob", &bobs).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_session_id_in_a_response_to_a_request_in_a_session_is_not_bound() {
        // A service that names another session in its answers: only a request without a
        // session creates one.
        let mcp = tower::service_fn(|request: Request<()>| async move {
            let mut response = Response::new(Full::new(Bytes::new()));
            let id = if request.headers().contains_key(MCP_SESSION_ID) {
                "s-other"
            } else {
                "s-new"
            };
            response
                .headers_mut()
                .insert(MCP_SESSION_ID, HeaderValue::from_static(id));
            Ok::<_, Infallible>(response)
        });
        let layer = SessionBindingLayer::new(guard(), SessionBinding::default());
        let send = |who: &str, session: Option<&str>| {
            layer
                .layer(mcp)
                .oneshot(request(Method::POST, Some(caller(who, "c1")), session))
        };
        assert_eq!(send("alice", None).await.unwrap().status(), StatusCode::OK);
        assert_eq!(
            send("alice", Some("s-new")).await.unwrap().status(),
            StatusCode::OK
        );
        let registry = layer.shared.registry.as_ref().unwrap();
        assert_eq!(registry.len(), 1, "s-other was not bound");
        assert_eq!(
            send("bob", Some("s-other")).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
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
