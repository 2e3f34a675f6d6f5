//! Certificate policy processing: the valid_policy_tree of RFC 5280 §6.1.2(a), §6.1.3(d)-(f),
//! §6.1.4(a)(b) and §6.1.5(g), with the explicit_policy, policy_mapping and inhibit_anyPolicy
//! counters kept by the caller.

use std::collections::BTreeSet;

use const_oid::ObjectIdentifier;

use super::cert::PkixCert;

/// anyPolicy (2.5.29.32.0).
pub const ANY_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32.0");

#[derive(Clone, Debug)]
struct Node {
    valid_policy: ObjectIdentifier,
    expected: BTreeSet<ObjectIdentifier>,
    /// Index of the parent in the level above; `None` only for the root.
    parent: Option<usize>,
    /// Removed by pruning (indices stay stable within a step).
    dead: bool,
}

/// The valid_policy_tree, level by level (level 0 is the root, level i the nodes added for
/// certificate i). `None` once the tree is NULL.
#[derive(Clone, Debug)]
pub struct PolicyTree {
    levels: Vec<Vec<Node>>,
}

impl PolicyTree {
    /// §6.1.2(a): a single anyPolicy node.
    pub fn new() -> Self {
        Self {
            levels: vec![vec![Node {
                valid_policy: ANY_POLICY,
                expected: BTreeSet::from([ANY_POLICY]),
                parent: None,
                dead: false,
            }]],
        }
    }

    fn depth(&self) -> usize {
        self.levels.len() - 1
    }

    fn live(&self, level: usize) -> impl Iterator<Item = (usize, &Node)> {
        self.levels[level].iter().enumerate().filter(|(_, n)| !n.dead)
    }

    /// §6.1.3(d): process certificate i's policies. `any_allowed`: inhibit_anyPolicy > 0, or
    /// the certificate is a self-issued intermediate. Returns false when the tree became NULL.
    pub fn process_certificate(&mut self, cert: &PkixCert, any_allowed: bool) -> bool {
        let policies = cert.ext.policies.as_deref().unwrap_or_default();
        let parent_level = self.depth();
        let mut next: Vec<Node> = Vec::new();
        // (d)(1)
        for p in policies.iter().map(|p| p.policy_identifier).filter(|p| *p != ANY_POLICY) {
            let mut matched = false;
            for (i, node) in self.live(parent_level) {
                if node.expected.contains(&p) {
                    next.push(Node { valid_policy: p, expected: BTreeSet::from([p]), parent: Some(i), dead: false });
                    matched = true;
                }
            }
            if !matched {
                for (i, node) in self.live(parent_level) {
                    if node.valid_policy == ANY_POLICY {
                        next.push(Node {
                            valid_policy: p,
                            expected: BTreeSet::from([p]),
                            parent: Some(i),
                            dead: false,
                        });
                    }
                }
            }
        }
        // (d)(2)
        if any_allowed && policies.iter().any(|p| p.policy_identifier == ANY_POLICY) {
            let parents: Vec<(usize, BTreeSet<ObjectIdentifier>)> =
                self.live(parent_level).map(|(i, n)| (i, n.expected.clone())).collect();
            for (i, expected) in parents {
                for p in expected {
                    if !next.iter().any(|c| c.parent == Some(i) && c.valid_policy == p) {
                        next.push(Node {
                            valid_policy: p,
                            expected: BTreeSet::from([p]),
                            parent: Some(i),
                            dead: false,
                        });
                    }
                }
            }
        }
        self.levels.push(next);
        // (d)(3)
        self.prune()
    }

    /// Remove nodes above the bottom level that have no children, repeatedly; false when the
    /// root went (the tree is NULL).
    fn prune(&mut self) -> bool {
        for level in (0..self.depth()).rev() {
            let with_children: BTreeSet<usize> =
                self.levels[level + 1].iter().filter(|n| !n.dead).filter_map(|n| n.parent).collect();
            for (i, node) in self.levels[level].iter_mut().enumerate() {
                if !with_children.contains(&i) {
                    node.dead = true;
                }
            }
        }
        self.levels[0].iter().any(|n| !n.dead)
    }

    /// §6.1.4(b): apply certificate i's policy mappings. `mapping_allowed`: policy_mapping > 0.
    /// Returns false when the tree became NULL.
    pub fn apply_mappings(&mut self, cert: &PkixCert, mapping_allowed: bool) -> bool {
        let Some(mappings) = &cert.ext.policy_mappings else {
            return true;
        };
        let level = self.depth();
        let issuer_policies: BTreeSet<ObjectIdentifier> = mappings.0.iter().map(|m| m.issuer_domain_policy).collect();
        for id_p in issuer_policies {
            let mapped: BTreeSet<ObjectIdentifier> =
                mappings.0.iter().filter(|m| m.issuer_domain_policy == id_p).map(|m| m.subject_domain_policy).collect();
            if mapping_allowed {
                let mut found = false;
                for node in self.levels[level].iter_mut().filter(|n| !n.dead && n.valid_policy == id_p) {
                    node.expected = mapped.clone();
                    found = true;
                }
                if !found {
                    let any_parent =
                        self.live(level).find(|(_, n)| n.valid_policy == ANY_POLICY).and_then(|(_, n)| n.parent);
                    if let Some(parent) = any_parent {
                        self.levels[level].push(Node {
                            valid_policy: id_p,
                            expected: mapped,
                            parent: Some(parent),
                            dead: false,
                        });
                    }
                }
            } else {
                for node in self.levels[level].iter_mut().filter(|n| n.valid_policy == id_p) {
                    node.dead = true;
                }
                if !self.prune() {
                    return false;
                }
            }
        }
        true
    }

    /// §6.1.5(g): the intersection with the user-initial-policy-set. Returns false when the tree
    /// became NULL.
    pub fn intersect(&mut self, initial: &[ObjectIdentifier]) -> bool {
        if initial.contains(&ANY_POLICY) {
            return true;
        }
        let n = self.depth();
        // (g)(iii)(1)-(2): the nodes whose parent is an anyPolicy node; those outside the
        // initial set go.
        let mut in_set: BTreeSet<ObjectIdentifier> = BTreeSet::new();
        for level in 1..=n {
            let parents_any: Vec<bool> = self.levels[level - 1].iter().map(|p| p.valid_policy == ANY_POLICY).collect();
            for node in self.levels[level].iter_mut().filter(|x| !x.dead) {
                if node.parent.is_some_and(|p| parents_any[p]) && node.valid_policy != ANY_POLICY {
                    if initial.contains(&node.valid_policy) {
                        in_set.insert(node.valid_policy);
                    } else {
                        node.dead = true;
                    }
                }
            }
            self.kill_orphans(level);
        }
        // (g)(iii)(3): an anyPolicy leaf stands for the initial policies not yet in the tree.
        let any_leaves: Vec<(usize, Option<usize>)> =
            self.live(n).filter(|(_, x)| x.valid_policy == ANY_POLICY).map(|(i, x)| (i, x.parent)).collect();
        for (i, parent) in any_leaves {
            for p in initial.iter().filter(|p| !in_set.contains(p)) {
                self.levels[n].push(Node { valid_policy: *p, expected: BTreeSet::from([*p]), parent, dead: false });
            }
            self.levels[n][i].dead = true;
        }
        // (g)(iii)(4)
        self.prune()
    }

    /// Nodes whose parent was removed go too.
    fn kill_orphans(&mut self, level: usize) {
        if level == 0 {
            return;
        }
        let dead_parents: Vec<bool> = self.levels[level - 1].iter().map(|p| p.dead).collect();
        for node in self.levels[level].iter_mut() {
            if node.parent.is_some_and(|p| dead_parents[p]) {
                node.dead = true;
            }
        }
    }

    /// The user-constrained policy set, in the relying party's (the trust anchor's) policy
    /// domain, which is the domain of its user-initial-policy-set: for every leaf, the first
    /// policy below anyPolicy on its branch (before any mapping), or anyPolicy when the whole
    /// branch is anyPolicy.
    pub fn user_constrained_policies(&self) -> Vec<ObjectIdentifier> {
        let mut set = BTreeSet::new();
        for (i, _) in self.live(self.depth()) {
            let mut branch = Vec::new();
            let (mut level, mut index) = (self.depth(), Some(i));
            while let Some(at) = index {
                branch.push(self.levels[level][at].valid_policy);
                index = self.levels[level][at].parent;
                level = level.saturating_sub(1);
            }
            set.insert(branch.into_iter().rev().find(|p| *p != ANY_POLICY).unwrap_or(ANY_POLICY));
        }
        set.into_iter().collect()
    }
}
