//! One gnomonc session: the open connection, the output mode (text, `-c` CSV, `--json`),
//! name display rules, and the request helper that turns reply statuses into chronyc's
//! messages (features.md §3.1 "Names", §4.7).

use crate::transport::{Client, TransportError};
use gnomon_cmdmon::{Addr, ReplyBody, ReplyCode, Request, Status, BAD_REPLY, CANNOT_TALK};
use std::collections::HashMap;
use std::net::IpAddr;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    Csv,
    Json,
}

/// Why a command failed; [`CmdError::message`] is what chronyc prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// The daemon answered with an error status (printed on stdout).
    Status(Status),
    /// No answer (`506 Cannot talk to daemon`).
    NoReply,
    /// An answer with the wrong reply code (`508 Bad reply from daemon`).
    BadReply,
    /// The command line was wrong (printed on stderr).
    Syntax(String),
    /// Failed with nothing more to print (e.g. `waitsync` ran out of tries).
    Silent,
}

impl CmdError {
    pub fn message(&self) -> String {
        match self {
            CmdError::Status(s) => s.text(),
            CmdError::NoReply => CANNOT_TALK.to_string(),
            CmdError::BadReply => BAD_REPLY.to_string(),
            CmdError::Syntax(s) => s.clone(),
            CmdError::Silent => String::new(),
        }
    }
    pub fn to_stderr(&self) -> bool {
        matches!(self, CmdError::Syntax(_))
    }
}

pub struct Session {
    pub client: Option<Client>,
    pub mode: Mode,
    /// `-n`: never resolve addresses to names.
    pub numeric: bool,
    /// `-N`: show sources by the names they were configured with (NTP_SOURCE_NAME).
    pub source_names: bool,
    /// Output collected for the current command.
    pub out: String,
    hosts: Option<HashMap<IpAddr, String>>,
}

impl Session {
    pub fn new(client: Option<Client>, mode: Mode, numeric: bool) -> Session {
        Session {
            client,
            mode,
            numeric,
            source_names: false,
            out: String::new(),
            hosts: None,
        }
    }

    pub fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    pub fn text(&self) -> bool {
        self.mode == Mode::Text
    }

    /// Sends a request; a non-success status or an unexpected reply code is an error.
    pub fn request(&mut self, req: &Request, expect: ReplyCode) -> Result<ReplyBody, CmdError> {
        let client = self.client.as_mut().ok_or(CmdError::NoReply)?;
        let reply = client
            .submit(req)
            .map_err(|TransportError::NoReply| CmdError::NoReply)?;
        if reply.status != Status::Success {
            return Err(CmdError::Status(reply.status));
        }
        if reply.body.code() != expect {
            return Err(CmdError::BadReply);
        }
        Ok(reply.body)
    }

    /// Sends independent requests pipelined; each reply is checked like [`Session::request`].
    /// The first failing one (in request order) ends the list with its error.
    pub fn request_many(
        &mut self,
        reqs: &[Request],
        expect: ReplyCode,
    ) -> (Vec<ReplyBody>, Option<CmdError>) {
        let Some(client) = self.client.as_mut() else {
            return (Vec::new(), Some(CmdError::NoReply));
        };
        let (replies, failed) = client.submit_many(reqs);
        let mut out = Vec::with_capacity(replies.len());
        for reply in replies {
            if reply.status != Status::Success {
                return (out, Some(CmdError::Status(reply.status)));
            }
            if reply.body.code() != expect {
                return (out, Some(CmdError::BadReply));
            }
            out.push(reply.body);
        }
        (out, failed.map(|TransportError::NoReply| CmdError::NoReply))
    }

    /// Sends a request that expects a plain status; returns the status (2xx kinds included).
    pub fn request_status(&mut self, req: &Request) -> Result<Status, CmdError> {
        let client = self.client.as_mut().ok_or(CmdError::NoReply)?;
        let reply = client
            .submit(req)
            .map_err(|TransportError::NoReply| CmdError::NoReply)?;
        if reply.status.is_ok() {
            Ok(reply.status)
        } else {
            Err(CmdError::Status(reply.status))
        }
    }

    /// Name to print for an address: the numeric form with `-n` or in CSV/JSON, otherwise the
    /// host name from the hosts file if any. No network DNS, so a slow resolver never hangs us.
    pub fn name(&mut self, addr: &Addr) -> String {
        self.resolved(addr).unwrap_or_else(|| addr_text(addr))
    }

    /// The host name to show for `addr`, if names are shown and the hosts file has one.
    fn resolved(&mut self, addr: &Addr) -> Option<String> {
        if self.numeric || self.mode != Mode::Text {
            return None;
        }
        let ip = addr.ip()?;
        let hosts = self.hosts.get_or_insert_with(load_hosts);
        hosts.get(&ip).cloned()
    }

    /// [`Session::name`] cut to `width` columns with `>` as its last character when it is a
    /// resolved name (chronyc never cuts numeric addresses).
    pub fn name_in(&mut self, addr: &Addr, width: usize) -> String {
        match self.resolved(addr) {
            Some(n) if n.len() > width => {
                let mut cut: String = n.chars().take(width.saturating_sub(1)).collect();
                cut.push('>');
                cut
            }
            Some(n) => n,
            None => addr_text(addr),
        }
    }
}

/// Numeric text of a wire address, as chronyc prints it.
pub fn addr_text(addr: &Addr) -> String {
    match addr {
        Addr::Unspec => "[UNSPEC]".to_string(),
        Addr::V4(a) => a.to_string(),
        Addr::V6(a) => a.to_string(),
        Addr::Id(id) => format!("ID#{id:010}"),
    }
}

/// First name for each address in /etc/hosts (reverse lookup without network DNS).
fn load_hosts() -> HashMap<IpAddr, String> {
    let mut map = HashMap::new();
    let Ok(text) = std::fs::read_to_string("/etc/hosts") else {
        return map;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut it = line.split_whitespace();
        if let (Some(ip), Some(name)) = (it.next(), it.next()) {
            if let Ok(ip) = ip.parse::<IpAddr>() {
                map.entry(ip).or_insert_with(|| name.to_string());
            }
        }
    }
    map
}
