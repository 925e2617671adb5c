//! Sorted tables of non-overlapping address ranges, searched by binary search.
//!
//! IPv4 addresses are keyed as `u32` and IPv6 addresses as `u128`, so that a lookup is one
//! `partition_point` over a contiguous vector instead of a scan over every configured network.

/// An address key: `u32` for IPv4 and `u128` for IPv6.
pub(crate) trait AddressKey: Copy + Ord + std::fmt::Debug {
    /// Returns the next key, or `None` at the top of the address space.
    fn successor(self) -> Option<Self>;
}

impl AddressKey for u32 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl AddressKey for u128 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// A set of addresses stored as sorted, merged, non-overlapping inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RangeSet<K> {
    starts: Vec<K>,
    ends: Vec<K>,
}

impl<K: AddressKey> RangeSet<K> {
    /// Builds the set from inclusive ranges in any order, merging overlapping and adjacent ones.
    pub(crate) fn from_ranges(mut ranges: Vec<(K, K)>) -> Self {
        ranges.sort_unstable();
        let mut starts: Vec<K> = Vec::with_capacity(ranges.len());
        let mut ends: Vec<K> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            if let Some(last_end) = ends.last_mut() {
                // Merge when the new range starts inside or right after the previous one.
                let touches = match last_end.successor() {
                    Some(next) => start <= next,
                    None => true,
                };
                if touches {
                    if end > *last_end {
                        *last_end = end;
                    }
                    continue;
                }
            }
            starts.push(start);
            ends.push(end);
        }
        starts.shrink_to_fit();
        ends.shrink_to_fit();
        Self { starts, ends }
    }

    /// Returns whether `key` lies in one of the ranges.
    pub(crate) fn contains(&self, key: K) -> bool {
        let after = self.starts.partition_point(|start| *start <= key);
        match after.checked_sub(1) {
            Some(index) => self.ends.get(index).is_some_and(|end| key <= *end),
            None => false,
        }
    }

    /// Returns the number of merged ranges.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }
}

/// A map from non-overlapping inclusive address ranges to values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RangeMap<K, V> {
    starts: Vec<K>,
    ends: Vec<K>,
    values: Vec<V>,
}

impl<K: AddressKey, V: Copy + PartialEq> RangeMap<K, V> {
    /// Builds the map from ranges in any order. Adjacent ranges with equal values are merged.
    ///
    /// # Errors
    ///
    /// Returns the start of the first range that overlaps the range before it.
    pub(crate) fn from_ranges(mut ranges: Vec<(K, K, V)>) -> Result<Self, K> {
        ranges.sort_unstable_by_key(|(start, _, _)| *start);
        let mut map = Self {
            starts: Vec::with_capacity(ranges.len()),
            ends: Vec::with_capacity(ranges.len()),
            values: Vec::with_capacity(ranges.len()),
        };
        for (start, end, value) in ranges {
            if let (Some(last_end), Some(last_value)) = (map.ends.last_mut(), map.values.last()) {
                if start <= *last_end {
                    return Err(start);
                }
                if last_end.successor() == Some(start) && *last_value == value {
                    *last_end = end;
                    continue;
                }
            }
            map.starts.push(start);
            map.ends.push(end);
            map.values.push(value);
        }
        map.starts.shrink_to_fit();
        map.ends.shrink_to_fit();
        map.values.shrink_to_fit();
        Ok(map)
    }

    /// Returns the value of the range that contains `key`.
    pub(crate) fn get(&self, key: K) -> Option<V> {
        let index = self
            .starts
            .partition_point(|start| *start <= key)
            .checked_sub(1)?;
        let end = self.ends.get(index)?;
        if key > *end {
            return None;
        }
        self.values.get(index).copied()
    }

    /// Returns the number of ranges after merging.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_merges_overlapping_and_adjacent() {
        let set = RangeSet::from_ranges(vec![(10_u32, 20), (21, 30), (5, 12), (40, 50), (45, 46)]);
        assert_eq!(set.len(), 2);
        assert!(set.contains(5));
        assert!(set.contains(30));
        assert!(!set.contains(31));
        assert!(!set.contains(4));
        assert!(set.contains(50));
        assert!(!set.contains(51));
    }

    #[test]
    fn set_handles_top_of_space() {
        let set =
            RangeSet::from_ranges(vec![(u32::MAX - 1, u32::MAX), (0, 0), (u32::MAX, u32::MAX)]);
        assert_eq!(set.len(), 2);
        assert!(set.contains(u32::MAX));
        assert!(set.contains(0));
        assert!(!set.contains(1));
    }

    #[test]
    fn map_merges_equal_neighbours_only() {
        let map = RangeMap::from_ranges(vec![(0_u32, 9, 'a'), (10, 19, 'a'), (20, 29, 'b')]);
        let map = map.unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(15), Some('a'));
        assert_eq!(map.get(20), Some('b'));
        assert_eq!(map.get(30), None);
    }

    #[test]
    fn map_rejects_overlap() {
        let result = RangeMap::from_ranges(vec![(0_u32, 9, 'a'), (5, 19, 'b')]);
        assert_eq!(result, Err(5));
    }
}
