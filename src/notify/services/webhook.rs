//! Generic webhooks: `service.webhook.<name>` (`url`, `headers` as a list of `name`/`value`,
//! `basicAuth` with `username`/`password`); the template's `webhook.<name>` section gives
//! `method` (default GET), `path` (appended to the url) and `body`. A template without a
//! section for this webhook sends nothing to it, as upstream.

use super::{Outgoing, SendError, send_http};
use serde_json::Value as Json;

pub async fn send(client: &reqwest::Client, out: &Outgoing<'_>) -> Result<bool, SendError> {
    let Some(section) = out.rendered.get("webhook").and_then(|w| w.get(out.service)) else {
        return Ok(false);
    };
    let base = out
        .option("url")
        .ok_or_else(|| out.invalid("the webhook has no url"))?;
    let path = section.get("path").and_then(Json::as_str).unwrap_or("");
    let url = format!("{base}{path}");
    let method = section
        .get("method")
        .and_then(Json::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| out.invalid(format!("webhook method {method:?} is not an HTTP method")))?;
    let mut req = client.request(method, &url);
    if let Some(headers) = out.options.get("headers").and_then(Json::as_array) {
        for h in headers {
            if let (Some(n), Some(v)) = (
                h.get("name").and_then(Json::as_str),
                h.get("value").and_then(Json::as_str),
            ) {
                req = req.header(n, v);
            }
        }
    }
    if let Some(auth) = out.options.get("basicAuth") {
        let user = auth.get("username").and_then(Json::as_str).unwrap_or("");
        let pass = auth.get("password").and_then(Json::as_str);
        req = req.basic_auth(user, pass);
    }
    if let Some(body) = section.get("body").and_then(Json::as_str) {
        req = req.body(body.to_string());
    }
    send_http(out.service, req).await?;
    Ok(true)
}
