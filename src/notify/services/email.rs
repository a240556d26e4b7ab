//! Email over SMTP, by the `lettre` crate: `service.email` has `host`, `port` (default 587),
//! `from`, `username`, `password`, `insecure_skip_verify`, `html`; port 465 is TLS from the
//! start, any other port upgrades with STARTTLS when the server offers it. The template's
//! `email` section gives `subject` and `body` (default: the message).

use super::{Outgoing, SendError};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value as Json;
use std::time::Duration;

pub async fn send(out: &Outgoing<'_>) -> Result<(), SendError> {
    let host = out
        .option("host")
        .ok_or_else(|| out.invalid("service.email has no host"))?;
    let port = match out.options.get("port") {
        Some(Json::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(Json::String(s)) => s.parse().ok(),
        None => Some(587),
        _ => None,
    }
    .ok_or_else(|| out.invalid("service.email port is not a port number"))?;
    let from = out
        .option("from")
        .ok_or_else(|| out.invalid("service.email has no from"))?;
    let insecure = out
        .options
        .get("insecure_skip_verify")
        .and_then(Json::as_bool)
        == Some(true);
    let html = out.options.get("html").and_then(Json::as_bool) == Some(true);
    let smtp_err = |e: lettre::transport::smtp::Error| SendError::Smtp {
        service: out.service.to_string(),
        transient: !e.is_permanent(),
        message: e.to_string(),
    };
    let tls = TlsParameters::builder(host.to_string())
        .dangerous_accept_invalid_certs(insecure)
        .dangerous_accept_invalid_hostnames(insecure)
        .build_rustls()
        .map_err(smtp_err)?;
    let tls = if port == 465 {
        Tls::Wrapper(tls)
    } else {
        Tls::Opportunistic(tls)
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(10)));
    if let Some(user) = out.option("username") {
        builder = builder.credentials(Credentials::new(
            user.to_string(),
            out.option("password").unwrap_or("").to_string(),
        ));
    }
    let section = out.rendered.get("email").cloned().unwrap_or(Json::Null);
    let s = |k: &str| {
        section
            .get(k)
            .and_then(Json::as_str)
            .filter(|v| !v.is_empty())
    };
    let subject = s("subject").unwrap_or(out.message());
    let body = s("body").unwrap_or(out.message());
    let message = Message::builder()
        .from(
            from.parse()
                .map_err(|e| out.invalid(format!("from {from:?}: {e}")))?,
        )
        .to(out
            .recipient
            .parse()
            .map_err(|e| out.invalid(format!("recipient {:?}: {e}", out.recipient)))?)
        .subject(subject)
        .header(if html {
            ContentType::TEXT_HTML
        } else {
            ContentType::TEXT_PLAIN
        })
        .body(body.to_string())
        .map_err(|e| out.invalid(format!("building the message: {e}")))?;
    builder.build().send(message).await.map_err(smtp_err)?;
    Ok(())
}
