//! `rendition-bench trace`: the forensic mark's benchmark
//! (docs/performance.md#forensic-marks). `mark` renders each photograph
//! for its own recipient, marked and unmarked; the attacks are Pillow's
//! (scripts/trace-attacks.py); `read` traces every attacked copy and
//! tallies right, wrong and no one by attack. scripts/bench-trace runs it
//! all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use rayon::prelude::*;
use rendition::forensic::{ForensicKey, ForensicKeys, trace};
use rendition::job::Principal;
use rendition::rendition::{EngineLimits, OutputFormat, Size, Spec, render};

/// The benchmark's keys: the one marks are made with, and another.
const KEY: &[u8] = b"rendition-bench forensic key, 32 bytes or more";
const WRONG_KEY: &[u8] = b"rendition-bench another library's forensic key";

#[derive(clap::Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    step: Step,
}

#[derive(clap::Subcommand)]
enum Step {
    /// Renders the first COUNT photographs (1024–2048 px, JPEG q85) marked
    /// for a recipient each, and unmarked, timing both.
    Mark {
        photos: PathBuf,
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        count: usize,
    },
    /// Traces every image under DIR/<attack>/ against OUT's manifest.
    Read {
        attacked: PathBuf,
        out: PathBuf,
        /// Trace with another library's key: every answer must be no one.
        #[arg(long)]
        wrong_key: bool,
        /// DIR holds unmarked images (no manifest stems): every answer
        /// must be no one. Each is traced as if it showed one of the
        /// assets (in turn), with that asset's delivered sizes tried, as
        /// `rendition trace --asset` would.
        #[arg(long)]
        unmarked: bool,
        /// Name each copy not traced right on stderr.
        #[arg(long)]
        misses: bool,
    },
}

pub fn run(args: &TraceArgs) -> anyhow::Result<()> {
    match &args.step {
        Step::Mark { photos, out, count } => mark(photos, out, *count),
        Step::Read {
            attacked,
            out,
            wrong_key,
            unmarked,
            misses,
        } => read(attacked, out, (*wrong_key, *unmarked, *misses)),
    }
}

fn photos_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    photos.retain(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png" || e == "jpeg"));
    photos.sort();
    Ok(photos)
}

/// Process CPU time so far, in seconds.
fn cpu_s() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn spec(edge: u32, format: OutputFormat, forensic: Option<rendition::rendition::forensic::ForensicSpec>) -> Spec {
    Spec {
        sizes: vec![Size::LongEdge(edge)],
        format,
        quality: 85,
        watermark: None,
        page: 1,
        metadata: Default::default(),
        colour: Default::default(),
        dpi: None,
        forensic,
    }
}

fn mark(photos: &Path, out: &Path, count: usize) -> anyhow::Result<()> {
    let photos = photos_in(photos)?;
    if photos.len() < count {
        bail!("{} photographs, {count} asked", photos.len());
    }
    for dir in ["marked", "ref", "marked-png"] {
        std::fs::create_dir_all(out.join(dir))?;
    }
    let key = ForensicKey::new(KEY);
    let limits = EngineLimits::default();
    let mut manifest = String::from("stem\tdelivery_id\twidth\theight\tother_width\tother_height\n");
    let (mut plain_s, mut marked_s) = (0.0, 0.0);
    // One thread: CPU time per rendition, as the engine spends it.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    for (i, photo) in photos.iter().take(count).enumerate() {
        let stem = format!("p{i:03}");
        let source = std::fs::read(photo)?;
        let edge = 1024 + (i as u32 * 1024) / count.max(1) as u32;
        let recipient = Principal::User(format!("u-{stem}"));
        let mark = key.mark(&recipient, &stem);
        // Each twice, alternating, the quicker of each counted: the
        // machine's noise is as large as the difference sought.
        let (plain, marked) = pool.install(|| -> anyhow::Result<_> {
            let timed = |forensic: Option<_>| -> anyhow::Result<_> {
                let t0 = cpu_s();
                let out = render(&source, &spec(edge, OutputFormat::Jpeg, forensic), &limits)?;
                Ok((cpu_s() - t0, out))
            };
            let (p1, plain) = timed(None)?;
            let (m1, marked) = timed(Some(mark.clone()))?;
            let (p2, _) = timed(None)?;
            let (m2, _) = timed(Some(mark.clone()))?;
            plain_s += p1.min(p2);
            marked_s += m1.min(m2);
            Ok((plain, marked))
        })?;
        drop(plain);
        let r = &marked[0];
        std::fs::write(out.join("marked").join(format!("{stem}.jpg")), &r.bytes)?;
        for (dir, forensic) in [("ref", None), ("marked-png", Some(mark.clone()))] {
            let png = render(&source, &spec(edge, OutputFormat::Png, forensic), &limits)?;
            std::fs::write(out.join(dir).join(format!("{stem}.png")), &png[0].bytes)?;
        }
        // The asset was also delivered at another size, as a trail would say.
        let other = if edge > 1536 { 1024 } else { 2048 };
        let (ow, oh) = scaled(r.width, r.height, other);
        manifest.push_str(&format!(
            "{stem}\t{}\t{}\t{}\t{ow}\t{oh}\n",
            mark.delivery_id(),
            r.width,
            r.height
        ));
    }
    std::fs::write(out.join("manifest.tsv"), manifest)?;
    println!(
        "marking cost: {:.3} s CPU unmarked, {:.3} s marked over {count} renditions: ×{:.3} (+{:.1} %)",
        plain_s,
        marked_s,
        marked_s / plain_s,
        (marked_s / plain_s - 1.0) * 100.0
    );

    Ok(())
}

/// `w × h` with its long edge `edge`, as the engine rounds it.
fn scaled(w: u32, h: u32, edge: u32) -> (u32, u32) {
    let long = w.max(h) as f64;
    let f = |v: u32| ((v as f64 * edge as f64 / long).round() as u32).max(1);
    (f(w), f(h))
}

struct Delivered {
    id: String,
    sizes: Vec<(u32, u32)>,
}

fn manifest(out: &Path) -> anyhow::Result<BTreeMap<String, Delivered>> {
    let text = std::fs::read_to_string(out.join("manifest.tsv"))?;
    let mut map = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let n = |i: usize| f[i].parse::<u32>().unwrap_or(0);
        map.insert(
            f[0].to_string(),
            Delivered {
                id: f[1].to_string(),
                sizes: vec![(n(2), n(3)), (n(4), n(5))],
            },
        );
    }
    Ok(map)
}

#[derive(Default)]
struct Tally {
    right: AtomicU64,
    wrong: AtomicU64,
    none: AtomicU64,
    cpu_us: AtomicU64,
    max_cpu_us: AtomicU64,
}

fn read(attacked: &Path, out: &Path, (wrong_key, unmarked, misses): (bool, bool, bool)) -> anyhow::Result<()> {
    let delivered = manifest(out)?;
    let assets: Vec<&Delivered> = delivered.values().collect();
    let keys = ForensicKeys(vec![ForensicKey::new(if wrong_key { WRONG_KEY } else { KEY })]);
    let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
    if unmarked {
        groups.push(("unmarked".into(), photos_in(attacked)?));
    } else {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(attacked)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.file_name().unwrap_or_default().to_string_lossy().to_string();
            groups.push((name, photos_in(&dir)?));
        }
    }
    println!("attack\tfiles\ttraced right\tnamed wrongly\tno one\tright %\tCPU ms/trace (mean, max)");
    for (name, files) in groups {
        let tally = Tally::default();
        files.par_iter().enumerate().for_each(|(i, file)| {
            let stem = file.file_stem().unwrap_or_default().to_string_lossy().to_string();
            let expected = delivered.get(&stem);
            let sizes = match expected {
                Some(d) if !unmarked => d.sizes.clone(),
                _ => assets[i % assets.len()].sizes.clone(),
            };
            let t0 = thread_cpu_us();
            let found = image::open(file).ok().and_then(|img| trace(&img, &keys, &sizes));
            let spent = thread_cpu_us() - t0;
            tally.cpu_us.fetch_add(spent, Ordering::Relaxed);
            tally.max_cpu_us.fetch_max(spent, Ordering::Relaxed);
            if misses && !(wrong_key || unmarked) && found.as_ref().map(|t| &t.delivery_id) != expected.map(|d| &d.id) {
                eprintln!("missed: {name} {stem} {found:?}");
            }
            let counter = match (found, expected) {
                (None, _) => &tally.none,
                (Some(t), Some(d)) if !unmarked && !wrong_key && t.delivery_id == d.id => &tally.right,
                (Some(_), _) => &tally.wrong,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let n = files.len().max(1) as f64;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        println!(
            "{name}\t{}\t{}\t{}\t{}\t{:.1}\t{:.0}, {:.0}",
            files.len(),
            get(&tally.right),
            get(&tally.wrong),
            get(&tally.none),
            get(&tally.right) as f64 * 100.0 / n,
            get(&tally.cpu_us) as f64 / n / 1000.0,
            get(&tally.max_cpu_us) as f64 / 1000.0
        );
    }
    Ok(())
}

/// This thread's CPU time so far, in microseconds.
fn thread_cpu_us() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}
