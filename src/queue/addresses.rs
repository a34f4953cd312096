//! `RENDITION_AMQP_URL` as a list of broker nodes, and the order a process
//! tries them in (docs/operating.md#a-rabbitmq-cluster).
//!
//! Every process shuffles the list once, so a fleet spreads its connections
//! over the nodes instead of piling onto the first; after losing a node it
//! tries the ones after it first and the lost one last.

use std::fmt;

use rand::Rng;
use rand::seq::SliceRandom;

/// More nodes than any RabbitMQ cluster an operator runs (clusters are odd
/// and small: 3, 5, 7).
const MAX_NODES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(String);

/// One node: the URL lapin connects to, and its `host:port` (what `/readyz`,
/// the metrics and the logs name; never the credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerNode {
    url: String,
    name: String,
}

impl BrokerNode {
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for BrokerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The nodes of one broker (a single node, or a cluster's), in the order
/// this process tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddresses {
    nodes: Vec<BrokerNode>,
}

/// What the first entry lends to the `host[:port]` entries after it.
struct Template<'a> {
    scheme: &'a str,
    userinfo: &'a str,
    /// `/vhost?query`, or empty.
    rest: &'a str,
}

impl BrokerAddresses {
    /// Comma-separated entries. The first is a whole URL
    /// (`amqp://user:password@host:port/vhost?heartbeat=10`); each later one
    /// is a whole URL too, or just `host[:port]`, which takes the first's
    /// scheme, credentials, vhost and query. A comma inside a password is
    /// written `%2C`.
    pub fn parse(raw: &str) -> Result<BrokerAddresses, AddressError> {
        let entries: Vec<&str> = raw.split(',').map(str::trim).collect();
        if entries.len() > MAX_NODES {
            return Err(AddressError(format!(
                "lists {} brokers; at most {MAX_NODES}",
                entries.len()
            )));
        }
        let first = entries[0];
        let first = template(first)?;
        let mut nodes: Vec<BrokerNode> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if entry.is_empty() {
                return Err(AddressError(format!("entry {} is empty", i + 1)));
            }
            let url = if entry.contains("://") {
                template(entry)?;
                entry.to_string()
            } else {
                let Template { scheme, userinfo, rest } = &first;
                format!("{scheme}://{userinfo}{entry}{rest}")
            };
            let node = node(&url).map_err(|e| AddressError(format!("entry {} ({entry}): {e}", i + 1)))?;
            if nodes.iter().any(|n| n.name == node.name) {
                return Err(AddressError(format!("{} is listed twice", node.name)));
            }
            nodes.push(node);
        }
        Ok(BrokerAddresses { nodes })
    }

    /// The same nodes in a random order: each process of a fleet starts on
    /// a different node.
    pub fn shuffled(mut self, rng: &mut impl Rng) -> BrokerAddresses {
        self.nodes.shuffle(rng);
        self
    }

    pub fn nodes(&self) -> &[BrokerNode] {
        &self.nodes
    }

    /// The list with passwords replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(|n| redact(&n.url)).collect();
        urls.join(",")
    }
}

/// Scheme, credentials and the part after the authority of a whole URL.
fn template(url: &str) -> Result<Template<'_>, AddressError> {
    let Some((scheme, after)) = url.split_once("://") else {
        // Not echoed: without a scheme there is no telling a password from a host.
        return Err(AddressError(
            "the first entry is not a URL: it is a whole amqp:// URL".into(),
        ));
    };
    match scheme {
        "amqp" => {}
        // lapin is built without a TLS stack (it would bring some thirty
        // crates): refused here, at startup, rather than at the first connect.
        "amqps" => {
            return Err(AddressError(
                "amqps:// is not supported by this build: reach a TLS broker through a local TLS tunnel \
                 (docs/operating.md#a-rabbitmq-cluster)"
                    .into(),
            ));
        }
        _ => {
            return Err(AddressError(format!(
                "scheme {scheme:?}: the brokers' URLs are amqp://"
            )));
        }
    }
    let (userinfo_len, authority_end) = authority(after);
    Ok(Template {
        scheme,
        userinfo: &after[..userinfo_len],
        rest: &after[authority_end..],
    })
}

/// In `user:pw@host:port/vhost?q`: the length of `user:pw@` and where the
/// host and port end.
fn authority(after_scheme: &str) -> (usize, usize) {
    let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
    let userinfo = after_scheme[..end].rfind('@').map_or(0, |at| at + 1);
    (userinfo, end)
}

fn node(url: &str) -> Result<BrokerNode, String> {
    let parsed: lapin::uri::AMQPUri = url.parse()?;
    Ok(BrokerNode {
        url: url.to_string(),
        name: format!("{}:{}", parsed.authority.host, parsed.authority.port),
    })
}

/// `amqp://user:***@host…`: the password never reaches a log.
pub fn redact(url: &str) -> String {
    let Some((scheme, after)) = url.split_once("://") else {
        return url.to_string();
    };
    let (userinfo, _) = authority(after);
    if userinfo == 0 {
        return url.to_string();
    }
    let user = after[..userinfo - 1].split(':').next().unwrap_or("");
    format!("{scheme}://{user}:***@{}", &after[userinfo..])
}

/// Which node to try next: the pure part of the worker's reconnect loop.
#[derive(Debug, Clone)]
pub struct Failover {
    len: usize,
    /// Where the next round of attempts starts.
    next: usize,
    /// The node a connection is open to.
    current: Option<usize>,
    /// The node whose connection was lost, until another connection opens.
    lost: Option<usize>,
    failovers: u64,
}

impl Failover {
    pub fn new(addresses: &BrokerAddresses) -> Failover {
        Failover {
            len: addresses.nodes.len(),
            next: 0,
            current: None,
            lost: None,
            failovers: 0,
        }
    }

    /// Every node once, from where the last round left off.
    pub fn round(&self) -> impl Iterator<Item = usize> + use<> {
        let (len, next) = (self.len, self.next);
        (0..len).map(move |i| (next + i) % len)
    }

    /// A connection to node `i` opened. Returns whether that was a failover:
    /// a move to another node than the one lost.
    pub fn connected(&mut self, i: usize) -> bool {
        let moved = self.lost.is_some_and(|lost| lost != i);
        self.failovers += u64::from(moved);
        self.current = Some(i);
        self.next = i;
        self.lost = None;
        moved
    }

    /// The connection was lost: the next round starts after that node, so
    /// it is tried last (it may be down).
    pub fn lost(&mut self) {
        if let Some(i) = self.current.take() {
            self.lost = Some(i);
            self.next = (i + 1) % self.len;
        }
    }

    pub fn failovers(&self) -> u64 {
        self.failovers
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn names(a: &BrokerAddresses) -> Vec<&str> {
        a.nodes().iter().map(BrokerNode::name).collect()
    }

    #[test]
    fn one_url_is_one_node() {
        let a = BrokerAddresses::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(names(&a), ["127.0.0.1:5672"]);
        assert_eq!(a.nodes()[0].url(), "amqp://guest:guest@127.0.0.1:5672/%2f");
    }

    #[test]
    fn short_entries_take_the_first_entrys_scheme_credentials_vhost_and_query() {
        let a = BrokerAddresses::parse("amqp://app:s%2Cecret@n1:5672/prod?heartbeat=10, n2:5673 ,n3").unwrap();
        assert_eq!(names(&a), ["n1:5672", "n2:5673", "n3:5672"]);
        assert_eq!(a.nodes()[1].url(), "amqp://app:s%2Cecret@n2:5673/prod?heartbeat=10");
        assert_eq!(a.nodes()[2].url(), "amqp://app:s%2Cecret@n3/prod?heartbeat=10");
    }

    #[test]
    fn whole_urls_keep_their_own_credentials() {
        let a = BrokerAddresses::parse("amqp://a:1@n1/%2f,amqp://b:2@n2:5682/%2f").unwrap();
        assert_eq!(a.nodes()[1].url(), "amqp://b:2@n2:5682/%2f");
    }

    #[test]
    fn bad_lists_are_refused_with_the_entry_named() {
        for (raw, says) in [
            ("", "is not a URL"),
            ("n1:5672,n2", "is not a URL"),
            ("amqp:/n1", "is not a URL"),
            ("http://n1", "scheme"),
            ("amqp://n1,,n2", "entry 2 is empty"),
            ("amqp://n1,n1:5672", "listed twice"),
            ("amqp://n1,n2:notaport", "entry 2 (n2:notaport)"),
            ("amqp://n1,ftp://n2", "scheme"),
            ("amqps://u:p@n1", "not supported by this build"),
            ("amqp://n1,amqps://n2", "not supported by this build"),
        ] {
            let e = BrokerAddresses::parse(raw).unwrap_err().to_string();
            assert!(e.contains(says), "{raw:?}: {e}");
        }
        let many = vec!["n"; MAX_NODES + 1].join(",");
        assert!(BrokerAddresses::parse(&format!("amqp://{many}")).is_err());
    }

    #[test]
    fn passwords_never_print() {
        let a = BrokerAddresses::parse("amqp://app:hunter2@n1/%2f,n2").unwrap();
        assert_eq!(a.redacted(), "amqp://app:***@n1/%2f,amqp://app:***@n2/%2f");
        assert!(!format!("{a:?}").contains("hunter2"));
        let e = BrokerAddresses::parse("app:hunter2@n1").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(redact("amqp://h:5672"), "amqp://h:5672");
    }

    #[test]
    fn each_process_shuffles_and_a_fleet_spreads_over_the_nodes() {
        let list = "amqp://n1,n2,n3";
        let mut first = std::collections::BTreeMap::<String, usize>::new();
        for seed in 0..300 {
            let a = BrokerAddresses::parse(list)
                .unwrap()
                .shuffled(&mut StdRng::seed_from_u64(seed));
            let mut sorted = names(&a);
            sorted.sort();
            assert_eq!(sorted, ["n1:5672", "n2:5672", "n3:5672"], "a permutation");
            *first.entry(names(&a)[0].to_string()).or_default() += 1;
        }
        // 300 processes: each node is the first of about 100.
        assert_eq!(first.len(), 3, "{first:?}");
        assert!(first.values().all(|&n| n > 60), "{first:?}");
    }

    #[test]
    fn after_a_loss_the_next_node_is_tried_first_and_the_lost_one_last() {
        let a = BrokerAddresses::parse("amqp://n1,n2,n3").unwrap();
        let mut f = Failover::new(&a);
        assert_eq!(f.round().collect::<Vec<_>>(), [0, 1, 2]);
        assert!(!f.connected(0), "the first connection is no failover");
        f.lost();
        assert_eq!(f.round().collect::<Vec<_>>(), [1, 2, 0]);
        // n2 is down too: the worker reaches n3.
        assert!(f.connected(2));
        assert_eq!(f.failovers(), 1);
        f.lost();
        assert_eq!(f.round().collect::<Vec<_>>(), [0, 1, 2]);
        // Only the lost node came back: a reconnection, not a failover.
        assert!(!f.connected(2));
        assert_eq!(f.failovers(), 1);
        // A failed round changes nothing: the next starts at the same place.
        f.lost();
        assert_eq!(f.round().collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn a_single_node_is_retried_as_before() {
        let a = BrokerAddresses::parse("amqp://n1").unwrap();
        let mut f = Failover::new(&a);
        f.connected(0);
        f.lost();
        assert_eq!(f.round().collect::<Vec<_>>(), [0]);
        assert!(!f.connected(0));
        assert_eq!(f.failovers(), 0);
    }
}
