//! Workers given no S3 keys find them as every AWS tool does (aws-config's
//! chain), and s3s-fs, which checks every signature, accepts what they sign.
//! The worker's environment is cleared, so the only credentials it can
//! find are the ones each test puts in its way.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rendition::result::Status;

use crate::lab::{Lab, job, test_keys};

/// Runs one job on the worker and downloads what it answered.
fn job_round_trip(lab: &Lab, id: &str) {
    lab.send(&job("2-collaborator-2048", id));
    let result = lab.reply();
    assert_eq!(result.status, Status::Done, "{result:?}");
    let rendition = &result.renditions[0];
    assert_eq!(rendition.width, Some(2048));
    let response = reqwest::blocking::get(&rendition.url).unwrap();
    assert_eq!(response.status().as_u16(), 200, "{}", rendition.url);
    assert_eq!(response.bytes().unwrap().len() as u64, rendition.bytes);
}

#[test]
fn a_worker_with_only_a_profile_file_works_end_to_end() {
    let lab = Lab::new("profile");
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    let keys = test_keys();
    // The default profile holds keys s3s-fs refuses: only the named one works.
    let credentials = format!(
        "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n\
         [rendition-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        keys.access_key, keys.secret_key
    );
    std::fs::write(aws.join("credentials"), credentials).unwrap();
    std::fs::write(aws.join("config"), "[profile rendition-test]\nregion = us-east-1\n").unwrap();
    let home = home.path().to_str().unwrap();
    let worker = lab.worker_without_keys(&[
        ("HOME", home),
        ("AWS_PROFILE", "rendition-test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    job_round_trip(&lab, "profile");
    assert!(
        worker.log_text().contains("the AWS chain"),
        "the start-up log says where keys come from"
    );
}

#[test]
fn a_worker_with_only_instance_metadata_works_end_to_end() {
    let lab = Lab::new("imds");
    let imds = FakeImds::start();
    let home = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{}", imds.addr);
    let _worker = lab.worker_without_keys(&[
        ("HOME", home.path().to_str().unwrap()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
    ]);
    job_round_trip(&lab, "imds");
    let seen = imds.requests();
    assert!(
        seen.iter().any(|r| r == "PUT /latest/api/token"),
        "IMDSv2: a session token first: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r == "GET /latest/meta-data/iam/security-credentials/rendition-worker"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|r| r.starts_with("401")),
        "every read carried the token: {seen:?}"
    );
}

/// The EC2 instance metadata service as far as credentials go: IMDSv2
/// tokens, the role's name, and temporary keys for it (s3s-fs's own keys
/// with a session token, which the signatures then carry).
struct FakeImds {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

const TOKEN: &str = "imds-session-token";
const ROLE: &str = "rendition-worker";

impl FakeImds {
    fn start() -> FakeImds {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let _ = answer(stream, &seen);
                });
            }
        });
        FakeImds { addr, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Answers the requests of one connection (the SDK keeps it alive).
fn answer(stream: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut token = None;
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "x-aws-ec2-metadata-token" => token = Some(value.trim().to_string()),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        std::io::Read::read_exact(&mut reader, &mut vec![0; length])?;
        let (status, body) = respond(&method, &path, token.as_deref());
        let record = if status == 401 {
            format!("401 {method} {path}")
        } else {
            format!("{method} {path}")
        };
        seen.lock().unwrap().push(record);
        let reason = if status == 200 { "OK" } else { "Error" };
        write!(
            stream,
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n{body}",
            body.len()
        )?;
    }
}

fn respond(method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    if method == "PUT" && path == "/latest/api/token" {
        return (200, TOKEN.to_string());
    }
    if token != Some(TOKEN) {
        return (401, String::new());
    }
    let credentials = "/latest/meta-data/iam/security-credentials/";
    match path.strip_prefix(credentials) {
        Some("") => (200, ROLE.to_string()),
        Some(ROLE) => {
            let keys = test_keys();
            let now = chrono::Utc::now();
            let body = serde_json::json!({
                "Code": "Success",
                "LastUpdated": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "Type": "AWS-HMAC",
                "AccessKeyId": keys.access_key,
                "SecretAccessKey": keys.secret_key,
                "Token": "session-token-from-imds",
                "Expiration": (now + chrono::Duration::hours(6)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            (200, body.to_string())
        }
        _ => (404, String::new()),
    }
}
