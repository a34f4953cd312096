//! Publish-to-S3 automation: what a publish job was allowed (a rendition,
//! or the original for "publish all") is copied to the job's destination,
//! checked against its sha256 first; large objects pass through local disk.

use std::sync::Arc;

use super::{Pipeline, PipelineConfig, PipelineError, STREAM_ORIGINALS_FROM};
use crate::job::{Destination, Job, JobError};
use crate::layout;
use crate::plan::Plan;
use crate::result::RenditionRecord;
use crate::storage::{PutOptions, Store, StoreError, check_key, content_type_of};

impl PipelineConfig {
    /// A publish job with its destination checked against the allow-list
    /// and its prefix normalised; `None` for every other job.
    pub(super) fn publish_checked(&self, job: &Job) -> Result<Option<Job>, JobError> {
        let Some(destination) = &job.destination else {
            return Ok(None);
        };
        let destination = Some(self.publish.check(destination)?);
        Ok(Some(Job {
            destination,
            ..job.clone()
        }))
    }
}

impl<S: Store> Pipeline<S> {
    /// Copies each record's object to `destination` and notes where it
    /// went. The copy is checked against the record's sha256 (on the pool)
    /// before it is written.
    pub(super) async fn publish(
        &self,
        destination: &Destination,
        plan: &Plan,
        records: &mut [RenditionRecord],
    ) -> Result<(), PipelineError> {
        let target = self.renditions.destination(&destination.bucket)?;
        let single = records.len() == 1;
        for record in records.iter_mut() {
            let name = published_name(&plan.stem, record, single);
            let key = layout::published_key(&destination.prefix, &name);
            check_key(&key)?;
            let options = PutOptions {
                content_type: content_type_of(&record.key).to_string(),
                filename: Some(name),
                meta: [("sha256".to_string(), record.sha256.clone())].into(),
            };
            // One GET: a small rendition into memory, a large one (a proxy,
            // an original) to the job's directory and up again in parts.
            let dir = Arc::new(self.temp_dir()?);
            let file = dir.path().join("published");
            let bytes = match self
                .renditions
                .read_or_download(&record.key, STREAM_ORIGINALS_FROM, &file)
                .await
            {
                // Deleted since it was made or found (a lifecycle rule): forget
                // it, so the retry makes it again.
                Err(StoreError::NotFound(key)) => {
                    self.memory.stored.remove(&key);
                    return Err(PipelineError::Changed(key));
                }
                other => other?.1,
            };
            let changed = || PipelineError::Changed(record.key.clone());
            match bytes {
                Some(bytes) => {
                    let bytes = Arc::new(bytes);
                    if !self
                        .engines
                        .matches(bytes.clone(), record.sha256.clone(), plan.priority)
                        .await?
                    {
                        return Err(changed());
                    }
                    let bytes = Arc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone());
                    target.put(&key, bytes, options).await?;
                }
                None => {
                    let read = (file.clone(), dir.clone());
                    if self.engines.describe_file(read, plan.priority).await?.sha256 != record.sha256 {
                        return Err(changed());
                    }
                    target.upload(&key, &file, options).await?;
                }
            }
            record.published = Some(format!("s3://{}/{key}", destination.bucket));
        }
        Ok(())
    }
}

/// `stem.ext` for one rendition; `stem-WxH.ext` for each size of a set.
fn published_name(stem: &str, record: &RenditionRecord, single: bool) -> String {
    let ext = layout::extension(&record.key);
    match (single, record.width, record.height) {
        (false, Some(w), Some(h)) => format!("{stem}-{w}x{h}.{ext}"),
        _ => format!("{stem}.{ext}"),
    }
}
