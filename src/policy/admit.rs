//! Steps 1–5 of docs/rules.md: is the principal let in at the asset's node, and
//! with which role, collection limits and share?

use super::Policy;
use super::decision::{Decision, Rule};
use super::document::{Access, Role, Share, ShareKind, Visibility};
use super::limit::DownloadLimits;
use super::query::Query;
use super::tree::{Effective, Grant, NodeIdx};
use crate::job::{Principal, Purpose};

/// A principal let in at a node.
pub struct Admission<'p> {
    pub node: NodeIdx,
    pub staff: bool,
    /// The role that applies, by name.
    pub role: Option<(&'p str, &'p Role)>,
    /// The collection limits for this principal, and the node that set them.
    pub download: DownloadLimits,
    pub download_from: NodeIdx,
    pub share: Option<&'p Share>,
    pub manage_restricted: bool,
    /// Why delivery must be a proxy, if it must (a proxy share, say).
    pub proxy_only: Option<String>,
}

impl<'p> Admission<'p> {
    fn new(node: NodeIdx, eff: &Effective) -> Admission<'p> {
        Admission {
            node,
            staff: false,
            role: None,
            download: eff.download,
            download_from: eff.source,
            share: None,
            manage_restricted: false,
            proxy_only: None,
        }
    }

    /// A principal who may see but not download: previews only, as proxies
    /// (still within the collection's limits).
    fn view_only(node: NodeIdx, eff: &Effective) -> Admission<'p> {
        Admission {
            proxy_only: Some("a preview without download access".into()),
            ..Admission::new(node, eff)
        }
    }
}

/// One admission per way in (each applicable invitation), or why not.
pub type Admitted<'p> = Result<Vec<Admission<'p>>, Decision>;
/// The single way in of a principal without invitations.
type AdmittedOnce<'p> = Result<Admission<'p>, Decision>;

pub fn admit<'p>(policy: &'p Policy, q: &Query, node: NodeIdx) -> Admitted<'p> {
    match q.principal {
        Principal::User(id) => admit_user(policy, q, node, id),
        Principal::Share { share, email } => admit_share(policy, q, node, share, email).map(|a| vec![a]),
        Principal::Password { collection } => admit_password(policy, q, node, collection).map(|a| vec![a]),
        Principal::Anonymous => admit_visitor(policy, q, node, "a portal visitor").map(|a| vec![a]),
    }
}

fn admit_user<'p>(policy: &'p Policy, q: &Query, node: NodeIdx, id: &str) -> Admitted<'p> {
    let Some(user) = policy.user(id) else {
        return Err(Decision::deny(
            Rule::UnknownUser,
            None,
            format!("user {id} is not in policy {}", policy.version()),
        ));
    };
    let (team_role_name, team_role) = policy.role_entry(&user.role);
    let eff = &policy.tree().node(node).effective;
    let manage_restricted = user.manage_restricted.unwrap_or(team_role.manage_restricted);
    if team_role.staff {
        let admission = Admission {
            staff: true,
            role: Some((team_role_name, team_role)),
            manage_restricted: true,
            ..Admission::new(node, eff)
        };
        return Ok(vec![admission]);
    }
    let grants: Vec<&Grant> = eff.grants.iter().filter(|g| g.names(id, &user.groups)).collect();
    let who = format!("{id} is not invited");
    check_visible(policy, node, eff, !grants.is_empty(), &who)?;
    if grants.is_empty() {
        if eff.access != Access::AnyVisitor {
            if q.purpose == Purpose::Preview {
                return Ok(vec![Admission::view_only(node, eff)]);
            }
            return Err(access_denial(policy, node, eff, &who));
        }
        let admission = Admission {
            role: Some((team_role_name, team_role)),
            manage_restricted,
            ..Admission::new(node, eff)
        };
        return Ok(vec![admission]);
    }
    // Each invitation is a way in; the resolver keeps the most generous outcome.
    Ok(grants
        .into_iter()
        .map(|grant| Admission {
            role: Some(policy.role_entry(&grant.invitation.role)),
            download: grant.download,
            download_from: grant.download_from,
            manage_restricted,
            ..Admission::new(node, eff)
        })
        .collect())
}

/// A role's own ceiling; `None` when it sets none (staff roles never do).
pub fn role_ceiling(role: &Role) -> Option<DownloadLimits> {
    if role.staff { None } else { role.download }
}

fn admit_share<'p>(policy: &'p Policy, q: &Query, node: NodeIdx, id: &str, email: &str) -> AdmittedOnce<'p> {
    let deny = |reason: String| Err(Decision::deny(Rule::Share, None, reason));
    let Some(share) = policy.share(id) else {
        return deny(format!("share {id} is not in policy {}", policy.version()));
    };
    if !share.email.eq_ignore_ascii_case(email) {
        return deny(format!("share {id} was not sent to {email}"));
    }
    if share.revoked {
        return deny(format!("share {id} was revoked"));
    }
    if let Some(at) = share.expires_at.filter(|at| *at <= q.now) {
        return deny(format!("share {id} expired at {}", at.to_rfc3339()));
    }
    if !share.verified {
        return deny(format!(
            "share {id} is not verified (the recipient has not entered the code)"
        ));
    }
    let tree = policy.tree();
    let in_scope = share
        .scope
        .iter()
        .any(|s| policy.node_idx(s).is_some_and(|top| tree.is_within(node, top)));
    if !in_scope {
        let scope = share.scope.join(", ");
        return Err(Decision::deny(
            Rule::Share,
            Some(tree.id(node)),
            format!("{} is outside share {id}'s scope ({scope})", tree.id(node)),
        ));
    }
    let eff = &tree.node(node).effective;
    if eff.visibility == Visibility::OwnerOnly {
        let setting = policy.phrase(node, eff.source, "visibility owner_only");
        return Err(Decision::deny(
            Rule::Visibility,
            Some(tree.id(node)),
            format!("{setting}, which no share opens"),
        ));
    }
    let proxy_only = (share.kind == ShareKind::Proxy).then(|| format!("share {id} is proxy-only"));
    Ok(Admission {
        share: Some(share),
        proxy_only,
        ..Admission::new(node, eff)
    })
}

fn admit_password<'p>(policy: &'p Policy, q: &Query, node: NodeIdx, collection: &str) -> AdmittedOnce<'p> {
    let tree = policy.tree();
    let eff = &tree.node(node).effective;
    let Some(named) = policy.node_idx(collection) else {
        return Err(Decision::deny(
            Rule::Password,
            None,
            format!("collection {collection} is not in policy {}", policy.version()),
        ));
    };
    check_visible(policy, node, eff, true, "")?;
    if tree.inherits_from(node, named) && eff.access == Access::Password {
        return Ok(Admission::new(node, eff));
    }
    // A password holder is still a visitor wherever visitors may download.
    admit_visitor(policy, q, node, "a password holder").map_err(|visitor_denial| {
        if tree.inherits_from(node, named) {
            return visitor_denial;
        }
        let here = tree.id(node);
        let reason = format!("the password of {collection} does not open {here}, which does not inherit from it");
        Decision::deny(Rule::Password, Some(here), reason)
    })
}

fn admit_visitor<'p>(policy: &'p Policy, q: &Query, node: NodeIdx, who: &str) -> AdmittedOnce<'p> {
    let eff = &policy.tree().node(node).effective;
    let not_invited = format!("{who} is not invited");
    check_visible(policy, node, eff, false, &not_invited)?;
    match eff.access {
        Access::AnyVisitor => Ok(Admission::new(node, eff)),
        _ if q.purpose == Purpose::Preview => Ok(Admission::view_only(node, eff)),
        _ => Err(access_denial(policy, node, eff, &not_invited)),
    }
}

/// Step 3: owner_only shuts out all but staff; with_permission needs an
/// invitation (or, for password holders, the password: `admitted`).
fn check_visible(policy: &Policy, node: NodeIdx, eff: &Effective, admitted: bool, who: &str) -> Result<(), Decision> {
    let here = Some(policy.tree().id(node));
    let setting = |value: &str| policy.phrase(node, eff.source, value);
    match eff.visibility {
        Visibility::OwnerOnly => Err(Decision::deny(
            Rule::Visibility,
            here,
            format!("{} (library staff only)", setting("visibility owner_only")),
        )),
        Visibility::WithPermission if !admitted => Err(Decision::deny(
            Rule::Visibility,
            here,
            format!(
                "{} (invited people only), and {who}",
                setting("visibility with_permission")
            ),
        )),
        _ => Ok(()),
    }
}

fn access_denial(policy: &Policy, node: NodeIdx, eff: &Effective, who: &str) -> Decision {
    let reason = match eff.access {
        Access::Password => format!(
            "{}: downloads need the collection password",
            policy.phrase(node, eff.source, "access password")
        ),
        Access::People => format!(
            "{} (invited people only), and {who}",
            policy.phrase(node, eff.source, "access people")
        ),
        Access::AnyVisitor => unreachable!("any visitor may download"),
    };
    Decision::deny(Rule::Access, Some(policy.tree().id(node)), reason)
}
