//! `print_profiles` (`RENDITION_PRINT_PROFILES`): the CMYK output profiles
//! presets separate with, `NAME=PATH,…` (docs/operating.md#configuration). Each
//! is read and checked once, at start: a file that is missing, larger than
//! 8 MiB or not a CMYK profile Little CMS reads stops the program, not a
//! job.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{SettingsError, invalid};
use crate::plan::PrintProfiles;
use crate::rendition::PrintProfile;
use crate::rendition::print::is_cmyk_output_profile;

const NAME: &str = "RENDITION_PRINT_PROFILES";
const MAX_BYTES: u64 = 8 << 20;

pub(super) fn print_profiles(raw: Option<&str>) -> Result<PrintProfiles, SettingsError> {
    let mut out = BTreeMap::new();
    for item in raw.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, path)) = item.split_once('=') else {
            return Err(invalid(NAME, format!("{item:?} is not NAME=PATH")));
        };
        let (name, path) = (name.trim(), path.trim());
        let fail = |why: String| invalid(NAME, format!("{name}: {path}: {why}"));
        let len = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?.len();
        if len > MAX_BYTES {
            return Err(fail(format!("{len} bytes is more than a print profile ({MAX_BYTES})")));
        }
        let icc = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        if !is_cmyk_output_profile(&icc) {
            return Err(fail("not a CMYK ICC profile".into()));
        }
        let profile = PrintProfile {
            name: name.to_string(),
            icc,
        };
        if out.insert(name.to_string(), profile).is_some() {
            return Err(invalid(NAME, format!("{name} is named twice")));
        }
    }
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cmyk_profiles_that_exist_are_taken() {
        assert!(print_profiles(None).unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let srgb = dir.path().join("srgb.icc");
        std::fs::write(&srgb, lcms2::Profile::new_srgb().icc().unwrap()).unwrap();
        let err = print_profiles(Some(&format!("web={}", srgb.display()))).unwrap_err();
        assert!(err.to_string().contains("not a CMYK"), "{err}");
        assert!(print_profiles(Some("x=/nowhere.icc")).is_err());
        assert!(print_profiles(Some("no-path")).is_err());
    }
}
