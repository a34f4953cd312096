//! The invariants every decision keeps, checked against the document.
use proptest::prelude::*;
use rendition::job::{Media, OnExceed, Principal, Rendition};
use rendition::policy::document::{PolicyDocument, ShareKind, Visibility};
use rendition::policy::{Decision, Delivery, Limit, Target};

use super::asks::Ask;
use super::oracle::{index, is_staff, is_within, largest_collection_limit, limit_media, native_source, roles_of};
use super::{decided_limit, now};

pub(super) fn check_invariants(doc: &PolicyDocument, ask: &Ask, d: &Decision) -> Result<(), TestCaseError> {
    let nodes = index(doc);
    let media = limit_media(ask);
    let limit = decided_limit(d);
    let staff = is_staff(doc, &ask.principal);

    // Shape: a denial carries nothing; an allowance says what to make.
    if !d.allowed {
        prop_assert!(d.limit.is_none() && d.targets.is_empty() && d.delivery.is_none() && !d.watermark);
        prop_assert!(d.reason.starts_with("denied: "));
    } else {
        prop_assert!(limit != Limit::None && !d.targets.is_empty() && d.delivery.is_some());
    }
    // No target exceeds the decided limit; an untouched original only when
    // nothing caps or marks it.
    for t in &d.targets {
        prop_assert!(t.as_limit() <= limit, "target {:?} above limit {:?}", t, limit);
        if *t == Target::Original {
            prop_assert!(limit == Limit::Original && !d.watermark && d.delivery == Some(Delivery::Original));
        }
    }
    if d.allowed && ask.request.on_exceed == OnExceed::Deny {
        prop_assert!(!d.clamped, "on_exceed deny never clamps");
    }
    if staff {
        // Anything, except a proxy of what has no proxy.
        let no_proxy = ask.request.rendition == Rendition::Proxy && matches!(media, Media::Audio | Media::Other);
        prop_assert!(d.allowed || no_proxy, "staff may do anything: {}", d.reason);
        return Ok(());
    }
    let Some(node) = nodes.get(&ask.asset.collection).map(|_| ask.asset.collection.clone()) else {
        prop_assert!(!d.allowed);
        return Ok(());
    };
    // owner_only admits no one but staff.
    let visibility = nodes[&native_source(&nodes, &node)]
        .0
        .visibility
        .unwrap_or(Visibility::WithPermission);
    if visibility == Visibility::OwnerOnly {
        prop_assert!(!d.allowed, "owner_only admitted a non-staff principal: {}", d.reason);
    }
    if !d.allowed {
        return Ok(());
    }
    // The limit never exceeds what the collection, the role or a proxy allows.
    prop_assert!(
        limit <= largest_collection_limit(&nodes, &node, media),
        "above collection limit: {}",
        d.reason
    );
    if let Some(role) = d.role.as_ref().map(|r| &doc.roles[r]).filter(|r| !r.staff)
        && let Some(ceiling) = role.download
    {
        prop_assert!(limit <= ceiling.for_media(media), "above role ceiling: {}", d.reason);
    }
    if d.delivery == Some(Delivery::Proxy) {
        let proxy = doc.proxy.as_limits().for_media(media);
        prop_assert!(
            limit <= proxy && d.watermark,
            "proxy above proxy size or unmarked: {}",
            d.reason
        );
    }
    // A watermark-only role never gets an unmarked rendition.
    if let Some(role) = d.role.as_ref().map(|r| &doc.roles[r]) {
        prop_assert!(!role.watermark || d.watermark, "watermark role unmarked: {}", d.reason);
    }
    if let Principal::User(u) = &ask.principal {
        let all_marked = roles_of(doc, &nodes, u).iter().all(|r| doc.roles[r].watermark);
        prop_assert!(
            !all_marked || d.watermark,
            "user with only watermark roles unmarked: {}",
            d.reason
        );
    }
    // Shares: a bad share never admits; a proxy share never gets more than a proxy.
    if let Principal::Share { share, email } = &ask.principal {
        let s = doc
            .shares
            .iter()
            .find(|s| &s.id == share)
            .expect("admitted share exists");
        prop_assert!(!s.revoked && s.verified && s.expires_at.is_none_or(|at| at > now()));
        prop_assert!(s.email.eq_ignore_ascii_case(email));
        prop_assert!(
            s.scope.iter().any(|top| is_within(&nodes, &node, top)),
            "outside scope: {}",
            d.reason
        );
        if s.kind == ShareKind::Proxy {
            prop_assert_eq!(d.delivery, Some(Delivery::Proxy));
            prop_assert!(d.watermark && limit < Limit::Original);
        }
    }
    // Restricted assets need the right to manage them.
    if ask.asset.restricted {
        let Principal::User(u) = &ask.principal else {
            return Err(TestCaseError::fail(format!(
                "restricted asset to a non-user: {}",
                d.reason
            )));
        };
        let user = &doc.users[u];
        prop_assert!(
            user.manage_restricted
                .unwrap_or(doc.roles[&user.role].manage_restricted)
        );
    }
    Ok(())
}
