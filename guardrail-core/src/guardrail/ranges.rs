//! Sorted tables of non-overlapping address ranges, searched by binary search.
//!
//! IPv4 addresses are keyed as `u32` and IPv6 addresses as `u128`, so that a lookup is one
//! `partition_point` over a contiguous vector instead of a scan over every configured network.
//!
//! # Bucket index of large sets
//!
//! A [`RangeSet`] of more than [`INDEX_MIN_RANGES`] ranges also keeps a bucket index, so that a
//! lookup costs about the same whatever the number of ranges. Every key between the first start
//! and the last end shares the leading bits that those two keys share. The next `b` bits below that
//! common prefix pick one of `2^b` buckets, and the index stores, for each bucket, the position of
//! the first range that starts in it or later. A lookup then searches only the ranges that start in
//! the key's bucket (usually none to two) and the range just before them.
//!
//! `b` is one more than the bit length of the range count, at most [`INDEX_MAX_BITS`], so the
//! index has between 2 and 4 buckets per range: about 16 bytes of `u32` per range, and at most
//! 256 KiB. Sets whose ranges crowd into a few buckets stay correct and fall back to a binary
//! search within those buckets.

/// The number of ranges above which a [`RangeSet`] builds its bucket index. Up to it a binary
/// search takes at most five comparisons, so an index would save little and cost memory.
pub(crate) const INDEX_MIN_RANGES: usize = 16;

/// The maximum number of key bits that select a bucket: 65,536 buckets of 4 bytes.
pub(crate) const INDEX_MAX_BITS: u32 = 16;

/// An address key: `u32` for IPv4 and `u128` for IPv6.
pub(crate) trait AddressKey: Copy + Ord + std::fmt::Debug {
    /// The width of the key in bits.
    const BITS: u32;

    /// Returns the next key, or `None` at the top of the address space.
    fn successor(self) -> Option<Self>;

    /// Returns the number of leading bits that `self` and `other` share.
    fn common_prefix_len(self, other: Self) -> u32;

    /// Returns the bits of `self` selected by shifting right by `shift` and masking with `mask`.
    fn bucket(self, shift: u32, mask: usize) -> usize;
}

impl AddressKey for u32 {
    const BITS: u32 = u32::BITS;

    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }

    fn common_prefix_len(self, other: Self) -> u32 {
        (self ^ other).leading_zeros()
    }

    fn bucket(self, shift: u32, mask: usize) -> usize {
        // The mask keeps at most `INDEX_MAX_BITS` bits, so the cast loses nothing it keeps.
        (self.checked_shr(shift).unwrap_or(0) as usize) & mask
    }
}

impl AddressKey for u128 {
    const BITS: u32 = u128::BITS;

    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }

    fn common_prefix_len(self, other: Self) -> u32 {
        (self ^ other).leading_zeros()
    }

    fn bucket(self, shift: u32, mask: usize) -> usize {
        // The mask keeps at most `INDEX_MAX_BITS` bits, so the cast loses nothing it keeps.
        (self.checked_shr(shift).unwrap_or(0) as usize) & mask
    }
}

/// A set of addresses stored as sorted, merged, non-overlapping inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RangeSet<K> {
    starts: Vec<K>,
    ends: Vec<K>,
    /// Present when the set has more than [`INDEX_MIN_RANGES`] ranges.
    index: Option<BucketIndex>,
}

/// The first-level table of a large [`RangeSet`] (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BucketIndex {
    /// The right shift that brings a key's bucket bits to the bottom.
    shift: u32,
    /// `2^b - 1` for `b` bucket bits.
    mask: usize,
    /// `2^b + 1` entries: entry `i` is the number of ranges whose start lies in a bucket below
    /// `i`, so the ranges starting in bucket `i` are `first_range[i]..first_range[i + 1]`.
    first_range: Vec<u32>,
}

impl BucketIndex {
    /// Builds the index over sorted starts that all lie between `starts[0]` and `last_end`.
    fn build<K: AddressKey>(starts: &[K], last_end: K) -> Option<Self> {
        let first = *starts.first()?;
        let count = u32::try_from(starts.len()).ok()?;
        let bits = (usize::BITS - starts.len().leading_zeros() + 1).min(INDEX_MAX_BITS);
        let prefix = first.common_prefix_len(last_end);
        let shift = K::BITS.saturating_sub(prefix).saturating_sub(bits);
        let mask = (1_usize << bits) - 1;

        let mut first_range = Vec::with_capacity(mask + 2);
        let mut position = 0_u32;
        for bucket in 0..=mask + 1 {
            while let Some(start) = starts.get(position as usize)
                && start.bucket(shift, mask) < bucket
            {
                position += 1;
            }
            first_range.push(position);
        }
        debug_assert_eq!(first_range.last(), Some(&count));
        Some(Self {
            shift,
            mask,
            first_range,
        })
    }
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
        let index = match ends.last() {
            Some(last_end) if starts.len() > INDEX_MIN_RANGES => {
                BucketIndex::build(&starts, *last_end)
            }
            _ => None,
        };
        Self {
            starts,
            ends,
            index,
        }
    }

    /// Returns whether `key` lies in one of the ranges.
    pub(crate) fn contains(&self, key: K) -> bool {
        let after = match &self.index {
            None => self.starts.partition_point(|start| *start <= key),
            Some(index) => {
                // Keys outside the first start and the last end are not in the common prefix,
                // so their bucket would be meaningless.
                let (Some(first), Some(last)) = (self.starts.first(), self.ends.last()) else {
                    return false;
                };
                if key < *first || key > *last {
                    return false;
                }
                let bucket = key.bucket(index.shift, index.mask);
                let low = index.first_range.get(bucket).copied().unwrap_or(0) as usize;
                let high = index.first_range.get(bucket + 1).copied().unwrap_or(0) as usize;
                let candidates = self.starts.get(low..high).unwrap_or_default();
                low + candidates.partition_point(|start| *start <= key)
            }
        };
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

    /// Returns whether a linear scan of `ranges` finds `key`.
    fn scan<K: AddressKey>(ranges: &[(K, K)], key: K) -> bool {
        ranges
            .iter()
            .any(|(start, end)| *start <= key && key <= *end)
    }

    #[test]
    fn index_is_built_only_above_threshold() {
        let small: Vec<(u32, u32)> = (0..16).map(|i| (i * 10, i * 10 + 3)).collect();
        assert!(RangeSet::from_ranges(small).index.is_none());
        let large: Vec<(u32, u32)> = (0..17).map(|i| (i * 10, i * 10 + 3)).collect();
        let set = RangeSet::from_ranges(large);
        let index = set.index.as_ref().map(|index| index.first_range.len());
        // 17 ranges need 5 bits, plus one: 64 buckets and the closing entry.
        assert_eq!(index, Some(65));
    }

    #[test]
    fn index_agrees_with_scan_on_every_key() {
        // Ranges of different widths, some spanning several buckets, over keys 1000 to 1999.
        let ranges: Vec<(u32, u32)> = (0..40)
            .map(|i| (1000 + i * 25, 1000 + i * 25 + (i % 7) * 4))
            .chain([(1990, 1999)])
            .collect();
        let set = RangeSet::from_ranges(ranges.clone());
        assert!(set.index.is_some());
        for key in 900..2100 {
            assert_eq!(set.contains(key), scan(&ranges, key), "key {key}");
        }
    }

    #[test]
    fn index_covers_whole_space() {
        // The first and last keys of the space share no prefix, so the buckets take the top bits.
        let mut ranges: Vec<(u128, u128)> =
            (0..30_u128).map(|i| (i << 120, (i << 120) + 5)).collect();
        ranges.push((u128::MAX - 1, u128::MAX));
        let set = RangeSet::from_ranges(ranges.clone());
        assert!(set.index.is_some());
        let probes = (0..32_u128).flat_map(|i| [i << 120, (i << 120) + 5, (i << 120) + 6]);
        for key in probes.chain([u128::MAX, u128::MAX - 2]) {
            assert_eq!(set.contains(key), scan(&ranges, key), "key {key:#x}");
        }
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
