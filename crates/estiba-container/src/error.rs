//! Errors of container operations; the daemon maps each variant to one HTTP status.

/// Why a container operation failed. Messages are Docker's where a user would recognise them.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// 404: "No such container: x".
    #[error("No such container: {0}")]
    NotFound(String),
    /// 404: the image to create from does not exist ("No such image: x:latest").
    #[error("{0}")]
    ImageNotFound(String),
    /// 404: a path inside a container ("Could not find the file /x in container c").
    #[error("{0}")]
    PathNotFound(String),
    /// 400: bad input (a name, a signal, a policy).
    #[error("{0}")]
    InvalidParameter(String),
    /// 409: a name in use, removing a running container, killing a stopped one.
    #[error("{0}")]
    Conflict(String),
    /// 500: anything else (disk, runtime, shim).
    #[error("{0}")]
    Internal(String),
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Internal(e.to_string())
}

impl From<estiba_image::service::ImageError> for ContainerError {
    fn from(e: estiba_image::service::ImageError) -> Self {
        use estiba_image::service::ImageError;
        match e {
            ImageError::NotFound(_) => ContainerError::ImageNotFound(e.to_string()),
            ImageError::InvalidReference(m) => ContainerError::InvalidParameter(m),
            other => ContainerError::Internal(other.to_string()),
        }
    }
}
