//! How a request reached the server: directly, or through a reverse proxy that terminated TLS.
//!
//! proglab speaks plain HTTP; a deployment puts a TLS terminator (Caddy, nginx) in front of it
//! (docs/deploy.md). Only a proxy named with `--trusted-proxy` may say, in `X-Forwarded-Proto`,
//! that the participant's request came over HTTPS: a header from anyone else is ignored, so a
//! client cannot talk the server into anything by sending it. What the request said decides
//! whether cookies are `Secure` and whether HSTS is sent.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::http::header::STRICT_TRANSPORT_SECURITY;
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Config;
use crate::state::AppState;

/// One year, the usual HSTS lifetime.
const HSTS: &str = "max-age=31536000";

/// How this request arrived; every request carries one (an extension set by [`transport`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transport {
    /// The participant's browser used HTTPS (to a trusted proxy).
    pub https: bool,
}

impl Transport {
    /// What a request from `peer` with these headers says about itself under `config`.
    pub fn of(config: &Config, peer: Option<IpAddr>, forwarded_proto: Option<&str>) -> Transport {
        let trusted = peer.is_some_and(|ip| {
            let ip = canonical(ip);
            config.trusted_proxies.iter().any(|net| net.contains(&ip))
        });
        // A proxy chain appends; the value nearest the client comes first.
        let https = trusted
            && forwarded_proto
                .and_then(|v| v.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Transport { https }
    }

    /// Whether cookies set on this request's answer are `Secure`.
    pub fn secure_cookies(self, config: &Config) -> bool {
        config.secure_cookies || self.https
    }
}

/// An IPv4 peer seen through an IPv6 socket (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Middleware: works out the request's [`Transport`] and adds HSTS to answers over HTTPS.
pub async fn transport(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let proto = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok());
    let transport = Transport::of(&state.config, peer, proto);
    request.extensions_mut().insert(transport);
    let mut response = next.run(request).await;
    if state.config.hsts && transport.https {
        response
            .headers_mut()
            .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxies: &[&str]) -> Config {
        Config {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn only_a_trusted_proxy_can_say_https() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let behind = config(&["127.0.0.1/32"]);
        assert!(Transport::of(&behind, Some(local), Some("https")).https);
        assert!(Transport::of(&behind, Some(local), Some("HTTPS, http")).https);
        assert!(!Transport::of(&behind, Some(local), Some("http")).https);
        assert!(!Transport::of(&behind, Some(local), None).https);
        assert!(!Transport::of(&behind, Some(stranger), Some("https")).https);
        assert!(!Transport::of(&behind, None, Some("https")).https);
        assert!(!Transport::of(&config(&[]), Some(local), Some("https")).https);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(Transport::of(&behind, Some(mapped), Some("https")).https);
    }

    #[test]
    fn cookies_are_secure_when_configured_or_over_https() {
        let plain = Transport { https: false };
        assert!(!plain.secure_cookies(&Config::default()));
        assert!(Transport { https: true }.secure_cookies(&Config::default()));
        let always = Config {
            secure_cookies: true,
            ..Config::default()
        };
        assert!(plain.secure_cookies(&always));
    }
}
