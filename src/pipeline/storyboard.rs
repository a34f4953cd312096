//! A storyboard (docs/contract.md#storyboards): the sheet, made in a video
//! engine and sized, watermarked and encoded under the image rules as a
//! poster is, then its WebVTT index, written here from the duration the
//! engine read. Both are stored by content, the index beside the sheet;
//! a repeat finds both or makes both again.

use super::{Pipeline, PipelineError, missing_all};
use crate::layout;
use crate::plan::Plan;
use crate::rendition::{RenderError, Spec};
use crate::result::RenditionRecord;
use crate::storage::{RenditionMeta, Store};
use crate::video::Sheet;

impl<S: Store> Pipeline<S> {
    pub(super) async fn storyboard(&self, plan: &Plan, spec: &Spec) -> Result<Vec<RenditionRecord>, PipelineError> {
        let info = self.source_info(&plan.source).await?;
        let sheet = Sheet::DEFAULT;
        // A sheet is not a poster of the same spec: its own content address.
        let digest = format!(
            "{}|storyboard:{}x{}x{}",
            layout::source_digest(&plan.source, &info.identity),
            sheet.columns,
            sheet.rows,
            sheet.tile_width
        );
        let found = self.found_sizes(plan, spec, &digest, true).await?;
        let index_key = |sheet_key: &str| format!("{}.vtt", sheet_key.rsplit_once('.').map_or(sheet_key, |(s, _)| s));
        if let [Some((key, _))] = found.as_slice()
            && let Some(meta) = self.lookup(&index_key(key), true).await?
        {
            let index = self.record(&index_key(key), &meta, plan, true).await?;
            let mut records = self.deliver(plan, spec, &digest, found, Vec::new()).await?;
            records.push(index);
            return Ok(records);
        }
        self.check_video_size(&info)?;
        let staged = self.stage(&plan.source, &info).await?;
        let input = (staged.source.clone(), staged.keep());
        let (made, duration) = self
            .engines
            .storyboard(input, (spec.clone(), sheet), plan.priority)
            .await?;
        let (width, height) = made
            .first()
            .and_then(|m| m.meta.width.zip(m.meta.height))
            .ok_or_else(|| RenderError::CorruptInput("a storyboard without a sheet".into()))?;
        let mut records = self.deliver(plan, spec, &digest, missing_all(&found), made).await?;
        // The sheet by its key's own name: content-addressed like the index
        // beside it, and nothing of the job's (a file name could carry a
        // line break, a forged cue).
        let sheet_name = records[0].key.rsplit('/').next().unwrap_or_default().to_string();
        let text = webvtt(sheet, duration, (width, height), &sheet_name);
        let key = index_key(&records[0].key);
        let meta = RenditionMeta {
            bytes: text.len() as u64,
            sha256: super::engines::sha256(text.as_bytes()),
            width: None,
            height: None,
            watermarked: false,
        };
        self.store(&key, text.into_bytes(), &meta, "text/vtt", &plan.filename("vtt"))
            .await?;
        records.push(self.record(&key, &meta, plan, false).await?);
        Ok(records)
    }
}

/// The WebVTT index of a sheet `width`×`height` named `sheet_name`: one cue
/// per tile, its share of the duration, the tile as a media fragment
/// (`name#xywh=x,y,w,h`), as video players' thumbnail tracks read it.
pub fn webvtt(sheet: Sheet, duration_s: f64, (width, height): (u32, u32), sheet_name: &str) -> String {
    let tiles = sheet.tiles();
    let (tile_w, tile_h) = (width / sheet.columns, height / sheet.rows);
    let mut out = String::from("WEBVTT\n");
    for i in 0..tiles {
        let (start, end) = (
            duration_s * f64::from(i) / f64::from(tiles),
            duration_s * f64::from(i + 1) / f64::from(tiles),
        );
        let (x, y) = (i % sheet.columns * tile_w, i / sheet.columns * tile_h);
        out.push_str(&format!(
            "\n{} --> {}\n{sheet_name}#xywh={x},{y},{tile_w},{tile_h}\n",
            timestamp(start),
            timestamp(end)
        ));
    }
    out
}

fn timestamp(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_covers_the_duration_tile_by_tile() {
        let text = webvtt(Sheet::DEFAULT, 100.0, (800, 450), "clip.jpg");
        assert!(text.starts_with("WEBVTT\n"));
        let cues: Vec<&str> = text.lines().filter(|l| l.contains("-->")).collect();
        assert_eq!(cues.len(), 25);
        assert_eq!(cues[0], "00:00:00.000 --> 00:00:04.000");
        assert_eq!(cues[24], "00:01:36.000 --> 00:01:40.000");
        assert!(text.contains("clip.jpg#xywh=0,0,160,90\n"));
        assert!(text.contains("clip.jpg#xywh=640,360,160,90\n"), "the last tile");
        assert_eq!(timestamp(3725.5), "01:02:05.500");
    }
}
