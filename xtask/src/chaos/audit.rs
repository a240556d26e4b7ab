//! "Never two writers at once", judged from the API server's audit log.
//!
//! Each controller replica runs as its own user (`system:masters`, its own token), and the API
//! server audits every write of those users (the policy is [`POLICY`]), with microsecond
//! timestamps. A successful write of the Lease is only ever made by its holder (a renewal)
//! or by the candidate taking it over, so the successful Lease writes, in order, are the
//! holder history. The invariant: every other write a replica sends reaches the API server
//! (`requestReceivedTimestamp`) while the last successful Lease write before it was that
//! replica's own. A write sent before a take-over but completed after it (stuck in a paused
//! etcd, say) is counted, not a violation: its sender still held the Lease when it sent it.

use super::invariants::{Invariant, Violation};
use anyhow::{Context, Result};
use serde_json::Value;

/// The audit policy: the controller replicas' writes, metadata only.
pub fn policy(users: &[&str]) -> String {
    let users = users
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: Metadata\n  users: [{users}]\n  verbs: [create, update, patch, delete, deletecollection]\n\
         - level: None\n"
    )
}

/// One audited write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub user: String,
    pub verb: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub name: String,
    pub code: u16,
    /// Microseconds since the epoch.
    pub received: i64,
    pub completed: i64,
}

fn micros(v: &Value) -> Option<i64> {
    let ts: k8s_openapi::jiff::Timestamp = v.as_str()?.parse().ok()?;
    Some(ts.as_microsecond())
}

/// Parses the audit log (one JSON event per line); only `ResponseComplete` events count.
pub fn parse(text: &str) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(ev) = serde_json::from_str::<Value>(line) else {
            // The last line of a log still being written may be cut short.
            if i + 1 == text.lines().count() {
                break;
            }
            return Err(anyhow::anyhow!("audit log line {}: not JSON", i + 1));
        };
        if ev["stage"] != "ResponseComplete" {
            continue;
        }
        let obj = &ev["objectRef"];
        let resource = match obj["subresource"].as_str() {
            Some(sub) => format!("{}/{sub}", obj["resource"].as_str().unwrap_or_default()),
            None => obj["resource"].as_str().unwrap_or_default().to_string(),
        };
        out.push(Write {
            user: ev["user"]["username"].as_str().unwrap_or_default().into(),
            verb: ev["verb"].as_str().unwrap_or_default().into(),
            resource,
            name: obj["name"].as_str().unwrap_or_default().into(),
            code: ev["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
            received: micros(&ev["requestReceivedTimestamp"])
                .with_context(|| format!("audit log line {}: requestReceivedTimestamp", i + 1))?,
            completed: micros(&ev["stageTimestamp"])
                .with_context(|| format!("audit log line {}: stageTimestamp", i + 1))?,
        });
    }
    Ok(out)
}

/// What the audit log says about the writers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterReport {
    /// Writes other than the Lease's (any outcome).
    pub writes: usize,
    /// Successful Lease writes (renewals and take-overs).
    pub lease_writes: usize,
    /// Times the successful Lease writes passed from one replica to the other.
    pub holder_changes: usize,
    /// Writes sent by a holder that completed after another replica took the Lease.
    pub late_completions: usize,
    pub violations: Vec<Violation>,
}

/// Judges the writes of the replicas against the holder history of Lease `lease`.
pub fn check(writes: &[Write], lease: &str) -> WriterReport {
    let is_lease = |w: &Write| w.resource == "leases" && w.name == lease;
    let mut leases: Vec<&Write> = writes
        .iter()
        .filter(|w| is_lease(w) && (200..300).contains(&w.code))
        .collect();
    leases.sort_by_key(|w| w.completed);
    let mut report = WriterReport {
        lease_writes: leases.len(),
        holder_changes: leases.windows(2).filter(|p| p[0].user != p[1].user).count(),
        ..Default::default()
    };
    for w in writes.iter().filter(|w| !is_lease(w)) {
        report.writes += 1;
        // The last Lease write completed before this write was received.
        let i = leases.partition_point(|l| l.completed <= w.received);
        let holder = i.checked_sub(1).map(|i| leases[i].user.as_str());
        if holder != Some(w.user.as_str()) {
            report.violations.push(Violation {
                invariant: Invariant::TwoWriters,
                object: format!("{} {}", w.resource, w.name),
                detail: format!(
                    "{} sent a {} at {} µs while the Lease was last written by {}",
                    w.user,
                    w.verb,
                    w.received,
                    holder.unwrap_or("nobody")
                ),
            });
            continue;
        }
        if leases[i..]
            .iter()
            .take_while(|l| l.completed < w.completed)
            .any(|l| l.user != w.user)
        {
            report.late_completions += 1;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(user: &str, resource: &str, received: i64, completed: i64) -> Write {
        Write {
            user: user.into(),
            verb: "patch".into(),
            resource: resource.into(),
            name: if resource == "leases" {
                "lock".into()
            } else {
                "r".into()
            },
            code: 200,
            received,
            completed,
        }
    }

    #[test]
    fn writes_by_the_holder_between_hand_overs_are_fine() {
        let log = vec![
            w("a", "leases", 0, 10),
            w("a", "rollouts/status", 20, 30),
            w("a", "leases", 500, 510),
            w("b", "leases", 4000, 4010),
            w("b", "replicasets", 4020, 4030),
        ];
        let r = check(&log, "lock");
        assert_eq!(r.violations, vec![]);
        assert_eq!((r.writes, r.lease_writes, r.holder_changes), (2, 3, 1));
    }

    #[test]
    fn a_write_by_the_old_holder_after_a_take_over_is_two_writers() {
        let log = vec![
            w("a", "leases", 0, 10),
            w("b", "leases", 4000, 4010),
            w("a", "rollouts/status", 4020, 4030),
        ];
        let r = check(&log, "lock");
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert_eq!(r.violations[0].invariant, Invariant::TwoWriters);
        // And a write before any Lease write.
        let r = check(&[w("a", "replicasets", 0, 1)], "lock");
        assert_eq!(r.violations.len(), 1);
    }

    #[test]
    fn a_write_sent_before_the_take_over_and_completed_after_is_counted_late() {
        let log = vec![
            w("a", "leases", 0, 10),
            w("a", "replicasets", 20, 9000),
            w("b", "leases", 4000, 4010),
        ];
        let r = check(&log, "lock");
        assert_eq!(r.violations, vec![]);
        assert_eq!(r.late_completions, 1);
    }

    #[test]
    fn parses_the_api_servers_json_lines() {
        let text = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete","requestURI":"/apis/coordination.k8s.io/v1/namespaces/chaos/leases/lock","verb":"update","user":{"username":"ctl-a","groups":["system:masters"]},"objectRef":{"resource":"leases","namespace":"chaos","name":"lock","apiGroup":"coordination.k8s.io","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-12-04T11:50:00.123456Z","stageTimestamp":"2026-12-04T11:50:00.125000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"patch","user":{"username":"ctl-b"},"objectRef":{"resource":"rollouts","subresource":"status","name":"r"},"responseStatus":{"code":409},"requestReceivedTimestamp":"2026-12-04T11:50:01.000000Z","stageTimestamp":"2026-12-04T11:50:01.000100Z"}
{"kind":"Event","stage":"Respon"#;
        let writes = parse(text).unwrap();
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0].user, "ctl-a");
        assert_eq!(writes[0].completed - writes[0].received, 1544);
        assert_eq!(writes[1].resource, "rollouts/status");
        assert_eq!(writes[1].code, 409);
    }
}
