//! The operations HTTP service of a validator: `/metrics` (Prometheus text format), `/livez`
//! (the validator loop is turning) and `/readyz` (connected to a quorum and caught up; the body
//! says what is missing). Public data only: it serves what the metrics count, nothing of a
//! transaction's content. Bind it to an address only operators reach.

use crate::metrics::{encode, registry, Metrics};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;

/// What the service reads: the validator's and the transport's metrics.
struct Service {
    registry: Registry,
    node: Metrics,
    net: shoji_net::NetMetrics,
    /// The database file, whose size and free space are read at each scrape.
    database: Option<PathBuf>,
}

/// The content type of the OpenMetrics text format, which Prometheus scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The routes, over `node`'s and `net`'s metrics and the validator's `database` file.
pub fn router(node: &Metrics, net: &shoji_net::NetMetrics, database: Option<PathBuf>) -> Router {
    let service = Arc::new(Service {
        registry: registry(node, net),
        node: node.clone(),
        net: net.clone(),
        database,
    });
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(service)
}

async fn metrics(State(s): State<Arc<Service>>) -> Response {
    if let Some(db) = &s.database {
        s.node.read_storage(db);
    }
    // Sets `shoji_ready`.
    let _ = s.node.readiness(&s.net);
    ([(header::CONTENT_TYPE, OPENMETRICS)], encode(&s.registry)).into_response()
}

async fn livez(State(s): State<Arc<Service>>) -> Response {
    match s.node.liveness(unix_now_ms()) {
        Ok(()) => (StatusCode::OK, "live\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not live: {why}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(s): State<Arc<Service>>) -> Response {
    match s.node.readiness(&s.net) {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(missing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n- {}\n", missing.join("\n- ")),
        )
            .into_response(),
    }
}

/// Serves the operations routes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: &Metrics,
    net: &shoji_net::NetMetrics,
    database: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(node, net, database))
        .with_graceful_shutdown(shutdown)
        .await
}
