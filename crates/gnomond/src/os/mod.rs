//! The daemon's operating-system layer: the only code in Gnomon that may use `unsafe`.
//!
//! Each submodule wraps a few libc calls behind safe functions whose arguments cannot break the
//! call's contract; every `unsafe` block carries a SAFETY comment. Everything above this layer is
//! safe Rust. Architecture rule 5: plain libc (poll, recvmmsg/sendmmsg, CLOCK_REALTIME and
//! CLOCK_MONOTONIC), no epoll and no async runtime.
#![allow(unsafe_code)]

pub mod clock;
pub mod net;
pub mod poll;
pub mod process;
pub mod signal;
pub mod tcp;

/// The calling thread's `errno` as an [`std::io::Error`].
pub fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}
