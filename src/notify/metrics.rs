//! `notification_send_success`, `notification_send_error` (counters, exposed untyped under
//! upstream's exact names, labels namespace, name, type, reason: the Rollout, and the type and
//! reason of the event that fired the trigger) and `notification_send` (histogram of a
//! delivery's seconds, retries included; labels namespace, name).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct SendLabels {
    pub namespace: String,
    pub name: String,
    #[prometheus(flatten)]
    pub event: EventLabels,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct EventLabels {
    pub r#type: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    name: String,
}

fn histogram() -> Histogram {
    Histogram::new([0.01, 0.15, 0.25, 0.5, 1.0])
}

/// The notification metrics.
#[derive(Debug)]
pub struct NotifyMetrics {
    success: Mutex<BTreeMap<SendLabels, u64>>,
    error: Mutex<BTreeMap<SendLabels, u64>>,
    send: Family<RolloutLabels, Histogram, fn() -> Histogram>,
}

impl Default for NotifyMetrics {
    fn default() -> Self {
        NotifyMetrics {
            success: Mutex::default(),
            error: Mutex::default(),
            send: Family::new_with_constructor(histogram as fn() -> Histogram),
        }
    }
}

impl NotifyMetrics {
    /// A notification was delivered after `elapsed`.
    pub fn sent(&self, labels: SendLabels, elapsed: Duration) {
        self.observe(&labels, elapsed);
        *self
            .success
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(labels)
            .or_default() += 1;
    }

    /// A notification could not be delivered (or prepared).
    pub fn failed(&self, labels: SendLabels, elapsed: Option<Duration>) {
        if let Some(e) = elapsed {
            self.observe(&labels, e);
        }
        *self
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(labels)
            .or_default() += 1;
    }

    fn observe(&self, labels: &SendLabels, elapsed: Duration) {
        self.send
            .get_or_create(&RolloutLabels {
                namespace: labels.namespace.clone(),
                name: labels.name.clone(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Successes with these labels (for tests and the CLI).
    pub fn success_count(&self, labels: &SendLabels) -> u64 {
        self.success
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(labels)
            .copied()
            .unwrap_or(0)
    }

    /// All errors counted.
    pub fn error_total(&self) -> u64 {
        self.error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

/// Encodes [`NotifyMetrics`] into a registry.
#[derive(Debug)]
pub struct NotifyCollector(pub std::sync::Arc<NotifyMetrics>);

impl Collector for NotifyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, counts) in [
            (
                "notification_send_success",
                "Notification send success.",
                &self.0.success,
            ),
            (
                "notification_send_error",
                "Error sending the notification",
                &self.0.error,
            ),
        ] {
            let counts: Vec<(SendLabels, u64)> = counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            if counts.is_empty() {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Unknown)?;
            for (labels, n) in &counts {
                family.encode_family(labels)?.encode_gauge(&(*n as i64))?;
            }
        }
        let enc = encoder.encode_descriptor(
            "notification_send",
            "Notification send performance.",
            None,
            MetricType::Histogram,
        )?;
        self.0.send.encode(enc)
    }
}
