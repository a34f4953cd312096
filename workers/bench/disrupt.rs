//! The disruptions `chaos` makes: a fleet of worker processes to SIGKILL
//! and restart, the S3 server to stop and start again with the very
//! command line it runs with, and RabbitMQ to restart (or, on the cluster
//! of scripts/cluster, each node in turn to stop and start).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Worker processes, one per slot, each with its own health port and log
/// (appended to across restarts).
pub struct Fleet {
    bin: PathBuf,
    slots: Vec<(Child, PathBuf, u16)>,
    next: usize,
}

impl Fleet {
    pub fn start(bin: PathBuf, n: usize, logs: &Path) -> anyhow::Result<Fleet> {
        let mut slots = Vec::new();
        for i in 0..n {
            let (log, port) = (logs.join(format!("worker-{i}.log")), 9490 + i as u16);
            let _ = std::fs::remove_file(&log);
            slots.push((spawn(&bin, &log, port)?, log, port));
        }
        Ok(Fleet { bin, slots, next: 0 })
    }

    /// SIGKILLs the next worker in turn and starts it again.
    pub fn kill_next(&mut self) {
        let i = self.next % self.slots.len();
        self.next += 1;
        let (child, log, port) = &mut self.slots[i];
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("chaos: killed worker {i}");
        match spawn(&self.bin, log, *port) {
            Ok(again) => *child = again,
            Err(e) => eprintln!("chaos: could not restart worker {i}: {e:#}"),
        }
    }

    /// The cluster node (1–3 of scripts/cluster) worker `i` consumes from,
    /// as its `/readyz` says.
    pub fn node_of(&self, i: usize) -> Option<usize> {
        use std::io::{Read, Write};
        let (_, _, port) = self.slots.get(i % self.slots.len())?;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", *port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let node = answer.lines().find_map(|l| l.strip_prefix("broker: "))?;
        let port: usize = node.rsplit(':').next()?.trim().parse().ok()?;
        port.checked_sub(5680).filter(|n| (1..=ClusterNodes::NODES).contains(n))
    }

    /// Restarts any worker that exited without being killed; how many.
    pub fn restart_exited(&mut self) -> usize {
        let mut exited = 0;
        for (i, (child, log, port)) in self.slots.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("chaos: worker {i} exited by itself ({status}); restarting it");
                exited += 1;
                if let Ok(again) = spawn(&self.bin, log, *port) {
                    *child = again;
                }
            }
        }
        exited
    }

    /// Stops every worker; returns their logs, concatenated.
    pub fn stop(mut self) -> String {
        let mut text = String::new();
        for (child, log, _) in &mut self.slots {
            let _ = child.kill();
            let _ = child.wait();
            text.push_str(&std::fs::read_to_string(log).unwrap_or_default());
        }
        text
    }
}

fn spawn(bin: &Path, log: &Path, port: u16) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    Command::new(bin)
        .arg("worker")
        .env("RENDITION_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RENDITION_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// The S3 server serving the endpoint's port, as it was started.
pub struct S3Server {
    argv: Vec<String>,
    cwd: PathBuf,
    port: u16,
    /// The running server: found at first, then the one we started.
    running: Mutex<(u32, Option<Child>)>,
}

impl S3Server {
    /// Finds the process whose command line says `--port PORT`.
    pub fn find(endpoint: &str) -> anyhow::Result<S3Server> {
        let port: u16 = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .with_context(|| format!("no port in {endpoint}"))?;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let argv: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let serves = argv.windows(2).any(|w| w[0] == "--port" && w[1] == port.to_string());
            if serves && argv.first().is_some_and(|a| a.ends_with("s3s-fs")) {
                let cwd = std::fs::read_link(entry.path().join("cwd"))?;
                let pid = entry.file_name().to_string_lossy().parse()?;
                let running = Mutex::new((pid, None));
                return Ok(S3Server {
                    argv,
                    cwd,
                    port,
                    running,
                });
            }
        }
        bail!("no s3s-fs process serves port {port}")
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        let mut running = self.running.lock().unwrap();
        let status = Command::new("kill").args(["-KILL", &running.0.to_string()]).status()?;
        if !status.success() {
            bail!("the S3 server (pid {}) was not there to stop", running.0);
        }
        if let Some(child) = &mut running.1 {
            let _ = child.wait();
        }
        wait_for(|| !open(self.port), Duration::from_secs(10)).context("the S3 server did not stop")
    }

    pub fn start(&self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cwd.join("target/s3s-fs.log"))
            .or_else(|_| std::fs::File::create("/dev/null"))?;
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.cwd)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("restarting the S3 server")?;
        *self.running.lock().unwrap() = (child.id(), Some(child));
        wait_for(|| open(self.port), Duration::from_secs(30)).context("the S3 server did not come back")
    }
}

/// How RabbitMQ is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// The whole node: `rabbitmqctl stop`, then `rabbitmq-server -detached`.
    Node,
    /// The application only: `rabbitmqctl stop_app`, `start_app`.
    App,
    None,
}

impl Broker {
    pub fn parse(name: &str) -> anyhow::Result<Broker> {
        Ok(match name {
            "node" => Broker::Node,
            "app" => Broker::App,
            "none" => Broker::None,
            other => bail!("--broker-restart is node, app or none, not {other:?}"),
        })
    }

    pub fn restart(self) -> anyhow::Result<()> {
        match self {
            Broker::Node => {
                ctl(&["stop"])?;
                Command::new("rabbitmq-server").arg("-detached").status()?;
            }
            Broker::App => {
                ctl(&["stop_app"])?;
                ctl(&["start_app"])?;
            }
            Broker::None => return Ok(()),
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while ctl(&["await_startup"]).is_err() {
            if Instant::now() > deadline {
                bail!("RabbitMQ did not come back in 2 minutes");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        wait_for(|| open(5672), Duration::from_secs(60)).context("RabbitMQ's port did not open")
    }
}

/// The three nodes of scripts/cluster, stopped and started through it.
pub struct ClusterNodes {
    script: PathBuf,
}

impl ClusterNodes {
    pub const NODES: usize = 3;

    pub fn new(script: PathBuf) -> anyhow::Result<ClusterNodes> {
        let nodes = ClusterNodes { script };
        nodes.run(&["start"]).context("scripts/cluster start")?;
        Ok(nodes)
    }

    /// The list workers are given (RENDITION_AMQP_URL).
    pub fn url(&self) -> anyhow::Result<String> {
        self.run(&["url"])
    }

    pub fn stop(&self, node: usize) -> anyhow::Result<()> {
        self.run(&["stop", &node.to_string()]).map(drop)
    }

    pub fn start(&self, node: usize) -> anyhow::Result<()> {
        self.run(&["start", &node.to_string()]).map(drop)
    }

    /// The node leading quorum queue `queue`.
    pub fn leader(&self, queue: &str) -> anyhow::Result<usize> {
        Ok(self.run(&["leader", queue])?.parse()?)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.script)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        if !out.status.success() {
            bail!("{} {args:?} failed", self.script.display());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

fn ctl(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("rabbitmqctl {args:?} failed");
    }
    Ok(())
}

fn open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_for(ready: impl Fn() -> bool, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() > deadline {
            bail!("gave up after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
