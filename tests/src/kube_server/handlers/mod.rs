//! The built-in subresource and review handlers (registered in `http/subresources.rs`).

pub mod eviction;
pub mod review;
pub mod scale;
pub mod token;
