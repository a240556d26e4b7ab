//! The Prometheus and Web providers against local HTTP servers this test runs (no cluster):
//! authentication and headers, API errors, timeouts of a server that never answers.

use rollouts::analysis::providers::Provider;
use rollouts::analysis::providers::prometheus::PrometheusProvider;
use rollouts::analysis::providers::web::WebProvider;
use rollouts::api::{AnalysisRun, Measurement, Metric, analysis_phase};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Serves `routes` (path → (status, body)) on a free port, recording each request's headers
/// (plus `:path` and `:body`).
async fn serve(routes: Vec<(&'static str, u16, String)>) -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let routes = Arc::new(routes);
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let routes = routes.clone();
            let seen = s2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let end = loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let mut h: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize = h
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                while buf.len() < end + len {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let path = target.split('?').next().unwrap_or_default().to_string();
                h.insert(":path".into(), target);
                h.insert(
                    ":body".into(),
                    String::from_utf8_lossy(&buf[end..]).into_owned(),
                );
                seen.lock().unwrap().push(h);
                let (code, body) = routes
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    .map(|(_, c, b)| (*c, b.clone()))
                    .unwrap_or((404, "not found".into()));
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

/// A server that accepts connections and never answers.
async fn hang() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

fn metric(v: serde_json::Value) -> Metric {
    serde_json::from_value(v).unwrap()
}

async fn measure(p: &dyn Provider, m: &Metric) -> Measurement {
    let run = AnalysisRun::default();
    tokio::time::timeout(p.deadline(), p.run(&run, m))
        .await
        .expect("within the provider's deadline")
}

const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.02"]}]}}"#;

#[tokio::test]
async fn prometheus_sends_headers_and_basic_auth() {
    let (port, seen) = serve(vec![("/api/v1/query", 200, VECTOR.into())]).await;
    let m = metric(
        json!({"name": "m", "successCondition": "result[0] < 0.05", "provider": {
        "prometheus": {"address": format!("http://127.0.0.1:{port}"), "query": "sum(x)",
            "headers": [{"key": "X-Scope-OrgID", "value": "team-a"}],
            "authentication": {"basicAuth": {"username": "user", "password": "pass"}}}}}),
    );
    let prom = m.provider.as_ref().unwrap().prometheus.as_ref().unwrap();
    let p = PrometheusProvider::new(prom, None).unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(
        out.phase.as_deref(),
        Some(analysis_phase::SUCCESSFUL),
        "{out:?}"
    );
    assert_eq!(out.value.as_deref(), Some("[0.02]"));
    assert!(out.started_at.is_some() && out.finished_at.is_some());
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(req["x-scope-orgid"], "team-a");
    assert_eq!(req["authorization"], "Basic dXNlcjpwYXNz");
    assert!(
        req[":path"].contains("query=sum%28x%29"),
        "{}",
        req[":path"]
    );
}

#[tokio::test]
async fn prometheus_oauth2_client_credentials() {
    let (port, seen) = serve(vec![
        (
            "/token",
            200,
            r#"{"access_token":"tok-123","token_type":"bearer"}"#.into(),
        ),
        ("/api/v1/query", 200, VECTOR.into()),
    ])
    .await;
    let m = metric(json!({"name": "m", "provider": {"prometheus": {
        "address": format!("http://127.0.0.1:{port}"), "query": "up",
        "authentication": {"oauth2": {"tokenUrl": format!("http://127.0.0.1:{port}/token"),
            "clientId": "id", "clientSecret": "secret", "scopes": ["a", "b"]}}}}}));
    let prom = m.provider.as_ref().unwrap().prometheus.as_ref().unwrap();
    let p = PrometheusProvider::new(prom, None).unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(
        out.phase.as_deref(),
        Some(analysis_phase::SUCCESSFUL),
        "{out:?}"
    );
    let reqs = seen.lock().unwrap().clone();
    let token_req = reqs.iter().find(|r| r[":path"] == "/token").unwrap();
    assert!(token_req[":body"].contains("grant_type=client_credentials"));
    assert!(
        token_req[":body"].contains("scope=a+b"),
        "{}",
        token_req[":body"]
    );
    let q = reqs
        .iter()
        .find(|r| r[":path"].starts_with("/api/v1/query"))
        .unwrap();
    assert_eq!(q["authorization"], "Bearer tok-123");
}

#[tokio::test]
async fn prometheus_api_errors_and_timeouts_are_error_measurements() {
    let (port, _) = serve(vec![(
        "/api/v1/query",
        400,
        r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#.into(),
    )])
    .await;
    let m = metric(json!({"name": "m", "provider": {"prometheus": {
        "address": format!("http://127.0.0.1:{port}"), "query": "sum((("}}}));
    let p = PrometheusProvider::new(
        m.provider.as_ref().unwrap().prometheus.as_ref().unwrap(),
        None,
    )
    .unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(out.phase.as_deref(), Some(analysis_phase::ERROR));
    assert_eq!(
        out.message.as_deref(),
        Some("prometheus returned HTTP 400: bad_data: 1:5: parse error")
    );

    let port = hang().await;
    let m = metric(json!({"name": "m", "provider": {"prometheus": {
        "address": format!("http://127.0.0.1:{port}"), "query": "up", "timeout": 1}}}));
    let p = PrometheusProvider::new(
        m.provider.as_ref().unwrap().prometheus.as_ref().unwrap(),
        None,
    )
    .unwrap();
    let started = Instant::now();
    let out = measure(&p, &m).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.phase.as_deref(), Some(analysis_phase::ERROR));
    let msg = out.message.unwrap();
    assert!(msg.contains("querying prometheus"), "{msg}");
    assert!(msg.to_lowercase().contains("timed out"), "{msg}");
}

#[tokio::test]
async fn prometheus_scalars_and_the_default_address() {
    let (port, _) = serve(vec![(
        "/api/v1/query",
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#.into(),
    )])
    .await;
    let m = metric(json!({"name": "m", "successCondition": "result == 3",
        "provider": {"prometheus": {"query": "scalar(x)"}}}));
    let prom = m.provider.as_ref().unwrap().prometheus.as_ref().unwrap();
    let p = PrometheusProvider::new(prom, Some(&format!("http://127.0.0.1:{port}"))).unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(
        out.phase.as_deref(),
        Some(analysis_phase::SUCCESSFUL),
        "{out:?}"
    );
    assert_eq!(out.value.as_deref(), Some("3"));
}

#[tokio::test]
async fn web_non_json_bodies_and_hanging_servers() {
    let (port, _) = serve(vec![("/text", 200, "plain ok".into())]).await;
    let m = metric(json!({"name": "m", "successCondition": "false",
        "provider": {"web": {"url": format!("http://127.0.0.1:{port}/text")}}}));
    let p = WebProvider::new(m.provider.as_ref().unwrap().web.as_ref().unwrap()).unwrap();
    let out = measure(&p, &m).await;
    // Upstream: a body that is not JSON is the value, and the measurement Successful.
    assert_eq!(out.phase.as_deref(), Some(analysis_phase::SUCCESSFUL));
    assert_eq!(out.value.as_deref(), Some("plain ok"));

    let port = hang().await;
    let m = metric(json!({"name": "m", "provider": {"web": {
        "url": format!("http://127.0.0.1:{port}/"), "timeoutSeconds": 1}}}));
    let p = WebProvider::new(m.provider.as_ref().unwrap().web.as_ref().unwrap()).unwrap();
    let started = Instant::now();
    let out = measure(&p, &m).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.phase.as_deref(), Some(analysis_phase::ERROR));
    assert!(out.message.unwrap().to_lowercase().contains("timed out"));
}

#[tokio::test]
async fn unsupported_providers_are_named() {
    let client_free = metric(json!({"name": "m", "provider": {"newRelic": {"query": "q"}}}));
    assert_eq!(
        rollouts::analysis::providers::provider_name(&client_free).as_deref(),
        Some("newRelic")
    );
    let plugin = metric(json!({"name": "m", "provider": {"plugin": {"acme/metrics": {}}}}));
    assert_eq!(
        rollouts::analysis::providers::provider_name(&plugin).as_deref(),
        Some("plugin acme/metrics")
    );
}
