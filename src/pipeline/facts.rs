//! The reads a job needs: what the planner must be told (a share's
//! revocation marker, the policy's logo), the remembered result of a
//! repeated job, and the original's bytes. Each asks the store only when
//! this worker's memory cannot answer.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{Lookups, Outcome, Pipeline, PipelineError};
use crate::job::{Job, Principal};
use crate::layout;
use crate::plan::{Facts, LogoFact};
use crate::policy::Policy;
use crate::rendition::Logo;
use crate::result::JobResult;
use crate::storage::{ObjectInfo, PutOptions, Store, StoreError};
use crate::work::Work;

/// The remembered result's metadata field: when the answer was made.
const ANSWERED_AT: &str = "answered-at";
/// The remembered result's metadata field: the answer also went to the
/// dead-letter queue (a repeat sends it there again).
const DEAD_LETTER: &str = "dead-letter";

/// A remembered answer.
pub(super) struct Remembered {
    pub(super) result: JobResult,
    pub(super) answered_at: DateTime<Utc>,
    pub(super) dead_letter: bool,
}

/// The policy's logo, decoded once per policy version.
#[derive(Default)]
pub(super) struct LogoCache(Mutex<Option<(u64, String, Logo)>>);

impl<S: Store> Pipeline<S> {
    /// What the planner needs to know that only the stores can tell.
    pub(super) async fn facts(&self, policy: &Policy, job: &Job, now: DateTime<Utc>) -> Result<Facts, PipelineError> {
        let share_revoked = match &job.principal {
            Principal::Share { share, .. } => self.share_revoked(share).await?,
            _ => false,
        };
        Ok(Facts {
            now,
            max_link_ttl_s: self.config.max_link_ttl_s,
            share_revoked,
            logo: self.known_logo(policy),
            print_profiles: self.config.print_profiles.clone(),
            forensic_key: self.config.forensic_key.clone(),
        })
    }

    /// Whether a revoke message has been seen for `share`. A revocation is
    /// final, so once seen it is never asked again.
    pub(super) async fn share_revoked(&self, share: &str) -> Result<bool, PipelineError> {
        if self.memory.revoked.get(share).is_some() {
            return Ok(true);
        }
        let revoked = crate::revocation::is_revoked(&self.renditions, share).await?;
        if revoked {
            self.memory.revoked.insert(share, ());
        }
        Ok(revoked)
    }

    /// The policy's logo as far as this worker knows it, without I/O.
    fn known_logo(&self, policy: &Policy) -> LogoFact {
        let Some(key) = &policy.document().watermark.logo else {
            return LogoFact::None;
        };
        match &*self.logo.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((version, k, logo)) if (*version, k) == (policy.version(), key) => LogoFact::Found(logo.clone()),
            _ => LogoFact::Unread,
        }
    }

    /// Reads and decodes the policy's logo (on the pool), once per policy
    /// version; only a plan that draws it asks.
    pub(super) async fn read_logo(&self, policy: &Policy) -> Result<LogoFact, PipelineError> {
        let Some(key) = &policy.document().watermark.logo else {
            return Ok(LogoFact::None);
        };
        let bytes = match self.originals.get(key).await {
            Err(StoreError::NotFound(_)) => return Ok(LogoFact::Missing(key.clone())),
            other => other?,
        };
        let logo = self.engines.logo(bytes, key.clone()).await?;
        *self.logo.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((policy.version(), key.clone(), logo.clone()));
        Ok(LogoFact::Found(logo))
    }

    /// The result remembered for this very job (same id, same body: the
    /// memo's key says both), unless it was decided under another policy
    /// version (a policy update is decided afresh: a demoted principal gets
    /// the new decision) or one of its links has expired (then the job
    /// runs again: its renditions are found, its links new). A store that
    /// cannot be read is an error, not a miss: running the job again could
    /// answer differently from what upstream may already have received.
    pub(super) async fn recall(
        &self,
        memo: &str,
        job_id: &str,
        policy_version: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Remembered>, PipelineError> {
        let (info, bytes) = match self.renditions.read(memo).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // A memo that does not parse (an older layout, a torn write) is no answer.
        let Ok(result) = serde_json::from_slice::<JobResult>(&bytes) else {
            return Ok(None);
        };
        let fresh = result.renditions.iter().all(|r| r.expires_at > now);
        let same = result.job_id == job_id && result.policy_version == policy_version;
        // A memo from before answers carried their time: now will do.
        let answered_at = info.meta.get(ANSWERED_AT).and_then(|t| t.parse().ok()).unwrap_or(now);
        let dead_letter = info.meta.get(DEAD_LETTER).is_some_and(|v| v == "true");
        Ok((same && fresh).then_some(Remembered {
            result,
            answered_at,
            dead_letter,
        }))
    }

    pub(super) async fn remember(
        &self,
        memo: &str,
        result: &JobResult,
        answered_at: DateTime<Utc>,
        dead_letter: bool,
    ) -> Result<(), StoreError> {
        let mut meta = std::collections::BTreeMap::from([(ANSWERED_AT.to_string(), answered_at.to_rfc3339())]);
        if dead_letter {
            meta.insert(DEAD_LETTER.to_string(), "true".to_string());
        }
        let options = PutOptions {
            content_type: "application/json".into(),
            meta,
            ..PutOptions::default()
        };
        let bytes = serde_json::to_vec(result).expect("a result serializes");
        self.renditions.put(memo, bytes, options).await?;
        self.memory.answered.insert(memo, ());
        Ok(())
    }

    /// Remembers a transient failure that is answered anyway (out of
    /// attempts: dead-lettered), before its audit record is written, so
    /// that a redelivery after a crash answers (and records) the same.
    pub async fn remember_dead_letter(&self, work: &Work, outcome: &Outcome) -> Result<(), PipelineError> {
        let Work::Job(job) = work else { return Ok(()) };
        let memo = layout::memo_key(job);
        self.remember(&memo, &outcome.result, outcome.answered_at, true).await?;
        Ok(())
    }

    /// What the originals store says of a source, without its bytes.
    pub(super) async fn source_info(&self, key: &str) -> Result<ObjectInfo, PipelineError> {
        let info = self.originals.head(key).await?;
        let info = info.ok_or_else(|| PipelineError::MissingSource(key.to_string()))?;
        self.memory.sources.insert(key, info.identity.clone());
        Ok(info)
    }

    /// The identity of an image source without reading it: as this worker
    /// read or checked it less than `SOURCE_TRUST` ago, else from a HEAD
    /// when the store is asked anyway ([`Lookups::Always`]) or the bytes are
    /// at hand to be reused; `None` when only reading it will tell.
    pub(super) async fn source_identity(&self, key: &str) -> Result<Option<String>, PipelineError> {
        if let Some(identity) = self.memory.sources.get(key) {
            return Ok(Some(identity));
        }
        if self.config.lookups == Lookups::Always || self.sources.get(key).is_some() {
            return Ok(Some(self.source_info(key).await?.identity));
        }
        Ok(None)
    }

    /// An original's bytes: from the cache when they have the `known`
    /// identity, else one GET, kept when small enough. Only originals
    /// under `STREAM_ORIGINALS_FROM` come here (images are read by
    /// `image_source`, videos through local disk).
    pub(super) async fn source_bytes(&self, key: &str, known: Option<&str>) -> Result<Arc<Vec<u8>>, PipelineError> {
        if let (Some(identity), Some(cached)) = (known, self.sources.get(key))
            && cached.identity == identity
        {
            return Ok(cached.bytes);
        }
        let (info, bytes) = match self.originals.read(key).await {
            Err(StoreError::NotFound(_)) => return Err(PipelineError::MissingSource(key.to_string())),
            other => other?,
        };
        let bytes = Arc::new(bytes);
        self.sources.insert(key, &info.identity, bytes.clone());
        self.memory.sources.insert(key, info.identity.clone());
        Ok(bytes)
    }
}
