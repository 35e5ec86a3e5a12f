//! `x402-gateway healthcheck`: one `GET /healthz` to a running gateway, for container
//! healthchecks (the runtime image has no curl). Plain HTTP/1.1 over a std TCP stream: no
//! runtime, no config, every step under the timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use url::Url;

/// What the probe asks for when no `--url` is given: `/healthz` on the listen address, with an
/// unspecified address (`0.0.0.0`, `::`) replaced by loopback.
pub fn default_url(listen: Option<SocketAddr>) -> Url {
    let mut addr = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Url::parse(&format!("http://{addr}/healthz")).expect("a socket address makes a URL")
}

/// `Ok` when `url` answers 200 within `timeout` per step (connect, write, read); otherwise
/// why not, on one line.
pub fn probe(url: &Url, timeout: Duration) -> Result<(), String> {
    if url.scheme() != "http" {
        return Err(format!(
            "{url}: only http:// is probed (the gateway behind TLS is local)"
        ));
    }
    let host = url.host_str().ok_or_else(|| format!("{url}: no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{addr}: {e}"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n",
        url.path()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write to {addr}: {e}"))?;
    // The status line is all we need; it fits in the first few bytes.
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    let line = line.lines().next().unwrap_or("").trim();
    match line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("{url} answered {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_probes_loopback_for_an_unspecified_listen_address() {
        assert_eq!(default_url(None).as_str(), "http://127.0.0.1:8080/healthz");
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(
            default_url(Some(any)).as_str(),
            "http://127.0.0.1:9000/healthz"
        );
        let any6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(
            default_url(Some(any6)).as_str(),
            "http://[::1]:9000/healthz"
        );
    }
}
