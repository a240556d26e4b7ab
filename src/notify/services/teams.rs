//! Microsoft Teams incoming webhooks: `service.teams` has `recipientUrls` (recipient name →
//! webhook URL). The template's `teams` section: `template` (a whole card, JSON), or `title`,
//! `summary`, `text`, `themeColor` and `facts`, `sections`, `potentialAction` (JSON strings)
//! making a MessageCard; `text` defaults to the message.

use super::{Outgoing, SendError, embedded_json, send_http};
use serde_json::{Value as Json, json};

pub async fn send(client: &reqwest::Client, out: &Outgoing<'_>) -> Result<(), SendError> {
    let url = out
        .options
        .get("recipientUrls")
        .and_then(|u| u.get(out.recipient))
        .and_then(Json::as_str)
        .ok_or_else(|| {
            out.invalid(format!(
                "service.teams has no recipientUrls entry for {:?}",
                out.recipient
            ))
        })?;
    let section = out.rendered.get("teams").cloned().unwrap_or(Json::Null);
    let s = |k: &str| {
        section
            .get(k)
            .and_then(Json::as_str)
            .filter(|v| !v.is_empty())
    };
    let card = match embedded_json(out, "teams.template", s("template"))? {
        Some(card) => card,
        None => {
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "text": s("text").unwrap_or(out.message()),
            });
            for k in ["title", "summary", "themeColor"] {
                if let Some(v) = s(k) {
                    card[k] = json!(v);
                }
            }
            if card.get("summary").is_none() {
                card["summary"] = json!(s("title").unwrap_or(out.message()));
            }
            let facts = embedded_json(out, "teams.facts", s("facts"))?;
            let mut sections = embedded_json(out, "teams.sections", s("sections"))?
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            if let Some(f) = facts {
                sections.push(json!({"facts": f}));
            }
            if !sections.is_empty() {
                card["sections"] = Json::Array(sections);
            }
            if let Some(a) = embedded_json(out, "teams.potentialAction", s("potentialAction"))? {
                card["potentialAction"] = a;
            }
            card
        }
    };
    send_http(out.service, client.post(url).json(&card)).await?;
    Ok(())
}
