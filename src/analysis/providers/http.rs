//! HTTP plumbing shared by the providers: clients, headers, authentication, and [`send`],
//! which carries out a [`Request`] a provider built (purely) and hands back the status and
//! body for it to parse (purely).

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

/// Why a client, a header or an `Authorization` value could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    #[error("invalid value for header {0:?}")]
    HeaderValue(String),
    #[error("building the HTTP client: {}", error_chain(.0))]
    Client(#[source] reqwest::Error),
    #[error("oauth2 token request: {}", error_chain(.0))]
    TokenRequest(#[source] reqwest::Error),
    #[error("oauth2 token request: HTTP {0}")]
    TokenStatus(u16),
    #[error("oauth2 token response: {}", error_chain(.0))]
    TokenResponse(#[source] reqwest::Error),
    #[error("oauth2 token is not a valid header value")]
    TokenHeader,
    #[error("basic auth credentials are not a valid header value")]
    BasicAuthHeader,
    #[error("sigv4 authentication is not supported by this controller")]
    SigV4Unsupported,
}

/// Header map of `headers` (an invalid name or value is an error naming it).
pub fn header_map(headers: &[WebMetricHeader]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    for h in headers {
        let key = h.key.clone().unwrap_or_default();
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| HttpError::HeaderName(key.clone()))?;
        let value = HeaderValue::from_str(h.value.as_deref().unwrap_or_default())
            .map_err(|_| HttpError::HeaderValue(key.clone()))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// An HTTP client with a whole-request `timeout`, optionally skipping TLS verification.
pub fn client(
    insecure: bool,
    timeout: Duration,
    headers: HeaderMap,
) -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .danger_accept_invalid_certs(insecure)
        .default_headers(headers)
        .build()
        .map_err(HttpError::Client)
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
) -> Result<Option<HeaderValue>, HttpError> {
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
            .map_err(HttpError::TokenRequest)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HttpError::TokenStatus(status.as_u16()));
        }
        let token: TokenResponse = resp.json().await.map_err(HttpError::TokenResponse)?;
        return HeaderValue::from_str(&format!("Bearer {}", token.access_token))
            .map(Some)
            .map_err(|_| HttpError::TokenHeader);
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
            .map_err(|_| HttpError::BasicAuthHeader)?;
        v.set_sensitive(true);
        return Ok(Some(v));
    }
    if auth.sigv4.is_some() {
        return Err(HttpError::SigV4Unsupported);
    }
    Ok(None)
}

/// Whether `s` is an absolute URL with a host.
pub fn is_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| u.has_host() && !u.scheme().is_empty())
}

/// A request a provider built: sent by [`send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: reqwest::Method,
    /// The full URL, query string included.
    pub url: String,
    /// Header names and values, in order. Credentials among them are never logged.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: reqwest::Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST of `body` with `content_type`.
    pub fn post(url: impl Into<String>, content_type: &str, body: Vec<u8>) -> Self {
        Request {
            method: reqwest::Method::POST,
            url: url.into(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Some(body),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body, on one line, for an error message (bounded).
    pub fn snippet(&self) -> String {
        snippet(&self.body)
    }

    /// An error for a non-2xx answer from `provider`.
    pub fn status_error(&self, provider: &'static str) -> super::ProviderError {
        super::ProviderError::Status {
            provider,
            status: self.status,
            body: self.snippet(),
        }
    }
}

/// The first 300 characters of `text`, whitespace folded.
pub fn snippet(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() > 300 {
        format!("{}...", folded.chars().take(300).collect::<String>())
    } else {
        folded
    }
}

const SENSITIVE: &[&str] = &[
    "authorization",
    "api-key",
    "dd-api-key",
    "dd-application-key",
    "x-amz-security-token",
];

/// Sends `req` with a whole-request `timeout` (TLS verified). A transport failure is an error;
/// any HTTP status is a [`Response`] for the provider to judge.
pub async fn send(req: &Request, timeout: Duration) -> Result<Response, super::ProviderError> {
    let transport = |message: String| super::ProviderError::Transport {
        url: req.url.clone(),
        message,
    };
    let hc = client(false, timeout, HeaderMap::new()).map_err(|e| transport(e.to_string()))?;
    let mut b = hc.request(req.method.clone(), &req.url);
    for (k, v) in &req.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| transport(format!("invalid header name {k:?}")))?;
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| transport(format!("invalid value for header {k:?}")))?;
        if SENSITIVE.contains(&k.to_ascii_lowercase().as_str()) {
            value.set_sensitive(true);
        }
        b = b.header(name, value);
    }
    if let Some(body) = &req.body {
        b = b.body(body.clone());
    }
    let resp = b.send().await.map_err(|e| transport(error_chain(&e)))?;
    let status = resp.status().as_u16();
    let body = resp
        .text()
        .await
        .map_err(|e| transport(format!("reading the response: {}", error_chain(&e))))?;
    Ok(Response { status, body })
}

/// Percent-encodes `s` for a URL query or form (RFC 3986 unreserved characters kept, as Go's
/// `url.QueryEscape` but with `%20` for a space).
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY).to_string()
}

const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `k=v&k=v`, each part encoded with [`encode`].
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `base` without a trailing `/`, then `path`.
pub fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}
