//! The broker's routing keys (docs/contract.md#broker-topology): the names a
//! revoke and a lane go by. Below both the messages ([`crate::job`],
//! [`crate::work`]) and the broker ([`crate::queue`]), and importing
//! neither, so neither has to know the other to name a delivery.

use crate::priority::Priority;

/// Routing key of a revoke message.
pub const REVOKE_ROUTING_KEY: &str = "revoke";

/// The lane a key goes to without a prefix: someone waits for everything
/// but a publish run.
pub fn usual_priority(base_key: &str) -> Priority {
    match base_key {
        "publish" => Priority::Bulk,
        _ => Priority::Interactive,
    }
}

/// The routing key that puts `base_key` (`image`, `publish`…) in the lane
/// of `priority`: the plain key when that is its usual lane.
pub fn lane_key(base_key: &str, priority: Priority) -> String {
    if priority == usual_priority(base_key) {
        base_key.to_string()
    } else {
        format!("{}.{base_key}", priority.as_str())
    }
}

/// The lane a routing key names, and the key without its prefix.
pub fn lane_of(routing_key: &str) -> (Priority, &str) {
    match routing_key.split_once('.') {
        Some((prefix, base)) => match Priority::parse(prefix) {
            Some(priority) => (priority, base),
            None => (usual_priority(routing_key), routing_key),
        },
        None => (usual_priority(routing_key), routing_key),
    }
}
