//! Mattermost: `service.mattermost` has `apiURL` and `token` (a bot's); the recipient is a
//! channel id. The template's `mattermost` section: `attachments` (a JSON string, Slack's
//! format). Posts to `/api/v4/posts`.

use super::{Outgoing, SendError, embedded_json, send_http};
use serde_json::{Value as Json, json};

pub async fn send(client: &reqwest::Client, out: &Outgoing<'_>) -> Result<(), SendError> {
    let api = out
        .option("apiURL")
        .ok_or_else(|| out.invalid("service.mattermost has no apiURL"))?;
    let token = out
        .option("token")
        .ok_or_else(|| out.invalid("service.mattermost has no token"))?;
    let section = out
        .rendered
        .get("mattermost")
        .cloned()
        .unwrap_or(Json::Null);
    let mut body = json!({"channel_id": out.recipient, "message": out.message()});
    if let Some(a) = embedded_json(
        out,
        "mattermost.attachments",
        section.get("attachments").and_then(Json::as_str),
    )? {
        body["props"] = json!({"attachments": a});
    }
    let url = format!("{}/api/v4/posts", api.trim_end_matches('/'));
    send_http(out.service, client.post(url).bearer_auth(token).json(&body)).await?;
    Ok(())
}
