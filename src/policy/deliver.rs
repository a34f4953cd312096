//! Steps 6–8 of docs/rules.md: from an admitted principal to what may be
//! delivered: the most restrictive limit, the watermark, the clamp, the
//! metadata.

use super::Policy;
use super::admit::{Admission, role_ceiling};
use super::decision::{Decision, Delivery, Rule, Target};
use super::document::{PublishRight, ShareRight};
use super::limit::{AUDIO_PROXY_KBPS, Cap, DownloadLimits, Limit};
use super::marks::Marks;
use super::preset::PresetSize;
use super::query::Query;
use super::tree::NodeIdx;
use crate::job::{Media, OnExceed, Principal, Purpose, Rendition};
use crate::rendition::MetadataProfile;

/// Where a limit comes from, for the reason.
enum Bound {
    /// A collection setting: the asset's node and the node that set it.
    Collection {
        node: NodeIdx,
        from: NodeIdx,
    },
    Role(String),
    /// A proxy cap, and why delivery is a proxy.
    Proxy(String),
}

pub fn deliver(policy: &Policy, q: &Query, mut adm: Admission) -> Decision {
    if let Err(denial) = check_restricted(q, &adm).and_then(|_| check_purpose(q, &mut adm)) {
        return denial;
    }
    let preset = match preset(policy, q, &adm) {
        Ok(preset) => preset,
        Err(denial) => return denial,
    };
    // Audio's proxy is a bit rate, not the proxy size (nor a watermark).
    if q.request.rendition == Rendition::Proxy && adm.proxy_only.is_none() && q.asset.media != Media::Audio {
        adm.proxy_only = Some("a proxy was asked for".into());
    }
    let bounds = bounds(policy, &adm);
    // A poster (a storyboard) shows the video (or the document's page): it
    // needs the rights to the asset's own file type, then obeys the image
    // limits.
    if q.request.rendition.is_still()
        && let (Limit::None, Some(b)) = tightest(&bounds, q.asset.media)
    {
        return deny_nothing(policy, b, q.asset.media);
    }
    let (limit, binding) = tightest(&bounds, q.limit_media());
    if limit == Limit::None {
        return deny_nothing(policy, binding.expect("a none limit has a bound"), q.limit_media());
    }
    let watermark = watermark_reason(policy, q, &adm);
    // Only pictures carry a forensic mark (docs/forensic.md#what-is-marked).
    let forensic = forensic_reason(policy, q, &adm).filter(|_| q.limit_media() == Media::Image);
    if let Some(why) = &watermark
        && matches!(q.limit_media(), Media::Audio | Media::Other)
    {
        let media = q.asset.media.plural();
        return Decision::deny(
            Rule::Watermark,
            None,
            format!("{why}, and {media} cannot be watermarked"),
        );
    }
    let (metadata, held_by) = metadata(policy, q, &adm, watermark.is_some());
    // An original image or video carries all its metadata: one held to less
    // is re-encoded (audio and other files go whole, as stored, or not).
    let held = metadata < MetadataProfile::All && held_by.is_some();
    let reencode =
        watermark.is_some() || forensic.is_some() || held && matches!(q.asset.media, Media::Image | Media::Video);
    // The shortest length any limit sets on audio (a preview).
    let seconds = bounds.iter().filter_map(|(l, _)| l.audio_seconds).min();
    let (targets, clamped) = targets(q, (limit, seconds), reencode, preset);
    if clamped
        && q.request.on_exceed == OnExceed::Deny
        && let (Limit::Px(n), Some(bound)) = (limit, binding)
    {
        let asked = q.request.rendition.describe();
        let cap = cap_statement(policy, q, bound, n);
        return Decision::deny(
            Rule::OnExceed,
            None,
            format!("on_exceed is deny and {asked} exceeds the limit: {cap}"),
        );
    }
    let delivery = match (targets.as_slice(), &adm.proxy_only) {
        ([Target::Original], _) => Delivery::Original,
        (_, Some(_)) => Delivery::Proxy,
        _ => Delivery::Rendition,
    };
    let mut reason = allowed_reason(policy, q, &adm, limit, binding, watermark.as_deref());
    if let Some(why) = &forensic {
        reason.push_str(&format!("; forensically marked ({why})"));
    }
    if let Some(who) = held_by.filter(|_| delivery != Delivery::Original) {
        reason.push_str(&format!("; {who} holds metadata to {}", metadata.name()));
    }
    Decision {
        allowed: true,
        limit: Cap::new(limit, q.limit_media()),
        watermark: watermark.is_some(),
        forensic: forensic.is_some(),
        clamped,
        role: adm.role.map(|(name, _)| name.to_string()),
        reason,
        rule: if adm.staff { Rule::Staff } else { Rule::Limit },
        node: Some(policy.tree().id(adm.node).to_string()),
        delivery: Some(delivery),
        targets,
        metadata: if delivery == Delivery::Original {
            MetadataProfile::All
        } else {
            metadata
        },
    }
}

/// How much metadata a rendition carries (docs/metadata.md): the least of
/// the profiles the role and the share set (the policy's default when
/// neither does; `rights` when none is set, `all` for staff), lowered by
/// the preset's; `public` at most when watermarked, `rights` at most on a
/// proxy. With who set it, when someone did.
fn metadata(policy: &Policy, q: &Query, adm: &Admission, watermarked: bool) -> (MetadataProfile, Option<String>) {
    let mut held: Vec<(MetadataProfile, String)> = Vec::new();
    if !adm.staff {
        if let Some((name, p)) = adm.role.and_then(|(name, r)| Some((name, r.metadata?))) {
            held.push((p, format!("role {name}")));
        }
        if let Some(share) = adm.share.filter(|s| s.metadata.is_some()) {
            held.extend(share.metadata.map(|p| (p, format!("share {}", share.id))));
        }
        if held.is_empty() {
            held.extend(
                policy
                    .document()
                    .metadata
                    .default
                    .map(|p| (p, "the policy's default".into())),
            );
        }
    }
    let (mut profile, mut who) = match held.into_iter().min_by_key(|(p, _)| *p) {
        Some((p, who)) => (p, Some(who)),
        None if adm.staff => (MetadataProfile::All, None),
        None => (MetadataProfile::Rights, None),
    };
    // A preset lowers the principal's profile, never raises it.
    if let Rendition::Preset(name) = &q.request.rendition
        && let Some(p) = policy.document().presets.get(name).and_then(|p| p.metadata)
        && p < profile
    {
        (profile, who) = (p, Some(format!("preset {name}")));
    }
    // A marked picture carries no unmarked one: `all` would copy the
    // source's EXIF and XMP thumbnails, so a watermark caps it at `public`.
    let cap = match (&adm.proxy_only, watermarked) {
        (Some(_), _) => MetadataProfile::Rights,
        (None, true) => MetadataProfile::Public,
        (None, false) => MetadataProfile::All,
    };
    (profile.min(cap), who)
}

fn check_restricted(q: &Query, adm: &Admission) -> Result<(), Decision> {
    if !q.asset.restricted || adm.manage_restricted {
        return Ok(());
    }
    let who = q.principal.recipient();
    Err(Decision::deny(
        Rule::Restricted,
        None,
        format!(
            "{} is a restricted asset and {who} may not manage restricted assets",
            q.asset.id
        ),
    ))
}

/// Publishing and sharing need their own role rights.
fn check_purpose(q: &Query, adm: &mut Admission) -> Result<(), Decision> {
    if adm.staff {
        return Ok(());
    }
    let deny = |reason: String| Err(Decision::deny(Rule::Purpose, None, reason));
    let is_user = matches!(q.principal, Principal::User(_));
    match (q.purpose, adm.role) {
        (Purpose::Publish, Some((name, role))) if is_user => match role.publish {
            PublishRight::None => deny(format!("role {name} may not publish")),
            PublishRight::Generated if !q.asset.generated => deny(format!(
                "role {name} may publish generated assets only, and {} is not one",
                q.asset.id
            )),
            _ => Ok(()),
        },
        (Purpose::Share, Some((name, role))) if is_user => match role.share {
            ShareRight::None => deny(format!("role {name} may not share")),
            ShareRight::Proxy => {
                adm.proxy_only = Some(format!("role {name} may share proxies only"));
                Ok(())
            }
            ShareRight::Original => Ok(()),
        },
        (Purpose::Publish, _) => deny("only users with a publish right may publish".into()),
        (Purpose::Share, _) if !matches!(q.principal, Principal::Share { .. }) => {
            deny("only users with a share right may share".into())
        }
        _ => Ok(()),
    }
}

/// Every limit that applies to this admission, collection first.
fn bounds(policy: &Policy, adm: &Admission) -> Vec<(DownloadLimits, Bound)> {
    let mut out = Vec::new();
    if !adm.staff {
        out.push((
            adm.download,
            Bound::Collection {
                node: adm.node,
                from: adm.download_from,
            },
        ));
        if let Some((name, ceiling)) = adm.role.and_then(|(name, r)| role_ceiling(r).map(|c| (name, c))) {
            out.push((ceiling, Bound::Role(name.to_string())));
        }
    }
    if let Some(why) = &adm.proxy_only {
        out.push((policy.proxy().as_limits(), Bound::Proxy(why.clone())));
    }
    out
}

/// The most restrictive limit for `media`, and the first bound that sets it.
fn tightest(bounds: &[(DownloadLimits, Bound)], media: Media) -> (Limit, Option<&Bound>) {
    bounds
        .iter()
        .fold((Limit::Original, None), |(best, by), (limits, bound)| {
            let l = limits.for_media(media);
            if l < best { (l, Some(bound)) } else { (best, by) }
        })
}

fn deny_nothing(policy: &Policy, bound: &Bound, media: Media) -> Decision {
    let plural = media.plural();
    let (node, reason) = match bound {
        Bound::Collection { node, from } => (
            Some(policy.tree().id(*node)),
            policy.node_says(*node, *from, &format!("allows no {plural}")),
        ),
        Bound::Role(name) => (None, format!("role {name} may not download {plural}")),
        Bound::Proxy(why) => (None, format!("{why}, and {plural} have no proxy")),
    };
    Decision::deny(Rule::Limit, node, reason)
}

/// "collection c-brand caps images at 2048 px (inherited by g-launch)".
fn cap_statement(policy: &Policy, q: &Query, bound: &Bound, n: u32) -> String {
    let plural = q.limit_media().plural();
    let unit = match q.limit_media() {
        Media::Video => "px high",
        Media::Audio => "kb/s (a proxy)",
        _ => "px",
    };
    match bound {
        Bound::Collection { node, from } => policy.node_says(*node, *from, &format!("caps {plural} at {n} {unit}")),
        Bound::Role(name) => format!("role {name} caps {plural} at {n} {unit}"),
        Bound::Proxy(why) => format!("{why}: proxies cap {plural} at {n} {unit}"),
    }
}

/// Step 7: why a watermark is needed, if it is.
fn watermark_reason(policy: &Policy, q: &Query, adm: &Admission) -> Option<String> {
    if adm.proxy_only.is_some() {
        return Some("proxies are always watermarked".into());
    }
    if adm.staff {
        return None;
    }
    if let Some((name, _)) = adm.role.filter(|(_, r)| r.watermark.visible()) {
        return Some(format!("role {name} requires a watermark"));
    }
    if let Some(from) = policy.tree().node(adm.node).effective.watermark_from {
        return Some(format!("{} asks for a watermark", policy.tree().id(from)));
    }
    if let Some(share) = adm.share.filter(|s| s.watermark.visible()) {
        return Some(format!("share {} asks for a watermark", share.id));
    }
    preset_marks(policy, q)
        .filter(|(_, m)| m.visible())
        .map(|(name, _)| format!("preset {name} asks for a watermark"))
}

/// The preset asked for and the marks it adds.
fn preset_marks<'a>(policy: &'a Policy, q: &'a Query) -> Option<(&'a str, Marks)> {
    let Rendition::Preset(name) = &q.request.rendition else {
        return None;
    };
    policy
        .document()
        .presets
        .get(name)
        .map(|p| (name.as_str(), p.watermark))
}

/// Why an image must carry a forensic mark naming its recipient, if it
/// must (docs/forensic.md#policy): a role, the share or the preset asks
/// for one, or the share goes outside the library's domains. Staff's own
/// downloads are never marked.
fn forensic_reason(policy: &Policy, q: &Query, adm: &Admission) -> Option<String> {
    if adm.staff && adm.proxy_only.is_none() {
        return None;
    }
    if let Some((name, _)) = adm.role.filter(|(_, r)| r.watermark.forensic()) {
        return Some(format!("role {name} asks for it"));
    }
    if let Some(share) = adm.share.filter(|s| s.watermark.forensic()) {
        return Some(format!("share {} asks for it", share.id));
    }
    if let Some((name, _)) = preset_marks(policy, q).filter(|(_, m)| m.forensic()) {
        return Some(format!("preset {name} asks for it"));
    }
    let forensic = &policy.document().forensic;
    adm.share
        .filter(|s| forensic.external_shares && forensic.is_external(&s.email))
        .map(|s| format!("share {}'s recipient is outside the library's domains", s.id))
}

/// The size of the preset asked for, if one is; a role or a share held to
/// a list of presets (strict mode) gets an image only as one of them.
fn preset(policy: &Policy, q: &Query, adm: &Admission) -> Result<Option<PresetSize>, Decision> {
    let asked = match &q.request.rendition {
        Rendition::Preset(name) => Some(name.as_str()),
        _ => None,
    };
    let role_list = adm
        .role
        .and_then(|(name, role)| role.presets.as_ref().map(|list| (format!("role {name}"), list)));
    let share_list = adm
        .share
        .and_then(|share| share.presets.as_ref().map(|list| (format!("share {}", share.id), list)));
    let strict = !adm.staff && q.asset.media == Media::Image;
    for (who, list) in role_list.into_iter().chain(share_list).filter(|_| strict) {
        if !asked.is_some_and(|name| list.iter().any(|p| p == name)) {
            let what = q.request.rendition.describe();
            let reason = format!("{who} downloads only the presets [{}], not {what}", list.join(", "));
            return Err(Decision::deny(Rule::Preset, None, reason));
        }
    }
    let Some(name) = asked else { return Ok(None) };
    match policy.document().presets.get(name).map(|p| p.size()) {
        Some(Ok(size)) => Ok(Some(size)),
        _ => Err(Decision::deny(
            Rule::Preset,
            None,
            format!("policy version {} has no preset {name}", policy.version()),
        )),
    }
}

/// Step 8: what to make, each size clamped to the limit on its own;
/// `reencode`: the original may not go as stored (a watermark, metadata).
fn targets(
    q: &Query,
    (limit, seconds): (Limit, Option<u32>),
    reencode: bool,
    preset: Option<PresetSize>,
) -> (Vec<Target>, bool) {
    let cap = |n: u32| match limit {
        Limit::Px(max) if n > max => (max, true),
        _ => (n, false),
    };
    let sized = |n: u32| match q.asset.media {
        Media::Video => Target::MaxHeight(n),
        Media::Audio => Target::Audio {
            max_kbps: n,
            max_seconds: seconds,
        },
        _ => Target::MaxEdge(n),
    };
    let whole = match limit {
        Limit::Px(max) => sized(max),
        _ if reencode || q.request.rendition != Rendition::Original => Target::Full,
        _ => Target::Original,
    };
    match &q.request.rendition {
        Rendition::Original => (vec![whole], matches!(limit, Limit::Px(_))),
        // Audio's proxy without a bit rate limit: the default bit rate.
        Rendition::Proxy if q.asset.media == Media::Audio && limit == Limit::Original => {
            (vec![sized(AUDIO_PROXY_KBPS)], false)
        }
        Rendition::Proxy => (vec![whole], false),
        Rendition::Poster | Rendition::Storyboard => (
            vec![match limit {
                Limit::Px(max) => Target::MaxEdge(max),
                _ => Target::Full,
            }],
            false,
        ),
        Rendition::MaxEdge(n) | Rendition::MaxHeight(n) => {
            let (n, clamped) = cap(*n);
            (vec![sized(n)], clamped)
        }
        Rendition::Set(sizes) => {
            let mut out = Vec::new();
            let mut clamped = false;
            for &n in sizes {
                let (n, c) = cap(n);
                clamped |= c;
                if !out.contains(&sized(n)) {
                    out.push(sized(n));
                }
            }
            (out, clamped)
        }
        Rendition::Preset(_) => {
            let Some(size) = preset else { return (Vec::new(), false) };
            let (size, clamped) = match limit {
                Limit::Px(max) => size.within(max),
                _ => (size, false),
            };
            let target = match size {
                PresetSize::MaxEdge(n) => sized(n),
                PresetSize::Frame { width, height, fit } => Target::Frame { width, height, fit },
            };
            (vec![target], clamped)
        }
    }
}

fn allowed_reason(
    policy: &Policy,
    q: &Query,
    adm: &Admission,
    limit: Limit,
    binding: Option<&Bound>,
    watermark: Option<&str>,
) -> String {
    let mut reason = match (limit, binding) {
        _ if adm.staff && adm.proxy_only.is_none() => {
            let role = adm.role.map_or("?", |(name, _)| name);
            format!("{} is library staff (role {role})", q.principal.recipient())
        }
        (Limit::Px(n), Some(bound)) => cap_statement(policy, q, bound, n),
        _ => {
            let media = q.limit_media();
            let what = if matches!(media, Media::Image | Media::Video) {
                "original "
            } else {
                ""
            };
            policy.node_says(adm.node, adm.download_from, &format!("allows {what}{}", media.plural()))
        }
    };
    if let Some(why) = watermark {
        reason.push_str(&format!("; {why}"));
    }
    reason
}
