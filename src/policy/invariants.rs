//! The invariants every decision keeps, checked against a naive reading of
//! the policy document: the tree walked node by node, not the resolver's
//! precomputed settings. Written once for the property tests
//! (`tests/it/properties/`) and the fuzz targets (`src/fuzzing.rs`);
//! compiled only with the `fuzzing` feature, never into the binaries.

use std::collections::HashMap;

use super::document::{Collection, InheritMode, PolicyDocument, ShareKind, Visibility};
use super::preset::PresetSize;
use super::{Decision, Delivery, DownloadLimits, Limit, Query, Target};
use crate::job::{Media, OnExceed, Principal, Rendition};
use crate::rendition::MetadataProfile;

/// Every node by id, with its parent's id.
pub type Nodes<'a> = HashMap<&'a str, (&'a Collection, Option<&'a str>)>;

pub fn index(doc: &PolicyDocument) -> Nodes<'_> {
    fn walk<'a>(list: &'a [Collection], parent: Option<&'a str>, out: &mut Nodes<'a>) {
        for c in list {
            out.insert(&c.id, (c, parent.or(c.parent.as_deref())));
            walk(&c.children, Some(&c.id), out);
        }
    }
    let mut out = HashMap::new();
    walk(&doc.collections, None, &mut out);
    out
}

pub fn count_nodes(list: &[Collection]) -> usize {
    list.iter().map(|c| 1 + count_nodes(&c.children)).sum()
}

pub fn mode(nodes: &Nodes, id: &str) -> InheritMode {
    let (c, parent) = nodes[id];
    c.inherit.unwrap_or(if parent.is_none() {
        InheritMode::Native
    } else {
        InheritMode::Inherit
    })
}

/// The nearest node at or above `id` that does not inherit at all.
pub fn native_source<'a>(nodes: &Nodes<'a>, id: &str) -> &'a str {
    let mut at = nodes.get_key_value(id).map(|(k, _)| *k).expect("a node of the tree");
    while mode(nodes, at) != InheritMode::Native {
        at = nodes[at].1.expect("a top-level node is native");
    }
    at
}

pub fn is_within(nodes: &Nodes, id: &str, top: &str) -> bool {
    let mut at = Some(id);
    while let Some(n) = at {
        if n == top {
            return true;
        }
        at = nodes[n].1;
    }
    false
}

/// The largest collection limit any principal could get at `id` for
/// `media`: the native source's, or a native grant of an
/// `inherit_and_native` gallery on the way up.
pub fn largest_collection_limit(nodes: &Nodes, id: &str, media: Media) -> Limit {
    let mut best = Limit::None;
    let mut at = id;
    loop {
        let (c, parent) = nodes[at];
        match mode(nodes, at) {
            InheritMode::Native => return best.max(c.download.unwrap_or(DownloadLimits::NOTHING).for_media(media)),
            InheritMode::InheritAndNative => best = best.max(c.download.map_or(Limit::None, |d| d.for_media(media))),
            InheritMode::Inherit => {}
        }
        at = parent.expect("a top-level node is native");
    }
}

/// Roles a user could hold anywhere: the team role and every invitation's.
pub fn roles_of<'a>(doc: &'a PolicyDocument, nodes: &Nodes<'a>, user: &str) -> Vec<&'a str> {
    let u = &doc.users[user];
    let mut roles = vec![u.role.as_str()];
    for (c, _) in nodes.values() {
        for inv in &c.invited {
            let named = inv.user.as_deref() == Some(user) || inv.group.as_ref().is_some_and(|g| u.groups.contains(g));
            if named {
                roles.push(&inv.role);
            }
        }
    }
    roles
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// Presets: one the policy lacks is never delivered; a preset's frame
/// keeps its shape; a role or share held to presets gets images only as
/// one of its presets (staff aside).
fn check_presets(doc: &PolicyDocument, q: &Query, d: &Decision) -> Result<(), String> {
    let why = &d.reason;
    let asked = match &q.request.rendition {
        Rendition::Preset(name) => Some(name),
        _ => None,
    };
    if let Some(name) = asked
        && d.allowed
    {
        let Some(Ok(size)) = doc.presets.get(name).map(|p| p.size()) else {
            return Err(format!("a preset the policy lacks delivered: {why}"));
        };
        for t in &d.targets {
            if let (
                Target::Frame { width, height, .. },
                PresetSize::Frame {
                    width: w, height: h, ..
                },
            ) = (t, size)
            {
                let off = (u64::from(*width) * u64::from(h)).abs_diff(u64::from(*height) * u64::from(w));
                ensure!(
                    off <= u64::from(w.max(h)),
                    "a frame of another shape: {t:?} for {w}×{h}: {why}"
                );
            }
        }
    }
    if !d.allowed || q.asset.media != Media::Image {
        return Ok(());
    }
    let in_list = |list: &Option<Vec<String>>| list.as_ref().is_none_or(|l| asked.is_some_and(|a| l.contains(a)));
    if let Some(role) = d.role.as_ref().map(|r| &doc.roles[r]).filter(|r| !r.staff) {
        ensure!(
            in_list(&role.presets),
            "a role held to presets got another image: {why}"
        );
    }
    if let Principal::Share { share, .. } = q.principal
        && let Some(s) = doc.shares.iter().find(|s| &s.id == share)
    {
        ensure!(in_list(&s.presets), "a share held to presets got another image: {why}");
    }
    Ok(())
}

/// Metadata (docs/metadata.md): never more than the least profile the
/// decision's role (staff aside), the share, the preset (and the policy's
/// default, when neither role nor share sets one) allow; a proxy `rights`
/// at most; an original, which carries everything, only when nothing that
/// applies holds metadata below `all`.
fn check_metadata(doc: &PolicyDocument, q: &Query, d: &Decision) -> Result<(), String> {
    if !d.allowed {
        ensure!(d.metadata == MetadataProfile::None, "a denial with metadata");
        return Ok(());
    }
    let why = &d.reason;
    let role = d.role.as_ref().map(|r| &doc.roles[r]).filter(|r| !r.staff);
    let share = match q.principal {
        Principal::Share { share, .. } => doc.shares.iter().find(|s| &s.id == share),
        _ => None,
    };
    let mut set: Vec<MetadataProfile> = role.and_then(|r| r.metadata).into_iter().collect();
    set.extend(share.and_then(|s| s.metadata));
    let staff = d.role.as_ref().is_some_and(|r| doc.roles[r].staff) && role.is_none();
    if set.is_empty() && !staff {
        set.extend(doc.metadata.default);
    }
    // Nothing set: `rights` (staff: `all`); a preset only lowers that.
    let explicit = !set.is_empty();
    let base = set.iter().copied().min().unwrap_or(if staff {
        MetadataProfile::All
    } else {
        MetadataProfile::Rights
    });
    let preset = match &q.request.rendition {
        Rendition::Preset(name) => doc.presets.get(name).and_then(|p| p.metadata),
        _ => None,
    };
    let ceiling = (explicit || preset.is_some_and(|p| p < base)).then(|| base.min(preset.unwrap_or(base)));
    ensure!(
        !d.watermark || d.metadata <= MetadataProfile::Public,
        "a watermarked rendition with all its source's metadata (thumbnails): {why}"
    );
    let whole_only = matches!(q.asset.media, Media::Audio | Media::Other);
    if d.delivery == Some(Delivery::Original) {
        ensure!(
            (whole_only || ceiling.is_none_or(|c| c == MetadataProfile::All)) && d.metadata == MetadataProfile::All,
            "an original to a principal held to {ceiling:?} metadata: {why}"
        );
        return Ok(());
    }
    ensure!(
        d.metadata <= base.min(preset.unwrap_or(base)),
        "{:?} metadata above {ceiling:?}: {why}",
        d.metadata
    );
    if d.delivery == Some(Delivery::Proxy) {
        ensure!(
            d.metadata <= MetadataProfile::Rights,
            "a proxy with more than rights: {why}"
        );
    }
    Ok(())
}

/// Forensic marks (docs/forensic.md#policy): an image for a role, share or
/// preset that asks for one, or for a share outside the library's domains,
/// is marked (staff's own downloads aside), and a marked image is never
/// the original as stored; nothing but images is marked.
fn check_forensic(doc: &PolicyDocument, q: &Query, d: &Decision) -> Result<(), String> {
    let why = &d.reason;
    if !d.allowed || q.limit_media() != Media::Image {
        ensure!(
            !d.forensic,
            "a forensic mark on a denial or on what is not a picture: {why}"
        );
        return Ok(());
    }
    ensure!(
        !d.forensic || d.delivery != Some(Delivery::Original),
        "an original as stored said to be forensically marked: {why}"
    );
    let role = d.role.as_ref().map(|r| &doc.roles[r]);
    let staff = role.is_some_and(|r| r.staff) && d.delivery != Some(Delivery::Proxy);
    let share = match q.principal {
        Principal::Share { share, .. } => doc.shares.iter().find(|s| &s.id == share),
        _ => None,
    };
    let preset = match &q.request.rendition {
        Rendition::Preset(name) => doc.presets.get(name),
        _ => None,
    };
    let external = |email: &str| doc.forensic.external_shares && doc.forensic.is_external(email);
    let asked = role.is_some_and(|r| r.watermark.forensic())
        || share.is_some_and(|s| s.watermark.forensic() || external(&s.email))
        || preset.is_some_and(|p| p.watermark.forensic());
    ensure!(
        staff || !asked || d.forensic,
        "an unmarked image for a principal who must get a forensic mark: {why}"
    );
    Ok(())
}

/// Whether decision `d` to question `q` keeps every invariant of `doc`.
pub fn check(doc: &PolicyDocument, q: &Query, d: &Decision) -> Result<(), String> {
    let nodes = index(doc);
    let limit = d.limit.map_or(Limit::None, |c| c.as_limit());
    let media = q.limit_media();
    let why = &d.reason;
    // Shape: a denial carries nothing; an allowance says what to make.
    if d.allowed {
        ensure!(
            limit != Limit::None && !d.targets.is_empty() && d.delivery.is_some(),
            "{why}"
        );
    } else {
        let empty = d.limit.is_none() && d.targets.is_empty() && d.delivery.is_none() && !d.watermark && !d.forensic;
        ensure!(
            empty && d.reason.starts_with("denied: "),
            "a denial that carries something: {why}"
        );
    }
    // No target above the limit; an untouched original only when nothing
    // caps or marks it.
    for t in &d.targets {
        ensure!(t.as_limit() <= limit, "target {t:?} above {limit:?}: {why}");
        if *t == Target::Original {
            let untouched = limit == Limit::Original && !d.watermark && d.delivery == Some(Delivery::Original);
            ensure!(untouched, "an original that is capped or marked: {why}");
        }
    }
    ensure!(
        !(d.allowed && q.request.on_exceed == OnExceed::Deny && d.clamped),
        "on_exceed deny clamped: {why}"
    );
    check_presets(doc, q, d)?;
    check_metadata(doc, q, d)?;
    check_forensic(doc, q, d)?;
    if !nodes.contains_key(q.asset.collection.as_str()) {
        ensure!(!d.allowed, "an unknown collection admitted: {why}");
        return Ok(());
    }
    let user = match q.principal {
        Principal::User(u) => doc.users.get(u),
        _ => None,
    };
    if user.is_some_and(|u| doc.roles[&u.role].staff) {
        // Anything, except a proxy of what has no proxy or a preset the
        // policy lacks.
        let no_proxy = q.request.rendition == Rendition::Proxy && matches!(media, Media::Audio | Media::Other);
        let no_preset = matches!(&q.request.rendition, Rendition::Preset(p) if !doc.presets.contains_key(p));
        ensure!(d.allowed || no_proxy || no_preset, "staff denied: {why}");
        return Ok(());
    }
    let node = q.asset.collection.as_str();
    let visibility = nodes[native_source(&nodes, node)].0.visibility;
    if visibility == Some(Visibility::OwnerOnly) {
        ensure!(!d.allowed, "owner_only admitted a non-staff principal: {why}");
    }
    if !d.allowed {
        return Ok(());
    }
    ensure!(
        limit <= largest_collection_limit(&nodes, node, media),
        "above the collection limit: {why}"
    );
    if let Some(role) = d.role.as_ref().map(|r| &doc.roles[r]) {
        if let Some(ceiling) = role.download.filter(|_| !role.staff) {
            ensure!(limit <= ceiling.for_media(media), "above the role ceiling: {why}");
        }
        ensure!(
            !role.watermark.visible() || d.watermark,
            "a watermark role unmarked: {why}"
        );
    }
    if d.delivery == Some(Delivery::Proxy) {
        let proxy = doc.proxy.as_limits().for_media(media);
        ensure!(limit <= proxy && d.watermark, "a proxy too large or unmarked: {why}");
    }
    if let (Principal::User(u), Some(_)) = (q.principal, user) {
        let all_marked = roles_of(doc, &nodes, u)
            .iter()
            .all(|r| doc.roles[*r].watermark.visible());
        ensure!(
            !all_marked || d.watermark,
            "a user with only watermark roles unmarked: {why}"
        );
    }
    if let Principal::Share { share, email } = q.principal {
        let Some(s) = doc.shares.iter().find(|s| &s.id == share) else {
            return Err(format!("a share the policy does not have admitted: {why}"));
        };
        let good = !s.revoked && s.verified && s.expires_at.is_none_or(|at| at > q.now);
        ensure!(good, "a revoked, unverified or expired share admitted: {why}");
        ensure!(s.email.eq_ignore_ascii_case(email), "another recipient admitted: {why}");
        ensure!(
            s.scope.iter().any(|top| is_within(&nodes, node, top)),
            "outside the share's scope: {why}"
        );
        if s.kind == ShareKind::Proxy {
            let proxy = d.delivery == Some(Delivery::Proxy) && d.watermark && limit < Limit::Original;
            ensure!(proxy, "a proxy share got more than a proxy: {why}");
        }
    }
    if q.asset.restricted {
        let Some(user) = user else {
            return Err(format!("a restricted asset to a non-user: {why}"));
        };
        let may = user
            .manage_restricted
            .unwrap_or(doc.roles[&user.role].manage_restricted);
        ensure!(may, "a restricted asset to a user who may not manage them: {why}");
    }
    Ok(())
}
