//! `rendition serve`: hands out the filesystem store's objects to whoever
//! holds a valid signed link; tampered and expired links get 403.
//! [`run`] takes its listener and a shutdown future, so tests can drive it.
//!
//! Connections are driven with hyper directly rather than `axum::serve`,
//! which has no header timeout, no connection cap, and a graceful shutdown
//! that waits for ever on a client that never finishes its request. The
//! limits are [`ServeLimits`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::storage::fs::FsStore;
use crate::storage::link::LinkSigner;
use crate::storage::{check_key, content_disposition, content_type_of};

/// What a client may hold of the server, and for how long.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    /// A request head must arrive whole within this of the connection
    /// opening or of the previous response ending. hyper restarts the timer
    /// for every head, so it is also how long a kept-alive connection may
    /// sit idle: there is no separate, longer keep-alive timeout.
    pub header_timeout: Duration,
    /// How long a response may wait on a client that takes none of its
    /// bytes (a download nobody reads holds a connection as surely as a
    /// half-sent head).
    pub send_timeout: Duration,
    /// Connections served at once. At the cap the server stops calling
    /// `accept`: further connections wait in the kernel's listen backlog
    /// (and past that are refused by the kernel) until one ends, so a burst
    /// is delayed, not answered with closed sockets. 0 is taken as 1.
    pub max_connections: usize,
    /// After shutdown, how long responses already being sent may take to
    /// finish before their connections are dropped too. Connections with no
    /// request in flight (idle, silent or half-sent) are dropped at once.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

struct Served {
    store: FsStore,
    signer: LinkSigner,
}

#[derive(Deserialize)]
struct LinkQuery {
    exp: Option<i64>,
    sig: Option<String>,
}

pub fn router(store: FsStore, signer: LinkSigner) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/{*key}", get(object))
        .with_state(Arc::new(Served { store, signer }))
}

/// Serves with the default [`ServeLimits`] until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    store: FsStore,
    signer: LinkSigner,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    run_with_limits(listener, store, signer, ServeLimits::default(), shutdown).await
}

/// Serves until `shutdown` completes, then returns once the responses in
/// flight are done or `limits.shutdown_grace` has passed.
pub async fn run_with_limits(
    listener: TcpListener,
    store: FsStore,
    signer: LinkSigner,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(store, signer);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, slot) = tokio::select! {
            next = accept(&listener, &slots) => next,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(stream, app.clone(), limits.clone(), stop.clone(), slot));
    }
    // New connections are refused from here on, not left in the backlog.
    drop(listener);
    let _ = stopping.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(limits.shutdown_grace, drained).await;
    // Dropping the set aborts what is still sending, closing its sockets.
    Ok(())
}

/// The next connection, once a slot is free for it: waiting for the slot
/// before `accept` is what leaves connections over the cap in the backlog.
async fn accept(listener: &TcpListener, slots: &Arc<Semaphore>) -> (TcpStream, OwnedSemaphorePermit) {
    let slot = Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (stream, slot),
            // A client that gave up before we got to it: nothing to wait for.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) => {}
            // Out of file descriptors and the like: pause rather than spin.
            Err(e) => {
                tracing::warn!(error = %e, "serve: accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// One connection, holding its slot until it ends.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(SendTimeout::new(stream, limits.send_timeout));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, tracked(app, Arc::clone(&in_flight)));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => return log_end(ended),
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    // Nothing being answered: whatever the client is half-way through
    // sending, or not sending, is not worth waiting for.
    if in_flight.load(Ordering::Acquire) == 0 {
        return;
    }
    conn.as_mut().graceful_shutdown();
    log_end(conn.await);
}

fn log_end(ended: hyper::Result<()>) {
    if let Err(e) = ended {
        tracing::debug!(error = %e, "serve: connection ended");
    }
}

/// The router as a hyper service whose requests count in `in_flight` from
/// the moment they are read until their response body has been sent (or
/// dropped), so shutdown can tell an answer being sent from a client that
/// has not finished asking.
fn tracked(
    app: Router,
    in_flight: Arc<AtomicUsize>,
) -> impl hyper::service::Service<Request<Incoming>, Response = Response<Tracked>, Error = Infallible, Future: Send> {
    let app = TowerToHyperService::new(app);
    hyper::service::service_fn(move |request: Request<Incoming>| {
        let busy = Busy::new(&in_flight);
        let answer = app.call(request);
        async move {
            let response = answer.await?;
            Ok(response.map(|body| Tracked { body, _busy: busy }))
        }
    })
}

/// One request in flight on its connection, for as long as it lives.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(count))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted while it is sent.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection whose writes fail once the client has taken none of the
/// bytes waiting for it for `limit`. The clock runs only while a write is
/// blocked, so a slow handler or a client thinking between requests is not
/// counted (the header timeout covers the latter).
struct SendTimeout {
    stream: TcpStream,
    limit: Duration,
    blocked: Option<Pin<Box<Sleep>>>,
}

impl SendTimeout {
    fn new(stream: TcpStream, limit: Duration) -> SendTimeout {
        SendTimeout {
            stream,
            limit,
            blocked: None,
        }
    }

    /// Stops the clock on any outcome; starts it, or reports it run out,
    /// when the write is blocked.
    fn timed<T>(&mut self, cx: &mut Context<'_>, outcome: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.blocked = None;
            return outcome;
        }
        let limit = self.limit;
        let clock = self.blocked.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(clock.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took none of the response in time",
        )))
    }
}

impl AsyncRead for SendTimeout {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendTimeout {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.timed(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.timed(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_flush(cx);
        this.timed(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

async fn object(State(s): State<Arc<Served>>, Path(key): Path<String>, Query(q): Query<LinkQuery>) -> Response {
    let (Some(exp), Some(sig)) = (q.exp, q.sig) else {
        return refuse(StatusCode::FORBIDDEN, "this link is not signed");
    };
    if check_key(&key).is_err() {
        return refuse(StatusCode::FORBIDDEN, "no such link");
    }
    if let Err(e) = s.signer.verify(&key, exp, &sig, Utc::now()) {
        return refuse(StatusCode::FORBIDDEN, &e.to_string());
    }
    let Ok(path) = s.store.path(&key) else {
        return refuse(StatusCode::FORBIDDEN, "no such link");
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => return refuse(StatusCode::NOT_FOUND, "this rendition is gone"),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let sidecar = s.store.sidecar(&key).await.ok().flatten().unwrap_or_default();
    let content_type = if sidecar.content_type.is_empty() {
        content_type_of(&key).to_string()
    } else {
        sidecar.content_type
    };
    let filename = sidecar
        .filename
        .unwrap_or_else(|| key.rsplit('/').next().unwrap_or("download").to_string());
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    let headers = response.headers_mut();
    let set = |v: String| HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_TYPE, set(content_type));
    headers.insert(header::CONTENT_LENGTH, set(len.to_string()));
    headers.insert(header::CONTENT_DISPOSITION, set(content_disposition(&filename)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}
