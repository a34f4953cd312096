//! Publish-to-S3 automation: what a publish job was allowed (a rendition,
//! or the original for "publish all") is copied to the job's destination.

use sha2::{Digest, Sha256};

use super::PipelineError;
use crate::job::Destination;
use crate::result::RenditionRecord;
use crate::storage::{PutOptions, Store, check_key, content_type_of};

/// Copies each record's object to `destination` and notes where it went.
/// The copy is checked against the record's sha256 before it is written.
pub(super) async fn publish<S: Store>(
    renditions: &S,
    destination: &Destination,
    stem: &str,
    records: &mut [RenditionRecord],
) -> Result<(), PipelineError> {
    let target = renditions.bucket(&destination.bucket)?;
    let single = records.len() == 1;
    for record in records.iter_mut() {
        let bytes = renditions.get(&record.key).await?;
        if hex::encode(Sha256::digest(&bytes)) != record.sha256 {
            return Err(PipelineError::Store(crate::storage::StoreError::Io(format!(
                "{} changed while it was being published",
                record.key
            ))));
        }
        let name = published_name(stem, record, single);
        let key = match destination.prefix.trim_matches('/') {
            "" => name.clone(),
            prefix => format!("{prefix}/{name}"),
        };
        check_key(&key)?;
        let options = PutOptions {
            content_type: content_type_of(&record.key).to_string(),
            filename: Some(name),
            meta: [("sha256".to_string(), record.sha256.clone())].into(),
        };
        target.put(&key, bytes, options).await?;
        record.published = Some(format!("s3://{}/{key}", destination.bucket));
    }
    Ok(())
}

/// `stem.ext` for one rendition; `stem-WxH.ext` for each size of a set.
fn published_name(stem: &str, record: &RenditionRecord, single: bool) -> String {
    let ext = record.key.rsplit_once('.').map_or("bin", |(_, e)| e);
    match (single, record.width, record.height) {
        (false, Some(w), Some(h)) => format!("{stem}-{w}x{h}.{ext}"),
        _ => format!("{stem}.{ext}"),
    }
}
