//! No replay hands a principal more than its own decision: two jobs that
//! share a `job_id` (another principal, asset or request, and sometimes a
//! policy update between them) run through one pipeline, the second as a
//! redelivery; the second's answer is always its own decision under the
//! policy in force (docs/security.md, "Replays").

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use rendition::job::{JOB_SCHEMA, Job, Media, Purpose};
use rendition::pipeline::{Arrival, Lookups, Pipeline, PipelineConfig};
use rendition::policy::document::PolicyDocument;
use rendition::policy::{Cap, Policy, Query, resolve};
use rendition::result::Status;
use rendition::storage::memory::MemoryStore;
use rendition::storage::{PutOptions, Store};
use rendition::work::Work;

use super::asks::Ask;
use super::generators::case;
use super::now;

/// A small photograph-like PNG: rendering it costs little.
fn source() -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn job(ask: &Ask) -> Job {
    Job {
        schema: JOB_SCHEMA.into(),
        job_id: "j-shared".into(),
        purpose: if ask.purpose == Purpose::Publish {
            Purpose::Download
        } else {
            ask.purpose
        },
        principal: ask.principal.clone(),
        asset: ask.asset.clone(),
        request: ask.request.clone(),
        link_ttl_s: 900,
        destination: None,
        priority: None,
    }
}

async fn answer(
    p: &Pipeline<MemoryStore>,
    policy: &Policy,
    job: &Job,
    at: DateTime<Utc>,
    repeat: bool,
) -> rendition::result::JobResult {
    let work = Work::Job(Box::new(job.clone()));
    p.run(policy, &work, Arrival { now: at, repeat }, None).await.result
}

fn image_asks() -> impl Strategy<Value = (PolicyDocument, Ask, Ask, bool, bool)> {
    (case(), any::<bool>(), any::<bool>(), any::<usize>()).prop_filter_map(
        "two image asks",
        |((doc, asks), update, always, pick)| {
            let images: Vec<Ask> = asks.into_iter().filter(|a| a.asset.media == Media::Image).collect();
            (images.len() >= 2).then(|| {
                let first = images[pick % images.len()].clone();
                let second = images[(pick / 7 + 1) % images.len()].clone();
                (doc, first, second, update, always)
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_global_rejects: 50_000, ..ProptestConfig::default() })]

    #[test]
    fn no_replay_hands_out_more_than_the_askers_own_decision((doc, first, second, update, always) in image_asks()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let lookups = if always { Lookups::Always } else { Lookups::OnRepeat };
        let config = PipelineConfig { render_threads: 1, lookups, ..PipelineConfig::default() };
        let originals = MemoryStore::new();
        rt.block_on(originals.put("originals/a-1", source(), PutOptions::default())).unwrap();
        let p = Pipeline::new(originals, MemoryStore::new(), config);
        let before = Policy::from_document(doc.clone()).unwrap();
        let in_force = if update {
            Policy::from_document(PolicyDocument { version: doc.version + 1, ..doc.clone() }).unwrap()
        } else {
            before.clone()
        };
        let (a, b) = (job(&first), job(&second));
        rt.block_on(answer(&p, &before, &a, now(), false));
        let replayed = rt.block_on(answer(&p, &in_force, &b, now(), true));
        let own = resolve(&in_force, &Query::of(&b, now()));
        prop_assert_eq!(replayed.policy_version, in_force.version());
        if let Some(decision) = &replayed.decision {
            prop_assert_eq!(decision, &own, "{:?}", replayed);
        }
        if !own.allowed {
            prop_assert!(replayed.status != Status::Done && replayed.renditions.is_empty(), "{:?}", replayed);
        }
        for r in &replayed.renditions {
            prop_assert_eq!(r.watermarked, own.watermark);
            if let Some(Cap::MaxEdge(n)) = own.limit {
                prop_assert!(r.width.unwrap_or(0).max(r.height.unwrap_or(0)) <= n, "{:?} over {}", r, n);
            }
        }
    }
}
