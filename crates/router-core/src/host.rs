//! Hosts as the ring sees them: a name, a weight, and a dense id.

/// A dense index `0..ring.len()` into a ring's host table.
///
/// Ids are assigned in name order, so they depend only on the host set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub u32);

impl HostId {
    /// The id as an index into per-host arrays.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A host's identity on the ring: its unique name and its weight (> 0).
///
/// Placement depends on the name and weight only, never on addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostSpec {
    /// The unique host name; it seeds the host's placement.
    pub name: String,
    /// The relative share of keys this host should own (must be > 0).
    pub weight: u32,
}

impl HostSpec {
    /// A host spec from a name and a weight.
    pub fn new(name: impl Into<String>, weight: u32) -> HostSpec {
        HostSpec {
            name: name.into(),
            weight,
        }
    }
}

/// The most hosts one ring holds: host ids are stored in 16 bits.
pub const MAX_HOSTS: usize = u16::MAX as usize;
