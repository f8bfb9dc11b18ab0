//! The HTTP/1.x subset the metrics endpoint speaks (RFC 9112 message syntax, RFC 9110
//! semantics), sans-IO: classify the bytes read so far of a request head, and build the one
//! response each connection gets before it is closed (`Connection: close`, explicit
//! `Content-Length`). Only `GET`/`HEAD /metrics` succeed; anything else gets 404, 405 or 400.
//! Request bodies, chunked encoding, keep-alive and pipelining are not supported: a scraper
//! sends one small GET per connection.

/// Largest request head accepted (request line and headers); a longer one gets 431.
pub const MAX_HEAD: usize = 8192;

/// The media type of the Prometheus text format, as Prometheus expects it.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the bytes received so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// The head is not complete yet (no empty line so far).
    Incomplete,
    /// A complete head.
    Request {
        /// The method, as sent (methods are case-sensitive).
        method: String,
        /// The request target's path, without any query string.
        path: String,
        /// Whether the request line said HTTP/1.x.
        http1: bool,
    },
    /// Not an HTTP/1.x request head, or one too long: answer 400/431 and close.
    Bad(Status),
}

/// The statuses the endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200 OK.
    Ok,
    /// 400 Bad Request.
    BadRequest,
    /// 404 Not Found.
    NotFound,
    /// 405 Method Not Allowed.
    MethodNotAllowed,
    /// 431 Request Header Fields Too Large.
    HeadTooLarge,
    /// 505 HTTP Version Not Supported.
    VersionNotSupported,
}

impl Status {
    /// Code and reason phrase.
    pub fn line(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::BadRequest => (400, "Bad Request"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Status::VersionNotSupported => (505, "HTTP Version Not Supported"),
        }
    }
}

/// Finds the end of the head (`\r\n\r\n`, or a bare `\n\n` which RFC 9112 §2.2 lets a
/// server accept); returns the head's length without the terminator.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Classifies the bytes of a request received so far (at most [`MAX_HEAD`] are looked at).
pub fn parse_head(buf: &[u8]) -> Head {
    let Some(end) = head_end(buf) else {
        return if buf.len() >= MAX_HEAD {
            Head::Bad(Status::HeadTooLarge)
        } else {
            Head::Incomplete
        };
    };
    if end > MAX_HEAD {
        return Head::Bad(Status::HeadTooLarge);
    }
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Head::Bad(Status::BadRequest);
    };
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let head = head.trim_start_matches(['\r', '\n']);
    let line = head.lines().next().unwrap_or("").trim_end_matches('\r');
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Head::Bad(Status::BadRequest);
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_alphabetic())
        || !target.starts_with('/')
        || !version.starts_with("HTTP/")
    {
        return Head::Bad(Status::BadRequest);
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    Head::Request {
        method: method.to_string(),
        path: path.to_string(),
        http1: version.starts_with("HTTP/1."),
    }
}

/// The status for a parsed request: 200 for `GET`/`HEAD /metrics`, else why not.
pub fn route(method: &str, path: &str, http1: bool) -> Status {
    if !http1 {
        Status::VersionNotSupported
    } else if path != "/metrics" {
        Status::NotFound
    } else if method != "GET" && method != "HEAD" {
        Status::MethodNotAllowed
    } else {
        Status::Ok
    }
}

/// A complete response: status line, headers, and `body` unless `head_only`.
pub fn response(status: Status, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let (code, reason) = status.line();
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n",
        body.len()
    );
    if status == Status::MethodNotAllowed {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// A short plain-text error response for `status`.
pub fn error_response(status: Status) -> Vec<u8> {
    let (code, reason) = status.line();
    let body = format!("{code} {reason}\n");
    response(status, "text/plain; charset=utf-8", body.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str) -> Head {
        Head::Request {
            method: method.into(),
            path: path.into(),
            http1: true,
        }
    }

    #[test]
    fn a_scrape_request_parses_once_the_head_is_complete() {
        let full = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9123\r\nAccept: text/plain\r\n\r\n";
        for n in 0..full.len() - 1 {
            assert_eq!(parse_head(&full[..n]), Head::Incomplete, "{n}");
        }
        assert_eq!(parse_head(full), req("GET", "/metrics"));
    }

    #[test]
    fn query_strings_are_ignored_and_bare_lf_is_accepted() {
        assert_eq!(
            parse_head(b"GET /metrics?name[]=up HTTP/1.0\n\n"),
            req("GET", "/metrics")
        );
        assert_eq!(
            parse_head(b"\r\nHEAD /x HTTP/1.1\r\n\r\n"),
            req("HEAD", "/x")
        );
    }

    #[test]
    fn garbage_and_oversized_heads_are_rejected() {
        assert_eq!(
            parse_head(b"\x16\x03\x01\n\n"),
            Head::Bad(Status::BadRequest)
        );
        assert_eq!(
            parse_head(b"GET /metrics\r\n\r\n"),
            Head::Bad(Status::BadRequest)
        );
        assert_eq!(
            parse_head(b"GET metrics HTTP/1.1\r\n\r\n"),
            Head::Bad(Status::BadRequest)
        );
        let big = vec![b'a'; MAX_HEAD];
        assert_eq!(parse_head(&big), Head::Bad(Status::HeadTooLarge));
        let mut late = b"GET / HTTP/1.1\r\nX: ".to_vec();
        late.extend(vec![b'a'; MAX_HEAD]);
        late.extend(b"\r\n\r\n");
        assert_eq!(parse_head(&late), Head::Bad(Status::HeadTooLarge));
    }

    #[test]
    fn only_get_and_head_of_metrics_succeed() {
        assert_eq!(route("GET", "/metrics", true), Status::Ok);
        assert_eq!(route("HEAD", "/metrics", true), Status::Ok);
        assert_eq!(route("GET", "/", true), Status::NotFound);
        assert_eq!(route("POST", "/metrics", true), Status::MethodNotAllowed);
        assert_eq!(route("get", "/metrics", true), Status::MethodNotAllowed);
        assert_eq!(route("GET", "/metrics", false), Status::VersionNotSupported);
    }

    #[test]
    fn responses_close_and_give_the_length() {
        let r = response(Status::Ok, METRICS_CONTENT_TYPE, b"chrony_up 1\n", false);
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(text.contains("\r\nContent-Length: 12\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nchrony_up 1\n"));
        let head = response(Status::Ok, METRICS_CONTENT_TYPE, b"chrony_up 1\n", true);
        assert!(String::from_utf8(head).unwrap().ends_with(
            "Content-Length: 12\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
        ));
        let e = String::from_utf8(error_response(Status::MethodNotAllowed)).unwrap();
        assert!(e.contains("\r\nAllow: GET, HEAD\r\n") && e.ends_with("405 Method Not Allowed\n"));
    }
}
