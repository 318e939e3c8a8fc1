//! What [`Server`](super::Server) keeps per connection: how many requests are in flight and
//! since when none is, so that a connection without a request in flight can be closed after a
//! bound. hyper 1 has no idle timeout of its own (HTTP/1 or HTTP/2), and hyper-util's version
//! sniffing before the first request has no timer at all. Also [`serve_connection`], which
//! serves one accepted connection with them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use std::net::SocketAddr;

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tokio::sync::watch;
use tokio::time::Instant;
use tower_service::Service;

/// The requests in flight on one connection.
#[derive(Debug)]
pub(super) struct Activity {
    state: Mutex<State>,
    /// Woken when the last request in flight ends.
    ended: Notify,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// When the connection last had no request in flight (its accept time at first).
    idle_since: Instant,
    /// Whether a request has started on the connection.
    served: bool,
}

impl Activity {
    /// A connection accepted now, with no request yet.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
            }),
            ended: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request as in flight until the returned guard is dropped.
    fn start(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.served = true;
        InFlight {
            activity: Arc::clone(self),
        }
    }

    /// Completes once the connection has had no request in flight for `before_first` (while
    /// no request has started yet) or `between` (after one has), counted from the later of
    /// the moment the last request ended and `since`.
    pub(super) async fn idle_for(&self, before_first: Duration, between: Duration, since: Instant) {
        loop {
            // Registered before the state is read, so that an end in between is not missed.
            let ended = self.ended.notified();
            let deadline = {
                let state = self.state();
                if state.in_flight == 0 {
                    let limit = if state.served { between } else { before_first };
                    Some(state.idle_since.max(since).checked_add(limit))
                } else {
                    None
                }
            };
            match deadline {
                // A request is in flight: wait until it ends.
                None => ended.await,
                // Too far in the future to represent: never.
                Some(None) => std::future::pending().await,
                Some(Some(deadline)) if deadline <= Instant::now() => return,
                // A request may start and end meanwhile; the loop reads the state again.
                Some(Some(deadline)) => {
                    let _ = tokio::time::timeout_at(deadline, ended).await;
                }
            }
        }
    }
}

/// One request in flight: from the service call until its response body is finished or
/// dropped.
#[derive(Debug)]
struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.activity.state();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            drop(state);
            self.activity.ended.notify_one();
        }
    }
}

/// A hyper service that counts its requests in flight on the connection's [`Activity`].
#[derive(Debug)]
pub(super) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub(super) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, ReqBody, ResBody> hyper::service::Service<Request<ReqBody>> for Tracked<S>
where
    S: hyper::service::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn call(&self, request: Request<ReqBody>) -> Self::Future {
        let in_flight = self.activity.start();
        TrackedFuture {
            future: self.inner.call(request),
            in_flight: Some(in_flight),
        }
    }
}

pin_project! {
    /// Response future of [`Tracked`]: hands the in-flight guard on to the response body.
    pub(super) struct TrackedFuture<F> {
        #[pin]
        future: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.future.poll(cx));
        let in_flight = this.in_flight.take();
        Poll::Ready(result.map(|response| response.map(|body| TrackedBody { body, in_flight })))
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it is finished or dropped (an
    /// SSE stream counts as in flight for as long as it runs).
    pub(super) struct TrackedBody<B> {
        #[pin]
        body: B,
        in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.body.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            this.in_flight.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves one accepted connection (plain TCP or TLS) until it ends.
pub(super) async fn serve_connection<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    limits: super::Limits,
    stopped: watch::Receiver<bool>,
    remote: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<super::BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<super::BoxError>,
{
    let activity = Activity::new();
    let connection = builder
        .serve_connection(
            TokioIo::new(io),
            Tracked::new(TowerToHyperService::new(service), Arc::clone(&activity)),
        )
        .into_owned();
    super::drive(
        connection,
        |connection| connection.graceful_shutdown(),
        &activity,
        limits,
        stopped,
        remote,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_connection_without_a_request_is_idle_after_the_first_bound() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle_for(BOUND, Duration::MAX, started).await;
        assert!(started.elapsed() >= BOUND, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_request_in_flight_keeps_the_connection_busy_until_it_ends() {
        let activity = Activity::new();
        let in_flight = activity.start();
        let watch = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move {
                activity.idle_for(BOUND, 2 * BOUND, Instant::now()).await;
                Instant::now()
            }
        });
        tokio::time::sleep(5 * BOUND).await;
        assert!(!watch.is_finished(), "busy for as long as the request runs");
        let ended = Instant::now();
        drop(in_flight);
        let idle_at = watch.await.expect("no panic");
        assert!(
            idle_at - ended >= 2 * BOUND,
            "counted from the end, with `between`"
        );
    }

    #[tokio::test]
    async fn the_bound_counts_from_since_when_that_is_later() {
        let activity = Activity::new();
        drop(activity.start());
        tokio::time::sleep(3 * BOUND).await;
        let since = Instant::now();
        activity.idle_for(BOUND, BOUND, since).await;
        assert!(since.elapsed() >= BOUND, "{:?}", since.elapsed());
    }

    #[tokio::test]
    async fn a_bound_beyond_what_an_instant_holds_never_ends() {
        let activity = Activity::new();
        let idle = activity.idle_for(Duration::MAX, Duration::MAX, Instant::now());
        assert!(tokio::time::timeout(3 * BOUND, idle).await.is_err());
    }
}
