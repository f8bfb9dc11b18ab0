//! Dropping root after the sockets are bound (chronyd's `-u USER` / `user`): supplementary
//! groups, gid, then uid. With `-x` no process of ours keeps CAP_SYS_TIME, even when it stays
//! root. A non-root start is refused unless `-U` (chronyd's "Not superuser").

use crate::os::process::{self, UserIds};

/// Why privileges could not be dropped.
#[derive(Debug)]
pub enum PrivilegeError {
    /// The user is not in the password database.
    UnknownUser(String),
    /// A set*id or capability call failed.
    Os {
        /// Which step.
        step: &'static str,
        /// The OS error.
        error: std::io::Error,
    },
}

impl std::fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivilegeError::UnknownUser(u) => write!(f, "Could not get user/group ID of {u}"),
            PrivilegeError::Os { step, error } => write!(f, "Could not {step} : {error}"),
        }
    }
}

impl std::error::Error for PrivilegeError {}

/// Who the daemon runs as once privileges are settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// Still root (chronyd logs "Running with root privileges").
    Root,
    /// Switched to this user.
    User(String, UserIds),
    /// Not started as root (`-U`): nothing to drop.
    Unprivileged,
}

/// Looks `user` up (root needs no look-up).
pub fn resolve(user: &str) -> Result<Option<UserIds>, PrivilegeError> {
    if user == "root" {
        return Ok(None);
    }
    process::lookup_user(user)
        .map(Some)
        .ok_or_else(|| PrivilegeError::UnknownUser(user.to_string()))
}

/// Drops to `target` (None = stay root) when running as root; with `no_clock` first removes
/// CAP_SYS_TIME from every set, the bounding set included, so no later exec can regain it.
pub fn drop_to(
    user: &str,
    target: Option<UserIds>,
    no_clock: bool,
) -> Result<RunAs, PrivilegeError> {
    if !process::is_root() {
        return Ok(RunAs::Unprivileged);
    }
    if no_clock {
        process::drop_sys_time().map_err(|error| PrivilegeError::Os {
            step: "drop CAP_SYS_TIME",
            error,
        })?;
    }
    match target {
        Some(ids) => {
            process::switch_user(ids).map_err(|error| PrivilegeError::Os {
                step: "switch user",
                error,
            })?;
            Ok(RunAs::User(user.to_string(), ids))
        }
        None => Ok(RunAs::Root),
    }
}
