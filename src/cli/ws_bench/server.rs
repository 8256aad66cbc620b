//! The servers `bench-ws` measures: child processes it starts on a fresh store, or running
//! ones given by `--url` (and `--subscribe-url`).

use super::{WsBenchArgs, SECRET};
use crate::cli::anyhow_like::Error;
use crate::cli::scratch::Scratch;
use std::net::SocketAddr;

pub(super) enum Server {
    Child { child: std::process::Child, base: String },
    Remote { base: String, secret: String, pid: Option<u32> },
}

impl Server {
    fn start(database_url: &str) -> std::result::Result<Server, Error> {
        Self::start_with(database_url, &[])
    }

    /// Starts a server with `env` set on top of this process's environment.
    pub(super) fn start_with(database_url: &str, env: &[(&str, String)]) -> std::result::Result<Server, Error> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("CHAINHOOK_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    return Err("the server exited before listening".into());
                }
            }
        };
        println!("server pid {} at {base}", child.id());
        Ok(Server::Child { child, base })
    }

    pub(super) fn base(&self) -> &str {
        match self {
            Server::Child { base, .. } | Server::Remote { base, .. } => base,
        }
    }

    pub(super) fn secret(&self) -> &str {
        match self {
            Server::Child { .. } => SECRET,
            Server::Remote { secret, .. } => secret,
        }
    }

    pub(super) fn addr(&self) -> std::result::Result<SocketAddr, Error> {
        let hostport = self.base().trim_start_matches("http://");
        Ok(hostport.parse()?)
    }

    /// Resident set size of the server process in KiB.
    pub(super) fn rss_kib(&self) -> Option<u64> {
        server_rss_fn(self)()
    }

    pub(super) fn stop(self) {
        if let Server::Child { mut child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where the bench posts webhooks and where its subscribers connect: one server, or two
/// nodes of one cluster (PostgreSQL), so that every delivery crosses from the node that
/// committed the entry to the node that serves the subscriber.
pub(super) struct Nodes {
    webhook: Server,
    /// Another node of the same store; `None`: subscribers connect to `webhook`'s.
    subscribers: Option<Server>,
    scratch: Option<Scratch>,
}

impl Nodes {
    pub(super) async fn start(args: &WsBenchArgs) -> std::result::Result<Nodes, Error> {
        if let Some(url) = &args.url {
            let secret = args.secret.clone().ok_or("--url needs --secret (or CHAINHOOK_WEBHOOK_SECRET)")?;
            let subscribers = args
                .subscribe_url
                .as_ref()
                .map(|s| Server::Remote { base: s.trim_end_matches('/').to_string(), secret: String::new(), pid: args.server_pid });
            let pid = if subscribers.is_some() { None } else { args.server_pid };
            let webhook = Server::Remote { base: url.trim_end_matches('/').to_string(), secret, pid };
            return Ok(Nodes { webhook, subscribers, scratch: None });
        }
        if args.subscribe_url.is_some() {
            return Err("--subscribe-url needs --url (the node that takes the webhooks)".into());
        }
        let scratch = Scratch::create(args.database_url.as_deref()).await?;
        if args.nodes == 2 && scratch.backend() != "postgres" {
            scratch.remove().await;
            return Err("--nodes 2 needs a PostgreSQL --database-url (nodes follow each other through LISTEN/NOTIFY)".into());
        }
        let started = Server::start(&scratch.url).and_then(|webhook| match args.nodes {
            1 => Ok((webhook, None)),
            2 => match Server::start(&scratch.url) {
                Ok(second) => Ok((webhook, Some(second))),
                Err(e) => {
                    webhook.stop();
                    Err(e)
                }
            },
            n => {
                webhook.stop();
                Err(format!("--nodes {n}: 1 or 2").into())
            }
        });
        match started {
            Ok((webhook, subscribers)) => {
                if let Some(s) = &subscribers {
                    println!("cluster of two nodes: webhooks to {}, subscribers on {}", webhook.base(), s.base());
                }
                Ok(Nodes { webhook, subscribers, scratch: Some(scratch) })
            }
            Err(e) => {
                scratch.remove().await;
                Err(e)
            }
        }
    }

    /// The node the webhooks go to.
    pub(super) fn webhook(&self) -> &Server {
        &self.webhook
    }

    /// The node the subscribers connect to (its RSS is the one reported).
    pub(super) fn subscribers(&self) -> &Server {
        self.subscribers.as_ref().unwrap_or(&self.webhook)
    }

    pub(super) async fn stop(self) {
        self.webhook.stop();
        if let Some(s) = self.subscribers {
            s.stop();
        }
        if let Some(scratch) = self.scratch {
            scratch.remove().await;
        }
    }
}

/// Raises the soft open-files limit to the hard one; returns the soft limit now in force.
pub(super) fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// A closure reading the server's RSS that owns nothing borrowed.
pub(super) fn server_rss_fn(server: &Server) -> impl Fn() -> Option<u64> + Send + 'static {
    let pid = match server {
        Server::Child { child, .. } => Some(child.id()),
        Server::Remote { pid, .. } => *pid,
    };
    move || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
        status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
    }
}
