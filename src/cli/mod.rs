//! Pieces of the `smrt` command that are more than argument plumbing.

pub mod bench;
pub mod picture;
pub mod progress;
pub mod settings;
