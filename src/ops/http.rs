//! `/healthz` (the process answers), `/readyz` (broker connected and store
//! reachable) and `/metrics` (Prometheus), on `RENDITION_HTTP_ADDR`.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::Metrics;

/// What `/readyz` asks.
pub trait Readiness: Send + Sync + 'static {
    /// The broker node (`host:port`) the worker consumes from, if any.
    fn broker_node(&self) -> Option<String>;
    fn store_reachable(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// The node the worker loop is consuming from, kept up to date by it.
#[derive(Debug, Default)]
pub struct BrokerFlag(Mutex<Option<String>>);

impl BrokerFlag {
    pub fn set(&self, node: Option<&str>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = node.map(str::to_string);
    }
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

/// `ready` and the broker node on the first line, so an operator sees
/// where each worker of a cluster consumes (docs/operating.md#a-rabbitmq-cluster).
async fn ready<R: Readiness>(State(ops): State<Arc<Ops<R>>>) -> (StatusCode, String) {
    let Some(node) = ops.readiness.broker_node() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "broker: not connected\n".into());
    };
    let probe = tokio::time::timeout(std::time::Duration::from_secs(5), ops.readiness.store_reachable());
    match probe.await {
        Ok(Ok(())) => (StatusCode::OK, format!("ready\nbroker: {node}\n")),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store: no answer in 5 s\n".into()),
    }
}

async fn metrics_text<R: Readiness>(State(ops): State<Arc<Ops<R>>>) -> ([(&'static str, &'static str); 1], String) {
    let kind = (
        "content-type",
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
    );
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
