//! `rendition serve` against clients that hold connections: half-sent
//! heads, idle keep-alives, downloads nobody reads, more connections than
//! the cap, and a shutdown while any of them is there. Each wait is a
//! liveness bound several times the limit, not a measure of speed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rendition::serve::{ServeLimits, run_with_limits};
use rendition::storage::fs::FsStore;
use rendition::storage::link::LinkSigner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const SECRET: &str = "serve-limits-secret";
/// Larger than the kernel buffers of both ends together, so a client that
/// stops reading leaves the server with bytes it cannot send.
const BIG: usize = 24 << 20;
const BIG_KEY: &str = "renditions/big.bin";
const HEAD_ONLY: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

/// Limits long enough never to interfere, for tests of the others.
fn patient() -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_secs(120),
        send_timeout: Duration::from_secs(120),
        max_connections: 64,
        shutdown_grace: Duration::from_secs(120),
    }
}

/// A one-second header timeout, everything else patient.
fn impatient_for_heads() -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_secs(1),
        ..patient()
    }
}

struct Server {
    addr: SocketAddr,
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(dir: &Path, limits: ServeLimits) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let signer = LinkSigner::new(SECRET, &base);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let store = FsStore::new(dir, None);
        let task = tokio::spawn(run_with_limits(listener, store, signer, limits, shutdown));
        Server {
            addr,
            base,
            stop: Some(stop),
            task,
        }
    }

    /// A `GET` of a signed link to `key`, asking for the connection to be
    /// closed after it, so a response sent whole ends in EOF.
    fn get(&self, key: &str) -> Vec<u8> {
        let url = LinkSigner::new(SECRET, &self.base).sign(key, Utc::now() + chrono::Duration::minutes(5));
        let target = url.strip_prefix(&self.base).unwrap();
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
    }

    /// Signals shutdown; true when `run` returned within `bound`.
    async fn shut_down_within(&mut self, bound: Duration) -> bool {
        let _ = self.stop.take().unwrap().send(());
        match timeout(bound, &mut self.task).await {
            Ok(result) => {
                result.unwrap().unwrap();
                true
            }
            Err(_) => false,
        }
    }
}

fn write_big(dir: &Path) {
    let path = dir.join(BIG_KEY);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![7u8; BIG]).unwrap();
}

/// A connection whose receive window is small, so the server's writes stall
/// as soon as the client stops reading.
async fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection or `bound` passes: the bytes
/// read, and whether it was closed (EOF or a reset).
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + bound;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0) | Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads until `needle` has arrived or `bound` passes: the bytes read.
async fn read_until(stream: &mut TcpStream, needle: &[u8], bound: Duration) -> Vec<u8> {
    let deadline = Instant::now() + bound;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !has(&got, needle) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

fn has(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The length of what follows the response head in `response`.
fn body_len(response: &[u8]) -> usize {
    let head = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    response.len() - head - 4
}

/// Sends a signed `GET` for the big file and reads the response's head:
/// the bytes read so far.
async fn start_big_download(server: &Server, stream: &mut TcpStream) -> Vec<u8> {
    stream.write_all(&server.get(BIG_KEY)).await.unwrap();
    let started = read_until(stream, b"\r\n\r\n", Duration::from_secs(10)).await;
    assert!(has(&started, b"200 OK"), "{}", String::from_utf8_lossy(&started));
    started
}

/// A kept-alive connection that has had one answer.
async fn answered_once(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(&mut stream, b"\r\n\r\nok", Duration::from_secs(10)).await;
    assert!(has(&answer, b"\r\n\r\nok"), "{}", String::from_utf8_lossy(&answer));
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_head_is_dropped_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), impatient_for_heads()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HEAD_ONLY).await.unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent head still held its connection after 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_dropped_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), impatient_for_heads()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "a connection that sent nothing was still open after 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_dropped_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), impatient_for_heads()).await;
    let mut stream = answered_once(server.addr).await;
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "an idle kept-alive connection was still open after 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    let dir = tempfile::tempdir().unwrap();
    write_big(dir.path());
    let limits = ServeLimits {
        send_timeout: Duration::from_secs(1),
        ..patient()
    };
    let server = Server::start(dir.path(), limits).await;
    let mut stream = small_window(server.addr).await;
    let mut got = start_big_download(&server, &mut stream).await;
    // Stop reading well past the send timeout, then take what was sent.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(20)).await;
    got.extend(rest);
    assert!(closed, "the connection never ended");
    assert!(
        body_len(&got) < BIG,
        "the whole body arrived: the stalled response was never dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ServeLimits {
        max_connections: 1,
        ..patient()
    };
    let server = Server::start(dir.path(), limits).await;
    let first = answered_once(server.addr).await;
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let early = read_until(&mut second, b"\r\n\r\nok", Duration::from_millis(700)).await;
    assert!(
        early.is_empty(),
        "a second connection was served while the cap of 1 was taken"
    );
    drop(first);
    let late = read_until(&mut second, b"\r\n\r\nok", Duration::from_secs(10)).await;
    assert!(
        has(&late, b"\r\n\r\nok"),
        "the waiting connection was not served once the first closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_on_half_sent_silent_or_idle_clients() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), patient()).await;
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(HEAD_ONLY).await.unwrap();
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    let _idle = answered_once(server.addr).await;
    // Let the server take the half-sent bytes in before it is told to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.shut_down_within(Duration::from_secs(2)).await,
        "shutdown waited on clients that had no request in flight"
    );
    let (_, closed) = read_until_closed(&mut half, Duration::from_secs(2)).await;
    assert!(closed, "the half-sent connection outlived the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_download_finish() {
    let dir = tempfile::tempdir().unwrap();
    write_big(dir.path());
    let mut server = Server::start(dir.path(), patient()).await;
    let mut stream = small_window(server.addr).await;
    let mut got = start_big_download(&server, &mut stream).await;
    let _ = server.stop.take().unwrap().send(());
    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(60)).await;
    got.extend(rest);
    assert!(closed, "the download never ended");
    assert_eq!(body_len(&got), BIG, "the download was cut short");
    timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("run returns once the download is done")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_off_an_unread_download_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    write_big(dir.path());
    let limits = ServeLimits {
        shutdown_grace: Duration::from_secs(1),
        ..patient()
    };
    let mut server = Server::start(dir.path(), limits).await;
    let mut stream = small_window(server.addr).await;
    start_big_download(&server, &mut stream).await;
    assert!(
        server.shut_down_within(Duration::from_secs(5)).await,
        "shutdown waited past its grace on a client that reads nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ascii_download_name_survives_in_filename_star() {
    let dir = tempfile::tempdir().unwrap();
    let key = "renditions/a-1/x.jpg";
    std::fs::create_dir_all(dir.path().join("renditions/a-1")).unwrap();
    std::fs::write(dir.path().join(key), b"jpeg").unwrap();
    let sidecar = r#"{"content_type":"image/jpeg","filename":"café \"1\".jpg"}"#;
    std::fs::write(dir.path().join(format!("{key}.meta.json")), sidecar).unwrap();
    let server = Server::start(dir.path(), patient()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&server.get(key)).await.unwrap();
    let (got, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let response = String::from_utf8_lossy(&got).to_string();
    let disposition = response
        .lines()
        .find_map(|l| l.strip_prefix("content-disposition: "))
        .unwrap_or_else(|| panic!("no content-disposition in {response}"));
    assert_eq!(
        disposition,
        "attachment; filename=\"caf_ _1_.jpg\"; filename*=UTF-8''caf%C3%A9%20%221%22.jpg"
    );
}
