//! What was sent: the annotation `notified.notifications.argoproj.io` on the Rollout, a JSON
//! map from a notification's key (trigger, condition, moment, destination) to the Unix time it was sent,
//! as upstream's notifications engine keeps it. It survives restarts and leader changes; it
//! keeps the newest [`MAX_ENTRIES`] keys.

use std::collections::BTreeMap;

pub const ANNOTATION: &str = "notified.notifications.argoproj.io";
/// Keys kept (oldest dropped first).
pub const MAX_ENTRIES: usize = 200;

/// The record, parsed. A value that is not a JSON map of numbers reads as empty (and is
/// replaced on the next write), so a hand-edited annotation never stops notifications.
pub fn parse(value: Option<&str>) -> BTreeMap<String, i64> {
    value
        .and_then(|v| serde_json::from_str::<BTreeMap<String, i64>>(v).ok())
        .unwrap_or_default()
}

/// The record with `key` added at `now`, trimmed to [`MAX_ENTRIES`].
pub fn with(mut record: BTreeMap<String, i64>, key: &str, now: i64) -> String {
    record.insert(key.to_string(), now);
    while record.len() > MAX_ENTRIES {
        let Some(oldest) = record
            .iter()
            .min_by_key(|(k, t)| (**t, (*k).clone()))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        record.remove(&oldest);
    }
    serde_json::to_string(&record).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_add() {
        assert!(parse(None).is_empty());
        assert!(parse(Some("not json")).is_empty());
        assert!(parse(Some(r#"{"a": "x"}"#)).is_empty());
        let r = parse(Some(r#"{"a": 1}"#));
        assert_eq!(r["a"], 1);
        let s = with(r, "b", 2);
        assert_eq!(s, r#"{"a":1,"b":2}"#);
    }

    #[test]
    fn keeps_the_newest() {
        let mut r = BTreeMap::new();
        for i in 0..MAX_ENTRIES as i64 {
            r.insert(format!("k{i}"), i);
        }
        let s = with(r, "new", 10_000);
        let r = parse(Some(&s));
        assert_eq!(r.len(), MAX_ENTRIES);
        assert!(r.contains_key("new"));
        assert!(!r.contains_key("k0"));
    }
}
