//! Docker Engine API wire types (the JSON shapes of API v1.51), shared by the daemon and the CLI.
//!
//! Only this crate, the daemon's HTTP layer and the CLI know these shapes. Field names follow
//! Docker's JSON exactly (`#[serde(rename_all = "PascalCase")]` plus explicit renames where Docker
//! is irregular); the field docs say which API version dropped or added a field.

pub mod container;
mod de;
pub mod duration;
pub mod error;
pub mod event;
pub mod glob;
pub mod image;
pub mod system;
pub mod version;

pub use container::{
    ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse, ContainerPruneResponse,
    ContainerSummary, ContainerWaitResponse,
};
pub use error::{ErrorDetail, ErrorResponse, JsonMessage};
pub use event::{EventActor, EventMessage};
pub use image::{
    GraphDriverData, HistoryResponseItem, ImageConfig, ImageDeleteResponseItem, ImageInspect,
    ImageMetadata, ImagePruneResponse, ImageSummary, RootFs,
};
pub use system::{
    Commit, ComponentVersion, IndexInfo, PlatformName, PluginsInfo, RegistryServiceConfig, Runtime,
    SwarmInfo, SystemDataUsageResponse, SystemInfo, SystemVersion,
};
pub use version::{ApiVersion, VersionError};

/// The newest API version estibad speaks.
pub const API_VERSION: &str = "1.51";
/// The oldest API version estibad accepts (dockerd 28's minimum).
pub const MIN_API_VERSION: &str = "1.24";
