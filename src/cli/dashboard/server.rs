//! The dashboard's HTTP server: the embedded page, a JSON API, server-sent event streams,
//! and the actions, behind the safety checks of [`super`] (module docs).
//!
//! | Method and path (under the root path) | What |
//! | --- | --- |
//! | `GET /` , `/app.js`, `/app.css`, `/icon.svg` | the page (embedded in the binary) |
//! | `GET api/v1/info` | version, read-only, namespace, all-namespaces |
//! | `GET api/v1/namespaces` | namespaces for the switcher (those the user may list) |
//! | `GET api/v1/rollouts?namespace=NS` | the list rows |
//! | `GET api/v1/rollouts/NS/NAME` | the Rollout view |
//! | `GET api/v1/stream/rollouts?namespace=NS` | SSE: `snapshot`, then `delta`s (`upsert`, `remove`), `problems` |
//! | `GET api/v1/stream/rollouts/NS/NAME` | SSE: `view` on every change of the view, `missing`, `problems` |
//! | `POST api/v1/rollouts/NS/NAME/ACTION` | `promote`, `promote-full`, `abort`, `retry`, `pause`, `restart`, `set-image` (`{"container","image"}`), `rollback` (`{"revision"}`) |

use super::hub::{Hub, Key};
use super::view;
use crate::cli::cluster::Conn;
use crate::cli::error::{CliError, exit};
use crate::cli::verbs;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::Stream;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// How long a page waits for the first listing before it is shown what there is.
const FIRST_LIST: Duration = Duration::from_secs(20);

/// The header carrying the action token.
pub const TOKEN_HEADER: &str = "x-rollouts-token";

/// Everything the handlers share.
pub struct App {
    pub hub: Hub,
    pub client: Client,
    /// The API server's URL (for messages).
    pub server: String,
    /// The namespace shown first (the context's, or `-n`).
    pub namespace: String,
    pub token: String,
    pub read_only: bool,
    /// `""` or `/rollouts`.
    pub prefix: String,
    /// `Host` values accepted (`None`: any; when bound to a non-loopback address).
    pub allowed_hosts: Option<Vec<String>>,
    /// Becomes true when the dashboard stops: the event streams end.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl App {
    /// Runs an event stream's producer until it ends, or the dashboard stops.
    fn spawn_stream(&self, producer: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = producer => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

type Shared = Arc<App>;

/// The router of the dashboard.
pub fn router(app: Shared) -> Router {
    let p = app.prefix.clone();
    let mut r = Router::new()
        .route(&format!("{p}/"), get(index))
        .route(&format!("{p}/app.js"), get(app_js))
        .route(&format!("{p}/app.css"), get(app_css))
        .route(&format!("{p}/icon.svg"), get(icon))
        .route(&format!("{p}/api/v1/info"), get(info))
        .route(&format!("{p}/api/v1/namespaces"), get(namespaces))
        .route(&format!("{p}/api/v1/rollouts"), get(list))
        .route(
            &format!("{p}/api/v1/rollouts/{{ns}}/{{name}}"),
            get(rollout),
        )
        .route(&format!("{p}/api/v1/stream/rollouts"), get(stream_list))
        .route(
            &format!("{p}/api/v1/stream/rollouts/{{ns}}/{{name}}"),
            get(stream_rollout),
        )
        .route(
            &format!("{p}/api/v1/rollouts/{{ns}}/{{name}}/{{action}}"),
            post(action),
        );
    if !p.is_empty() {
        let to = format!("{p}/");
        r = r.route(&p, get(move || async move { Redirect::permanent(&to) }));
    }
    r.fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// The Content-Security-Policy: our own script and style only, no inline script, no
/// framing, requests only to this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Every response: the Host check (against DNS rebinding), then security headers.
async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(allowed) = &app.allowed_hosts {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not this dashboard's address (expected one of {}): refused, as a DNS-rebinding guard",
                    allowed.join(", ")
                ),
            );
        }
    }
    let api = req.uri().path().contains("/api/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    );
    if api {
        set(h, "cache-control", "no-store");
    } else if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-cache");
    }
    resp
}

/// A request refused before anything was done: its status and words.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": message.into(), "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page")
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}
async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}
async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}
async fn icon() -> Response {
    asset("image/svg+xml", ICON_SVG)
}

async fn info(State(app): State<Shared>) -> Response {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "readOnly": app.read_only,
        "namespace": app.namespace,
        "allNamespaces": app.hub.all_namespaces(),
    }))
    .into_response()
}

async fn namespaces(State(app): State<Shared>) -> Response {
    let api: Api<Namespace> = Api::all(app.client.clone());
    let (mut names, note): (Vec<String>, Option<String>) =
        match api.list_metadata(&ListParams::default()).await {
            Ok(l) => (
                l.items
                    .into_iter()
                    .filter_map(|n| n.metadata.name)
                    .collect(),
                None,
            ),
            Err(e) => (
                Vec::new(),
                Some(format!(
                    "the namespaces cannot be listed ({}): type one",
                    crate::cli::cluster::chain(&e)
                )),
            ),
        };
    if app.hub.all_namespaces() {
        names.extend(app.hub.set_for("").namespaces());
    }
    names.push(app.namespace.clone());
    names.sort();
    names.dedup();
    axum::Json(json!({"namespaces": names, "note": note})).into_response()
}

#[derive(Deserialize)]
struct NsQuery {
    namespace: Option<String>,
}

impl App {
    /// The namespace a request asks for: its `namespace`, else the default one; in
    /// all-namespaces mode an empty or absent one means all (`None`).
    fn namespace_of(&self, q: &NsQuery) -> Result<Option<String>, Refusal> {
        let ns = q.namespace.clone().filter(|n| !n.is_empty());
        if let Some(n) = &ns
            && !valid_namespace(n)
        {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                format!("{n:?} is not a valid namespace name"),
            ));
        }
        Ok(match (ns, self.hub.all_namespaces()) {
            (Some(n), _) => Some(n),
            (None, true) => None,
            (None, false) => Some(self.namespace.clone()),
        })
    }
}

fn valid_namespace(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

fn check_key(ns: &str, name: &str) -> Result<(), Refusal> {
    if !valid_namespace(ns) {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("{ns:?} is not a valid namespace name"),
        ));
    }
    if !valid_name(name) {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not a valid rollout name"),
        ));
    }
    Ok(())
}

async fn list(State(app): State<Shared>, Query(q): Query<NsQuery>) -> Response {
    let ns = match app.namespace_of(&q) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let set = app.hub.set_for(ns.as_deref().unwrap_or_default());
    set.list_ready(FIRST_LIST).await;
    let (_, rows) = set.snapshot(ns.as_deref());
    axum::Json(json!({"rows": rows, "problems": set.problems()})).into_response()
}

async fn rollout(State(app): State<Shared>, Path((ns, name)): Path<(String, String)>) -> Response {
    if let Err(r) = check_key(&ns, &name) {
        return r.into_response();
    }
    let set = app.hub.set_for(&ns);
    set.view_ready(FIRST_LIST).await;
    match set.model(&(ns.clone(), name.clone())) {
        Some(model) => axum::Json(view::rollout_view(&model)).into_response(),
        None => {
            let mut msg = format!("rollout {name:?} not found in namespace {ns:?}");
            for p in set.problems() {
                msg.push_str(&format!("; {p}"));
            }
            error(StatusCode::NOT_FOUND, msg)
        }
    }
}

fn sse_event(kind: &str, data: &Value) -> Event {
    Event::default().event(kind).data(data.to_string())
}

/// A stream fed by a task; the task ends when the page goes (the receiver is dropped).
fn sse_stream(rx: mpsc::Receiver<Event>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn key_json(k: &Key) -> Value {
    json!({"namespace": k.0, "name": k.1})
}

async fn stream_list(State(app): State<Shared>, Query(q): Query<NsQuery>) -> Response {
    let ns = match app.namespace_of(&q) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let set = app.hub.set_for(ns.as_deref().unwrap_or_default());
    let (tx, rx) = mpsc::channel::<Event>(64);
    app.spawn_stream(async move {
        let mut changes = set.subscribe();
        // The page reconnects after 2 s when the stream drops.
        let _ = tx
            .send(
                Event::default()
                    .retry(Duration::from_secs(2))
                    .comment("hello"),
            )
            .await;
        set.list_ready(FIRST_LIST).await;
        let filter = ns.as_deref();
        let snapshot = |set: &super::hub::WatchSet| {
            let (seq, rows) = set.snapshot(filter);
            (
                seq,
                sse_event(
                    "snapshot",
                    &json!({"rows": rows, "problems": set.problems()}),
                ),
            )
        };
        let (mut seq, first) = snapshot(&set);
        if tx.send(first).await.is_err() {
            return;
        }
        loop {
            match changes.recv().await {
                Ok(c) => {
                    if let Some(p) = &c.problems
                        && tx
                            .send(sse_event("problems", &json!({"problems": p})))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    if c.seq <= seq {
                        continue;
                    }
                    seq = c.seq;
                    let upsert: Vec<&view::ListRow> = c
                        .upsert
                        .iter()
                        .filter(|r| filter.is_none_or(|n| r.namespace == n))
                        .collect();
                    let remove: Vec<Value> = c
                        .remove
                        .iter()
                        .filter(|k| filter.is_none_or(|n| k.0 == n))
                        .map(key_json)
                        .collect();
                    if (!upsert.is_empty() || !remove.is_empty())
                        && tx
                            .send(sse_event(
                                "delta",
                                &json!({"upsert": upsert, "remove": remove}),
                            ))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind: start again from a snapshot.
                    let (s, ev) = snapshot(&set);
                    seq = s;
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    sse_stream(rx).into_response()
}

async fn stream_rollout(
    State(app): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_key(&ns, &name) {
        return r.into_response();
    }
    let set = app.hub.set_for(&ns);
    let key: Key = (ns, name);
    let (tx, rx) = mpsc::channel::<Event>(16);
    app.spawn_stream(async move {
        let mut changes = set.subscribe();
        let _ = tx
            .send(
                Event::default()
                    .retry(Duration::from_secs(2))
                    .comment("hello"),
            )
            .await;
        set.view_ready(FIRST_LIST).await;
        let render = |set: &super::hub::WatchSet| match set.model(&key) {
            Some(m) => (
                "view",
                serde_json::to_value(view::rollout_view(&m)).unwrap_or_default(),
            ),
            None => (
                "missing",
                json!({"namespace": key.0, "name": key.1, "problems": set.problems()}),
            ),
        };
        let mut last = render(&set);
        if tx.send(sse_event(last.0, &last.1)).await.is_err() {
            return;
        }
        let problems = set.problems();
        if !problems.is_empty()
            && tx
                .send(sse_event("problems", &json!({"problems": problems})))
                .await
                .is_err()
        {
            return;
        }
        loop {
            let recompute = match changes.recv().await {
                Ok(c) => {
                    if let Some(p) = &c.problems
                        && tx
                            .send(sse_event("problems", &json!({"problems": p})))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    c.touched.contains(&key)
                }
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !recompute {
                continue;
            }
            let now = render(&set);
            if now != last {
                if tx.send(sse_event(now.0, &now.1)).await.is_err() {
                    return;
                }
                last = now;
            }
        }
    });
    sse_stream(rx).into_response()
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a state-changing request is refused, if it is: read-only, another origin, no token,
/// not JSON.
fn refuse(app: &App, headers: &HeaderMap) -> Option<Response> {
    if app.read_only {
        return Some(error(
            StatusCode::FORBIDDEN,
            "This dashboard is read-only (--read-only): actions are refused.",
        ));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    // Behind a TLS-terminating proxy the page's origin is https.
    let expected = format!("http://{host}");
    let expected_tls = format!("https://{host}");
    match origin {
        Some(o) if !host.is_empty() && (o == expected || o == expected_tls) => {}
        Some(o) => {
            return Some(error(
                StatusCode::FORBIDDEN,
                format!(
                    "Refused a request from another origin ({o}, not {expected}): actions come from this dashboard's own page only."
                ),
            ));
        }
        None => {
            return Some(error(
                StatusCode::FORBIDDEN,
                "Refused a request without an Origin header: actions come from this dashboard's own page only.",
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok())
        && site != "same-origin"
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            format!("Refused a {site} request: actions come from this dashboard's own page only."),
        ));
    }
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if token.is_empty() || !same_secret(token, &app.token) {
        return Some(error(
            StatusCode::FORBIDDEN,
            if token.is_empty() {
                "This action needs the dashboard's token: open the URL that `kubectl-rollouts dashboard` printed when it started."
            } else {
                "Wrong token (the dashboard was restarted?): open the URL that `kubectl-rollouts dashboard` printed when it started."
            },
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Actions take a JSON body (Content-Type: application/json).",
        ));
    }
    None
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ActionBody {
    container: Option<String>,
    image: Option<String>,
    revision: Option<i64>,
    /// `restart`: after this long (`30s`, `5m`).
    #[serde(rename = "in")]
    in_: Option<String>,
}

/// The HTTP status of a failed command: the API server's, else from its exit code.
fn status_of(e: &CliError) -> StatusCode {
    if let Some(s) = e.http_status.and_then(|s| StatusCode::from_u16(s).ok())
        && (s.is_client_error() || s.is_server_error())
    {
        return s;
    }
    match e.code {
        exit::NOT_FOUND => StatusCode::NOT_FOUND,
        exit::USAGE => StatusCode::BAD_REQUEST,
        exit::UNREACHABLE => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failed command in words for the page.
pub fn failure_words(e: &CliError) -> String {
    match e.http_status {
        Some(401) => format!("Not authenticated (401): {}", e),
        Some(403) => format!("Forbidden (403): your Kubernetes user may not do this. {e}"),
        Some(409) => format!(
            "Conflict (409): the rollout changed while this was being written; look again and retry. {e}"
        ),
        Some(422) => format!("Invalid (422): the API server rejected the change. {e}"),
        _ => e.to_string(),
    }
}

async fn action(
    State(app): State<Shared>,
    Path((ns, name, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refuse(&app, &headers) {
        return r;
    }
    if let Err(r) = check_key(&ns, &name) {
        return r.into_response();
    }
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body of {action:?} is not valid: {e}"),
                );
            }
        }
    };
    let conn = Conn {
        client: app.client.clone(),
        namespace: ns.clone(),
        server: app.server.clone(),
    };
    let result = match action.as_str() {
        "promote" => verbs::promote(&conn, &name, false).await,
        "promote-full" => verbs::promote(&conn, &name, true).await,
        "abort" => verbs::abort(&conn, &name).await,
        "retry" => verbs::retry(&conn, &name).await,
        "pause" => verbs::pause(&conn, &name).await,
        "restart" => match body.in_.as_deref() {
            None | Some("") => verbs::restart(&conn, &name, Duration::ZERO, "0s").await,
            Some(d) => match crate::cli::parse_duration("in", d) {
                Ok(delay) => verbs::restart(&conn, &name, delay, d).await,
                Err(e) => Err(e),
            },
        },
        "set-image" => match (body.container.as_deref(), body.image.as_deref()) {
            (Some(c), Some(i)) if !c.is_empty() && !i.trim().is_empty() => {
                verbs::set_image(&conn, &name, c, i.trim()).await
            }
            _ => Err(CliError::usage(
                "set-image needs a container (or \"*\") and a non-empty image",
            )),
        },
        "rollback" => match body.revision {
            Some(r) if r > 0 => verbs::undo(&conn, &name, r).await,
            _ => Err(CliError::usage(
                "rollback needs a revision (a number above 0)",
            )),
        },
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "no action {other:?} (promote, promote-full, abort, retry, pause, restart, set-image, rollback)"
                ),
            );
        }
    };
    match result {
        Ok(message) => {
            tracing::info!(namespace = %ns, rollout = %name, %action, "dashboard action");
            axum::Json(json!({"message": message})).into_response()
        }
        Err(e) => {
            tracing::info!(namespace = %ns, rollout = %name, %action, error = %e, "dashboard action refused");
            error(status_of(&e), failure_words(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_namespace("team-a"));
        assert!(!valid_namespace("Team"));
        assert!(!valid_namespace("a/b"));
        assert!(valid_name("web.v2"));
        assert!(!valid_name("../x"));
    }

    #[test]
    fn failures_in_words() {
        let e = CliError::failed("patching rollout \"r\": not allowed").with_status(403);
        assert_eq!(status_of(&e), StatusCode::FORBIDDEN);
        assert!(failure_words(&e).starts_with("Forbidden (403)"));
        let e = CliError::failed("x").with_status(409);
        assert_eq!(status_of(&e), StatusCode::CONFLICT);
        assert!(failure_words(&e).starts_with("Conflict (409)"));
        assert_eq!(
            status_of(&CliError::not_found("no revision")),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status_of(&CliError::usage("x")), StatusCode::BAD_REQUEST);
    }
}
