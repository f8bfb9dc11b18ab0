//! Reply status codes (`STT_*`) and the text chronyc prints for each (features.md §4.7).

/// A reply's status field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Success,
    Failed,
    Unauth,
    Invalid,
    NoSuchSource,
    InvalidTs,
    NotEnabled,
    BadSubnet,
    AccessAllowed,
    AccessDenied,
    NoHostAccess,
    SourceAlreadyKnown,
    TooManySources,
    NoRtc,
    BadRtcFile,
    Inactive,
    BadSample,
    InvalidAf,
    BadPktVersion,
    BadPktLength,
    InvalidName,
    /// A code this protocol version does not define (kept so decoding is total).
    Other(u16),
}

const TABLE: [(Status, u16, &str); 21] = [
    (Status::Success, 0, "200 OK"),
    (Status::Failed, 1, "500 Failure"),
    (Status::Unauth, 2, "501 Not authorised"),
    (Status::Invalid, 3, "502 Invalid command"),
    (Status::NoSuchSource, 4, "503 No such source"),
    (
        Status::InvalidTs,
        5,
        "504 Duplicate or stale logon detected",
    ),
    (Status::NotEnabled, 6, "505 Facility not enabled in daemon"),
    (Status::BadSubnet, 7, "507 Bad subnet"),
    (Status::AccessAllowed, 8, "208 Access allowed"),
    (Status::AccessDenied, 9, "209 Access denied"),
    (
        Status::NoHostAccess,
        10,
        "510 No command access from this host",
    ),
    (Status::SourceAlreadyKnown, 11, "511 Source already present"),
    (Status::TooManySources, 12, "512 Too many sources present"),
    (Status::NoRtc, 13, "513 RTC driver not running"),
    (Status::BadRtcFile, 14, "514 Can't write RTC parameters"),
    (
        Status::Inactive,
        15,
        "519 Client logging is not active in the daemon",
    ),
    (Status::BadSample, 16, "516 Sample index out of range"),
    (Status::InvalidAf, 17, "515 Invalid address family"),
    (Status::BadPktVersion, 18, "517 Protocol version mismatch"),
    (Status::BadPktLength, 19, "518 Packet length mismatch"),
    (Status::InvalidName, 21, "521 Invalid name"),
];

/// chronyc's text when no reply arrives.
pub const CANNOT_TALK: &str = "506 Cannot talk to daemon";
/// chronyc's text when the reply has the wrong reply code.
pub const BAD_REPLY: &str = "508 Bad reply from daemon";

impl Status {
    pub fn from_code(code: u16) -> Status {
        TABLE
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(Status::Other(code), |(s, _, _)| *s)
    }

    pub fn code(self) -> u16 {
        match self {
            Status::Other(c) => c,
            s => TABLE.iter().find(|(t, _, _)| *t == s).map_or(0, |e| e.1),
        }
    }

    /// The line chronyc prints for this status, e.g. `501 Not authorised`.
    pub fn text(self) -> String {
        match TABLE.iter().find(|(t, _, _)| *t == self) {
            Some((_, _, text)) => (*text).to_string(),
            None => format!("520 Got unexpected error from daemon ({})", self.code()),
        }
    }

    /// 2xx statuses: the command succeeded (chronyc exits 0).
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Status::Success | Status::AccessAllowed | Status::AccessDenied
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 0..40u16 {
            assert_eq!(Status::from_code(code).code(), code);
        }
    }

    #[test]
    fn texts_match_chronyc() {
        assert_eq!(Status::from_code(2).text(), "501 Not authorised");
        assert_eq!(Status::from_code(11).text(), "511 Source already present");
        assert_eq!(
            Status::from_code(15).text(),
            "519 Client logging is not active in the daemon"
        );
        assert_eq!(Status::from_code(17).text(), "515 Invalid address family");
        assert!(Status::AccessDenied.is_ok());
        assert!(!Status::NoSuchSource.is_ok());
    }
}
