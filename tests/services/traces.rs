//! W3C trace context through a real worker (docs/operating.md#traces): a
//! job's `traceparent` is carried to its reply and its audit record, a job
//! without one gets the trace named after its id, a forged one is ignored,
//! and with RENDITION_OTLP_ENDPOINT the spans reach a collector over
//! OTLP/HTTP (a listener here that keeps what is POSTed to it).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::lab::{Lab, job};

/// What the collector was sent: (path, body) of each POST.
type Posts = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An OTLP/HTTP collector that answers 200 to every POST and keeps it.
fn collector() -> (String, Posts) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(Mutex::new(Vec::new()));
    let kept = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let (mut request, mut length) = (String::new(), 0usize);
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = request.split(' ').nth(1).unwrap_or("").to_string();
            kept.lock().unwrap().push((path, body));
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (url, posts)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn trace_context_reaches_the_reply_the_audit_record_and_the_collector() {
    let (url, posts) = collector();
    let lab = Lab::new("traces");
    let worker = lab.worker(&[("RENDITION_OTLP_ENDPOINT", url.as_str())]);
    let upstream_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut headers = BTreeMap::new();
    headers.insert(
        "traceparent".to_string(),
        format!("00-{upstream_trace}-00f067aa0ba902b7-01"),
    );
    headers.insert("tracestate".to_string(), "dam=7".to_string());
    let body = serde_json::to_vec(&job("2-collaborator-2048", "tr-upstream")).unwrap();
    lab.send_with_headers("image", body, "tr-upstream", headers);
    lab.send(&job("2-collaborator-2048", "tr-own"));
    let mut forged = BTreeMap::new();
    forged.insert("traceparent".to_string(), "00-not-a-trace-01".to_string());
    let body = serde_json::to_vec(&job("2-collaborator-2048", "tr-forged")).unwrap();
    lab.send_with_headers("image", body, "tr-forged", forged);
    lab.replies(3, Duration::from_secs(60));

    let own_trace = hex::encode(&Sha256::digest(b"tr-own")[..16]);
    let forged_trace = hex::encode(&Sha256::digest(b"tr-forged")[..16]);
    let replies = lab.reply_headers.lock().unwrap().clone();
    let parent = |id: &str| replies[id].get("traceparent").cloned().unwrap_or_default();
    assert!(
        parent("tr-upstream").starts_with(&format!("00-{upstream_trace}-")),
        "{replies:?}"
    );
    assert!(
        !parent("tr-upstream").contains("00f067aa0ba902b7"),
        "the worker's own span is the parent now"
    );
    assert_eq!(
        replies["tr-upstream"].get("tracestate").map(String::as_str),
        Some("dam=7")
    );
    assert!(parent("tr-own").starts_with(&format!("00-{own_trace}-")), "{replies:?}");
    assert!(
        parent("tr-forged").starts_with(&format!("00-{forged_trace}-")),
        "{replies:?}"
    );

    let records = lab.audit(&[]);
    let trace_of = |id: &str| records.iter().find(|r| r.job_id == id).and_then(|r| r.trace_id.clone());
    assert_eq!(trace_of("tr-upstream").as_deref(), Some(upstream_trace));
    assert_eq!(trace_of("tr-own"), Some(own_trace.clone()));
    assert_eq!(trace_of("tr-forged"), Some(forged_trace));

    // The batch goes out within its delay (5 s), or when the worker stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    let exported = |trace: &str| {
        let raw = hex::decode(trace).unwrap();
        let posts = posts.lock().unwrap();
        posts
            .iter()
            .any(|(path, body)| path == "/v1/traces" && contains(body, &raw))
    };
    while !(exported(upstream_trace) && exported(&own_trace)) {
        assert!(
            Instant::now() < deadline,
            "no spans reached the collector:\n{}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let posts = posts.lock().unwrap();
    let all: Vec<u8> = posts.iter().flat_map(|(_, b)| b.clone()).collect();
    for name in ["rendition.job", "pipeline", "answer", "rendition-worker", "tr-upstream"] {
        assert!(contains(&all, name.as_bytes()), "{name} is in no exported span");
    }
}
