//! Cheap, incremental keys for the search's memo of visited configurations.
//!
//! A configuration is (set of linearized ops, model state). The set is hashed Zobrist
//! style (XOR of a random 128-bit key per op, updated in O(1) when an op is linearized or
//! undone) and combined with a mix of the state id. The memo stores only these 128-bit
//! fingerprints, 16 bytes per configuration whatever the key's op count, instead of a
//! bitset per entry. Two distinct configurations share a fingerprint with probability
//! about n²/2¹²⁹ for n stored ones (< 10⁻²⁰ at a billion), and a collision can only
//! prune a branch of the search, never make an invalid history valid.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// SplitMix64: a fast, well-mixed 64-bit permutation.
#[inline]
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per-op random keys; deterministic so runs are reproducible.
pub fn op_keys(n: usize) -> Vec<u128> {
    (0..n as u64)
        .map(|i| ((splitmix(2 * i + 1) as u128) << 64) | splitmix(2 * i + 2) as u128)
        .collect()
}

/// The state's contribution to a fingerprint.
#[inline]
pub fn state_key(state: u64) -> u128 {
    ((splitmix(state ^ 0xA076_1D64_78BD_642F) as u128) << 64)
        | splitmix(state ^ 0xE703_7ED1_A0B4_28DB) as u128
}

/// Fingerprints are already uniformly random: hash them by taking their low bits.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

pub type FingerprintSet = HashSet<u128, BuildHasherDefault<PassThrough>>;

/// Approximate heap bytes of a set with `capacity` (hashbrown: 16-byte slots plus one
/// control byte, buckets a power of two at most 7/8 full).
pub fn set_bytes(capacity: usize) -> u64 {
    let buckets = (capacity * 8 / 7).max(1).next_power_of_two();
    buckets as u64 * 17
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_of_keys_is_order_independent_and_reversible() {
        let k = op_keys(3);
        let a = k[0] ^ k[1] ^ k[2];
        let b = k[2] ^ k[0] ^ k[1];
        assert_eq!(a, b);
        assert_eq!(a ^ k[1] ^ k[1], a);
        assert_ne!(k[0] ^ state_key(1), k[0] ^ state_key(2));
        let mut s = FingerprintSet::default();
        assert!(s.insert(a));
        assert!(!s.insert(b));
    }
}
