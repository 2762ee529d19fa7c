//! The metadata database: one redb file (`<data-root>/metadata.redb`), the source of truth for
//! images, tags, layers and (later) containers, volumes and networks.

/// The open database.
#[derive(Debug)]
pub struct Store {}
