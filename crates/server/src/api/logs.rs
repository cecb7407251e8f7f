//! Runtime logs of an application's instances (`hanzo logs APP`), read from the
//! engine: the last lines, lines since a time, optionally filtered by level,
//! or followed as they are written (a streamed text response).

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use hanzo_runtime::Selector;
use serde::Deserialize;

use super::ApiError;
use super::apps::resolve_app;
use super::extract::{ApiPath, ApiQuery};
use crate::auth::Principal;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LogParams {
    pub org: Option<String>,
    /// `30s`, `15m`, `1h`, `2d`: only lines written since then.
    pub since: Option<String>,
    /// At most this many lines per instance (default 200, at most 10000).
    pub tail: Option<u32>,
    /// Only lines mentioning this level or worse: `error`, `warn`, `info`, `debug`.
    pub level: Option<String>,
    /// Keep the response open and stream new lines.
    #[serde(default)]
    pub follow: bool,
}

/// `90s`, `15m`, `1h`, `2d` → seconds.
pub fn parse_since(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Does a line carry this level or a worse one? Matches words like `ERROR`,
/// `level=error`, `"level":"error"`.
pub fn matches_level(line: &str, level: &str) -> bool {
    let order = ["debug", "info", "warn", "error"];
    let Some(min) = order.iter().position(|l| *l == level) else {
        return true;
    };
    let lower = line.to_ascii_lowercase();
    order[min..].iter().any(|l| {
        lower.contains(&format!("level={l}"))
            || lower.contains(&format!("\"level\":\"{l}"))
            || lower.split(|c: char| !c.is_ascii_alphabetic()).any(|w| {
                w == *l || (*l == "warn" && w == "warning") || (*l == "error" && w == "fatal")
            })
    })
}

pub async fn logs(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogParams>,
) -> Result<Response, ApiError> {
    let app = resolve_app(&state, &p, &name, q.org.as_deref()).await?;
    let level = match q.level.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(l) if ["debug", "info", "warn", "error"].contains(&l.as_str()) => Some(l),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "level {other:?} is not known — use error, warn, info or debug"
            )));
        }
    };
    let since = match &q.since {
        None => 0,
        Some(s) => {
            let secs = parse_since(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "since {s:?} is not a duration — use e.g. 30s, 15m, 1h or 2d"
                ))
            })?;
            chrono::Utc::now()
                .timestamp()
                .saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX))
                .max(0)
        }
    };
    let tail = q.tail.unwrap_or(200).clamp(1, 10_000).to_string();
    let target = state
        .engine
        .target()
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let instances = state
        .target
        .list(&Selector {
            org: Some(app.org.clone()),
            app: Some(app.name.clone()),
            deployment_id: None,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let docker = target.client().clone();
    let mut streams = Vec::new();
    for inst in instances {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(i32::try_from(since).unwrap_or(0))
            .tail(&tail)
            .follow(q.follow)
            .build();
        let prefix = inst.name.clone();
        let level = level.clone();
        let s = docker
            .logs(&inst.id, Some(options))
            .filter_map(move |chunk| {
                let out = match chunk {
                    Ok(c) => {
                        let text = c.to_string();
                        let lines: String = text
                            .lines()
                            .filter(|l| level.as_deref().is_none_or(|lv| matches_level(l, lv)))
                            .map(|l| format!("{prefix} {l}\n"))
                            .collect();
                        (!lines.is_empty()).then_some(Ok::<_, std::io::Error>(lines))
                    }
                    Err(_) => None,
                };
                futures_util::future::ready(out)
            });
        streams.push(s.boxed());
    }
    if q.follow {
        let merged = futures_util::stream::select_all(streams);
        let body = Body::from_stream(merged);
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response());
    }
    // Not following: read what there is, within a deadline, and sort by time.
    let collect = async {
        let mut lines: Vec<String> = Vec::new();
        for s in streams {
            let chunks: Vec<Result<String, std::io::Error>> = s.collect().await;
            for c in chunks.into_iter().flatten() {
                lines.extend(c.lines().map(str::to_string));
            }
        }
        lines
    };
    let mut lines = tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .map_err(|_| {
            ApiError::unavailable(
                "the Docker Engine took more than 30 s to return the logs — try a smaller --tail",
            )
        })?;
    // "<instance> <timestamp> <text>": order by timestamp across instances.
    lines.sort_by(|a, b| a.split(' ').nth(1).cmp(&b.split(' ').nth(1)));
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_durations() {
        assert_eq!(parse_since("90s"), Some(90));
        assert_eq!(parse_since("15m"), Some(900));
        assert_eq!(parse_since("1h"), Some(3600));
        assert_eq!(parse_since("2d"), Some(172_800));
        assert_eq!(parse_since("1w"), None);
        assert_eq!(parse_since("h"), None);
        assert_eq!(parse_since("99999999999999999999h"), None);
    }

    #[test]
    fn levels() {
        assert!(matches_level("2026 ERROR boom", "error"));
        assert!(matches_level("{\"level\":\"error\",\"msg\":\"x\"}", "warn"));
        assert!(matches_level("level=warn disk", "warn"));
        assert!(!matches_level("level=info ready", "warn"));
        assert!(matches_level("WARNING: low memory", "warn"));
        assert!(!matches_level("all good", "error"));
    }
}
