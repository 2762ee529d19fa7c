//! `GET /events` messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventActor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One streamed event line. `status`, `id` and `from` are dockerd's deprecated duplicates, still
/// sent for container and image events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventMessage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_dockerd_lines() {
        // Captured from the reference dockerd.
        let raw = r#"{"status":"tag","id":"sha256:09b2","Type":"image","Action":"tag","Actor":{"ID":"sha256:09b2","Attributes":{"name":"scratchx:1"}},"scope":"local","time":1795328841,"timeNano":1795328841655005428}"#;
        let ev: EventMessage = serde_json::from_str(raw).unwrap();
        assert_eq!(ev.actor.attributes["name"], "scratchx:1");
        assert_eq!(serde_json::to_string(&ev).unwrap(), raw);
    }
}
