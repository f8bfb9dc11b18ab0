//! Tests of the endpoint's connection handling over real loopback sockets, driven by hand
//! through prepare → poll → service as the scheduler drives it.
use super::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

fn server() -> MetricsServer {
    MetricsServer::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).unwrap()
}

/// One scheduler round at monotonic time `now`, waiting at most 50 ms.
fn round(m: &mut MetricsServer, now: f64, render: &mut dyn FnMut() -> String) {
    let mut fds = Vec::new();
    let timeout = m.prepare(&mut fds, now, 50).min(50);
    crate::os::poll::wait(&mut fds, timeout).unwrap();
    m.service(&fds, now, render);
}

fn client(m: &MetricsServer, request: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(m.local_addr().unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(request).unwrap();
    c
}

fn response(c: &mut TcpStream) -> String {
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn a_get_of_metrics_gets_the_rendered_body_and_is_closed() {
    let mut m = server();
    let mut c = client(&m, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut scrapes = 0;
    let mut render = || {
        scrapes += 1;
        "chrony_up 1\n".to_string()
    };
    for _ in 0..20 {
        round(&mut m, 1.0, &mut render);
    }
    assert_eq!(m.open_connections(), 0);
    let r = response(&mut c);
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
    assert!(r.ends_with("\r\n\r\nchrony_up 1\n"), "{r}");
    assert_eq!(scrapes, 1);
}

#[test]
fn other_paths_get_404_without_rendering() {
    let mut m = server();
    let mut c = client(&m, b"GET /favicon.ico HTTP/1.1\r\n\r\n");
    let mut render = || -> String { panic!("rendered for a 404") };
    for _ in 0..20 {
        round(&mut m, 1.0, &mut render);
    }
    assert!(response(&mut c).starts_with("HTTP/1.1 404 Not Found\r\n"));
}

#[test]
fn a_request_split_across_reads_is_answered() {
    let mut m = server();
    let mut c = client(&m, b"GET /met");
    let mut render = || "x 1\n".to_string();
    for _ in 0..5 {
        round(&mut m, 1.0, &mut render);
    }
    assert_eq!(m.open_connections(), 1);
    c.write_all(b"rics HTTP/1.0\r\n\r\n").unwrap();
    for _ in 0..20 {
        round(&mut m, 1.5, &mut render);
    }
    assert!(response(&mut c).starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn a_silent_client_is_dropped_at_its_deadline() {
    let mut m = server();
    let mut c = client(&m, b"");
    let mut render = || String::new();
    for _ in 0..5 {
        round(&mut m, 10.0, &mut render);
    }
    assert_eq!(m.open_connections(), 1);
    // The poll timeout never overshoots the deadline.
    let mut fds = Vec::new();
    let t = m.prepare(&mut fds, 12.0, -1);
    assert_eq!(t, 3000);
    let t = m.prepare(&mut fds, 12.0, 100);
    assert_eq!(t, 100);
    round(&mut m, 10.0 + CONNECTION_DEADLINE, &mut render);
    assert_eq!(m.open_connections(), 0);
    assert_eq!(response(&mut c), "");
}

#[test]
fn connections_beyond_the_limit_wait_in_the_backlog() {
    let mut m = server();
    let mut clients: Vec<TcpStream> = (0..MAX_CONNECTIONS + 2).map(|_| client(&m, b"")).collect();
    let mut render = || "y 1\n".to_string();
    for _ in 0..10 {
        round(&mut m, 1.0, &mut render);
    }
    assert_eq!(m.open_connections(), MAX_CONNECTIONS);
    let mut fds = Vec::new();
    m.prepare(&mut fds, 1.0, -1);
    assert_eq!(
        fds.len(),
        MAX_CONNECTIONS,
        "listener must leave the poll set when full"
    );
    // Once the first ones are served, the waiting ones get in and are served too.
    for c in clients.iter_mut() {
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    }
    for _ in 0..40 {
        round(&mut m, 1.0, &mut render);
    }
    for c in clients.iter_mut() {
        assert!(response(c).ends_with("\r\n\r\ny 1\n"));
    }
    assert_eq!(m.open_connections(), 0);
}

#[test]
fn garbage_gets_400_and_an_endless_head_gets_431() {
    let mut m = server();
    let mut bad = client(&m, b"\x16\x03\x01\x02\x00\r\n\r\n");
    let mut long = client(&m, &vec![b'a'; http::MAX_HEAD + 100]);
    let mut render = || String::new();
    for _ in 0..20 {
        round(&mut m, 1.0, &mut render);
    }
    assert!(response(&mut bad).starts_with("HTTP/1.1 400 "));
    // The unread excess may reset the connection after the response; read what arrived.
    let mut buf = vec![0u8; 256];
    let n = long.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn a_non_loopback_address_needs_the_explicit_switch() {
    let mut s = Settings::default();
    assert!(
        MetricsServer::from_settings(&s).unwrap().is_none(),
        "off by default"
    );
    s.metrics_port = 9;
    s.bind_metrics_address = "192.0.2.1".parse().unwrap();
    let e = MetricsServer::from_settings(&s).unwrap_err();
    assert!(e.to_string().contains("metricsallownonlocal"), "{e}");
    // Allowed: it then tries to bind, which fails here (not our address) and is only logged.
    s.metrics_allow_nonlocal = true;
    assert!(MetricsServer::from_settings(&s).unwrap().is_none());
}
