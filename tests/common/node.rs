//! A server as a separate process (the built binary's `serve`), as a deployment runs it:
//! for tests that kill a node, signal it, or run several nodes on one database.

use super::SECRET;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_timebank-realtime");

/// How long a node may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Node {
    child: Option<Child>,
    /// What the node wrote to standard error so far (its logs), line by line; also echoed to
    /// the test's standard error.
    pub logs: Arc<Mutex<Vec<String>>>,
    pub port: u16,
    pub base: String,
    pub client: reqwest::Client,
}

impl Node {
    /// Starts `serve` on a free loopback port over `database_url`, with `env` on top of the
    /// test defaults; returns once it listens.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Node {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("CHAINHOOK_WEBHOOK_SECRET", SECRET)
            .env("HTTP_WORKERS", "2")
            .env("RUST_LOG", std::env::var("NODE_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the server binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        // The first lines say where it listens; the rest is drained so the pipe never fills.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            }
        });
        let base = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(base)) => base,
            _ => {
                let _ = child.kill();
                panic!("the node did not start listening: {:?}", child.wait());
            }
        };
        let port = base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in the address");
        Node { child: Some(child), logs, port, base, client: reqwest::Client::new() }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL: the process ends at once, nothing cleaned up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. "TERM", "INT") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {}", self.pid());
    }

    /// Waits for the process to exit; its status, or `None` if it still runs after `wait`.
    pub async fn wait_exit(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts a payload with the right token: the status and JSON body, or the transport
    /// error (the node is gone or closed the connection).
    pub async fn post_payload(&self, payload: &Value) -> Result<(u16, Value), reqwest::Error> {
        let res = self
            .client
            .post(format!("{}/api/webhooks/chainhook", self.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {SECRET}"))
            .body(payload.to_string())
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json::<Value>().await.unwrap_or(Value::Null)))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, String), reqwest::Error> {
        let res = self.client.get(format!("{}{}", self.base, path)).send().await?;
        let status = res.status().as_u16();
        Ok((status, res.text().await?))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
