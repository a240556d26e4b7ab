//! The InfluxDB provider (upstream's `metricproviders/influxdb`): a Flux query through the v2
//! API.
//!
//! `POST {address}/api/v2/query?org={org}` with header `Authorization: Token <authToken>` and
//! the Flux query (`type: flux`, annotated CSV dialect), 30 s timeout. The profile is the
//! Secret named by `profile` (default `influxdb`) in the controller's namespace: `address`,
//! `authToken` and `org`, all required.
//!
//! The answer is annotated CSV (`#datatype`, `#group`, `#default` rows, then one or more
//! tables). The condition's `result` is the list of every record's `_value`, typed by its
//! `#datatype` (`double` a number, `long` an integer, `boolean`, `string`, ...), across tables;
//! the measurement's value prints them as upstream (Go's `fmt.Sprint`: `[0.5 1 true]`). No
//! record is an Error, as is an error table (`error`, `reference` columns).

use super::http::{self, Request, Response};
use super::{Provider, ProviderContext, ProviderError, conclude, secrets};
use crate::analysis::condition::ValueWithText;
use crate::api::{AnalysisRun, InfluxdbMetric, Measurement, Metric};
use futures::future::BoxFuture;
use serde_json::json;
use std::time::Duration;

const PROVIDER: &str = "InfluxDB";
/// The profile Secret read when the metric names none.
pub const DEFAULT_PROFILE: &str = "influxdb";
const TIMEOUT: Duration = Duration::from_secs(30);

/// An InfluxDB profile.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    pub address: String,
    pub token: String,
    pub org: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("address", &self.address)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// The profile in a Secret's data.
pub fn profile(data: &secrets::SecretData) -> Result<Profile, ProviderError> {
    let get = |k: &str| secrets::text(data, k).unwrap_or_default();
    let p = Profile {
        address: get("address"),
        token: get("authToken"),
        org: get("org"),
    };
    if p.address.is_empty() || p.token.is_empty() || p.org.is_empty() {
        return Err(ProviderError::Credentials(
            "authToken, org, or address not found".into(),
        ));
    }
    Ok(p)
}

/// The query request.
pub fn build_request(p: &Profile, query: &str) -> Result<Request, ProviderError> {
    if !http::is_url(&p.address) {
        return Err(ProviderError::Credentials(format!(
            "influxdb address {:?} is not a URL",
            p.address
        )));
    }
    let body = json!({
        "query": query,
        "type": "flux",
        "dialect": {
            "annotations": ["datatype", "group", "default"],
            "delimiter": ",",
            "header": true,
        },
    });
    Ok(Request::post(
        format!(
            "{}?{}",
            http::join(&p.address, "/api/v2/query"),
            http::query_string([("org", p.org.as_str())])
        ),
        "application/json",
        body.to_string().into_bytes(),
    )
    .header("Authorization", format!("Token {}", p.token))
    .header("Accept", "application/csv"))
}

/// A `_value` that is not of its column's `#datatype`.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("double {raw:?}: {source}")]
    Double {
        raw: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    #[error("long {raw:?}: {source}")]
    Long {
        raw: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("unsignedLong {raw:?}: {source}")]
    UnsignedLong {
        raw: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

/// One `_value`, typed by its column's `#datatype`.
fn typed(datatype: &str, raw: &str) -> Result<expr::Value, ValueError> {
    use expr::Value as V;
    if raw.is_empty() && datatype != "string" {
        return Ok(V::Nil);
    }
    let kind = datatype.split(':').next().unwrap_or_default();
    Ok(match kind {
        "double" => V::Float(match raw {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => raw.parse::<f64>().map_err(|source| ValueError::Double {
                raw: raw.to_string(),
                source,
            })?,
        }),
        "long" => V::Integer(raw.parse::<i64>().map_err(|source| ValueError::Long {
            raw: raw.to_string(),
            source,
        })?),
        "unsignedLong" => {
            let u = raw
                .parse::<u64>()
                .map_err(|source| ValueError::UnsignedLong {
                    raw: raw.to_string(),
                    source,
                })?;
            i64::try_from(u)
                .map(V::Integer)
                .unwrap_or(V::Float(u as f64))
        }
        "boolean" => V::Bool(raw == "true"),
        _ => V::String(raw.to_string()),
    })
}

fn go_sprint(v: &expr::Value) -> String {
    match v {
        expr::Value::Nil => "<nil>".into(),
        expr::Value::Float(f) => super::go_float(*f),
        expr::Value::Integer(i) => i.to_string(),
        expr::Value::Bool(b) => b.to_string(),
        expr::Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// Parses annotated CSV into the `_value` of every record.
pub fn parse_csv(text: &str) -> Result<Vec<expr::Value>, ProviderError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut values = Vec::new();
    let mut datatypes: Vec<String> = Vec::new();
    let mut defaults: Vec<String> = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for record in reader.records() {
        let record = record.map_err(|e| ProviderError::parse(PROVIDER, e))?;
        let fields: Vec<String> = record.iter().map(str::to_string).collect();
        if fields.iter().all(String::is_empty) {
            header = None;
            continue;
        }
        match fields.first().map(String::as_str) {
            Some("#datatype") => {
                datatypes = fields;
                header = None;
                continue;
            }
            Some("#default") => {
                defaults = fields;
                continue;
            }
            Some(a) if a.starts_with('#') => continue,
            _ => {}
        }
        let Some(cols) = &header else {
            header = Some(fields);
            continue;
        };
        let col = |name: &str| cols.iter().position(|c| c == name);
        if let (Some(e), Some(_)) = (col("error"), col("reference")) {
            let msg = fields.get(e).cloned().unwrap_or_default();
            return Err(ProviderError::api(
                PROVIDER,
                format!("flux query failed: {msg}"),
            ));
        }
        let Some(i) = col("_value") else {
            values.push(expr::Value::Nil);
            continue;
        };
        let mut raw = fields.get(i).cloned().unwrap_or_default();
        if raw.is_empty() {
            raw = defaults.get(i).cloned().unwrap_or_default();
        }
        let dt = datatypes.get(i).map(String::as_str).unwrap_or("string");
        values.push(typed(dt, &raw).map_err(|e| ProviderError::parse(PROVIDER, e))?);
    }
    Ok(values)
}

/// Parses the query's answer into the condition's `result` and the measurement's value.
pub fn parse_response(resp: &Response) -> Result<ValueWithText, ProviderError> {
    if !resp.ok() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&resp.body)
            && let Some(msg) = v.get("message").and_then(serde_json::Value::as_str)
        {
            return Err(ProviderError::api(
                PROVIDER,
                format!("HTTP {}: {msg}", resp.status),
            ));
        }
        return Err(resp.status_error(PROVIDER));
    }
    let values = parse_csv(&resp.body)?;
    if values.is_empty() {
        return Err(ProviderError::api(
            PROVIDER,
            "no results returned from flux query",
        ));
    }
    Ok(ValueWithText {
        text: format!(
            "[{}]",
            values.iter().map(go_sprint).collect::<Vec<_>>().join(" ")
        ),
        value: expr::Value::Array(values),
    })
}

/// A configured Flux query.
pub struct InfluxdbProvider {
    spec: InfluxdbMetric,
    ctx: ProviderContext,
}

impl InfluxdbProvider {
    /// Checks the spec; the profile is read at measurement time.
    pub fn new(spec: &InfluxdbMetric, ctx: ProviderContext) -> Result<Self, ProviderError> {
        if spec.query.as_deref().is_none_or(|q| q.trim().is_empty()) {
            return Err(ProviderError::spec("influxdb query is empty"));
        }
        Ok(InfluxdbProvider {
            spec: spec.clone(),
            ctx,
        })
    }

    async fn measure(&self) -> Result<ValueWithText, ProviderError> {
        let name = self
            .spec
            .profile
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_PROFILE.into());
        let data = self
            .ctx
            .secrets
            .get(&self.ctx.controller_namespace, &name)
            .await?;
        let req = build_request(
            &profile(&data)?,
            self.spec.query.as_deref().unwrap_or_default(),
        )?;
        parse_response(&http::send(&req, TIMEOUT).await?)
    }
}

impl Provider for InfluxdbProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn deadline(&self) -> Duration {
        TIMEOUT + Duration::from_secs(15)
    }

    fn run<'a>(&'a self, _run: &'a AnalysisRun, metric: &'a Metric) -> BoxFuture<'a, Measurement> {
        Box::pin(async move {
            let started = super::started_now();
            conclude(started, metric, self.measure().await.map(|v| (v, None)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_TABLES: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string\r\n\
#group,false,false,true,true,false,false,true,true\r\n\
#default,_result,,,,,,,\r\n\
,result,table,_start,_stop,_time,_value,_field,_measurement\r\n\
,,0,2023-01-01T00:00:00Z,2023-01-01T00:15:00Z,2023-01-01T00:05:00Z,0.005,rate,errors\r\n\
,,0,2023-01-01T00:00:00Z,2023-01-01T00:15:00Z,2023-01-01T00:10:00Z,0.00001,rate,errors\r\n\
\r\n\
#datatype,string,long,long,string\r\n\
#group,false,false,false,true\r\n\
#default,_result,,,\r\n\
,result,table,_value,tag\r\n\
,,1,7,\"a,b\"\r\n\
\r\n";

    #[test]
    fn request() {
        let p = Profile {
            address: "http://influx:8086/".into(),
            token: "tok".into(),
            org: "my org".into(),
        };
        let r = build_request(&p, "from(bucket: \"b\") |> range(start: -15m)").unwrap();
        assert_eq!(r.url, "http://influx:8086/api/v2/query?org=my%20org");
        assert_eq!(r.header_value("authorization"), Some("Token tok"));
        let body: serde_json::Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["type"], "flux");
        assert_eq!(body["query"], "from(bucket: \"b\") |> range(start: -15m)");
        assert_eq!(
            body["dialect"]["annotations"],
            json!(["datatype", "group", "default"])
        );
        let missing = [("address", "http://x"), ("authToken", "t")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            profile(&missing).unwrap_err().to_string(),
            "authToken, org, or address not found"
        );
    }

    #[test]
    fn annotated_csv() {
        let v = parse_response(&Response {
            status: 200,
            body: TWO_TABLES.into(),
        })
        .unwrap();
        assert_eq!(v.text, "[0.005 1e-05 7]");
        assert_eq!(
            v.value,
            expr::Value::Array(vec![
                expr::Value::Float(0.005),
                expr::Value::Float(0.00001),
                expr::Value::Integer(7)
            ])
        );
        assert!(crate::analysis::condition::eval_condition(&v.value, "result[0] <= 0.01").unwrap());
        let e = parse_response(&Response {
            status: 200,
            body: "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,failed to execute query: bucket not found,897\r\n".into(),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "InfluxDB: flux query failed: failed to execute query: bucket not found"
        );
        let e = parse_response(&Response {
            status: 200,
            body: "\r\n".into(),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "InfluxDB: no results returned from flux query"
        );
        let e = parse_response(&Response {
            status: 401,
            body: r#"{"code":"unauthorized","message":"unauthorized access"}"#.into(),
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "InfluxDB: HTTP 401: unauthorized access");
        let e = parse_response(&Response {
            status: 503,
            body: "no".into(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("HTTP 503"));
    }
}
