//! The client's address: `X-Forwarded-For` is believed only when the connecting peer is one of
//! our trusted proxies, and then only as far as the chain of trusted proxies goes.
//!
//! The header is oldest-first (`client, proxy1, proxy2`) and each proxy appends the address it
//! saw, so everything left of the first untrusted hop (reading from the right) was written by
//! whoever sent the request and may be forged. Walking right to left and stopping at the first
//! address that is not a trusted proxy gives the address our outermost proxy actually saw.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// At most this many `X-Forwarded-For` entries are read (a longer chain is not ours).
const MAX_HOPS: usize = 32;

/// Who the client is, for keying limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIp {
    /// A known address (IPv6 already cut to the configured prefix).
    Addr(IpAddr),
    /// No peer address (a request driven in process, without `ConnectInfo`): such requests
    /// share one bucket and their `X-Forwarded-For` is never believed.
    Unknown,
}

impl ClientIp {
    /// The key part: the address, or `unknown`.
    pub fn key(&self) -> String {
        match self {
            Self::Addr(ip) => ip.to_string(),
            Self::Unknown => "unknown".into(),
        }
    }
}

/// The client address of a request that came from `peer` with `headers`.
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    ipv6_prefix_len: u8,
) -> ClientIp {
    let Some(peer) = peer.map(|p| canonical(p.ip())) else {
        return ClientIp::Unknown;
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if is_trusted(&peer) {
        // All X-Forwarded-For headers, in order, form one list.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev().take(MAX_HOPS) {
            // Garbage can only have been written by the client: keep the last good address.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !is_trusted(&ip) {
                break;
            }
        }
    }
    ClientIp::Addr(mask(client, ipv6_prefix_len))
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// `::ffff:1.2.3.4` is the IPv4 client 1.2.3.4 (dual-stack listeners report it so).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, ipv6_prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V6(_) => IpNet::new(ip, ipv6_prefix_len.min(128))
            .map(|net| net.network())
            .unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> ClientIp {
        ClientIp::Addr(s.parse().unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&["1.1.1.1"]);
        assert_eq!(
            client_ip(peer("203.0.113.9"), &h, &[], 64),
            ip("203.0.113.9")
        );
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(peer("203.0.113.9"), &h, &trusted, 64),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn through_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged "6.6.6.6"; our edge proxy 10.0.0.1 saw 198.51.100.7.
        let h = headers(&["6.6.6.6, 198.51.100.7, 10.0.0.1"]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &h, &trusted, 64),
            ip("198.51.100.7")
        );
        // Several headers form one list.
        let h = headers(&["6.6.6.6", "198.51.100.7", "10.0.0.1"]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &h, &trusted, 64),
            ip("198.51.100.7")
        );
        // With ports and brackets, as some proxies write them.
        let h = headers(&["[2001:db8::7]:443, 10.0.0.1:80"]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &h, &trusted, 128),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn missing_or_garbage_headers_fall_back_to_the_last_good_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &HeaderMap::new(), &trusted, 64),
            ip("10.0.0.2")
        );
        let h = headers(&["not-an-ip, 10.0.0.1"]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &h, &trusted, 64),
            ip("10.0.0.1")
        );
        // Every hop trusted: the leftmost one is as far as we can see.
        let h = headers(&["10.1.1.1, 10.0.0.1"]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &h, &trusted, 64),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn no_peer_is_one_unknown_bucket_and_ipv6_is_keyed_by_prefix() {
        let trusted = nets(&["0.0.0.0/0"]);
        assert_eq!(
            client_ip(None, &headers(&["1.2.3.4"]), &trusted, 64),
            ClientIp::Unknown
        );
        assert_eq!(ClientIp::Unknown.key(), "unknown");
        assert_eq!(
            client_ip(peer("2001:db8:1:2:aaaa::1"), &HeaderMap::new(), &[], 64),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_ip(peer("::ffff:192.0.2.1"), &HeaderMap::new(), &[], 64),
            ip("192.0.2.1")
        );
    }
}
