//! The one place errors become HTTP: a status code and Docker's `{"message": "..."}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use estiba_api::ErrorResponse;
use estiba_image::service::ImageError;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// dockerd's answer for an unknown path or method.
    pub(crate) fn page_not_found() -> Self {
        Self::not_found("page not found")
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        let status = match &e {
            ImageError::NotFound(_) => StatusCode::NOT_FOUND,
            ImageError::InvalidReference(_) | ImageError::InvalidArchive(_) => {
                StatusCode::BAD_REQUEST
            }
            ImageError::Conflict(_) => StatusCode::CONFLICT,
            ImageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!("image service: {e}");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<estiba_container::ContainerError> for ApiError {
    fn from(e: estiba_container::ContainerError) -> Self {
        use estiba_container::ContainerError as E;
        let status = match &e {
            E::NotFound(_) | E::ImageNotFound(_) | E::PathNotFound(_) => StatusCode::NOT_FOUND,
            E::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!("container service: {e}");
        }
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            message: self.message,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_errors_map_to_docker_status_codes() {
        let cases = [
            (
                ImageError::NotFound("x:latest".into()),
                404,
                "No such image: x:latest",
            ),
            (
                ImageError::InvalidReference("invalid reference format".into()),
                400,
                "invalid reference format",
            ),
            (ImageError::InvalidArchive("bad tar".into()), 400, "bad tar"),
            (
                ImageError::Conflict("conflict: unable to delete".into()),
                409,
                "conflict: unable to delete",
            ),
            (ImageError::Internal("disk full".into()), 500, "disk full"),
        ];
        for (err, status, message) in cases {
            let api = ApiError::from(err);
            assert_eq!(
                (api.status.as_u16(), api.message.as_str()),
                (status, message)
            );
        }
    }
}
