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

/// Notifications decided but not yet delivered: the annotation
/// `pending.notifications.argoproj.io`, a JSON map from key to [`Pending`]. An entry is written
/// before the notification is sent and removed, in the same write that adds the key to the
/// record, once it is delivered (or given up), so a controller that dies meanwhile leaves it to
/// the next leader.
pub const PENDING: &str = "pending.notifications.argoproj.io";
/// Pending entries kept per Rollout (oldest dropped first, and counted as errors).
pub const MAX_PENDING: usize = 100;

/// One notification waiting to be delivered, rendered.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub trigger: String,
    pub service: String,
    #[serde(default)]
    pub recipient: String,
    /// Type and reason of the event that fired the trigger.
    #[serde(rename = "type", default)]
    pub event_type: String,
    #[serde(default)]
    pub reason: String,
    /// The rendered template (`message`, `slack`, ...).
    pub notification: serde_json::Value,
    /// Order of decision (Unix microseconds, increasing).
    pub seq: i64,
}

/// The pending entries, parsed (an unreadable value reads as none, as for the record).
pub fn parse_pending(value: Option<&str>) -> BTreeMap<String, Pending> {
    value
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// The pending entries oldest first.
pub fn in_order(pending: &BTreeMap<String, Pending>) -> Vec<(String, Pending)> {
    let mut v: Vec<(String, Pending)> = pending
        .iter()
        .map(|(k, p)| (k.clone(), p.clone()))
        .collect();
    v.sort_by(|a, b| (a.1.seq, &a.0).cmp(&(b.1.seq, &b.0)));
    v
}

/// The annotation's value for `pending` (`None`: remove the annotation), trimmed to
/// [`MAX_PENDING`]; also returns the keys dropped.
pub fn pending_value(mut pending: BTreeMap<String, Pending>) -> (Option<String>, Vec<String>) {
    let mut dropped = Vec::new();
    while pending.len() > MAX_PENDING {
        let Some((oldest, _)) = in_order(&pending).into_iter().next() else {
            break;
        };
        pending.remove(&oldest);
        dropped.push(oldest);
    }
    if pending.is_empty() {
        return (None, dropped);
    }
    (serde_json::to_string(&pending).ok(), dropped)
}

#[cfg(test)]
mod pending_tests {
    use super::*;

    fn p(seq: i64) -> Pending {
        Pending {
            trigger: "on-x".into(),
            service: "slack".into(),
            recipient: "r".into(),
            event_type: "Normal".into(),
            reason: "X".into(),
            notification: serde_json::json!({"message": "m"}),
            seq,
        }
    }

    #[test]
    fn round_trip_order_and_bound() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), p(1));
        m.insert("a".to_string(), p(2));
        let (v, dropped) = pending_value(m.clone());
        assert!(dropped.is_empty());
        let back = parse_pending(v.as_deref());
        assert_eq!(back, m);
        let order: Vec<String> = in_order(&back).into_iter().map(|(k, _)| k).collect();
        assert_eq!(order, vec!["b", "a"]);
        assert_eq!(pending_value(BTreeMap::new()).0, None);
        assert!(parse_pending(Some("[1]")).is_empty());
        let mut big = BTreeMap::new();
        for i in 0..(MAX_PENDING as i64 + 2) {
            big.insert(format!("k{i}"), p(i));
        }
        let (_, dropped) = pending_value(big);
        assert_eq!(dropped, vec!["k0", "k1"]);
    }
}
