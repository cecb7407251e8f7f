//! Extractors that turn every malformed request into a 4xx [`ApiError`] with
//! one sentence naming the cause and the fix (axum's own rejections answer in
//! plain text), and the client's address and user agent for the audit log.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// The longest user agent kept in the audit log.
const MAX_USER_AGENT: usize = 512;

/// A JSON request body. Refuses a missing or non-JSON content type (415),
/// malformed JSON (400), JSON of the wrong shape (422) and strings holding a
/// NUL character (400, PostgreSQL cannot store them).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// Like [`ApiJson`], but an empty body (with or without a content type) is `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON ({e}) — send a JSON object"
        ))
    })?;
    if has_nul(&value) {
        return Err(nul_error());
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the request body does not have the expected fields ({e}) — see /api/v1/openapi.json"
            ),
        )
    })
}

fn nul_error() -> ApiError {
    ApiError::bad_request("the request contains a NUL character — remove it")
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        ApiError::new(
            e.status(),
            format!("the request body could not be read ({e}) — send at most 2 MiB of JSON"),
        )
    })
}

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the request body must be JSON — send it with `Content-Type: application/json`",
    )
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(unsupported());
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(unsupported());
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Query parameters; a malformed query string answers 400.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!(
                    "the query string is not valid ({}) — see /api/v1/openapi.json for the parameters",
                    e.body_text()
                ))
            })
    }
}

/// Path parameters; one that cannot be decoded answers 400.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::bad_request(format!(
                    "a path parameter is not valid ({}) — check the URL",
                    e.body_text()
                ))
            })
    }
}

/// Rejects `%00` anywhere in the path or query before routing: NUL cannot be
/// stored in PostgreSQL text and is never part of a valid name.
pub async fn refuse_nul(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let raw = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    if raw.to_ascii_lowercase().contains("%00") {
        return nul_error().into_response();
    }
    next.run(req).await
}

/// Who is on the other end, as the audit log records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The peer's address; when the peer is on this machine (a local proxy such
    /// as Traefik), the last address of `X-Forwarded-For` it appended.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn from_parts(headers: &HeaderMap, peer: Option<IpAddr>) -> ClientInfo {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        let ip = match (peer, forwarded) {
            (Some(p), Some(f)) if p.is_loopback() => Some(f),
            (Some(p), _) => Some(p),
            (None, f) => f,
        };
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                let mut end = ua.len().min(MAX_USER_AGENT);
                while !ua.is_char_boundary(end) {
                    end -= 1;
                }
                ua[..end].replace('\0', "")
            });
        ClientInfo {
            ip: ip.map(|i| i.to_string()),
            user_agent,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientInfo::from_parts(&parts.headers, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_this_machine() {
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]);
        let local = ClientInfo::from_parts(&h, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(local.ip.as_deref(), Some("203.0.113.7"));
        let remote = ClientInfo::from_parts(&h, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(remote.ip.as_deref(), Some("192.0.2.9"));
        let junk = headers(&[("x-forwarded-for", "not an address")]);
        let local = ClientInfo::from_parts(&junk, Some("::1".parse().unwrap()));
        assert_eq!(local.ip.as_deref(), Some("::1"));
    }

    #[test]
    fn user_agents_are_bounded() {
        let long = "a".repeat(2000);
        let h = headers(&[("user-agent", &long)]);
        let c = ClientInfo::from_parts(&h, None);
        assert_eq!(c.user_agent.map(|u| u.len()), Some(MAX_USER_AGENT));
    }

    #[test]
    fn json_bodies_are_checked() {
        #[derive(serde::Deserialize, Debug)]
        struct B {
            #[allow(dead_code)]
            n: u32,
        }
        assert_eq!(
            parse_json::<B>(b"{").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_json::<B>(br#"{"n": 99999999999999999999}"#)
                .unwrap_err()
                .status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            parse_json::<Value>(br#"{"a": ["x\u0000"]}"#)
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        assert!(parse_json::<B>(br#"{"n": 3}"#).is_ok());
    }
}
