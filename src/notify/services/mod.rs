//! Delivery to one service: Slack, generic webhooks, Microsoft Teams, email (SMTP),
//! Mattermost, Google Chat.
//!
//! Every sender takes the rendered template (`message` and the service's own section) and a
//! recipient, and says whether a failure is worth retrying: transport errors, timeouts, 5xx
//! and 429 are; any other 4xx, a Slack `ok: false` and a bad template section are not.

pub mod email;
pub mod googlechat;
pub mod mattermost;
pub mod slack;
pub mod teams;
pub mod webhook;

use serde_json::Value as Json;
use std::time::Duration;

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{service}: HTTP {status}: {body}")]
    Status {
        service: String,
        status: u16,
        body: String,
    },
    #[error("{service}: {source}")]
    Transport {
        service: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{service}: the API answered: {message}")]
    Api { service: String, message: String },
    #[error("{service}: {message}")]
    Invalid { service: String, message: String },
    #[error("{service}: SMTP: {message}")]
    Smtp {
        service: String,
        message: String,
        transient: bool,
    },
}

impl SendError {
    /// Whether sending again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            SendError::Status { status, .. } => *status >= 500 || *status == 429,
            SendError::Transport { .. } => true,
            SendError::Api { message, .. } => message == "ratelimited",
            SendError::Invalid { .. } => false,
            SendError::Smtp { transient, .. } => *transient,
        }
    }

    /// A bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Status { status, .. } if *status >= 500 => "http_5xx",
            SendError::Status { .. } => "http_4xx",
            SendError::Transport { .. } => "transport",
            SendError::Api { .. } => "api",
            SendError::Invalid { .. } => "invalid",
            SendError::Smtp { .. } => "smtp",
        }
    }
}

/// One notification to deliver.
pub struct Outgoing<'a> {
    /// The service's name in the ConfigMap (`slack`, or `github` for `service.webhook.github`).
    pub service: &'a str,
    /// The service's options (secrets resolved).
    pub options: &'a Json,
    /// The rendered template document (`message`, `slack`, `webhook`, ...).
    pub rendered: &'a Json,
    pub recipient: &'a str,
}

impl Outgoing<'_> {
    /// The rendered `message` ("" when absent).
    pub fn message(&self) -> &str {
        self.rendered
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or("")
    }

    /// A string option.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .get(name)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn invalid(&self, message: impl Into<String>) -> SendError {
        SendError::Invalid {
            service: self.service.to_string(),
            message: message.into(),
        }
    }
}

/// A JSON document held in a template string (Slack's `attachments`, Teams' `facts`, ...):
/// empty is absent.
pub fn embedded_json(
    out: &Outgoing<'_>,
    field: &str,
    text: Option<&str>,
) -> Result<Option<Json>, SendError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => serde_json::from_str(t)
            .map(Some)
            .map_err(|e| out.invalid(format!("{field} is not valid JSON after rendering: {e}"))),
    }
}

/// The HTTP client senders share (10 s per request).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends a request; a non-2xx answer is [`SendError::Status`].
pub async fn send_http(service: &str, req: reqwest::RequestBuilder) -> Result<String, SendError> {
    let resp = req.send().await.map_err(|source| SendError::Transport {
        service: service.to_string(),
        source,
    })?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(SendError::Status {
            service: service.to_string(),
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> SendError {
        SendError::Status {
            service: "s".into(),
            status: code,
            body: String::new(),
        }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        for code in [500, 502, 503, 504, 429] {
            assert!(status(code).retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 422] {
            assert!(!status(code).retryable(), "{code}");
        }
        let api = |m: &str| SendError::Api {
            service: "slack".into(),
            message: m.into(),
        };
        assert!(api("ratelimited").retryable());
        assert!(!api("channel_not_found").retryable());
        assert!(
            !SendError::Invalid {
                service: "s".into(),
                message: "m".into()
            }
            .retryable()
        );
        assert_eq!(status(503).reason(), "http_5xx");
        assert_eq!(status(404).reason(), "http_4xx");
    }
}
