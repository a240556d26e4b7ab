//! Slack: `chat.postMessage` with a bot token (`service.slack`: `token`, `username`, `icon`,
//! `apiURL`). The template's `slack` section: `attachments` and `blocks` (JSON strings),
//! `groupingKey` (messages with the same key go in one thread: the first message's `ts` is kept
//! in memory, as upstream does), `notifyBroadcast` (a threaded reply also goes to the channel).

use super::{Outgoing, SendError, embedded_json, send_http};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::sync::Mutex;

/// Thread roots by (channel, groupingKey).
#[derive(Default)]
pub struct Threads(Mutex<HashMap<(String, String), String>>);

pub async fn send(
    client: &reqwest::Client,
    threads: &Threads,
    out: &Outgoing<'_>,
) -> Result<(), SendError> {
    let token = out
        .option("token")
        .ok_or_else(|| out.invalid("service.slack has no token"))?;
    let api = out.option("apiURL").unwrap_or("https://slack.com/api/");
    let url = format!("{}/chat.postMessage", api.trim_end_matches('/'));
    let section = out.rendered.get("slack").cloned().unwrap_or(Json::Null);
    let mut body = json!({"channel": out.recipient, "text": out.message()});
    if let Some(u) = out.option("username") {
        body["username"] = json!(u);
    }
    if let Some(icon) = out.option("icon") {
        if icon.starts_with(':') {
            body["icon_emoji"] = json!(icon);
        } else {
            body["icon_url"] = json!(icon);
        }
    }
    if let Some(a) = embedded_json(
        out,
        "slack.attachments",
        section.get("attachments").and_then(Json::as_str),
    )? {
        body["attachments"] = a;
    }
    if let Some(b) = embedded_json(
        out,
        "slack.blocks",
        section.get("blocks").and_then(Json::as_str),
    )? {
        body["blocks"] = b;
    }
    let grouping = section
        .get("groupingKey")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .map(|g| (out.recipient.to_string(), g.to_string()));
    if let Some(g) = &grouping
        && let Some(ts) = threads.0.lock().unwrap_or_else(|e| e.into_inner()).get(g)
    {
        body["thread_ts"] = json!(ts);
        if section.get("notifyBroadcast").and_then(Json::as_bool) == Some(true) {
            body["reply_broadcast"] = json!(true);
        }
    }
    let text = send_http(
        out.service,
        client.post(&url).bearer_auth(token).json(&body),
    )
    .await?;
    let answer: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
    if answer.get("ok").and_then(Json::as_bool) != Some(true) {
        return Err(SendError::Api {
            service: out.service.to_string(),
            message: answer
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("no \"ok\": true in the answer")
                .to_string(),
        });
    }
    if let (Some(g), Some(ts)) = (grouping, answer.get("ts").and_then(Json::as_str)) {
        threads
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(g)
            .or_insert_with(|| ts.to_string());
    }
    Ok(())
}
