//! Google Chat incoming webhooks: `service.googlechat` has `webhooks` (recipient name → URL).
//! The template's `googlechat` section: `cardsV2` (or the legacy `cards`; YAML or JSON, a
//! list of cards), `threadKey` (messages with the same key go in one thread). Without cards
//! the message is sent as text.

use super::{Outgoing, SendError, send_http};
use serde_json::{Value as Json, json};

fn cards(out: &Outgoing<'_>, field: &str, text: Option<&str>) -> Result<Option<Json>, SendError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => serde_yaml::from_str::<Json>(t).map(Some).map_err(|e| {
            out.invalid(format!(
                "googlechat.{field} is not YAML or JSON after rendering: {e}"
            ))
        }),
    }
}

pub async fn send(client: &reqwest::Client, out: &Outgoing<'_>) -> Result<(), SendError> {
    let url = out
        .options
        .get("webhooks")
        .and_then(|w| w.get(out.recipient))
        .and_then(Json::as_str)
        .ok_or_else(|| {
            out.invalid(format!(
                "service.googlechat has no webhooks entry for {:?}",
                out.recipient
            ))
        })?;
    let section = out
        .rendered
        .get("googlechat")
        .cloned()
        .unwrap_or(Json::Null);
    let s = |k: &str| section.get(k).and_then(Json::as_str);
    let mut body = json!({});
    if let Some(v2) = cards(out, "cardsV2", s("cardsV2"))? {
        let list = match v2 {
            Json::Array(a) => a,
            other => vec![other],
        };
        body["cardsV2"] = Json::Array(
            list.into_iter()
                .enumerate()
                .map(|(i, card)| json!({"cardId": format!("card-{i}"), "card": card}))
                .collect(),
        );
    } else if let Some(c) = cards(out, "cards", s("cards"))? {
        body["cards"] = c;
    } else {
        body["text"] = json!(out.message());
    }
    let mut url = reqwest::Url::parse(url)
        .map_err(|e| out.invalid(format!("webhook URL for {:?}: {e}", out.recipient)))?;
    if let Some(key) = s("threadKey").filter(|k| !k.is_empty()) {
        url.query_pairs_mut()
            .append_pair("threadKey", key)
            .append_pair("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
    }
    send_http(out.service, client.post(url).json(&body)).await?;
    Ok(())
}
