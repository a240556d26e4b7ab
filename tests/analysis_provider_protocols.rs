//! Each metric provider against a local HTTP server speaking its documented API: request
//! paths, headers, authentication and bodies are asserted; realistic answers, empty data,
//! NaN, provider errors, 429 and 5xx come back. Then the AnalysisRun core (the controller's
//! own `begin`/`finish`) drives runs through these providers: Error after
//! `consecutiveErrorLimit`, Inconclusive, and Kayenta's asynchronous judgement.

mod fake_http;

use fake_http::{FakeServer, Req, json, reply};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollouts::analysis::core::{self, Begin, Outcome, TaskKind};
use rollouts::analysis::providers::secrets::StaticSecrets;
use rollouts::analysis::providers::{
    Provider, ProviderContext, Vars, cloudwatch, datadog, graphite, influxdb, kayenta, newrelic,
    skywalking, wavefront,
};
use rollouts::api::{AnalysisRun, Measurement, Metric, analysis_phase as phase};
use serde_json::{Value, json as j};
use std::sync::Arc;
use std::time::Duration;

const NS: &str = "rollouts";

fn metric(v: Value) -> Metric {
    serde_json::from_value(v).unwrap()
}

fn run_in(ns: &str) -> AnalysisRun {
    let mut r = AnalysisRun::default();
    r.metadata.namespace = Some(ns.into());
    r.metadata.name = Some("run".into());
    r
}

fn ctx(secrets: StaticSecrets, vars: Vars) -> ProviderContext {
    ProviderContext {
        secrets: Arc::new(secrets),
        vars,
        controller_namespace: NS.into(),
        aws: Arc::default(),
    }
}

fn no_vars() -> Vars {
    Vars::fixed(Vec::<(String, String)>::new())
}

async fn measure(p: &dyn Provider, m: &Metric) -> Measurement {
    tokio::time::timeout(p.deadline(), p.run(&run_in("app"), m))
        .await
        .expect("within the provider's deadline")
}

fn ph(m: &Measurement) -> &str {
    m.phase.as_deref().unwrap_or_default()
}

fn msg(m: &Measurement) -> String {
    m.message.clone().unwrap_or_default()
}

// ------------------------------------------------------------------------------------------
// Datadog
// ------------------------------------------------------------------------------------------

fn datadog_provider(m: &Metric, c: ProviderContext) -> datadog::DatadogProvider {
    datadog::DatadogProvider::new(m.provider.as_ref().unwrap().datadog.as_ref().unwrap(), c)
        .unwrap()
}

fn dd_secrets(addr: &str) -> StaticSecrets {
    StaticSecrets::default().with(
        NS,
        "datadog",
        &[
            ("api-key", "dd-api"),
            ("app-key", "dd-app"),
            ("address", addr),
        ],
    )
}

#[tokio::test]
async fn datadog_v1_query() {
    let dd = FakeServer::start(|_| {
        json(
            200,
            r#"{"status":"ok","res_type":"time_series","series":[{"metric":"requests.error.rate","pointlist":[[1599076200000,0.02],[1599076260000,0.004]]}]}"#,
        )
    })
    .await;
    let m = metric(
        j!({"name": "m", "successCondition": "result <= 0.01", "provider": {
        "datadog": {"query": "sum:requests.error.rate{service:checkout}", "interval": "10m"}}}),
    );
    let p = datadog_provider(&m, ctx(dd_secrets(&dd.url()), no_vars()));
    let before = Timestamp::now().as_second();
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("0.004"));
    let r = dd.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/api/v1/query")
    );
    assert_eq!(
        r.q("query"),
        Some("sum:requests.error.rate{service:checkout}")
    );
    let from: i64 = r.q("from").unwrap().parse().unwrap();
    let to: i64 = r.q("to").unwrap().parse().unwrap();
    assert_eq!(to - from, 600);
    assert!(to >= before && to <= Timestamp::now().as_second());
    assert_eq!(r.header("DD-API-KEY"), Some("dd-api"));
    assert_eq!(r.header("DD-APPLICATION-KEY"), Some("dd-app"));

    // A failing value.
    dd.set(|_| json(200, r#"{"series":[{"pointlist":[[1,0.5]]}]}"#));
    let out = measure(&p, &m).await;
    assert_eq!(
        (ph(&out), out.value.as_deref()),
        (phase::FAILED, Some("0.5"))
    );

    // No data: nil, which `default()` handles and a bare comparison cannot.
    dd.set(|_| json(200, r#"{"status":"ok","series":[]}"#));
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::ERROR, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("[]"));
    assert!(!msg(&out).is_empty());
    let guarded = metric(
        j!({"name": "m", "successCondition": "default(result, 0) <= 0.01",
        "provider": {"datadog": {"query": "q"}}}),
    );
    let out = measure(
        &datadog_provider(&guarded, ctx(dd_secrets(&dd.url()), no_vars())),
        &guarded,
    )
    .await;
    assert_eq!(
        (ph(&out), out.value.as_deref()),
        (phase::SUCCESSFUL, Some("[]"))
    );

    // Rate limits and server errors are Error measurements saying so.
    dd.set(|_| {
        json(
            429,
            r#"{"errors":["Rate limit of 300 requests in 3600 seconds reached."]}"#,
        )
    });
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::ERROR);
    assert!(
        msg(&out).starts_with("Datadog returned HTTP 429 (rate limited): "),
        "{}",
        msg(&out)
    );
    dd.set(|_| json(503, "upstream unavailable"));
    let out = measure(&p, &m).await;
    assert!(
        msg(&out).contains("HTTP 503 (server error)"),
        "{}",
        msg(&out)
    );
    dd.set(|_| json(403, r#"{"errors":["Forbidden"]}"#));
    assert!(msg(&measure(&p, &m).await).contains("authentication failed"));
}

#[tokio::test]
async fn datadog_v2_formulas_and_groups() {
    let dd = FakeServer::start(|_| {
        json(
            200,
            r#"{"data":{"type":"scalar_response","attributes":{"columns":[{"name":"a","type":"number","values":[0.0006332881882246533],"meta":{"unit":null}}]}},"errors":null}"#,
        )
    })
    .await;
    let m = metric(j!({"name": "m", "successCondition": "result < 0.001",
        "failureCondition": "result >= 0.001", "provider": {"datadog": {"apiVersion": "v2",
        "interval": "5m", "queries": {"a": "sum:errors{svc:x}.as_count()", "b": "sum:requests{svc:x}.as_count()"},
        "formula": "moving_rollup(a, 300, 'sum') / b", "aggregator": "sum",
        "secretRef": {"name": "dd", "namespaced": true}}}}));
    let secrets = StaticSecrets::default().with(
        "app",
        "dd",
        &[("api-key", "k"), ("app-key", "a"), ("address", &dd.url())],
    );
    let p = datadog_provider(&m, ctx(secrets, no_vars()));
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("0.0006332881882246533"));
    let r = dd.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v2/query/scalar")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("dd-api-key"), Some("k"));
    let body = r.json();
    assert_eq!(body["data"]["type"], "scalar_request");
    let a = &body["data"]["attributes"];
    assert_eq!(
        a["to"].as_i64().unwrap() - a["from"].as_i64().unwrap(),
        300_000
    );
    assert_eq!(
        a["formulas"],
        j!([{"formula": "moving_rollup(a, 300, 'sum') / b"}])
    );
    assert_eq!(
        a["queries"],
        j!([{"aggregator": "sum", "data_source": "metrics", "name": "a", "query": "sum:errors{svc:x}.as_count()"},
            {"aggregator": "sum", "data_source": "metrics", "name": "b", "query": "sum:requests{svc:x}.as_count()"}])
    );

    // Grouped: a list, with the groups in the metadata.
    dd.set(|_| {
        json(
            200,
            r#"{"data":{"attributes":{"columns":[{"name":"resource_name","type":"group","values":[["GET /a"],["GET /b"]]},{"name":"a","type":"number","values":[0.0001,0.02]}]}}}"#,
        )
    });
    let grouped = metric(j!({"name": "m", "successCondition": "max(result) < 0.01",
        "provider": {"datadog": {"apiVersion": "v2", "query": "sum:x{*} by {resource_name}",
        "secretRef": {"name": "dd", "namespaced": true}}}}));
    let secrets = StaticSecrets::default().with(
        "app",
        "dd",
        &[("api-key", "k"), ("app-key", "a"), ("address", &dd.url())],
    );
    let out = measure(
        &datadog_provider(&grouped, ctx(secrets, no_vars())),
        &grouped,
    )
    .await;
    assert_eq!(ph(&out), phase::FAILED, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("[0.0001,0.02]"));
    assert_eq!(
        out.metadata.unwrap()["groups"],
        r#"[{"name":"GET /a","value":0.0001},{"name":"GET /b","value":0.02}]"#
    );
    assert_eq!(
        dd.last().json()["data"]["attributes"]["queries"][0]["aggregator"],
        "last"
    );

    // An error Datadog reports in the body.
    dd.set(|_| json(200, r#"{"data":{"attributes":{"columns":[]},"errors":"Error parsing query: unable to parse x"}}"#));
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::ERROR);
    assert_eq!(
        msg(&out),
        "Datadog: There were errors in your query: Error parsing query: unable to parse x"
    );
}

#[tokio::test]
async fn datadog_credentials_from_the_environment_and_missing() {
    let dd = FakeServer::start(|_| json(200, r#"{"series":[{"pointlist":[[1,1]]}]}"#)).await;
    let m = metric(j!({"name": "m", "provider": {"datadog": {"query": "q"}}}));
    let vars = Vars::fixed([
        ("DD_API_KEY", "env-api"),
        ("DD_APP_KEY", "env-app"),
        ("DD_ADDRESS", dd.url().as_str()),
    ]);
    let out = measure(
        &datadog_provider(&m, ctx(StaticSecrets::default(), vars)),
        &m,
    )
    .await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(dd.last().header("dd-api-key"), Some("env-api"));
    // Neither variables nor the `datadog` Secret: an Error naming both, and no request.
    dd.clear();
    let out = measure(
        &datadog_provider(&m, ctx(StaticSecrets::default(), no_vars())),
        &m,
    )
    .await;
    assert_eq!(ph(&out), phase::ERROR);
    assert!(
        msg(&out).contains("secrets \"datadog\" not found in namespace \"rollouts\""),
        "{}",
        msg(&out)
    );
    assert!(dd.requests().is_empty());
}

// ------------------------------------------------------------------------------------------
// New Relic
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn newrelic_nrql_over_nerdgraph() {
    let nr = FakeServer::start(|_| {
        json(
            200,
            r#"{"data":{"actor":{"account":{"nrql":{"results":[{"successRate":99.2}]}}}}}"#,
        )
    })
    .await;
    let m = metric(
        j!({"name": "m", "successCondition": "result.successRate >= 95",
        "provider": {"newRelic": {"profile": "nr-prod", "timeout": 10,
        "query": "FROM Transaction SELECT percentage(count(*), WHERE httpResponseCode != 500) as successRate where appName = 'checkout'"}}}),
    );
    let secrets = StaticSecrets::default().with(
        NS,
        "nr-prod",
        &[
            ("personal-api-key", "NRAK-123"),
            ("account-id", "1234567"),
            ("region", "eu"),
            ("base-url-rest", "http://unused"),
            ("base-url-nerdgraph", &format!("{}/graphql", nr.url())),
        ],
    );
    let spec = m.provider.as_ref().unwrap().new_relic.as_ref().unwrap();
    let p = newrelic::NewRelicProvider::new(spec, ctx(secrets, no_vars())).unwrap();
    assert_eq!(
        p.metadata(&m).unwrap()["ResolvedNewRelicQuery"],
        spec.query.clone().unwrap()
    );
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(out.value.as_deref(), Some(r#"{"successRate":99.2}"#));
    let r = nr.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/graphql"));
    assert_eq!(r.header("api-key"), Some("NRAK-123"));
    let body = r.json();
    assert_eq!(body["variables"]["accountId"], 1234567);
    assert_eq!(body["variables"]["timeout"], 10);
    assert_eq!(body["variables"]["query"], spec.query.clone().unwrap());
    assert!(
        body["query"]
            .as_str()
            .unwrap()
            .contains("account(id: $accountId)")
    );

    nr.set(|_| {
        json(
            200,
            r#"{"data":{"actor":{"account":{"nrql":{"results":[{"successRate":80}]}}}}}"#,
        )
    });
    assert_eq!(ph(&measure(&p, &m).await), phase::FAILED);
    nr.set(|_| {
        json(
            200,
            r#"{"data":{"actor":{"account":{"nrql":{"results":[]}}}}}"#,
        )
    });
    let out = measure(&p, &m).await;
    assert_eq!(
        (ph(&out), msg(&out).as_str()),
        (
            phase::ERROR,
            "NewRelic: no results returned from NRQL query"
        )
    );
    nr.set(|_| json(200, r#"{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"message":"NRQL Syntax Error: Error at line 1 position 6","path":["actor","account","nrql"]}]}"#));
    let out = measure(&p, &m).await;
    assert_eq!(
        msg(&out),
        "NewRelic: NRQL Syntax Error: Error at line 1 position 6"
    );
    nr.set(|_| json(429, "Too Many Requests"));
    assert!(msg(&measure(&p, &m).await).contains("HTTP 429 (rate limited)"));
}

// ------------------------------------------------------------------------------------------
// CloudWatch (and AWS credentials)
// ------------------------------------------------------------------------------------------

fn cw_result(values: &[&str], next: Option<&str>) -> String {
    let vals: String = values
        .iter()
        .map(|v| format!("<member>{v}</member>"))
        .collect();
    let ts: String = values
        .iter()
        .enumerate()
        .map(|(i, _)| format!("<member>2024-05-01T10:{:02}:00Z</member>", 30 - i))
        .collect();
    let next = next
        .map(|n| format!("<NextToken>{n}</NextToken>"))
        .unwrap_or_default();
    format!(
        r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
  <GetMetricDataResult>
    <MetricDataResults>
      <member><Id>rate</Id><Label>rate</Label><StatusCode>Complete</StatusCode>
        <Timestamps>{ts}</Timestamps><Values>{vals}</Values><Messages/></member>
    </MetricDataResults>
    <Messages/>{next}
  </GetMetricDataResult>
  <ResponseMetadata><RequestId>8b7f1c1e</RequestId></ResponseMetadata>
</GetMetricDataResponse>"#
    )
}

fn cloudwatch_metric(condition: &str) -> Metric {
    metric(
        j!({"name": "m", "successCondition": condition, "provider": {"cloudWatch": {
        "interval": "30m", "metricDataQueries": [
            {"id": "rate", "expression": "errors / requests"},
            {"id": "errors", "metricStat": {"metric": {"namespace": "app", "metricName": "errors",
                "dimensions": [{"name": "Service", "value": "checkout"}]}, "period": 300,
                "stat": "Sum", "unit": "Count"}, "returnData": false},
            {"id": "requests", "metricStat": {"metric": {"namespace": "app", "metricName": "requests"},
                "period": 300, "stat": "Sum", "unit": "Count"}, "returnData": false}]}}}),
    )
}

fn cloudwatch_provider(m: &Metric, c: ProviderContext) -> cloudwatch::CloudWatchProvider {
    cloudwatch::CloudWatchProvider::new(
        m.provider.as_ref().unwrap().cloud_watch.as_ref().unwrap(),
        c,
    )
    .unwrap()
}

#[tokio::test]
async fn cloudwatch_get_metric_data_signed_with_static_keys() {
    let cw = FakeServer::start(|r: &Req| {
        if r.field("NextToken").is_none() {
            reply(
                200,
                "text/xml",
                cw_result(&["0.004", "0.006"], Some("page-2")),
            )
        } else {
            reply(200, "text/xml", cw_result(&["0.001"], None))
        }
    })
    .await;
    let vars = Vars::fixed([
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cw.url().as_str()),
    ]);
    let m = cloudwatch_metric("len(result[0].Values) >= 3 and all(result[0].Values, {# <= 0.01})");
    let out = measure(
        &cloudwatch_provider(&m, ctx(StaticSecrets::default(), vars)),
        &m,
    )
    .await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("[[0.004 0.006 0.001]]"));
    let reqs = cw.requests();
    assert_eq!(reqs.len(), 2, "two pages");
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/"));
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    let auth = r.header("authorization").unwrap();
    let today = Timestamp::now().strftime("%Y%m%d").to_string();
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/{today}/eu-west-1/monitoring/aws4_request, SignedHeaders="
        )),
        "{auth}"
    );
    assert!(auth.contains("content-type;host;x-amz-date"), "{auth}");
    assert!(r.header("x-amz-date").is_some());
    assert_eq!(r.header("x-amz-security-token"), None);
    assert_eq!(r.field("Action").as_deref(), Some("GetMetricData"));
    assert_eq!(r.field("Version").as_deref(), Some("2010-08-01"));
    assert_eq!(
        r.field("MetricDataQueries.member.1.Expression").as_deref(),
        Some("errors / requests")
    );
    assert_eq!(
        r.field("MetricDataQueries.member.2.MetricStat.Metric.Dimensions.member.1.Value")
            .as_deref(),
        Some("checkout")
    );
    assert_eq!(
        r.field("MetricDataQueries.member.3.ReturnData").as_deref(),
        Some("false")
    );
    let start: Timestamp = r.field("StartTime").unwrap().parse().unwrap();
    let end: Timestamp = r.field("EndTime").unwrap().parse().unwrap();
    assert_eq!(end.duration_since(start), SignedDuration::from_secs(1800));
    assert_eq!(reqs[1].field("NextToken").as_deref(), Some("page-2"));

    // A failing value, empty data, an AWS error, throttling.
    cw.set(|_| reply(200, "text/xml", cw_result(&["0.5"], None)));
    let m1 = cloudwatch_metric("all(result[0].Values, {# <= 0.01})");
    let vars = Vars::fixed([
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_ENDPOINT_URL", cw.url().as_str()),
    ]);
    let p = cloudwatch_provider(&m1, ctx(StaticSecrets::default(), vars));
    assert_eq!(ph(&measure(&p, &m1).await), phase::FAILED);
    cw.set(|_| reply(200, "text/xml", cw_result(&[], None)));
    let out = measure(&p, &cloudwatch_metric("len(result[0].Values) > 0")).await;
    assert_eq!(
        (ph(&out), out.value.as_deref()),
        (phase::FAILED, Some("[[]]"))
    );
    cw.set(|_| {
        reply(
            400,
            "text/xml",
            r#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>InvalidParameterCombination</Code><Message>At least one of MetricStat or Expression must be specified.</Message></Error><RequestId>x</RequestId></ErrorResponse>"#,
        )
    });
    let out = measure(&p, &m1).await;
    assert_eq!(
        msg(&out),
        "CloudWatch: HTTP 400: InvalidParameterCombination: At least one of MetricStat or Expression must be specified."
    );
    cw.set(|_| {
        reply(
            400,
            "text/xml",
            r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#,
        )
    });
    assert!(msg(&measure(&p, &m1).await).contains("Throttling: Rate exceeded"));
    cw.set(|_| reply(500, "text/plain", "Internal Failure"));
    assert!(msg(&measure(&p, &m1).await).contains("HTTP 500"));
    // No region: an Error saying what to set.
    let p = cloudwatch_provider(
        &m1,
        ctx(
            StaticSecrets::default(),
            Vars::fixed([("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]),
        ),
    );
    assert!(msg(&measure(&p, &m1).await).contains("AWS_REGION"));
}

#[tokio::test]
async fn cloudwatch_credentials_from_web_identity_and_container() {
    let sts = FakeServer::start(|_| {
        reply(
            200,
            "text/xml",
            r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:rollouts:rollouts</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>IQoJb3JpZ2luX2VjEXAMPLE</SessionToken>
      <SecretAccessKey>temp-secret</SecretAccessKey>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIATEMP</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#,
        )
    })
    .await;
    let cw = FakeServer::start(|_| reply(200, "text/xml", cw_result(&["0.001"], None))).await;
    let dir = std::env::temp_dir().join(format!("rollouts-irsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.service-account-token\n").unwrap();
    let vars = Vars::fixed([
        ("AWS_REGION", "us-west-2".to_string()),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::111122223333:role/rollouts".to_string(),
        ),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AWS_ROLE_SESSION_NAME", "rollouts-test".to_string()),
        ("AWS_ENDPOINT_URL_STS", sts.url()),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cw.url()),
    ]);
    let m = cloudwatch_metric("result[0].Values[0] < 0.01");
    let c = ctx(StaticSecrets::default(), vars);
    for _ in 0..2 {
        let out = measure(&cloudwatch_provider(&m, c.clone()), &m).await;
        assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    }
    let calls = sts.requests();
    assert_eq!(
        calls.len(),
        1,
        "the temporary credentials are kept until they expire"
    );
    let s = &calls[0];
    assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/"));
    assert_eq!(
        s.field("Action").as_deref(),
        Some("AssumeRoleWithWebIdentity")
    );
    assert_eq!(
        s.field("RoleArn").as_deref(),
        Some("arn:aws:iam::111122223333:role/rollouts")
    );
    assert_eq!(s.field("RoleSessionName").as_deref(), Some("rollouts-test"));
    assert_eq!(
        s.field("WebIdentityToken").as_deref(),
        Some("eyJhbGciOiJSUzI1NiJ9.service-account-token")
    );
    assert_eq!(
        s.header("authorization"),
        None,
        "AssumeRoleWithWebIdentity is unsigned"
    );
    let r = cw.last();
    assert!(
        r.header("authorization")
            .unwrap()
            .contains("Credential=ASIATEMP/")
    );
    assert_eq!(
        r.header("x-amz-security-token"),
        Some("IQoJb3JpZ2luX2VjEXAMPLE")
    );

    // STS refusing: an Error with its code and message.
    sts.set(|_| {
        reply(
            403,
            "text/xml",
            r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>No OpenIDConnect provider found</Message></Error></ErrorResponse>"#,
        )
    });
    let fresh = ProviderContext {
        aws: Arc::default(),
        ..c.clone()
    };
    let out = measure(&cloudwatch_provider(&m, fresh), &m).await;
    assert_eq!(
        msg(&out),
        "STS: HTTP 403: InvalidIdentityToken: No OpenIDConnect provider found"
    );

    // Container credentials (EKS Pod Identity).
    let agent = FakeServer::start(|_| {
        json(
            200,
            r#"{"AccessKeyId":"ASIAPOD","SecretAccessKey":"pod-secret","Token":"pod-token","AccountId":"111122223333","Expiration":"2099-01-01T00:00:00Z"}"#,
        )
    })
    .await;
    let auth_file = dir.join("pod-identity-token");
    std::fs::write(&auth_file, "pod-identity-jwt").unwrap();
    let vars = Vars::fixed([
        ("AWS_REGION", "us-west-2".to_string()),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v1/credentials", agent.url()),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            auth_file.display().to_string(),
        ),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cw.url()),
    ]);
    let out = measure(
        &cloudwatch_provider(&m, ctx(StaticSecrets::default(), vars)),
        &m,
    )
    .await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    let a = agent.last();
    assert_eq!(
        (a.method.as_str(), a.path.as_str()),
        ("GET", "/v1/credentials")
    );
    assert_eq!(a.header("authorization"), Some("pod-identity-jwt"));
    assert_eq!(cw.last().header("x-amz-security-token"), Some("pod-token"));
    // Nothing configured: an Error saying what is supported.
    let out = measure(
        &cloudwatch_provider(
            &m,
            ctx(StaticSecrets::default(), Vars::fixed([("AWS_REGION", "x")])),
        ),
        &m,
    )
    .await;
    assert!(msg(&out).starts_with("no AWS credentials"), "{}", msg(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------------------------------
// Graphite, InfluxDB, Wavefront, SkyWalking
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn graphite_render_api() {
    let g = FakeServer::start(|_| {
        json(
            200,
            r#"[{"target":"summarize(asPercent(...))","tags":{"name":"x"},"datapoints":[[95.5,1600000000],[null,1600000300],[97.25,1600000600]]}]"#,
        )
    })
    .await;
    let m = metric(
        j!({"name": "m", "successCondition": "all(result, {# >= 90})", "provider": {"graphite": {
        "address": format!("{}/graphite", g.url()),
        "query": "target=summarize(\n  asPercent(\n    sumSeries(stats.app.checkout.ok.count),\n    sumSeries(stats.app.checkout.*.count)\n  ),\n  '5min',\n  'avg'\n)&from=-15min"}}}),
    );
    let p =
        graphite::GraphiteProvider::new(m.provider.as_ref().unwrap().graphite.as_ref().unwrap())
            .unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("[95.500000,97.250000]"));
    let r = g.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/graphite/render")
    );
    assert_eq!(r.q("format"), Some("json"));
    assert_eq!(r.q("from"), Some("-15min"));
    assert_eq!(
        r.q("target"),
        Some(
            "summarize(asPercent(sumSeries(stats.app.checkout.ok.count),sumSeries(stats.app.checkout.*.count)),'5min','avg')"
        )
    );
    g.set(|_| json(200, "[]"));
    let out = measure(&p, &m).await;
    assert_eq!(
        (ph(&out), msg(&out).as_str()),
        (phase::ERROR, "Graphite: no values found")
    );
    g.set(|_| json(200, r#"[{"target":"x","datapoints":[[null,1],[null,2]]}]"#));
    let out = measure(
        &p,
        &metric(
            j!({"name": "m", "successCondition": "len(result) > 0", "provider": {"graphite": {}}}),
        ),
    )
    .await;
    assert_eq!(
        (ph(&out), out.value.as_deref()),
        (phase::FAILED, Some("[]"))
    );
    g.set(|_| reply(500, "text/html", "<h1>Server Error</h1>"));
    assert!(msg(&measure(&p, &m).await).contains("HTTP 500"));
}

#[tokio::test]
async fn influxdb_flux_query() {
    const CSV: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\r\n#group,false,false,true,true,false,false,true,true,true\r\n#default,_result,,,,,,,,\r\n,result,table,_start,_stop,_time,_value,_field,_measurement,destination_workload\r\n,,0,2024-05-01T10:00:00Z,2024-05-01T10:15:00Z,2024-05-01T10:14:00Z,0.004,value,istio:istio_requests_errors_percentage:rate1m:5xx,checkout\r\n\r\n";
    let influx = FakeServer::start(|_| reply(200, "text/csv; charset=utf-8", CSV)).await;
    let m = metric(
        j!({"name": "m", "successCondition": "result[0] <= 0.01", "provider": {"influxdb": {
        "query": "from(bucket: \"app_istio\")\n  |> range(start: -15m)\n  |> filter(fn: (r) => r[\"destination_workload\"] == \"checkout\")"}}}),
    );
    let secrets = StaticSecrets::default().with(
        NS,
        "influxdb",
        &[
            ("address", &influx.url()),
            ("authToken", "influx-token"),
            ("org", "my-org"),
        ],
    );
    let spec = m.provider.as_ref().unwrap().influxdb.as_ref().unwrap();
    let p = influxdb::InfluxdbProvider::new(spec, ctx(secrets, no_vars())).unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("[0.004]"));
    let r = influx.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v2/query")
    );
    assert_eq!(r.q("org"), Some("my-org"));
    assert_eq!(r.header("authorization"), Some("Token influx-token"));
    assert_eq!(r.json()["type"], "flux");
    assert_eq!(r.json()["query"], spec.query.clone().unwrap());

    // NaN from a division over no traffic: the condition sees a NaN.
    influx.set(|_| reply(200, "text/csv", CSV.replace(",0.004,", ",NaN,")));
    let out = measure(&p, &m).await;
    assert_eq!(
        (ph(&out), out.value.as_deref()),
        (phase::FAILED, Some("[NaN]"))
    );
    let nan_ok = metric(
        j!({"name": "m", "successCondition": "isNaN(result[0]) || result[0] <= 0.01", "provider": {"influxdb": {"query": "q"}}}),
    );
    assert_eq!(ph(&measure(&p, &nan_ok).await), phase::SUCCESSFUL);
    influx.set(|_| reply(200, "text/csv", "\r\n"));
    assert_eq!(
        msg(&measure(&p, &m).await),
        "InfluxDB: no results returned from flux query"
    );
    influx.set(|_| json(400, r#"{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier frm"}"#));
    assert_eq!(
        msg(&measure(&p, &m).await),
        "InfluxDB: HTTP 400: compilation failed: error at @1:1-1:5: undefined identifier frm"
    );
    // A profile without its keys.
    let bad = StaticSecrets::default().with(NS, "influxdb", &[("address", "http://x")]);
    let p = influxdb::InfluxdbProvider::new(spec, ctx(bad, no_vars())).unwrap();
    assert_eq!(
        msg(&measure(&p, &m).await),
        "authToken, org, or address not found"
    );
}

#[tokio::test]
async fn wavefront_chart_api() {
    let wf = FakeServer::start(|r: &Req| {
        let at: f64 = r.q("s").unwrap().parse::<f64>().unwrap() / 1000.0;
        json(
            200,
            format!(
                r#"{{"name":"q","query":"q","timeseries":[{{"label":"istio.requestcount.count","host":"h","tags":{{}},"data":[[{},0.5],[{},0.9712]]}}],"granularity":60,"warnings":"partial results"}}"#,
                at - 600.0,
                at - 30.0
            ),
        )
    })
    .await;
    let address = wf.url();
    let m = metric(
        j!({"name": "m", "successCondition": "result >= 0.95", "provider": {"wavefront": {
        "address": address, "query": "sum(rate(5m, ts(\"istio.requestcount.count\", response_code!=500)))"}}}),
    );
    let secrets = StaticSecrets::default().with(
        NS,
        "wavefront-api-tokens",
        &[
            ("other.wavefront.com", "nope"),
            (address.as_str(), "wf-token"),
        ],
    );
    let spec = m.provider.as_ref().unwrap().wavefront.as_ref().unwrap();
    let p = wavefront::WavefrontProvider::new(spec, ctx(secrets, no_vars())).unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert_eq!(out.value.as_deref(), Some("0.97"));
    let md = out.metadata.unwrap();
    assert_eq!(md["drift"], "-30");
    assert_eq!(md["warnings"], "partial results");
    let r = wf.last();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/api/v2/chart/api")
    );
    assert_eq!(r.header("authorization"), Some("Bearer wf-token"));
    assert_eq!(r.q("q"), spec.query.as_deref());
    assert_eq!(r.q("s"), r.q("e"));
    assert_eq!(
        (r.q("g"), r.q("p"), r.q("i"), r.q("strict")),
        (Some("s"), Some("1"), Some("true"), Some("false"))
    );
    wf.set(|_| json(200, r#"{"query":"q","errorType":"QueryExecutionFailed","errorMessage":"Terminating Query to save resources"}"#));
    assert_eq!(
        msg(&measure(&p, &m).await),
        "Wavefront: No TimeSeries found in response from Wavefront (Terminating Query to save resources)"
    );
    wf.set(|_| {
        json(
            401,
            r#"{"status":{"result":"ERROR","message":"unauthorized","code":401}}"#,
        )
    });
    assert!(msg(&measure(&p, &m).await).contains("HTTP 401"));
    let no_token = wavefront::WavefrontProvider::new(
        spec,
        ctx(
            StaticSecrets::default().with(NS, "wavefront-api-tokens", &[]),
            no_vars(),
        ),
    )
    .unwrap();
    assert!(msg(&measure(&no_token, &m).await).starts_with("API token not found"));
}

#[tokio::test]
async fn skywalking_graphql() {
    let sw = FakeServer::start(|_| {
        json(
            200,
            r#"{"data":{"service_apdex":{"label":null,"values":{"values":[{"id":"1","value":10000},{"id":"2","value":9950}]}}}}"#,
        )
    })
    .await;
    let m = metric(
        j!({"name": "m", "successCondition": "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})",
        "provider": {"skywalking": {"interval": "3m", "address": sw.url(),
        "query": "query queryData($duration: Duration!) {\n  service_apdex: readMetricsValues(\n    condition: { name: \"service_apdex\", entity: { scope: Service, serviceName: \"checkout\", normal: true } },\n    duration: $duration) {\n      label values { values { value } }\n    }\n}"}}}),
    );
    let p = skywalking::SkyWalkingProvider::new(
        m.provider.as_ref().unwrap().skywalking.as_ref().unwrap(),
    )
    .unwrap();
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::SUCCESSFUL, "{out:?}");
    assert!(out.value.unwrap().contains("\"value\":9950"));
    let r = sw.last();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/graphql"));
    let d = &r.json()["variables"]["duration"];
    assert_eq!(d["step"], "MINUTE");
    let fmt = |s: &str| s.len() == 15 && s.as_bytes()[10] == b' ';
    assert!(
        fmt(d["start"].as_str().unwrap()) && fmt(d["end"].as_str().unwrap()),
        "{d}"
    );
    assert!(
        r.json()["query"]
            .as_str()
            .unwrap()
            .contains("readMetricsValues")
    );
    sw.set(|_| {
        json(
            200,
            r#"{"data":{"service_apdex":{"label":null,"values":{"values":[{"value":8000}]}}}}"#,
        )
    });
    assert_eq!(ph(&measure(&p, &m).await), phase::FAILED);
    sw.set(|_| json(200, r#"{"errors":[{"message":"Exception while fetching data (/service_apdex) : metric not found"}],"data":null}"#));
    assert_eq!(
        msg(&measure(&p, &m).await),
        "SkyWalking: Exception while fetching data (/service_apdex) : metric not found"
    );
    sw.set(|_| reply(502, "text/html", "Bad Gateway"));
    assert!(msg(&measure(&p, &m).await).contains("HTTP 502"));
}

// ------------------------------------------------------------------------------------------
// The AnalysisRun core driving the providers
// ------------------------------------------------------------------------------------------

/// Drives `run` with the controller's core, taking each measurement with `provider` and
/// jumping the clock to the next instant the core asks for; returns the finished run.
async fn drive(mut run: AnalysisRun, provider: &dyn Provider) -> AnalysisRun {
    let mut now = Timestamp::now();
    for _ in 0..50 {
        let reconciled = match core::begin(&run, now) {
            Begin::Done(r) => r,
            Begin::Measure { prepared, tasks } => {
                let mut outcomes = Vec::new();
                for t in tasks {
                    let m = &prepared.metrics[t.index];
                    let measurement = match t.kind {
                        TaskKind::Start => provider.run(&run, m).await,
                        TaskKind::Resume => {
                            provider
                                .resume(&run, m, t.incomplete.clone().unwrap())
                                .await
                        }
                        TaskKind::Terminate => {
                            provider
                                .terminate(&run, m, t.incomplete.clone().unwrap())
                                .await
                        }
                    };
                    outcomes.push(Outcome {
                        task: t,
                        measurement,
                        metadata: None,
                    });
                }
                core::finish(&run, &prepared, outcomes, now)
            }
        };
        run.status = Some(reconciled.status);
        let p = run
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if phase::is_completed(&p) {
            return run;
        }
        now = reconciled
            .requeue_at
            .filter(|t| *t > now)
            .unwrap_or_else(|| now.checked_add(SignedDuration::from_millis(1)).unwrap());
    }
    panic!("the run did not finish: {:?}", run.status);
}

fn analysis_run(metric: Value) -> AnalysisRun {
    let mut run = run_in("app");
    run.spec.metrics = Some(vec![serde_json::from_value(metric).unwrap()]);
    run
}

fn phases(run: &AnalysisRun) -> Vec<String> {
    run.status
        .as_ref()
        .unwrap()
        .metric_results
        .as_ref()
        .unwrap()[0]
        .measurements
        .iter()
        .flatten()
        .map(|m| m.phase.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn datadog_errors_end_the_run_after_the_consecutive_error_limit() {
    let dd = FakeServer::start(|_| json(500, r#"{"errors":["Internal Server Error"]}"#)).await;
    let spec = j!({"name": "error-rate", "interval": "10s", "count": 5,
        "consecutiveErrorLimit": 2, "successCondition": "result < 0.01",
        "provider": {"datadog": {"query": "q"}}});
    let m = metric(spec.clone());
    let p = datadog_provider(&m, ctx(dd_secrets(&dd.url()), no_vars()));
    let run = drive(analysis_run(spec), &p).await;
    let st = run.status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some(phase::ERROR), "{st:?}");
    assert_eq!(phases(&run), vec!["Error", "Error", "Error"]);
    assert_eq!(
        st.message.as_deref(),
        Some(
            "Metric \"error-rate\" assessed Error due to consecutiveErrors (3) > consecutiveErrorLimit (2): \"Error Message: Datadog returned HTTP 500 (server error): {\"errors\":[\"Internal Server Error\"]}\""
        )
    );
    assert_eq!(dd.requests().len(), 3);
}

#[tokio::test]
async fn an_error_then_a_success_resets_the_count() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    let dd =
        FakeServer::start(
            move |_| match c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => json(429, "slow down"),
                _ => json(200, r#"{"series":[{"pointlist":[[1,0.001]]}]}"#),
            },
        )
        .await;
    let spec = j!({"name": "m", "interval": "10s", "count": 2, "consecutiveErrorLimit": 0,
        "successCondition": "result < 0.01", "provider": {"datadog": {"query": "q"}}});
    let p = datadog_provider(&metric(spec.clone()), ctx(dd_secrets(&dd.url()), no_vars()));
    // consecutiveErrorLimit 0: the first error is already over the limit.
    let run = drive(analysis_run(spec.clone()), &p).await;
    assert_eq!(
        run.status.as_ref().unwrap().phase.as_deref(),
        Some(phase::ERROR)
    );
    assert_eq!(phases(&run), vec!["Error"]);
    // With the default limit (4), the error is retried and the run succeeds.
    calls.store(0, std::sync::atomic::Ordering::SeqCst);
    let mut tolerant = spec;
    tolerant
        .as_object_mut()
        .unwrap()
        .remove("consecutiveErrorLimit");
    let run = drive(analysis_run(tolerant), &p).await;
    assert_eq!(
        run.status.as_ref().unwrap().phase.as_deref(),
        Some(phase::SUCCESSFUL)
    );
    assert_eq!(phases(&run), vec!["Error", "Successful", "Successful"]);
}

#[tokio::test]
async fn neither_condition_is_inconclusive() {
    let nr = FakeServer::start(|_| {
        json(
            200,
            r#"{"data":{"actor":{"account":{"nrql":{"results":[{"errorRate":0.03}]}}}}}"#,
        )
    })
    .await;
    let spec = j!({"name": "m", "successCondition": "result.errorRate < 0.01",
        "failureCondition": "result.errorRate > 0.05",
        "provider": {"newRelic": {"query": "SELECT percentage(count(*), WHERE error IS true) AS errorRate FROM Transaction"}}});
    let secrets = StaticSecrets::default().with(
        NS,
        "newrelic",
        &[
            ("personal-api-key", "k"),
            ("account-id", "1"),
            ("base-url-nerdgraph", &nr.url()),
        ],
    );
    let m = metric(spec.clone());
    let p = newrelic::NewRelicProvider::new(
        m.provider.as_ref().unwrap().new_relic.as_ref().unwrap(),
        ctx(secrets, no_vars()),
    )
    .unwrap();
    let run = drive(analysis_run(spec), &p).await;
    let st = run.status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some(phase::INCONCLUSIVE), "{st:?}");
    assert_eq!(phases(&run), vec!["Inconclusive"]);
}

#[tokio::test]
async fn kayenta_judgement_runs_asynchronously() {
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let score = Arc::new(std::sync::Mutex::new(95.0f64));
    let (p2, s2) = (polls.clone(), score.clone());
    let k = FakeServer::start(move |r: &Req| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/canaryConfig") => json(
            200,
            r#"[{"id":"cfg-0","name":"other"},{"id":"cfg-1","name":"my-test","updatedTimestamp":1,"applications":["guestbook"]}]"#,
        ),
        ("POST", "/canary/cfg-1") => json(200, r#"{"canaryExecutionId":"01HEXEC"}"#),
        ("GET", "/canary/01HEXEC") => {
            if p2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                json(200, r#"{"complete":false,"status":"running"}"#)
            } else {
                let s = *s2.lock().unwrap();
                json(200, format!(r#"{{"complete":true,"result":{{"judgeResult":{{"score":{{"score":{s},"classification":"Pass"}}}}}}}}"#))
            }
        }
        _ => json(404, "{}"),
    })
    .await;
    let spec = j!({"name": "mann-whitney", "interval": "1h", "count": 1, "provider": {"kayenta": {
        "address": k.url(), "application": "guestbook", "canaryConfigName": "my-test",
        "metricsAccountName": "prom", "configurationAccountName": "cfg", "storageAccountName": "store",
        "threshold": {"pass": 90, "marginal": 75},
        "scopes": [{"name": "default",
            "controlScope": {"scope": "app=guestbook and hash=aaa", "region": "us-west-2", "step": 60},
            "experimentScope": {"scope": "app=guestbook and hash=bbb", "region": "us-west-2", "step": 60}}]}}});
    let m = metric(spec.clone());
    let p = kayenta::KayentaProvider::new(m.provider.as_ref().unwrap().kayenta.as_ref().unwrap())
        .unwrap();

    // The first measurement only starts the judgement.
    let started = measure(&p, &m).await;
    assert_eq!(ph(&started), phase::RUNNING);
    assert_eq!(
        started.metadata.as_ref().unwrap()["canaryExecutionId"],
        "01HEXEC"
    );
    assert!(started.finished_at.is_none() && started.resume_at.is_some());
    let reqs = k.requests();
    assert_eq!(reqs[0].q("configurationAccountName"), Some("store"));
    assert_eq!(reqs[1].q("metricsAccountName"), Some("prom"));
    assert_eq!(reqs[1].q("storageAccountName"), Some("store"));
    let body = reqs[1].json();
    assert_eq!(body["thresholds"], j!({"pass": 90, "marginal": 75}));
    let control = &body["scopes"]["default"]["controlScope"];
    assert_eq!(control["location"], "us-west-2");
    let start: Timestamp = control["start"].as_str().unwrap().parse().unwrap();
    let end: Timestamp = control["end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end.duration_since(start), SignedDuration::from_hours(1));

    // Driven by the core: started, polled while incomplete, then judged by the thresholds.
    for (s, want) in [
        (95.0, phase::SUCCESSFUL),
        (80.0, phase::INCONCLUSIVE),
        (60.0, phase::FAILED),
    ] {
        polls.store(0, std::sync::atomic::Ordering::SeqCst);
        *score.lock().unwrap() = s;
        let run = drive(analysis_run(spec.clone()), &p).await;
        let st = run.status.as_ref().unwrap();
        assert_eq!(st.phase.as_deref(), Some(want), "score {s}: {st:?}");
        let ms = &st.metric_results.as_ref().unwrap()[0]
            .measurements
            .as_ref()
            .unwrap()[0];
        assert_eq!(ms.value.as_deref(), Some(format!("{}", s as i64).as_str()));
        assert_eq!(
            polls.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "polled until complete"
        );
    }
    k.set(|_| json(500, "boom"));
    let out = measure(&p, &m).await;
    assert_eq!(ph(&out), phase::ERROR);
    assert!(msg(&out).contains("HTTP 500"));
    let _ = Duration::ZERO;
}
