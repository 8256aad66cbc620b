//! A minimal HTTP/1.1 client for `bench --http`: one keep-alive connection per payload in
//! flight, writing requests by hand. The server's own dependencies carry no HTTP client,
//! and this is all the benchmark needs (every answer of the webhook has a Content-Length).

use crate::cli::anyhow_like::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// POSTs every body to the webhook over `connections` connections; returns the sum of the
/// answers' `events`. Any status but 200 ends the run with an error.
pub(super) async fn post_all(
    addr: SocketAddr,
    secret: &str,
    bodies: &[String],
    connections: usize,
) -> Result<u64, Error> {
    let next = AtomicUsize::new(0);
    let workers = (0..connections.clamp(1, bodies.len().max(1))).map(|_| connection(addr, secret, bodies, &next));
    let counts = futures_util::future::try_join_all(workers).await?;
    Ok(counts.into_iter().sum())
}

async fn connection(addr: SocketAddr, secret: &str, bodies: &[String], next: &AtomicUsize) -> Result<u64, Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut events = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(i) else { return Ok(events) };
        let head = format!(
            "POST /api/webhooks/chainhook HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {secret}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let (status, reply) = read_response(&mut stream, &mut buf).await?;
        if status != 200 {
            return Err(format!("payload {}: HTTP {status}: {}", i + 1, String::from_utf8_lossy(&reply)).into());
        }
        let report: serde_json::Value = serde_json::from_slice(&reply)?;
        events += report["events"].as_u64().ok_or("answer without events")?;
    }
}

/// Reads one response; bytes past it stay in `buf` for the next.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, Vec<u8>), Error> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or("malformed status line")?;
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .ok_or("answer without Content-Length")?;
            let total = end + 4 + length;
            while buf.len() < total {
                read_more(stream, buf).await?;
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Ok((status, body));
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), Error> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err("server closed the connection".into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}
