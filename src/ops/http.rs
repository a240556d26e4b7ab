//! The HTTP endpoints: `/metrics` on the metrics address, `/healthz` and `/readyz` on the
//! health address (all three on one listener when both addresses are the same).
//!
//! - `/healthz`: 200 while the process serves (liveness).
//! - `/readyz`: 200 when this replica is useful: without leader election, once the Rollout
//!   cache has synced; with it, once the Lease state is known and, on the leader, the cache
//!   has synced (a standby is ready: it is what takes over). 503 otherwise, with the reason.

use super::leader::Role;
use super::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the endpoints read.
#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// The election role, when leader election is on.
    pub role: Option<watch::Receiver<Role>>,
}

impl Health {
    /// `Ok` when ready, else why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        let role = self.role.as_ref().map(|r| *r.borrow());
        match role {
            Some(Role::Unknown) => Err("the leader election lease has not been read yet"),
            Some(Role::Follower) => Ok(()),
            Some(Role::Leader) | None => {
                if self.metrics.rollouts_synced() {
                    Ok(())
                } else {
                    Err("the Rollout cache has not synced yet")
                }
            }
        }
    }
}

async fn metrics(State(h): State<Health>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    match h.metrics.encode(openmetrics) {
        Ok(body) => {
            let ct = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            };
            ([(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(h): State<Health>) -> Response {
    match h.ready() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

/// The metrics routes.
pub fn metrics_router(h: Health) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(h)
}

/// The health routes.
pub fn health_router(h: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(h)
}

/// Serves `router` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}
