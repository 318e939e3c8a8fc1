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
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::shared::{SharedBindings, SharedLookup, unavailable};
use super::store::{Bound, Lookup, Origin, PrincipalKey, Registry, SessionKey};
use super::{MCP_SESSION_ID, SessionBinding};
use crate::auth_info::AuthInfo;
use crate::bearer::BearerAuth;
use crate::store::StoreError;
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
    bindings: Option<Bindings>,
}

/// Where the bindings are kept.
enum Bindings {
    /// This process's memory (the default).
    Local(Registry),
    /// A store shared by the replicas.
    Shared(SharedBindings),
}

impl fmt::Debug for SessionBindingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (store, sessions) = match &self.shared.bindings {
            None => (None, None),
            Some(Bindings::Local(registry)) => (Some("memory"), Some(registry.len())),
            Some(Bindings::Shared(shared)) => (Some(shared.store_name()), None),
        };
        f.debug_struct("SessionBindingLayer")
            .field("enabled", &self.shared.bindings.is_some())
            .field("store", &store)
            .field("sessions", &sessions)
            .finish_non_exhaustive()
    }
}

impl SessionBindingLayer {
    /// A layer binding sessions with `settings`; its 500 answers (when it runs before
    /// authentication) use `guard`'s settings.
    pub fn new(guard: BearerAuth, settings: SessionBinding) -> Self {
        let bindings = match &settings.store {
            Some(store) => {
                Bindings::Shared(SharedBindings::new(store.clone(), settings.idle_timeout))
            }
            None => Bindings::Local(Registry::new(&settings)),
        };
        Self {
            shared: Arc::new(Shared {
                guard,
                bindings: Some(bindings),
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
                bindings: None,
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
            .field("enabled", &self.shared.bindings.is_some())
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
    principal: PrincipalKey,
    method: Method,
    /// The session id the request carried, and whether it was forwarded unknown.
    session: Option<(SessionKey, bool)>,
    store: AfterStore,
}

enum AfterStore {
    Local(Registry),
    Shared(SharedBindings),
}

/// The bookkeeping an answer calls for.
enum Bookkeeping {
    /// The session ended at the service (DELETE), or the service does not know it.
    End(SessionKey),
    /// Forwarding: an id created elsewhere, accepted by the service.
    FirstSeen(SessionKey),
    /// The service created a session (a request without one: initialize).
    Created(SessionKey),
}

impl After {
    fn bookkeeping(&self, status: StatusCode, headers: &HeaderMap) -> Option<Bookkeeping> {
        match self.session {
            Some((session, _))
                if (self.method == Method::DELETE && status.is_success())
                    || status == StatusCode::NOT_FOUND =>
            {
                Some(Bookkeeping::End(session))
            }
            Some((session, true)) if status.is_success() => Some(Bookkeeping::FirstSeen(session)),
            // A session is created by a request without one, and only then.
            None if status.is_success() => headers
                .get(MCP_SESSION_ID)
                .map(|created| Bookkeeping::Created(SessionKey::of(created.as_bytes()))),
            _ => None,
        }
    }

    /// Records the answer. In memory that is done here; with a shared store it is a future
    /// to wait for before the answer goes out, and whether its failure must turn the answer
    /// into a 503 (a new session nobody could be recorded as owning).
    fn record(self, status: StatusCode, headers: &HeaderMap) -> Option<(StoreCall, bool)> {
        let bookkeeping = self.bookkeeping(status, headers)?;
        let principal = self.principal;
        let registry = match self.store {
            AfterStore::Shared(shared) => {
                return match bookkeeping {
                    Bookkeeping::End(session) => Some((
                        Box::pin(async move { shared.end(session).await }) as StoreCall,
                        false,
                    )),
                    // Forwarding is refused with a shared store.
                    Bookkeeping::FirstSeen(_) => None,
                    Bookkeeping::Created(session) => Some((
                        Box::pin(async move {
                            if !shared.bind(session, principal).await? {
                                warn_taken();
                            }
                            Ok(())
                        }) as StoreCall,
                        true,
                    )),
                };
            }
            AfterStore::Local(registry) => registry,
        };
        match bookkeeping {
            Bookkeeping::End(session) => registry.with(|table, now| table.end(&session, now)),
            Bookkeeping::FirstSeen(session) => {
                // The first caller the service accepts here owns it here, unless this layer
                // bound and forgot it meanwhile.
                let bound = registry
                    .with(|table, now| table.bind(session, principal, Origin::FirstSeen, now));
                if bound == Bound::OtherOwner {
                    tracing::debug!(
                        "two callers presented a new MCP session id at once; the first keeps it"
                    );
                }
            }
            Bookkeeping::Created(session) => {
                let bound = registry
                    .with(|table, now| table.bind(session, principal, Origin::Created, now));
                if bound == Bound::OtherOwner {
                    warn_taken();
                }
            }
        }
        None
    }
}

fn warn_taken() {
    tracing::warn!(
        "the MCP service answered with the id of a session another caller owns; the first \
         owner keeps it"
    );
}

/// A call to the shared store, awaited by the response future.
type StoreCall = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;
/// A shared-store lookup, awaited before the inner service is called.
type StoreLookup = Pin<Box<dyn Future<Output = Result<SharedLookup, StoreError>> + Send>>;

/// Who made a request, for the log of a refusal.
#[derive(Clone)]
struct Caller {
    issuer: String,
    subject: Option<String>,
    client_id: Option<String>,
}

impl Caller {
    fn of(info: &AuthInfo) -> Self {
        Self {
            issuer: info.issuer.clone(),
            subject: info.subject.clone(),
            client_id: info.client_id.clone(),
        }
    }

    /// Logs and counts a refusal; the response to send.
    fn refusal(&self, lookup: Lookup) -> Response<Full<Bytes>> {
        match lookup {
            Lookup::OtherOwner => {
                tracing::warn!(
                    issuer = %self.issuer,
                    subject = ?self.subject,
                    client_id = ?self.client_id,
                    "refused a request in an MCP session another caller started"
                );
                crate::metrics::session_refused("other_owner");
                forbidden()
            }
            Lookup::Forgotten => {
                tracing::debug!(
                    "refused a request with the id of an MCP session this layer forgot \
                     (evicted, idle or ended); it is not forwarded"
                );
                crate::metrics::session_refused("forgotten");
                not_found()
            }
            Lookup::Unknown | Lookup::Owner => {
                tracing::debug!("refused a request with an unknown MCP session id");
                crate::metrics::session_refused("unknown");
                not_found()
            }
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
        let Some(bindings) = &self.shared.bindings else {
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
        let method = request.method().clone();
        let registry = match bindings {
            Bindings::Shared(shared) => {
                let after = After {
                    principal,
                    method,
                    session: session.map(|session| (session, false)),
                    store: AfterStore::Shared(shared.clone()),
                };
                let Some(session) = session else {
                    return SessionBindingFuture {
                        state: State::Call {
                            future: inner.call(request),
                        },
                        after: Some(after),
                        _body: PhantomData,
                    };
                };
                let shared = shared.clone();
                return SessionBindingFuture {
                    state: State::Check {
                        lookup: Box::pin(async move { shared.lookup(session, principal).await }),
                        caller: Caller::of(info),
                        inner: Some(inner),
                        request: Some(request),
                    },
                    after: Some(after),
                    _body: PhantomData,
                };
            }
            Bindings::Local(registry) => registry,
        };
        let session = match session {
            None => None,
            Some(session) => {
                match registry.with(|table, now| table.lookup(&session, &principal, now)) {
                    Lookup::Owner => Some((session, false)),
                    Lookup::Unknown if registry.forward_unknown => Some((session, true)),
                    refused => return refuse(Caller::of(info).refusal(refused)),
                }
            }
        };
        let after = After {
            principal,
            method,
            session,
            store: AfterStore::Local(registry.clone()),
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
    /// Response future of [`SessionBindingService`]: with a shared store, the owner check
    /// first; then the inner service's answer, after which the session is recorded or
    /// forgotten; or a refusal.
    pub struct SessionBindingFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, ResBody, S::Future>,
        after: Option<After>,
        _body: PhantomData<fn() -> ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, ResBody, F> {
        Check {
            lookup: StoreLookup,
            caller: Caller,
            inner: Option<S>,
            request: Option<Request<ReqBody>>,
        },
        Call {
            #[pin]
            future: F,
        },
        Record {
            call: StoreCall,
            fail_closed: bool,
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
                StateProj::Check {
                    lookup,
                    caller,
                    inner,
                    request,
                } => {
                    let refused = match ready!(lookup.as_mut().poll(cx)) {
                        Ok(SharedLookup::Owner) => None,
                        Ok(SharedLookup::OtherOwner) => Some(caller.refusal(Lookup::OtherOwner)),
                        Ok(SharedLookup::Unknown) => Some(caller.refusal(Lookup::Unknown)),
                        Err(_) => Some(unavailable()),
                    };
                    if let Some(response) = refused {
                        *this.after = None;
                        this.state.set(State::Refused {
                            response: Some(response),
                        });
                        continue;
                    }
                    let Some(future) = call_kept(inner, request, |request| request) else {
                        return Poll::Ready(Ok(polled_after_completion("SessionBindingService")));
                    };
                    this.state.set(State::Call { future });
                }
                StateProj::Call { future } => {
                    let response = match ready!(future.poll(cx)) {
                        Ok(response) => response,
                        Err(error) => return Poll::Ready(Err(error)),
                    };
                    let Some(after) = this.after.take() else {
                        // Nothing to record (binding off).
                        return Poll::Ready(passed_on(Ok(response)));
                    };
                    let Some((call, fail_closed)) =
                        after.record(response.status(), response.headers())
                    else {
                        return Poll::Ready(passed_on(Ok(response)));
                    };
                    this.state.set(State::Record {
                        call,
                        fail_closed,
                        response: Some(response),
                    });
                }
                StateProj::Record {
                    call,
                    fail_closed,
                    response,
                } => {
                    let result = ready!(call.as_mut().poll(cx));
                    let Some(response) = response.take() else {
                        return Poll::Ready(Ok(polled_after_completion("SessionBindingService")));
                    };
                    if result.is_err() && *fail_closed {
                        return Poll::Ready(Ok(unavailable().map(Either::Right)));
                    }
                    return Poll::Ready(passed_on(Ok(response)));
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(take_refusal(response, "SessionBindingService")));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
