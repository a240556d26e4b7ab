//! Kubernetes Events (`events.k8s.io/v1`), published as kube's `events::Recorder` publishes
//! them (the same object names, fields and series), with a compact series cache, from a queue
//! off the reconcile path.
//!
//! **Queue.** [`Recorder::publish`] only queues the event; one task per recorder sends the
//! queued events in order, one request at a time. A reconcile no longer waits for its events,
//! and its writes no longer queue behind them at the client's rate limit: the events take at
//! most one place in the limiter's queue at a time, so under load the writes go first (at 60
//! Rollouts updated at once, 8 events per update had taken half of the requests of the first
//! seconds, and delayed the new ReplicaSets by as much). Events are best effort, as in
//! client-go, but none is dropped: `publish` waits when [`QUEUE`] events are pending. The task
//! is aborted when the last clone of its recorder is dropped: controllers dropped on a lost
//! lease leave nothing behind that would still write.
//!
//! **Series.** kube's recorder keeps every event it sent, whole, with a copy of its key, for
//! six minutes, so that a repeat becomes a series (a count on the first event) instead of a
//! new object; the cache's table never shrinks. With a few events per Rollout update that was
//! the largest part of the controller's heap at scale (4.8 of 13.1 MB at 300 Rollouts,
//! heaptrack). Here a repeat is recognised by a 64-bit hash of the same key (type, action,
//! reason, the regarding and related objects), and only what the series patch needs is kept:
//! the event's name and namespace, its count and when it was last seen. Entries older than six
//! minutes are dropped at most once a minute, and the table shrinks with them.
//!
//! Written here rather than configured: kube's `Recorder` has no setting for its cache, and
//! publishes in the caller's task.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

/// Events a recorder holds before `publish` waits.
pub const QUEUE: usize = 1024;

/// How long a sent event can still become a series (kube's and client-go's six minutes).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
/// How often expired entries are dropped.
const PRUNE_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// What a repeat needs: where the first event is, and its series so far.
#[derive(Clone, Debug)]
struct Sent {
    name: String,
    namespace: String,
    count: i32,
    last: Timestamp,
}

#[derive(Debug, Default)]
struct Cache {
    sent: HashMap<u64, Sent>,
    pruned: Option<Timestamp>,
}

impl Cache {
    /// Drops entries that can no longer become a series (at most once per [`PRUNE_EVERY`]),
    /// giving their memory back.
    fn prune(&mut self, now: Timestamp) {
        if self.pruned.is_some_and(|t| t + PRUNE_EVERY > now) {
            return;
        }
        self.pruned = Some(now);
        self.sent.retain(|_, s| s.last + SERIES_TTL > now);
        if self.sent.capacity() > 2 * self.sent.len() + 16 {
            self.sent.shrink_to_fit();
        }
    }
}

/// Publishes events on behalf of one controller (cheap to clone; clones share the queue).
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Queued>,
    _publisher: Arc<AbortOnDrop>,
}

/// An event, what it is about, and when it happened (its time, even if sent later).
type Queued = (Event, ObjectReference, Timestamp);

/// Aborts the publishing task when the last recorder clone goes.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Recorder {
    /// A recorder and its publishing task (spawned on the current runtime).
    pub fn new(client: Client, reporter: Reporter) -> Recorder {
        let (queue, rx) = mpsc::channel(QUEUE);
        let publisher = Publisher {
            client,
            reporter,
            cache: Cache::default(),
        };
        Recorder {
            queue,
            _publisher: Arc::new(AbortOnDrop(tokio::spawn(publisher.run(rx)))),
        }
    }

    /// Queues `ev` about `regarding`, happening now; it is published as a new Event, or as the
    /// next count of the series of the same event sent within six minutes. Cluster-scoped
    /// objects' events go to `default`. Waits only while the queue is full; a failure is
    /// logged.
    pub async fn publish(&self, ev: Event, regarding: &ObjectReference) {
        let queued = (ev, regarding.clone(), Timestamp::now());
        if let Err(mpsc::error::SendError((ev, _, _))) = self.queue.send(queued).await {
            warn!(reason = %ev.reason, "recording an event: the publisher has stopped");
        }
    }
}

/// The task behind a recorder: sends queued events in order, and remembers the series.
struct Publisher {
    client: Client,
    reporter: Reporter,
    cache: Cache,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
        while let Some((ev, regarding, at)) = rx.recv().await {
            if let Err(e) = self.send(&ev, &regarding, at).await {
                let object = regarding.name.as_deref().unwrap_or_default();
                warn!(%object, reason = %ev.reason, "recording an event: {e}");
            }
        }
    }

    /// Publishes `ev`, which happened at `now`: a new Event, or the next count of its series.
    async fn send(
        &mut self,
        ev: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let key = key(ev, regarding);
        self.cache.prune(now);
        let repeat = self
            .cache
            .sent
            .get(&key)
            .filter(|s| s.last + SERIES_TTL > now)
            .cloned();
        let sent = match repeat {
            Some(mut s) => {
                s.count += 1;
                s.last = now;
                let series = EventSeries {
                    count: s.count,
                    last_observed_time: MicroTime(now),
                };
                let patch = serde_json::json!({ "series": series });
                Api::<K8sEvent>::namespaced(self.client.clone(), &s.namespace)
                    .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                s
            }
            None => {
                let event = self.event(ev, regarding, now);
                let namespace = event.metadata.namespace.clone().unwrap_or_default();
                let name = event.metadata.name.clone().unwrap_or_default();
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &event)
                    .await?;
                Sent {
                    name,
                    namespace,
                    count: 1,
                    last: now,
                }
            }
        };
        self.cache.sent.insert(key, sent);
        Ok(())
    }

    /// The Event object kube's recorder would create for `ev`.
    fn event(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(namespace),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: ev.secondary.clone(),
            ..Default::default()
        }
    }
}

/// What makes two events one series (kube's `EventKey`; the reporter is the recorder's own).
fn key(ev: &Event, regarding: &ObjectReference) -> u64 {
    fn reference(h: &mut DefaultHasher, r: Option<&ObjectReference>) {
        let Some(r) = r else {
            0u8.hash(h);
            return;
        };
        1u8.hash(h);
        for part in [
            &r.api_version,
            &r.kind,
            &r.namespace,
            &r.name,
            &r.uid,
            &r.field_path,
            &r.resource_version,
        ] {
            part.hash(h);
        }
    }
    let mut h = DefaultHasher::new();
    matches!(ev.type_, EventType::Warning).hash(&mut h);
    ev.action.hash(&mut h);
    ev.reason.hash(&mut h);
    reference(&mut h, Some(regarding));
    reference(&mut h, ev.secondary.as_ref());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use std::time::Duration;
    use tower_test::mock::{self, Handle};

    fn mock_client() -> (Client, Handle<Request<Body>, Response<Body>>) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        (Client::new(service, "ns"), handle)
    }

    fn reporter() -> Reporter {
        Reporter {
            controller: "test".into(),
            instance: None,
        }
    }

    /// The next request's note, or `None` if none comes within `wait`.
    async fn next_note(
        handle: &mut Handle<Request<Body>, Response<Body>>,
        wait: Duration,
    ) -> Option<(String, mock::SendResponse<Response<Body>>)> {
        let (req, respond) = tokio::time::timeout(wait, handle.next_request())
            .await
            .ok()??;
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        Some((
            body["note"].as_str().unwrap_or_default().to_string(),
            respond,
        ))
    }

    fn created() -> Response<Body> {
        Response::builder()
            .status(201)
            .body(Body::from(b"{}".to_vec()))
            .unwrap()
    }

    #[tokio::test]
    async fn publishing_does_not_wait_for_the_api_and_sends_one_event_at_a_time_in_order() {
        let (client, mut handle) = mock_client();
        let recorder = Recorder::new(client, reporter());
        let a = obj("a", "1");
        // Nothing answers yet: queueing returns at once.
        for reason in ["First", "Second", "Third"] {
            tokio::time::timeout(
                Duration::from_secs(1),
                recorder.publish(ev(reason, reason), &a),
            )
            .await
            .expect("queued without waiting for the API server");
        }
        let mut notes = Vec::new();
        while notes.len() < 3 {
            let (note, respond) = next_note(&mut handle, Duration::from_secs(5))
                .await
                .expect("the next event is sent");
            // One in flight: the next is not sent before this one is answered.
            assert!(
                next_note(&mut handle, Duration::from_millis(100))
                    .await
                    .is_none()
            );
            respond.send_response(created());
            notes.push(note);
        }
        assert_eq!(notes, ["First note", "Second note", "Third note"]);
    }

    #[tokio::test]
    async fn a_dropped_recorder_sends_nothing_more() {
        let (client, mut handle) = mock_client();
        let recorder = Recorder::new(client, reporter());
        let a = obj("a", "1");
        recorder.publish(ev("First", "x"), &a).await;
        recorder.publish(ev("Second", "y"), &a).await;
        let (note, respond) = next_note(&mut handle, Duration::from_secs(5))
            .await
            .expect("the first event is sent");
        assert_eq!(note, "First note");
        // The controllers are dropped (a lost lease) while the first is in flight.
        drop(recorder);
        respond.send_response(created());
        assert!(
            next_note(&mut handle, Duration::from_millis(500))
                .await
                .is_none(),
            "the queued event is not sent after the recorder is gone"
        );
    }

    fn ev(reason: &str, action: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(format!("{reason} note")),
            action: action.into(),
            secondary: None,
        }
    }

    fn obj(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Rollout".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_series_is_one_reason_and_action_on_one_object() {
        let a = obj("a", "1");
        assert_eq!(key(&ev("R", "x"), &a), key(&ev("R", "x"), &a));
        assert_ne!(key(&ev("R", "x"), &a), key(&ev("R", "y"), &a));
        assert_ne!(key(&ev("R", "x"), &a), key(&ev("S", "x"), &a));
        assert_ne!(key(&ev("R", "x"), &a), key(&ev("R", "x"), &obj("a", "2")));
        let mut warning = ev("R", "x");
        warning.type_ = EventType::Warning;
        assert_ne!(key(&ev("R", "x"), &a), key(&warning, &a));
        let mut related = ev("R", "x");
        related.secondary = Some(obj("b", "3"));
        assert_ne!(key(&ev("R", "x"), &a), key(&related, &a));
    }

    #[test]
    fn expired_entries_are_dropped_and_the_table_shrinks() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let mut cache = Cache::default();
        for k in 0..4000u64 {
            cache.sent.insert(
                k,
                Sent {
                    name: format!("e{k}"),
                    namespace: "ns".into(),
                    count: 1,
                    last: t0,
                },
            );
        }
        cache.sent.insert(
            9999,
            Sent {
                name: "recent".into(),
                namespace: "ns".into(),
                count: 1,
                last: t0 + SignedDuration::from_mins(5),
            },
        );
        let big = cache.sent.capacity();
        cache.prune(t0 + SignedDuration::from_mins(5));
        assert_eq!(cache.sent.len(), 4001, "nothing has expired yet");
        // Within a minute of the last prune nothing is scanned, even if expired.
        cache.prune(t0 + SignedDuration::from_secs(5 * 60 + 59));
        assert_eq!(cache.sent.len(), 4001);
        cache.prune(t0 + SignedDuration::from_mins(7));
        assert_eq!(cache.sent.len(), 1, "only the recent one is left");
        assert!(cache.sent.capacity() < big / 8, "the table shrank");
    }
}
