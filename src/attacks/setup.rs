//! The target's setup requests (a login, the creation of a room) run before a case connects:
//! the cookies they set fill the case's cookie jar, and the values they extract fill
//! `{{setup.NAME}}` (both kept in [`SetupState`]).

use url::Url;

use super::runtime::TargetRuntime;
use super::setup_state::SetupState;
use super::values::Values;
use crate::client::{HttpRequestSpec, HttpResponse};
use crate::report::CaseLog;

/// Runs the target's setup requests in order; each may use what the ones before it
/// extracted. A non-2xx answer, a value missing from a response or an unreachable endpoint
/// fails the setup with the reason.
pub async fn run(rt: &TargetRuntime, log: &CaseLog) -> Result<SetupState, String> {
    let mut state = SetupState::default();
    for (i, step) in rt.target.setup.iter().enumerate() {
        let values = Values {
            setup: Some(&state),
            credential: rt.credential_ref(),
            ..Values::default()
        };
        let render = |t: &str| values.render(t).map_err(|e| format!("setup[{i}]: {e}"));
        let url = render(&crate::config::target::url_template(
            step.request.url.0.as_str(),
        ))?;
        let mut spec = HttpRequestSpec::new(step.request.method.as_str(), &url);
        for (name, value) in &step.request.headers {
            spec = spec.header(name, &render(value)?);
        }
        if let Some(body) = &step.request.body {
            spec = spec.body(&render(body)?);
        }
        let parsed = Url::parse(&url).map_err(|e| format!("setup[{i}]: invalid URL: {e}"))?;
        let jar_cookies = state.cookies_for(&parsed);
        if !jar_cookies.is_empty() {
            let header: Vec<String> = jar_cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            spec = spec.header("Cookie", &header.join("; "));
        }
        let (response, _) = rt.send_logged(spec, &format!("setup[{i}]: "), log).await?;
        if !(200..300).contains(&response.status) {
            return Err(format!(
                "setup[{i}] was answered HTTP {}: expected a 2xx status",
                response.status
            ));
        }
        let set_cookie: Vec<&str> = response
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        state.store(&response.url, &set_cookie);
        let mut all = state
            .cookies_response
            .take()
            .map(|r| r.set_cookies)
            .unwrap_or_default();
        all.extend(response.set_cookies.iter().cloned());
        state.cookies_response = Some(HttpResponse {
            set_cookies: all,
            ..response.clone()
        });
        for (name, ex) in &step.extract {
            let value = if let Some(p) = &ex.json {
                let json: serde_json::Value =
                    serde_json::from_slice(&response.body).map_err(|e| {
                        format!("setup[{i}].extract.{name}: the body is not JSON ({e})")
                    })?;
                match json.pointer(p.as_str()) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(serde_json::Value::Bool(b)) => b.to_string(),
                    _ => {
                        return Err(format!(
                            "setup[{i}].extract.{name}: no string or number at {p}"
                        ));
                    }
                }
            } else if let Some(h) = &ex.header {
                response
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(h))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("setup[{i}].extract.{name}: no {h} header"))?
            } else if let Some(c) = &ex.cookie {
                response
                    .set_cookies
                    .iter()
                    .find(|sc| &sc.name == c)
                    .map(|sc| sc.value().to_string())
                    .ok_or_else(|| format!("setup[{i}].extract.{name}: no cookie {c} was set"))?
            } else {
                continue;
            };
            if ex.secret {
                rt.register_secret(&value);
            }
            state.values.insert(name.clone(), value);
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-route HTTP server answering every request with `body`, recording request lines.
    async fn recording_server(
        body: &'static str,
    ) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf);
                if let Some(line) = text.lines().next() {
                    record.lock().expect("lock").push(line.to_string());
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn a_setup_value_fills_the_url_path_of_a_later_setup_request() {
        crate::crypto::install_crypto_provider();
        let (port, seen) = recording_server(r#"{"id":"r42"}"#).await;
        let yaml = format!(
            "target: t\nurl: ws://127.0.0.1:{port}/rooms/{{{{setup.room}}}}/ws\nsetup:\n  - request: {{ method: POST, url: 'http://127.0.0.1:{port}/rooms' }}\n    extract: {{ room: {{ json: /id, secret: false }} }}\n  - request: {{ method: POST, url: 'http://127.0.0.1:{port}/rooms/{{{{setup.room}}}}/join?r={{{{setup.room}}}}' }}\n"
        );
        let target = crate::config::target::LoadedTarget::parse(
            crate::config::SourceFile::from_text("t.yaml", yaml),
            &|_| None,
        )
        .expect("target");
        let rt = TargetRuntime::new(&target).expect("runtime");
        let state = run(&rt, &CaseLog::default()).await.expect("setup runs");
        assert_eq!(state.value("room"), Some("r42"));
        let lines = seen.lock().expect("lock").clone();
        assert_eq!(
            lines,
            vec![
                "POST /rooms HTTP/1.1".to_string(),
                "POST /rooms/r42/join?r=r42 HTTP/1.1".to_string()
            ]
        );
    }
}
