//! Docker Engine API wire types (the JSON shapes of API v1.51), shared by the daemon and the CLI.
//!
//! Only this crate, the daemon's HTTP layer and the CLI know these shapes.

/// The newest API version estibad speaks.
pub const API_VERSION: &str = "1.51";
/// The oldest API version estibad accepts (dockerd 28's minimum).
pub const MIN_API_VERSION: &str = "1.24";
