//! The Kubernetes client of the controller: kube's default stack (TLS, auth, impersonation)
//! with two tower layers on top:
//!
//! - [`RateLimitLayer`]: a token bucket (`qps` sustained, `burst` at once), like client-go's
//!   `--kube-api-qps`/`--kube-api-burst`. kube puts a [`tower::buffer::Buffer`] in front of
//!   the stack, so the bucket is waited for in `poll_ready`: every request of the process
//!   passes one bucket, in order.
//! - [`CountLayer`]: `controller_clientset_k8s_request_total{kind,verb,status_code}`, with
//!   `kind` the resource (plural, `/subresource` appended), `verb` the Kubernetes verb
//!   (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`) and
//!   `status_code` the HTTP status (`error` when no response came back). Names and
//!   namespaces never become labels.

use super::metrics::{Metrics, RequestLabels};
use http::{Method, Request, Response};
use kube::client::ClientBuilder;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// The `User-Agent` of the controller's requests (audit logs name the client by it).
pub const USER_AGENT: &str = concat!("rollouts-controller/", env!("CARGO_PKG_VERSION"));

/// A kube client for `config` with the rate limit and request metrics.
pub fn build(
    mut config: kube::Config,
    qps: f32,
    burst: u32,
    metrics: Option<Arc<Metrics>>,
) -> Result<kube::Client, kube::Error> {
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let builder = ClientBuilder::try_from(config)?
        .with_layer(&RateLimitLayer::new(qps, burst))
        .with_layer(&CountLayer { metrics });
    Ok(builder.build())
}

/// A kube client for `config` with the request metrics but no rate limit: the leader
/// election's own client. Sharing the controllers' bucket, a renewal queued behind a burst of
/// reconcile writes (50 Rollouts starting at once) missed the renew deadline, and the leader
/// stepped down; client-go's controller-manager gives leader election its own client too.
pub fn build_unlimited(
    config: kube::Config,
    metrics: Option<Arc<Metrics>>,
) -> Result<kube::Client, kube::Error> {
    let builder = ClientBuilder::try_from(config)?.with_layer(&CountLayer { metrics });
    Ok(builder.build())
}

/// A token bucket: `burst` tokens, refilled at `qps` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `qps` must be positive; `burst` is at least 1.
    pub fn new(qps: f32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps: f64::from(qps).max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes a token now, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.qps;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(1)))
        }
    }
}

/// Layer of [`RateLimit`].
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    qps: f32,
    burst: u32,
}

impl RateLimitLayer {
    pub fn new(qps: f32, burst: u32) -> Self {
        RateLimitLayer { qps, burst }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: TokenBucket::new(self.qps, self.burst),
            sleep: None,
            reserved: false,
        }
    }
}

/// Waits for a token of the bucket before each request.
pub struct RateLimit<S> {
    inner: S,
    bucket: TokenBucket,
    sleep: Option<Pin<Box<Sleep>>>,
    /// A token was taken for the next `call`.
    reserved: bool,
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while !self.reserved {
            if let Some(s) = self.sleep.as_mut() {
                if s.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            match self.bucket.try_take(Instant::now()) {
                Ok(()) => self.reserved = true,
                Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.reserved = false;
        self.inner.call(req)
    }
}

/// Layer of [`Count`].
#[derive(Clone)]
pub struct CountLayer {
    metrics: Option<Arc<Metrics>>,
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Counts requests by kind, verb and status code.
pub struct Count<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

impl<S, B, RB> Service<Request<B>> for Count<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (kind, verb) = classify(req.method(), req.uri().path(), req.uri().query());
        let metrics = self.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            if let Some(m) = metrics {
                let status_code = match &res {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(_) => "error".to_string(),
                };
                m.count_request(&RequestLabels {
                    kind,
                    verb: verb.to_string(),
                    status_code,
                });
            }
            res
        })
    }
}

/// The resource (`kind` label) and verb of an API request.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> (String, &'static str) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/<group>/<version>/...
    let rest: &[&str] = match segs.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (kind, named) = match rest {
        [] => ("discovery".to_string(), false),
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    let watch = query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1" || kv == "watch")
    });
    let verb = match *method {
        Method::GET if kind == "discovery" => "get",
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (kind, verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests() {
        let c = |m: Method, p: &str, q: Option<&str>| {
            let (k, v) = classify(&m, p, q);
            (k, v.to_string())
        };
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            c(
                Method::GET,
                "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts",
                Some("watch=true&resourceVersion=1")
            ),
            kv("rollouts", "watch")
        );
        assert_eq!(
            c(Method::GET, "/apis/argoproj.io/v1alpha1/rollouts", None),
            kv("rollouts", "list")
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/my-ro/status",
                None
            ),
            kv("rollouts/status", "patch")
        );
        assert_eq!(
            c(
                Method::POST,
                "/api/v1/namespaces/ns/pods/p-1/eviction",
                None
            ),
            kv("pods/eviction", "create")
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/default", None),
            kv("namespaces", "get")
        );
        assert_eq!(
            c(
                Method::DELETE,
                "/apis/apps/v1/namespaces/ns/replicasets/rs-1",
                None
            ),
            kv("replicasets", "delete")
        );
        assert_eq!(
            c(
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/lock",
                None
            ),
            kv("leases", "update")
        );
        assert_eq!(c(Method::GET, "/apis", None), kv("discovery", "get"));
        assert_eq!(c(Method::GET, "/version", None), kv("discovery", "get"));
    }

    #[test]
    fn bucket_allows_burst_then_qps() {
        let mut b = TokenBucket::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.try_take(t0), Ok(()));
        }
        let wait = b.try_take(t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait >= Duration::from_millis(99),
            "{wait:?}"
        );
        assert!(b.try_take(t0 + Duration::from_millis(100)).is_ok());
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
    }

    /// The limiter spaces requests: a lower bound, which load only makes easier to meet (how
    /// fast it goes is not asserted).
    #[tokio::test]
    async fn rate_limit_service_spaces_requests() {
        use tower::ServiceExt;
        let svc = tower::service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(()))
        });
        let mut svc = RateLimitLayer::new(5.0, 2).layer(svc);
        let t0 = Instant::now();
        for _ in 0..6 {
            let _ = svc.ready().await.unwrap().call(Request::new(())).await;
        }
        // 2 at once, then 4 more at 5/s: at least 4 × 200 ms (less a little for the
        // timer's rounding).
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_millis(780), "{elapsed:?}");
    }
}
