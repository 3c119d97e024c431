//! Nested endpoints, once every profile is mapped: connected to the child
//! profiles imported with them, or answered as CNAMEs to the children left
//! in Azure.

use super::draft::Draft;
use crate::import::arm;
use crate::import::{Level, Notice};

/// Connects nested endpoints to the imported child profiles; a child that
/// was not imported is answered as a CNAME to its Azure name.
pub(super) fn resolve_nested(drafts: &mut [(Draft, Vec<Notice>)]) {
    let index: Vec<(Option<String>, String, String, String)> = drafts
        .iter()
        .map(|(d, _)| {
            (
                d.resource_name.clone(),
                d.relative.clone(),
                d.fqdn.clone(),
                d.name.clone(),
            )
        })
        .collect();
    for (d, notices) in drafts.iter_mut() {
        let file = d.file.clone();
        let routing = d.routing;
        for ep in &mut d.endpoints {
            let Some(r) = &ep.nested else { continue };
            let found = index.iter().find(|(res, rel, fqdn, _)| {
                r.resource
                    .as_deref()
                    .is_some_and(|x| res.as_deref().is_some_and(|y| y.eq_ignore_ascii_case(x)))
                    || r.fqdn.as_deref().is_some_and(|f| {
                        f == fqdn || f.strip_suffix(".trafficmanager.net") == Some(rel.as_str())
                    })
            });
            let at = format!("{file}: {}", arm::join(&ep.at, "targetResourceId"));
            match (found, &r.fqdn) {
                (Some((_, _, _, child)), _) if *child == d.name => {
                    notices.push(Notice { level: Level::Warning, at, message: "a nested endpoint whose child is this profile itself: written commented out".into() });
                    ep.skip.get_or_insert("nested in itself".into());
                }
                (Some((_, _, _, child)), _) => ep.child = Some(child.clone()),
                (None, _) if routing == "multivalue" => {
                    ep.skip
                        .get_or_insert("nested endpoint in a multivalue profile".into());
                }
                (None, Some(fqdn)) => {
                    notices.push(Notice { level: Level::Warning, at, message: format!("child profile {} was not imported: answered as a CNAME to `{fqdn}` (Azure keeps routing inside it) and always served, since Switchyard cannot see the child's health; import the child too (pass its JSON as well) to make it a nested profile", r.resource.as_deref().unwrap_or(fqdn)) });
                    ep.target = Some(fqdn.clone());
                    ep.always_serve = true;
                    // A CNAME has no child endpoints to count.
                    ep.min_child = None;
                }
                (None, None) => {
                    notices.push(Notice { level: Level::Warning, at, message: "the child profile is neither imported nor named by a `target`: written commented out; import the child profile too".into() });
                    ep.skip.get_or_insert("child profile unknown".into());
                }
            }
        }
    }
}
