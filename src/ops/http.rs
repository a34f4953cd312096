//! `/healthz` (the process answers), `/readyz` (broker connected and store
//! reachable) and `/metrics` (Prometheus), on `RENDITION_HTTP_ADDR`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::Metrics;

/// What `/readyz` asks.
pub trait Readiness: Send + Sync + 'static {
    fn broker_connected(&self) -> bool;
    fn store_reachable(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// The broker flag the worker loop keeps up to date.
#[derive(Debug, Default)]
pub struct BrokerFlag(AtomicBool);

impl BrokerFlag {
    pub fn set(&self, connected: bool) {
        self.0.store(connected, Ordering::SeqCst);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

struct Ops<R> {
    metrics: Arc<Metrics>,
    readiness: Arc<R>,
}

pub fn router<R: Readiness>(metrics: Arc<Metrics>, readiness: Arc<R>) -> Router {
    let state = Arc::new(Ops { metrics, readiness });
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<R>))
        .route("/metrics", get(metrics_text::<R>))
        .with_state(state)
}

async fn ready<R: Readiness>(State(ops): State<Arc<Ops<R>>>) -> (StatusCode, String) {
    if !ops.readiness.broker_connected() {
        return (StatusCode::SERVICE_UNAVAILABLE, "broker: not connected\n".into());
    }
    let probe = tokio::time::timeout(std::time::Duration::from_secs(5), ops.readiness.store_reachable());
    match probe.await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".into()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store: no answer in 5 s\n".into()),
    }
}

async fn metrics_text<R: Readiness>(State(ops): State<Arc<Ops<R>>>) -> ([(&'static str, &'static str); 1], String) {
    let kind = ("content-type", "text/plain; version=0.0.4");
    ([kind], ops.metrics.render())
}

/// Serves the endpoints until `shutdown` completes.
pub async fn run<R: Readiness>(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    readiness: Arc<R>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}
