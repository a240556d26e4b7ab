//! AWS plumbing for the CloudWatch provider: the region, endpoints, credentials from the
//! standard chain, and SigV4 signing (the `aws-sigv4` crate; no SDK).
//!
//! - Region: `AWS_REGION`, else `AWS_DEFAULT_REGION` (required, as upstream documents).
//! - Endpoints: `AWS_ENDPOINT_URL_<SERVICE>` (`AWS_ENDPOINT_URL_CLOUDWATCH`,
//!   `AWS_ENDPOINT_URL_STS`), else `AWS_ENDPOINT_URL`, else the regional endpoint — the SDKs'
//!   own settings, so a VPC endpoint or a proxy works as it does with any AWS tool.
//! - Credentials, in the SDKs' order (the parts of it that apply in a pod):
//!   1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`);
//!   2. web identity (EKS IAM roles for service accounts): `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!      `AWS_ROLE_ARN` (`AWS_ROLE_SESSION_NAME`): STS `AssumeRoleWithWebIdentity`, an unsigned
//!      HTTPS call;
//!   3. container credentials (EKS Pod Identity, ECS): `AWS_CONTAINER_CREDENTIALS_FULL_URI` or
//!      `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`
//!      or `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
//!
//!   Temporary credentials are kept in a [`CredentialCache`] until 5 minutes before they
//!   expire. Not built: the shared `~/.aws` files and the instance metadata service (an error
//!   says which variables to set).

use super::http::{self, Request, Response};
use super::{ProviderError, Vars};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const TIMEOUT: Duration = Duration::from_secs(10);
const REFRESH_BEFORE: SignedDuration = SignedDuration::from_secs(300);

/// AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When temporary credentials expire.
    pub expires: Option<Timestamp>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Temporary credentials, kept across measurements until shortly before they expire.
#[derive(Default)]
pub struct CredentialCache {
    /// (the source they came from, the credentials).
    cached: Mutex<Option<(String, AwsCredentials)>>,
}

impl CredentialCache {
    fn get(&self, source: &str, now: Timestamp) -> Option<AwsCredentials> {
        let guard = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let (s, c) = guard.as_ref()?;
        let fresh = c
            .expires
            .is_none_or(|e| e.checked_sub(REFRESH_BEFORE).is_ok_and(|t| t > now));
        (s == source && fresh).then(|| c.clone())
    }

    fn put(&self, source: &str, c: &AwsCredentials) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((source.into(), c.clone()));
    }
}

/// The region.
pub fn region(vars: &Vars) -> Result<String, ProviderError> {
    vars.non_empty("AWS_REGION")
        .or_else(|| vars.non_empty("AWS_DEFAULT_REGION"))
        .ok_or_else(|| {
            ProviderError::Credentials(
                "the AWS region is not set: set AWS_REGION in the controller's environment".into(),
            )
        })
}

/// The endpoint of `service` (`CLOUDWATCH`, `STS`), else `default`.
pub fn endpoint(vars: &Vars, service: &str, default: String) -> String {
    vars.non_empty(&format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|| vars.non_empty("AWS_ENDPOINT_URL"))
        .unwrap_or(default)
}

/// The regional endpoint of `prefix` (`monitoring`, `sts`).
pub fn regional(prefix: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{prefix}.{region}.{domain}")
}

/// The text of the first element named `name` in `doc`.
pub fn xml_text<'a>(doc: &'a roxmltree::Document<'_>, name: &str) -> Option<&'a str> {
    doc.descendants()
        .find(|n| n.has_tag_name(name))
        .and_then(|n| n.text())
}

/// An AWS query-protocol error answer (`<ErrorResponse><Error><Code>..<Message>..`) as an
/// error, else a plain status error.
pub fn query_error(provider: &'static str, resp: &Response) -> ProviderError {
    if let Ok(doc) = roxmltree::Document::parse(&resp.body)
        && let Some(code) = xml_text(&doc, "Code")
    {
        let msg = xml_text(&doc, "Message").unwrap_or_default();
        return ProviderError::api(
            provider,
            format!("HTTP {}: {code}: {}", resp.status, msg.trim()),
        );
    }
    resp.status_error(provider)
}

/// The STS `AssumeRoleWithWebIdentity` request (unsigned: the token is the credential).
pub fn assume_role_request(sts: &str, role_arn: &str, session: &str, token: &str) -> Request {
    let body = http::query_string([
        ("Action", "AssumeRoleWithWebIdentity"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session),
        ("Version", "2011-06-15"),
        ("WebIdentityToken", token),
    ]);
    Request::post(
        format!("{}/", sts.trim_end_matches('/')),
        "application/x-www-form-urlencoded; charset=utf-8",
        body.into_bytes(),
    )
}

/// Parses STS's answer.
pub fn parse_assume_role(resp: &Response) -> Result<AwsCredentials, ProviderError> {
    if !resp.ok() {
        return Err(query_error("STS", resp));
    }
    let doc = roxmltree::Document::parse(&resp.body).map_err(|e| ProviderError::parse("STS", e))?;
    let creds = doc
        .descendants()
        .find(|n| n.has_tag_name("Credentials"))
        .ok_or_else(|| ProviderError::parse("STS", "no Credentials in the answer"))?;
    let field = |name: &str| {
        creds
            .children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
    };
    let expires = field("Expiration").and_then(|e| e.parse::<Timestamp>().ok());
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")
            .ok_or_else(|| ProviderError::parse("STS", "no AccessKeyId"))?,
        secret_access_key: field("SecretAccessKey")
            .ok_or_else(|| ProviderError::parse("STS", "no SecretAccessKey"))?,
        session_token: field("SessionToken"),
        expires,
    })
}

/// Parses a container credentials endpoint's JSON answer.
pub fn parse_container(resp: &Response) -> Result<AwsCredentials, ProviderError> {
    if !resp.ok() {
        return Err(resp.status_error("container credentials endpoint"));
    }
    let v: serde_json::Value = serde_json::from_str(&resp.body)
        .map_err(|e| ProviderError::parse("container credentials endpoint", e))?;
    let s = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    Ok(AwsCredentials {
        access_key_id: s("AccessKeyId").ok_or_else(|| {
            ProviderError::parse("container credentials endpoint", "no AccessKeyId")
        })?,
        secret_access_key: s("SecretAccessKey").ok_or_else(|| {
            ProviderError::parse("container credentials endpoint", "no SecretAccessKey")
        })?,
        session_token: s("Token"),
        expires: s("Expiration").and_then(|e| e.parse().ok()),
    })
}

fn read_file(var: &str, path: &str) -> Result<String, ProviderError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| ProviderError::Credentials(format!("reading {var} {path:?}: {e}")))
}

/// Credentials from the chain (see the module docs).
pub async fn credentials(
    vars: &Vars,
    cache: &CredentialCache,
    region: &str,
) -> Result<AwsCredentials, ProviderError> {
    let access = vars
        .non_empty("AWS_ACCESS_KEY_ID")
        .or_else(|| vars.non_empty("AWS_ACCESS_KEY"));
    let secret = vars
        .non_empty("AWS_SECRET_ACCESS_KEY")
        .or_else(|| vars.non_empty("AWS_SECRET_KEY"));
    if let (Some(access_key_id), Some(secret_access_key)) = (access, secret) {
        return Ok(AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: vars.non_empty("AWS_SESSION_TOKEN"),
            expires: None,
        });
    }
    let now = Timestamp::now();
    if let (Some(file), Some(role)) = (
        vars.non_empty("AWS_WEB_IDENTITY_TOKEN_FILE"),
        vars.non_empty("AWS_ROLE_ARN"),
    ) {
        let source = format!("web-identity {role} {file}");
        if let Some(c) = cache.get(&source, now) {
            return Ok(c);
        }
        let token = read_file("AWS_WEB_IDENTITY_TOKEN_FILE", &file)?;
        let session = vars
            .non_empty("AWS_ROLE_SESSION_NAME")
            .unwrap_or_else(|| format!("rollouts-controller-{}", now.as_second()));
        let sts = endpoint(vars, "STS", regional("sts", region));
        let req = assume_role_request(&sts, &role, &session, &token);
        let c = parse_assume_role(&http::send(&req, TIMEOUT).await?)?;
        cache.put(&source, &c);
        return Ok(c);
    }
    let container_uri = vars
        .non_empty("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .or_else(|| {
            vars.non_empty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .map(|rel| format!("http://169.254.170.2{rel}"))
        });
    if let Some(uri) = container_uri {
        let source = format!("container {uri}");
        if let Some(c) = cache.get(&source, now) {
            return Ok(c);
        }
        let mut req = Request::get(uri).header("Accept", "application/json");
        let token = match vars.non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(f) => Some(read_file("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &f)?),
            None => vars.non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        };
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let c = parse_container(&http::send(&req, TIMEOUT).await?)?;
        cache.put(&source, &c);
        return Ok(c);
    }
    Err(ProviderError::Credentials(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
         AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (IAM roles for service accounts), or \
         AWS_CONTAINER_CREDENTIALS_FULL_URI (Pod Identity); the shared ~/.aws files and the \
         instance metadata service are not supported"
            .into(),
    ))
}

/// Signs `req` with SigV4 for `service` in `region` at `time`: adds `X-Amz-Date`,
/// `Authorization` (and `X-Amz-Security-Token` for temporary credentials).
pub fn sign(
    req: &mut Request,
    c: &AwsCredentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), ProviderError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let fail =
        |e: &dyn std::fmt::Display| ProviderError::Credentials(format!("SigV4 signing: {e}"));
    let identity = aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.clone(),
        c.session_token.clone(),
        c.expires.and_then(|e| {
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(
                u64::try_from(e.as_second()).unwrap_or(0),
            ))
        }),
        "rollouts",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let host = reqwest::Url::parse(&req.url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .ok_or_else(|| ProviderError::spec(format!("{:?} is not a URL", req.url)))?;
    if req.header_value("host").is_none() {
        req.headers.push(("Host".into(), host));
    }
    let body = req.body.clone().unwrap_or_default();
    let signable = SignableRequest::new(
        req.method.as_str(),
        req.url.as_str(),
        req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
    let (headers, _params) = instructions.into_parts();
    for h in headers {
        req.headers
            .push((h.name().to_string(), h.value().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_and_endpoints() {
        let v = Vars::fixed([("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(region(&v).unwrap(), "eu-west-1");
        let v = Vars::fixed([("AWS_REGION", "us-east-2"), ("AWS_DEFAULT_REGION", "x")]);
        assert_eq!(region(&v).unwrap(), "us-east-2");
        assert!(region(&Vars::fixed(Vec::<(String, String)>::new())).is_err());
        let v = Vars::fixed([
            ("AWS_ENDPOINT_URL", "http://all"),
            ("AWS_ENDPOINT_URL_STS", "http://sts"),
        ]);
        assert_eq!(endpoint(&v, "STS", "d".into()), "http://sts");
        assert_eq!(endpoint(&v, "CLOUDWATCH", "d".into()), "http://all");
        assert_eq!(
            endpoint(
                &Vars::fixed(Vec::<(String, String)>::new()),
                "STS",
                "d".into()
            ),
            "d"
        );
    }

    #[test]
    fn assume_role() {
        let r = assume_role_request(
            "https://sts.us-east-1.amazonaws.com",
            "arn:aws:iam::1:role/r",
            "s",
            "tok.en",
        );
        assert_eq!(r.url, "https://sts.us-east-1.amazonaws.com/");
        assert_eq!(
            String::from_utf8(r.body.clone().unwrap()).unwrap(),
            "Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=s&Version=2011-06-15&WebIdentityToken=tok.en"
        );
        let ok = Response {
            status: 200,
            body: r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>FQoGZ</SessionToken>
      <SecretAccessKey>wJalr</SecretAccessKey>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIA1</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#
                .into(),
        };
        let c = parse_assume_role(&ok).unwrap();
        assert_eq!(c.access_key_id, "ASIA1");
        assert_eq!(c.session_token.as_deref(), Some("FQoGZ"));
        assert_eq!(c.expires, Some("2030-01-01T00:00:00Z".parse().unwrap()));
        let denied = Response {
            status: 403,
            body: r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>"#.into(),
        };
        assert_eq!(
            parse_assume_role(&denied).unwrap_err().to_string(),
            "STS: HTTP 403: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity"
        );
    }

    #[test]
    fn cache_refreshes_before_expiry() {
        let cache = CredentialCache::default();
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let c = AwsCredentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
            expires: Some("2030-01-01T00:10:00Z".parse().unwrap()),
        };
        cache.put("src", &c);
        assert_eq!(cache.get("src", now), Some(c.clone()));
        assert_eq!(cache.get("other", now), None);
        let late: Timestamp = "2030-01-01T00:06:00Z".parse().unwrap();
        assert_eq!(cache.get("src", late), None);
    }

    #[test]
    fn signs_the_aws_test_suite_vanilla_get() {
        // aws-sig-v4-test-suite "get-vanilla".
        let mut r = Request::get("https://example.amazonaws.com/");
        let c = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires: None,
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        sign(&mut r, &c, "us-east-1", "service", t).unwrap();
        assert_eq!(
            r.header_value("authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn signs_with_sigv4() {
        let mut r = Request::post(
            "https://monitoring.us-east-1.amazonaws.com/",
            "application/x-www-form-urlencoded; charset=utf-8",
            b"Action=GetMetricData&Version=2010-08-01".to_vec(),
        );
        let c = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("tok".into()),
            expires: None,
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        sign(&mut r, &c, "us-east-1", "monitoring", t).unwrap();
        assert_eq!(r.header_value("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(r.header_value("x-amz-security-token"), Some("tok"));
        assert_eq!(
            r.header_value("host"),
            Some("monitoring.us-east-1.amazonaws.com")
        );
        let auth = r.header_value("authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/monitoring/aws4_request, SignedHeaders="
            ),
            "{auth}"
        );
        // Deterministic: the same request at the same time signs the same.
        let mut again = Request::post(
            "https://monitoring.us-east-1.amazonaws.com/",
            "application/x-www-form-urlencoded; charset=utf-8",
            b"Action=GetMetricData&Version=2010-08-01".to_vec(),
        );
        sign(&mut again, &c, "us-east-1", "monitoring", t).unwrap();
        assert_eq!(again.header_value("authorization"), Some(auth));
    }
}
