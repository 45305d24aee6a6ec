//! ReferenceGrant checks: may an object in one namespace refer to one in another?

use crate::snapshot::Snapshot;

/// The referring side of a cross-namespace reference.
pub struct From<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
}

/// The referred-to object.
pub struct To<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// True when the reference stays in one namespace, or a ReferenceGrant in the target's
/// namespace lets `from` refer to `to` (by name, or to every object of the kind).
pub fn permitted(s: &Snapshot, from: &From<'_>, to: &To<'_>) -> bool {
    if from.namespace == to.namespace {
        return true;
    }
    s.reference_grants
        .iter()
        .filter(|(k, _)| k.namespace == to.namespace)
        .any(|(_, g)| {
            g.spec.from.iter().any(|f| {
                f.group == from.group && f.kind == from.kind && f.namespace == from.namespace
            }) && g.spec.to.iter().any(|t| {
                t.group == to.group
                    && t.kind == to.kind
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to.name)
            })
        })
}
