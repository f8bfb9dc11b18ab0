//! Network Time Security (being written).
