//! (server side; being written)
