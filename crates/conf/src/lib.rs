//! chrony.conf (and key file, chronyc command) grammar → typed values. Errors carry file:line.
#![forbid(unsafe_code)]
