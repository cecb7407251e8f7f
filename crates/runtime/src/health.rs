//! Health checks: HTTP (2xx), TCP connect, `exec` inside the instance, and a
//! poller that repeats a check until it passes or a deadline passes.
//!
//! Every check runs from the host, against the instance's address on its
//! organisation's network, and reports *why* it failed as a sentence that can
//! be shown to the user unchanged.

use crate::docker::DockerTarget;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

fn http_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let client = reqwest::Client::builder()
        // Instances are on private addresses: a configured HTTP proxy would
        // neither reach them nor should it see the traffic.
        .no_proxy()
        // A fresh connection per check: a pooled one could hide a dead listener.
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("hanzo-health/1")
        .build()
        .map_err(|e| format!("cannot build the HTTP client for health checks: {e}"))?;
    Ok(CLIENT.get_or_init(|| client))
}

/// `GET http://addr:port<path>`; a 2xx status is healthy and returned, anything
/// else is an error naming the status or the connection failure.
pub async fn http_check(
    addr: IpAddr,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<u16, String> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = format!("http://{}{}", SocketAddr::new(addr, port), path);
    let client = http_client()?;
    let response = match client.get(&url).timeout(timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(format!("GET {url} gave no answer within {timeout:?}"));
        }
        Err(e) if e.is_connect() => {
            return Err(format!("GET {url}: connection failed ({})", root_cause(&e)));
        }
        Err(e) => return Err(format!("GET {url} failed: {}", root_cause(&e))),
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(status)
    } else {
        Err(format!("GET {url} answered HTTP {status}, expected 2xx"))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Opens (and closes) a TCP connection to `addr:port`.
pub async fn tcp_check(addr: IpAddr, port: u16, timeout: Duration) -> Result<(), String> {
    let target = SocketAddr::new(addr, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(format!("TCP connect to {target} failed: {e}")),
        Err(_) => Err(format!(
            "TCP connect to {target} gave no answer within {timeout:?}"
        )),
    }
}

/// Runs `cmd` inside the instance (`docker exec`); exit code 0 is healthy.
/// A failure names the exit code and the command's last output.
pub async fn exec_check(
    target: &DockerTarget,
    id: &str,
    cmd: &[String],
    timeout: Duration,
) -> Result<(), String> {
    if cmd.is_empty() {
        return Err(
            "the exec health check has no command; set healthcheck.exec in hanzo.yaml".into(),
        );
    }
    let docker = target.client();
    let run = async {
        let exec = docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("cannot run the check in {id}: {e}"))?;
        let started = docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| format!("cannot start the check in {id}: {e}"))?;
        let mut output = String::new();
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = started
        {
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => output.push_str(&c.to_string()),
                    Err(e) => return Err(format!("lost the output of the check in {id}: {e}")),
                }
            }
        }
        // The exit code is set once the output stream has ended; it may lag a little.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let inspected = docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| format!("cannot read the check's exit code: {e}"))?;
            if inspected.running != Some(true) {
                return match inspected.exit_code {
                    Some(0) => Ok(()),
                    Some(code) => Err(format!(
                        "`{}` exited with code {code}{}",
                        cmd.join(" "),
                        tail_of(&output)
                            .map(|t| format!(": {t}"))
                            .unwrap_or_default()
                    )),
                    None => Err(format!("`{}` ended without an exit code", cmd.join(" "))),
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "`{}` still runs after its output closed",
                    cmd.join(" ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "`{}` did not finish within {timeout:?}",
            cmd.join(" ")
        )),
    }
}

fn tail_of(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    let start = lines.len().saturating_sub(5);
    Some(lines[start..].join(" | "))
}

/// Repeats `check` every `interval` until it succeeds or `deadline` (measured
/// from the call) has passed; the error is the last failure reason with the
/// number of attempts. The check always runs at least once.
pub async fn wait_healthy<F, Fut, T>(
    check: F,
    interval: Duration,
    deadline: Duration,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let end = started + deadline;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt_started = Instant::now();
        let last = match check().await {
            Ok(_) => return Ok(()),
            Err(reason) => reason,
        };
        let now = Instant::now();
        if now >= end {
            return Err(format!(
                "not healthy after {:.1} s ({attempts} attempt{}): {last}",
                (now - started).as_secs_f64(),
                if attempts == 1 { "" } else { "s" }
            ));
        }
        // Keep a steady cadence, but never sleep past the deadline.
        let next = (attempt_started + interval).max(now).min(end);
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn serve(status_line: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let body = "ok";
                    let resp = format!(
                        "HTTP/1.1 {status_line}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        port
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn http_check_accepts_2xx_only() {
        let ok = serve("204 No Content").await;
        assert_eq!(
            http_check(LOCAL, ok, "/health", Duration::from_secs(2)).await,
            Ok(204)
        );
        let bad = serve("503 Service Unavailable").await;
        let err = http_check(LOCAL, bad, "health", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(err.contains("HTTP 503") && err.contains("/health"), "{err}");
        let closed = free_port();
        let err = http_check(LOCAL, closed, "/", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(err.contains("connection failed"), "{err}");
    }

    #[tokio::test]
    async fn http_check_times_out_on_a_silent_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let err = http_check(LOCAL, port, "/", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.contains("no answer"), "{err}");
    }

    #[tokio::test]
    async fn tcp_check_connects_or_explains() {
        let port = serve("200 OK").await;
        assert_eq!(tcp_check(LOCAL, port, Duration::from_secs(1)).await, Ok(()));
        let err = tcp_check(LOCAL, free_port(), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.contains("TCP connect"), "{err}");
    }

    #[tokio::test]
    async fn wait_healthy_polls_until_success() {
        let calls = AtomicU32::new(0);
        let r = wait_healthy(
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n >= 3 {
                        Ok(())
                    } else {
                        Err(format!("attempt {n} failed"))
                    }
                }
            },
            Duration::from_millis(10),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn wait_healthy_reports_the_last_reason_at_the_deadline() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r = wait_healthy(
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { Err::<(), _>(format!("attempt {n} failed")) }
            },
            Duration::from_millis(20),
            Duration::from_millis(150),
        )
        .await;
        let err = r.unwrap_err();
        let n = calls.load(Ordering::SeqCst);
        assert!(err.contains(&format!("attempt {} failed", n - 1)), "{err}");
        assert!(err.contains(&format!("{n} attempts")), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
