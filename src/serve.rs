//! `rendition serve`: hands out the filesystem store's objects to whoever
//! holds a valid signed link; tampered and expired links get 403.
//! [`run`] takes its listener and a shutdown future, so tests can drive it.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::storage::fs::FsStore;
use crate::storage::link::LinkSigner;
use crate::storage::{check_key, content_disposition, content_type_of};

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

/// Serves until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    store: FsStore,
    signer: LinkSigner,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(store, signer))
        .with_graceful_shutdown(shutdown)
        .await
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
