//! (synchronisation; being written)
