//! Which URLs a webhook may call.
//!
//! A tenant must not be able to make Basalt call services on its own networks
//! (SSRF). A webhook URL is `http` or `https` with a host, and every address the
//! host resolves to must be public: loopback, private (RFC 1918, IPv6 ULA),
//! link-local (169.254/16 with the cloud metadata service, fe80::/10),
//! unspecified, multicast, broadcast, shared (100.64/10) and reserved addresses
//! are refused, as are IPv4 addresses mapped or translated into IPv6. The check
//! runs when a webhook is written and again before every call (DNS can change);
//! the call then connects to the address that was checked, never resolving
//! again. `webhook_allow_private_targets` lifts the address rule (tests, dev).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// The longest URL a webhook may have.
pub const URL_MAX: usize = 2048;
/// How long a name may take to resolve (a request waits on it).
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a URL may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("url must be an absolute http or https URL of at most {URL_MAX} characters")]
    Malformed,
    #[error("url must use http or https")]
    Scheme,
    #[error("url's host {0} cannot be resolved")]
    Unresolvable(String),
    #[error("url's host {host} resolves to {addr}, an internal address webhooks may not call")]
    Internal { host: String, addr: IpAddr },
}

/// `text` as a webhook URL (syntax and scheme only; no resolution).
pub fn parse(text: &str) -> Result<Url, TargetError> {
    if text.len() > URL_MAX {
        return Err(TargetError::Malformed);
    }
    let url = Url::parse(text).map_err(|_| TargetError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TargetError::Malformed);
    }
    Ok(url)
}

/// Resolves `url`'s host and answers the address to connect to, refusing
/// internal addresses unless `allow_private`. Every address the name has is
/// checked, not only the one used.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<SocketAddr, TargetError> {
    let host = url.host_str().ok_or(TargetError::Malformed)?;
    let port = url.port_or_known_default().ok_or(TargetError::Malformed)?;
    // IPv6 literals come bracketed; lookup_host wants them bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let unresolvable = || TargetError::Unresolvable(host.to_string());
    let addrs: Vec<SocketAddr> = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((bare, port)))
        .await
        .map_err(|_| unresolvable())?
        .map_err(|_| unresolvable())?
        .collect();
    let first = *addrs.first().ok_or_else(unresolvable)?;
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
            return Err(TargetError::Internal { host: host.to_string(), addr: bad.ip() });
        }
    }
    Ok(first)
}

/// Whether `ip` is an address webhooks may not call.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches IPv4 addresses: judge the one it carries.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_internal_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local (ULA)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0 && s[1..6] == [0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(s: &str) -> bool {
        is_internal(s.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(internal(a), "{a} must be refused");
        }
        for a in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!internal(a), "{a} is public");
        }
    }

    #[test]
    fn only_http_and_https_urls_with_a_host() {
        assert!(parse("https://example.com/hook").is_ok());
        assert_eq!(parse("ftp://example.com/"), Err(TargetError::Scheme));
        assert_eq!(parse("file:///etc/passwd"), Err(TargetError::Scheme));
        assert_eq!(parse("not a url"), Err(TargetError::Malformed));
        assert_eq!(parse(&format!("https://example.com/{}", "a".repeat(URL_MAX))), Err(TargetError::Malformed));
    }

    #[tokio::test]
    async fn literal_internal_hosts_are_refused_unless_allowed() {
        for u in ["http://127.0.0.1:9/", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/"]
        {
            let url = parse(u).unwrap();
            assert!(matches!(resolve(&url, false).await, Err(TargetError::Internal { .. })), "{u}");
        }
        let url = parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(resolve(&url, true).await.unwrap(), "127.0.0.1:9".parse().unwrap());
    }
}
