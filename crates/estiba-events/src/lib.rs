//! The event bus: one broadcast channel every service publishes to and `/events` reads from.
//!
//! Events are domain values (no Docker JSON here); the API layer shapes them. A bounded ring of
//! recent events backs `since`/`until` queries, so history never grows without limit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

/// How many past events are kept for `since` queries (dockerd keeps 256 as well).
pub const HISTORY_LEN: usize = 256;
/// How many events a slow subscriber may lag behind before it misses some.
pub const CHANNEL_LEN: usize = 1024;

/// One thing that happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Object kind: "image", "container", "volume", "network", "daemon", "builder".
    pub kind: String,
    /// What happened: "load", "tag", "untag", "delete", "pull", "save", "create", ...
    pub action: String,
    /// The object's ID (an image ID, a container ID, a volume name).
    pub actor_id: String,
    /// Extra facts, e.g. `name` for images and containers.
    pub attributes: BTreeMap<String, String>,
    /// When it happened, nanoseconds since the Unix epoch.
    pub time_nano: i64,
}

impl Event {
    /// Builds an event stamped with the current time.
    pub fn now(kind: &str, action: &str, actor_id: &str) -> Self {
        let time_nano = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor_id: actor_id.to_string(),
            attributes: BTreeMap::new(),
            time_nano,
        }
    }

    /// Adds one attribute.
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.attributes.insert(key.to_string(), value.to_string());
        self
    }
}

/// The bus. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers and no history.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CHANNEL_LEN);
        EventBus {
            sender,
            history: Mutex::new(VecDeque::with_capacity(HISTORY_LEN)),
        }
    }

    /// Records and broadcasts an event. Never blocks; having no subscriber is fine.
    pub fn publish(&self, event: Event) {
        // A poisoned lock only means a panic elsewhere while pushing; the deque is still valid.
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == HISTORY_LEN {
            history.pop_front();
        }
        history.push_back(event.clone());
        // Subscribe under the same lock as the history snapshot so no event is seen twice or lost.
        let _ = self.sender.send(event);
    }

    /// The recorded past events and a receiver for everything after them, taken atomically.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = self.sender.subscribe();
        (history.iter().cloned().collect(), receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_then_live_events_in_order() {
        let bus = EventBus::new();
        bus.publish(Event::now("image", "load", "a"));
        let (past, mut rx) = bus.subscribe();
        bus.publish(Event::now("image", "tag", "b"));
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].actor_id, "a");
        assert_eq!(rx.recv().await.unwrap().actor_id, "b");
    }

    #[test]
    fn history_is_bounded() {
        let bus = EventBus::new();
        for i in 0..(HISTORY_LEN + 10) {
            bus.publish(Event::now("image", "tag", &i.to_string()));
        }
        let (past, _) = bus.subscribe();
        assert_eq!(past.len(), HISTORY_LEN);
        assert_eq!(past[0].actor_id, "10");
    }
}
