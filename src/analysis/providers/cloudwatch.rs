//! The CloudWatch provider (upstream's `metricproviders/cloudwatch`): `GetMetricData` over the
//! last `interval` (default `5m`).
//!
//! The request is CloudWatch's query protocol: `POST /` to `monitoring.{region}.amazonaws.com`
//! (or `AWS_ENDPOINT_URL_CLOUDWATCH`), a form with `Action=GetMetricData`,
//! `Version=2010-08-01`, `StartTime`, `EndTime` and the `metricDataQueries`
//! (`MetricDataQueries.member.N.*`), signed with SigV4 (service `monitoring`). Region and
//! credentials: [`super::aws`]. Pages (`NextToken`) are followed, up to 10.
//!
//! The condition's `result` is the list of `MetricDataResults`, each a map with `Id`, `Label`,
//! `StatusCode`, `Timestamps`, `Values` and `Messages` (upstream's Go field names:
//! `all(result[0].Values, {# <= 0.01})`); the measurement's value is the list of the results'
//! values as upstream prints it (`[[0.5 0.25] [1]]`); CloudWatch's messages go to the
//! measurement's `messages` metadata.

use super::aws::{self, AwsCredentials};
use super::http::{self, Request, Response};
use super::{Provider, ProviderContext, ProviderError, errored, go_float, judged};
use crate::analysis::condition::ValueWithText;
use crate::api::{AnalysisRun, CloudWatchMetric, CloudWatchMetricDataQuery, Measurement, Metric};
use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

const PROVIDER: &str = "CloudWatch";
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_PAGES: usize = 10;

fn period(v: &IntOrString, field: &str) -> Result<String, ProviderError> {
    match v {
        IntOrString::Int(i) => Ok(i.to_string()),
        IntOrString::String(s) => s.trim().parse::<i32>().map(|i| i.to_string()).map_err(|_| {
            ProviderError::spec(format!("cloudWatch {field}: {s:?} is not an integer"))
        }),
    }
}

/// The form parameters of the queries (`MetricDataQueries.member.N.*`).
pub fn query_params(
    queries: &[CloudWatchMetricDataQuery],
) -> Result<Vec<(String, String)>, ProviderError> {
    let mut out = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let p = format!("MetricDataQueries.member.{}", i + 1);
        let mut push = |k: &str, v: String| out.push((format!("{p}.{k}"), v));
        push("Id", q.id.clone().unwrap_or_default());
        if let Some(e) = &q.expression {
            push("Expression", e.clone());
        }
        if let Some(l) = &q.label {
            push("Label", l.clone());
        }
        if let Some(ms) = &q.metric_stat {
            let metric = ms.metric.clone().unwrap_or_default();
            if let Some(ns) = &metric.namespace {
                push("MetricStat.Metric.Namespace", ns.clone());
            }
            push(
                "MetricStat.Metric.MetricName",
                metric.metric_name.clone().unwrap_or_default(),
            );
            for (j, d) in metric.dimensions.iter().flatten().enumerate() {
                let dp = format!("MetricStat.Metric.Dimensions.member.{}", j + 1);
                push(&format!("{dp}.Name"), d.name.clone().unwrap_or_default());
                push(&format!("{dp}.Value"), d.value.clone().unwrap_or_default());
            }
            if let Some(per) = &ms.period {
                push(
                    "MetricStat.Period",
                    period(per, &format!("metricDataQueries[{i}].metricStat.period"))?,
                );
            }
            push("MetricStat.Stat", ms.stat.clone().unwrap_or_default());
            if let Some(u) = ms.unit.as_ref().filter(|u| !u.is_empty()) {
                push("MetricStat.Unit", u.clone());
            }
        }
        if let Some(per) = &q.period {
            push(
                "Period",
                period(per, &format!("metricDataQueries[{i}].period"))?,
            );
        }
        if let Some(r) = q.return_data {
            push("ReturnData", r.to_string());
        }
    }
    Ok(out)
}

fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The (unsigned) `GetMetricData` request for the window `[start, end]`.
pub fn build_request(
    endpoint: &str,
    queries: &[(String, String)],
    start: Timestamp,
    end: Timestamp,
    next_token: Option<&str>,
) -> Request {
    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), "GetMetricData".into()),
        ("Version".into(), "2010-08-01".into()),
        ("StartTime".into(), iso(start)),
        ("EndTime".into(), iso(end)),
    ];
    params.extend(queries.iter().cloned());
    if let Some(t) = next_token {
        params.push(("NextToken".into(), t.into()));
    }
    let body = http::query_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Request::post(
        format!("{}/", endpoint.trim_end_matches('/')),
        "application/x-www-form-urlencoded; charset=utf-8",
        body.into_bytes(),
    )
}

/// One `MetricDataResult`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataResult {
    pub id: String,
    pub label: String,
    pub status_code: String,
    pub timestamps: Vec<Timestamp>,
    pub values: Vec<f64>,
    /// (code, value).
    pub messages: Vec<(String, String)>,
}

/// One page of `GetMetricData`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub results: Vec<DataResult>,
    /// Messages about the whole request.
    pub messages: Vec<(String, String)>,
    pub next_token: Option<String>,
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

fn child_text(n: roxmltree::Node<'_, '_>, name: &str) -> String {
    child(n, name)
        .and_then(|c| c.text())
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn members<'a, 'i>(
    n: Option<roxmltree::Node<'a, 'i>>,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.into_iter()
        .flat_map(|n| n.children().filter(|c| c.has_tag_name("member")))
}

fn messages(n: Option<roxmltree::Node<'_, '_>>) -> Vec<(String, String)> {
    members(n)
        .map(|m| (child_text(m, "Code"), child_text(m, "Value")))
        .collect()
}

/// Parses one `GetMetricData` answer.
pub fn parse_page(resp: &Response) -> Result<Page, ProviderError> {
    if !resp.ok() {
        return Err(aws::query_error(PROVIDER, resp));
    }
    let doc =
        roxmltree::Document::parse(&resp.body).map_err(|e| ProviderError::parse(PROVIDER, e))?;
    let result = doc
        .descendants()
        .find(|n| n.has_tag_name("GetMetricDataResult"))
        .ok_or_else(|| ProviderError::parse(PROVIDER, "no GetMetricDataResult"))?;
    let mut page = Page {
        messages: messages(child(result, "Messages")),
        next_token: Some(child_text(result, "NextToken")).filter(|t| !t.is_empty()),
        ..Default::default()
    };
    for m in members(child(result, "MetricDataResults")) {
        let mut r = DataResult {
            id: child_text(m, "Id"),
            label: child_text(m, "Label"),
            status_code: child_text(m, "StatusCode"),
            messages: messages(child(m, "Messages")),
            ..Default::default()
        };
        for t in members(child(m, "Timestamps")) {
            let text = t.text().unwrap_or_default().trim();
            r.timestamps.push(
                text.parse::<Timestamp>().map_err(|e| {
                    ProviderError::parse(PROVIDER, format!("timestamp {text:?}: {e}"))
                })?,
            );
        }
        for v in members(child(m, "Values")) {
            let text = v.text().unwrap_or_default().trim();
            r.values.push(
                text.parse::<f64>()
                    .map_err(|e| ProviderError::parse(PROVIDER, format!("value {text:?}: {e}")))?,
            );
        }
        page.results.push(r);
    }
    Ok(page)
}

/// Appends `page` to `acc`: results of the same id are concatenated (pages split long series).
pub fn merge(acc: &mut Page, page: Page) {
    for r in page.results {
        match acc.results.iter_mut().find(|a| a.id == r.id) {
            Some(a) => {
                a.timestamps.extend(r.timestamps);
                a.values.extend(r.values);
                a.messages.extend(r.messages);
                if !r.status_code.is_empty() {
                    a.status_code = r.status_code;
                }
            }
            None => acc.results.push(r),
        }
    }
    acc.messages.extend(page.messages);
    acc.next_token = page.next_token;
}

fn datetime(t: Timestamp) -> expr::Value {
    match chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32) {
        Some(d) => expr::Value::DateTime(expr::DateTimeValue::fixed(d.fixed_offset())),
        None => expr::Value::Nil,
    }
}

fn message_values(ms: &[(String, String)]) -> expr::Value {
    expr::Value::Array(
        ms.iter()
            .map(|(c, v)| {
                expr::Value::Map(
                    [
                        ("Code".to_string(), expr::Value::String(c.clone())),
                        ("Value".to_string(), expr::Value::String(v.clone())),
                    ]
                    .into_iter()
                    .collect(),
                )
            })
            .collect(),
    )
}

/// Go's `%+v` of the messages (`[{Code:X Value:Y}]`).
fn messages_text(ms: &[(String, String)]) -> String {
    format!(
        "[{}]",
        ms.iter()
            .map(|(c, v)| format!("{{Code:{c} Value:{v}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The condition's `result`, the measurement's value and metadata of the (merged) answer.
pub fn to_result(page: &Page) -> (ValueWithText, BTreeMap<String, String>) {
    let value = expr::Value::Array(
        page.results
            .iter()
            .map(|r| {
                expr::Value::Map(
                    [
                        ("Id".to_string(), expr::Value::String(r.id.clone())),
                        ("Label".to_string(), expr::Value::String(r.label.clone())),
                        (
                            "StatusCode".to_string(),
                            expr::Value::String(r.status_code.clone()),
                        ),
                        (
                            "Timestamps".to_string(),
                            expr::Value::Array(r.timestamps.iter().map(|t| datetime(*t)).collect()),
                        ),
                        ("Values".to_string(), super::float_list(&r.values)),
                        ("Messages".to_string(), message_values(&r.messages)),
                    ]
                    .into_iter()
                    .collect(),
                )
            })
            .collect(),
    );
    let text = format!(
        "[{}]",
        page.results
            .iter()
            .map(|r| format!(
                "[{}]",
                r.values
                    .iter()
                    .map(|v| go_float(*v))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut md = BTreeMap::new();
    if !page.messages.is_empty() {
        md.insert("messages".to_string(), messages_text(&page.messages));
    }
    (ValueWithText { value, text }, md)
}

/// A configured `GetMetricData`.
pub struct CloudWatchProvider {
    queries: Vec<(String, String)>,
    interval: Duration,
    ctx: ProviderContext,
}

impl CloudWatchProvider {
    /// Checks the interval and the queries.
    pub fn new(spec: &CloudWatchMetric, ctx: ProviderContext) -> Result<Self, ProviderError> {
        let interval = match spec.interval.as_deref().filter(|s| !s.is_empty()) {
            None => Duration::from_secs(300),
            Some(s) => crate::analysis::core::parse_duration(s)
                .map_err(|e| ProviderError::spec(format!("cloudWatch interval: {e}")))?,
        };
        let queries = spec.metric_data_queries.clone().unwrap_or_default();
        if queries.is_empty() {
            return Err(ProviderError::spec("cloudWatch metricDataQueries is empty"));
        }
        Ok(CloudWatchProvider {
            queries: query_params(&queries)?,
            interval,
            ctx,
        })
    }

    async fn measure(&self) -> Result<Page, ProviderError> {
        let vars = &self.ctx.vars;
        let region = aws::region(vars)?;
        let creds: AwsCredentials = aws::credentials(vars, &self.ctx.aws, &region).await?;
        let endpoint = aws::endpoint(vars, "CLOUDWATCH", aws::regional("monitoring", &region));
        let end = Timestamp::now();
        let back = SignedDuration::try_from(self.interval).unwrap_or(SignedDuration::MAX);
        let start = end.checked_sub(back).unwrap_or(Timestamp::UNIX_EPOCH);
        let mut acc = Page::default();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut req = build_request(&endpoint, &self.queries, start, end, token.as_deref());
            aws::sign(&mut req, &creds, &region, "monitoring", SystemTime::now())?;
            let page = parse_page(&http::send(&req, TIMEOUT).await?)?;
            merge(&mut acc, page);
            token = acc.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        Ok(acc)
    }
}

impl Provider for CloudWatchProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn deadline(&self) -> Duration {
        TIMEOUT * 3 + Duration::from_secs(15)
    }

    fn run<'a>(&'a self, _run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let started = super::started_now();
            match self.measure().await {
                Err(e) => errored(started, &e),
                Ok(page) => {
                    let (v, md) = to_result(&page);
                    judged(started, &v, metric, Some(md))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::condition::eval_condition;
    use serde_json::json;

    fn queries() -> Vec<CloudWatchMetricDataQuery> {
        serde_json::from_value(json!([
            {"id": "rate", "expression": "errors / requests"},
            {"id": "errors", "metricStat": {"metric": {"namespace": "app", "metricName": "errors",
                "dimensions": [{"name": "Service", "value": "a b"}]},
                "period": 300, "stat": "Sum", "unit": "Count"}, "returnData": false},
            {"id": "requests", "metricStat": {"metric": {"namespace": "app", "metricName": "requests"},
                "period": "60", "stat": "Sum"}, "returnData": false, "label": "Requests"}
        ]))
        .unwrap()
    }

    #[test]
    fn request_form() {
        let params = query_params(&queries()).unwrap();
        let start: Timestamp = "2021-09-08T17:00:00Z".parse().unwrap();
        let end: Timestamp = "2021-09-08T17:30:00Z".parse().unwrap();
        let r = build_request(
            "https://monitoring.us-east-1.amazonaws.com",
            &params,
            start,
            end,
            Some("tok/1"),
        );
        assert_eq!(r.url, "https://monitoring.us-east-1.amazonaws.com/");
        let body = String::from_utf8(r.body.unwrap()).unwrap();
        let pairs: Vec<&str> = body.split('&').collect();
        assert_eq!(
            pairs,
            vec![
                "Action=GetMetricData",
                "Version=2010-08-01",
                "StartTime=2021-09-08T17%3A00%3A00Z",
                "EndTime=2021-09-08T17%3A30%3A00Z",
                "MetricDataQueries.member.1.Id=rate",
                "MetricDataQueries.member.1.Expression=errors%20%2F%20requests",
                "MetricDataQueries.member.2.Id=errors",
                "MetricDataQueries.member.2.MetricStat.Metric.Namespace=app",
                "MetricDataQueries.member.2.MetricStat.Metric.MetricName=errors",
                "MetricDataQueries.member.2.MetricStat.Metric.Dimensions.member.1.Name=Service",
                "MetricDataQueries.member.2.MetricStat.Metric.Dimensions.member.1.Value=a%20b",
                "MetricDataQueries.member.2.MetricStat.Period=300",
                "MetricDataQueries.member.2.MetricStat.Stat=Sum",
                "MetricDataQueries.member.2.MetricStat.Unit=Count",
                "MetricDataQueries.member.2.ReturnData=false",
                "MetricDataQueries.member.3.Id=requests",
                "MetricDataQueries.member.3.Label=Requests",
                "MetricDataQueries.member.3.MetricStat.Metric.Namespace=app",
                "MetricDataQueries.member.3.MetricStat.Metric.MetricName=requests",
                "MetricDataQueries.member.3.MetricStat.Period=60",
                "MetricDataQueries.member.3.MetricStat.Stat=Sum",
                "MetricDataQueries.member.3.ReturnData=false",
                "NextToken=tok%2F1",
            ]
        );
        let bad: Vec<CloudWatchMetricDataQuery> =
            serde_json::from_value(json!([{"id": "x", "period": "five"}])).unwrap();
        assert!(query_params(&bad).is_err());
        assert_eq!(
            aws::regional("monitoring", "cn-north-1"),
            "https://monitoring.cn-north-1.amazonaws.com.cn"
        );
    }

    const PAGE: &str = r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
  <GetMetricDataResult>
    <MetricDataResults>
      <member>
        <Timestamps><member>2021-09-08T17:25:00Z</member><member>2021-09-08T17:20:00Z</member></Timestamps>
        <Label>rate</Label>
        <Id>rate</Id>
        <StatusCode>PartialData</StatusCode>
        <Values><member>0.0029476787030213707</member><member>0.006100422336931018</member></Values>
        <Messages/>
      </member>
    </MetricDataResults>
    <NextToken>next-1</NextToken>
    <Messages><member><Code>MaxMetricsExceeded</Code><Value>too many</Value></member></Messages>
  </GetMetricDataResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</GetMetricDataResponse>"#;

    #[test]
    fn pages_and_results() {
        let p = parse_page(&Response {
            status: 200,
            body: PAGE.into(),
        })
        .unwrap();
        assert_eq!(p.next_token.as_deref(), Some("next-1"));
        assert_eq!(
            p.results[0].values,
            vec![0.0029476787030213707, 0.006100422336931018]
        );
        let second = Page {
            results: vec![DataResult {
                id: "rate".into(),
                status_code: "Complete".into(),
                values: vec![0.5],
                timestamps: vec!["2021-09-08T17:15:00Z".parse().unwrap()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut acc = Page::default();
        merge(&mut acc, p);
        merge(&mut acc, second);
        assert_eq!(acc.next_token, None);
        assert_eq!(acc.results.len(), 1);
        assert_eq!(acc.results[0].status_code, "Complete");
        let (v, md) = to_result(&acc);
        assert_eq!(v.text, "[[0.0029476787030213707 0.006100422336931018 0.5]]");
        assert_eq!(md["messages"], "[{Code:MaxMetricsExceeded Value:too many}]");
        assert!(
            eval_condition(
                &v.value,
                "len(result[0].Values) >= 3 and all(result[0].Values, {# <= 0.5})"
            )
            .unwrap()
        );
        assert!(
            eval_condition(
                &v.value,
                "result[0].Id == 'rate' and result[0].StatusCode == 'Complete'"
            )
            .unwrap()
        );
        let (empty, md) = to_result(&Page::default());
        assert_eq!(empty.text, "[]");
        assert!(md.is_empty());
    }

    #[test]
    fn errors() {
        let e = parse_page(&Response {
            status: 400,
            body: r#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>The values for parameter id in MetricDataQueries are not unique.</Message></Error><RequestId>x</RequestId></ErrorResponse>"#.into(),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CloudWatch: HTTP 400: InvalidParameterValue: The values for parameter id in MetricDataQueries are not unique."
        );
        let e = parse_page(&Response {
            status: 503,
            body: "Service Unavailable".into(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("HTTP 503"));
        assert!(
            parse_page(&Response {
                status: 200,
                body: "<x/>".into()
            })
            .is_err()
        );
    }
}
