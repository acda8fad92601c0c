//! The exclusion trie: which pointers the hash leaves out.

// === the exclusion trie ===

/// One step of an exclusion pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    Any,
}

/// Parses an RFC 6901 pointer; `*` is the wildcard.
pub(super) fn parse_pointer(p: &str) -> Result<Vec<Segment>, &'static str> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err(if p.is_empty() {
            "the empty pointer names the whole object"
        } else {
            "a pointer starts with `/`"
        });
    };
    rest.split('/')
        .map(|raw| {
            if raw == "*" {
                return Ok(Segment::Any);
            }
            let mut key = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                match c {
                    '~' => match chars.next() {
                        Some('0') => key.push('~'),
                        Some('1') => key.push('/'),
                        _ => return Err("`~` must be followed by 0 or 1"),
                    },
                    c => key.push(c),
                }
            }
            Ok(Segment::Key(key))
        })
        .collect()
}

/// A trie of excluded pointers. After [`Node::normalize`] the wildcard's
/// subtree is merged into every named child, so one node per position is
/// enough during the walk: the child for a key is the named one, else `any`.
#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    /// This position itself is excluded.
    pub(super) excluded: bool,
    pub(super) children: Vec<Child>,
    pub(super) any: Option<Box<Node>>,
}

#[derive(Debug, Clone)]
pub(super) struct Child {
    pub(super) key: String,
    /// The key as an array index, if it is one.
    pub(super) index: Option<usize>,
    pub(super) node: Node,
}

impl Node {
    pub(super) fn key(&self, key: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.key == key)
            .map(|c| &c.node)
            .or(self.any.as_deref())
    }

    pub(super) fn index(&self, i: usize) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.index == Some(i))
            .map(|c| &c.node)
            .or(self.any.as_deref())
    }

    pub(super) fn child_mut(&mut self, key: &str) -> &mut Node {
        let pos = match self.children.iter().position(|c| c.key == key) {
            Some(pos) => pos,
            None => {
                self.children.push(Child {
                    key: key.to_string(),
                    index: key
                        .parse()
                        .ok()
                        .filter(|_| key == "0" || !key.starts_with('0')),
                    node: Node::default(),
                });
                self.children.len() - 1
            }
        };
        &mut self.children[pos].node
    }

    pub(super) fn insert(&mut self, segments: &[Segment]) {
        match segments.split_first() {
            None => self.excluded = true,
            Some((Segment::Any, rest)) => self.any.get_or_insert_default().insert(rest),
            Some((Segment::Key(k), rest)) => self.child_mut(k).insert(rest),
        }
    }

    pub(super) fn merge(&mut self, other: &Node) {
        self.excluded |= other.excluded;
        for oc in &other.children {
            self.child_mut(&oc.key).merge(&oc.node);
        }
        match (&mut self.any, &other.any) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.any = Some(b.clone()),
            _ => {}
        }
    }

    /// Merges `any` into every named child, recursively: a named child then
    /// stands for everything that applies below its key.
    pub(super) fn normalize(&mut self) {
        if let Some(any) = &mut self.any {
            any.normalize();
        }
        let any = self.any.clone();
        for c in &mut self.children {
            if let Some(a) = &any {
                c.node.merge(a);
            }
            c.node.normalize();
        }
    }
}
