//! The photographs as download jobs through one `rendition render` process
//! (2048 px JPEG, one job at a time), with its engine processes and with the
//! engine in the same process, beside vipsthumbnail on each file: what the
//! hop to an engine costs in CPU and memory, every process counted
//! ([`crate::tree`]).

use std::path::{Path, PathBuf};

use crate::bench_cmd::{Tally, Tools, report};

pub(crate) fn run(tools: &Tools, photos: &[PathBuf]) -> anyhow::Result<()> {
    let dir = tools.out.join("batch");
    let _ = std::fs::remove_dir_all(&dir);
    let jobs = write_jobs(&dir, photos)?;
    let mut vips = Tally::default();
    for (i, photo) in photos.iter().enumerate() {
        vips.add(
            tools.vips(photo, 2048, &tools.out.join(format!("batch-vips-{i}.jpg")))?,
            1,
        );
    }
    for (title, engines) in [
        ("engine processes (the worker's and render's default)", "processes"),
        (
            "engine in the same process (RENDITION_ENGINES=in-process)",
            "in-process",
        ),
    ] {
        let store = dir.join(format!("store-{engines}"));
        let mut args = vec![
            "render".into(),
            "--policy".into(),
            "fixtures/policy.yaml".into(),
            "--originals".into(),
            dir.join("o").display().to_string(),
            "--store".into(),
            store.display().to_string(),
            "--concurrency".into(),
            "1".into(),
            "--job".into(),
        ];
        args.extend(jobs.iter().map(|j| j.display().to_string()));
        let run = crate::tree::measure(&tools.us, &args, &[("RENDITION_ENGINES", engines)])?;
        let mut ours = Tally::default();
        ours.add(run, photos.len() as u32);
        report(
            &format!("{} jobs through `render`, 2048 px: {title}", photos.len()),
            &ours,
            &vips,
            None,
        );
    }
    println!();
    Ok(())
}

/// One 2048 px download job per photograph, its source copied beside.
fn write_jobs(dir: &Path, photos: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir.join("o"))?;
    let mut jobs = Vec::new();
    for (i, photo) in photos.iter().enumerate() {
        let source = format!("photo-{i}.jpg");
        std::fs::copy(photo, dir.join("o").join(&source))?;
        let job = serde_json::json!({
            "schema": "rendition.job/v1", "job_id": format!("batch-{i}"), "purpose": "download",
            "principal": {"user": "u-ben"},
            "asset": {"id": format!("a-batch-{i}"), "collection": "g-launch", "media": "image", "source": source},
            "request": {"rendition": "original", "format": "jpeg", "quality": 85, "on_exceed": "clamp"},
        });
        let path = dir.join(format!("job-{i}.json"));
        std::fs::write(&path, serde_json::to_vec(&job)?)?;
        jobs.push(path);
    }
    Ok(jobs)
}
