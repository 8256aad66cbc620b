//! The server `bench-ws` measures: a child process it starts, or one given by `--url`.

use super::SECRET;
use crate::cli::anyhow_like::Error;
use std::net::SocketAddr;

pub(super) enum Server {
    Child { child: std::process::Child, base: String, dir: std::path::PathBuf },
    Remote { base: String, secret: String, pid: Option<u32> },
}

impl Server {
    pub(super) fn start(database_url: Option<String>) -> std::result::Result<Server, Error> {
        Self::start_with(database_url, &[])
    }

    /// Starts the server with `env` set on top of this process's environment.
    pub(super) fn start_with(database_url: Option<String>, env: &[(&str, String)]) -> std::result::Result<Server, Error> {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("timebank-bench-ws-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let db = database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", db)
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
        Ok(Server::Child { child, base, dir })
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
        if let Server::Child { mut child, dir, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
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

