//! Error bodies: `{"message": "..."}` for plain responses, and the JSON-lines messages
//! (`{"stream": ...}`, `{"errorDetail": ..., "error": ...}`) of streamed responses such as load.

use serde::{Deserialize, Serialize};

/// Every non-2xx response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

/// The error part of a streamed message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: String,
}

/// One line of a progress stream (Docker's `jsonmessage.JSONMessage`, the fields we use).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JsonMessage {
    /// `{"stream": text}`.
    pub fn stream(text: impl Into<String>) -> Self {
        JsonMessage {
            stream: Some(text.into()),
            ..Default::default()
        }
    }

    /// `{"errorDetail": {"message": m}, "error": m}`, as dockerd writes a mid-stream failure.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_messages_match_dockerd() {
        let cases = [
            (
                JsonMessage::stream("Loaded image: busybox:latest\n"),
                r#"{"stream":"Loaded image: busybox:latest\n"}"#,
            ),
            (
                JsonMessage::error("unexpected EOF"),
                r#"{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}"#,
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(serde_json::to_string(&msg).unwrap(), want);
            assert_eq!(serde_json::from_str::<JsonMessage>(want).unwrap(), msg);
        }
    }
}
