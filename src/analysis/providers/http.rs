//! HTTP plumbing shared by the Prometheus and Web providers: clients, headers, authentication.

use crate::api::{Authentication, WebMetricHeader};
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// A one-line description of an error and its sources (reqwest's Display alone hides the
/// useful part, e.g. "connection refused").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Header map of `headers` (an invalid name or value is an error naming it).
pub fn header_map(headers: &[WebMetricHeader]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for h in headers {
        let key = h.key.clone().unwrap_or_default();
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("invalid header name {key:?}"))?;
        let value = HeaderValue::from_str(h.value.as_deref().unwrap_or_default())
            .map_err(|_| format!("invalid value for header {key:?}"))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// An HTTP client with a whole-request `timeout`, optionally skipping TLS verification.
pub fn client(
    insecure: bool,
    timeout: Duration,
    headers: HeaderMap,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .danger_accept_invalid_certs(insecure)
        .default_headers(headers)
        .build()
        .map_err(|e| format!("building the HTTP client: {}", error_chain(&e)))
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// The `Authorization` header value for `auth`: `Basic ...` for basicAuth, `Bearer <token>`
/// for OAuth2 client credentials (a token is fetched for each measurement). SigV4 is not
/// supported.
pub async fn authorization(
    auth: Option<&Authentication>,
    http: &reqwest::Client,
) -> Result<Option<HeaderValue>, String> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    if let Some(o) = auth
        .oauth2
        .as_ref()
        .filter(|o| o.token_url.as_deref().is_some_and(|u| !u.is_empty()))
    {
        let url = o.token_url.clone().unwrap_or_default();
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", o.client_id.clone().unwrap_or_default()),
            ("client_secret", o.client_secret.clone().unwrap_or_default()),
        ];
        if let Some(scopes) = o.scopes.as_ref().filter(|s| !s.is_empty()) {
            form.push(("scope", scopes.join(" ")));
        }
        let resp = http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("oauth2 token request: {}", error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("oauth2 token request: HTTP {}", status.as_u16()));
        }
        let token: TokenResponse = resp
            .json()
            .await
            .map_err(|e| format!("oauth2 token response: {}", error_chain(&e)))?;
        return HeaderValue::from_str(&format!("Bearer {}", token.access_token))
            .map(Some)
            .map_err(|_| "oauth2 token is not a valid header value".to_string());
    }
    if let Some(b) = auth
        .basic_auth
        .as_ref()
        .filter(|b| b.username.as_deref().is_some_and(|u| !u.is_empty()))
    {
        let raw = format!(
            "{}:{}",
            b.username.as_deref().unwrap_or_default(),
            b.password.as_deref().unwrap_or_default()
        );
        let enc = base64::engine::general_purpose::STANDARD.encode(raw);
        let mut v = HeaderValue::from_str(&format!("Basic {enc}"))
            .map_err(|_| "basic auth credentials are not a valid header value".to_string())?;
        v.set_sensitive(true);
        return Ok(Some(v));
    }
    if auth.sigv4.is_some() {
        return Err("sigv4 authentication is not supported by this controller".into());
    }
    Ok(None)
}

/// Whether `s` is an absolute URL with a host.
pub fn is_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| u.has_host() && !u.scheme().is_empty())
}
