//! A small, fast, non-cryptographic hasher (the rustc "Fx" multiply-rotate scheme) for the
//! integer-keyed maps of inference, where SipHash dominated the profile.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    /// The multiply leaves the low bits poorly mixed, and hashbrown picks buckets by the
    /// low bits: rotate the well-mixed high bits down (as rustc-hash 2 does).
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

pub fn map_with_capacity<K, V>(n: usize) -> FxMap<K, V> {
    FxMap::with_capacity_and_hasher(n, Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::txns::Scalar;

    #[test]
    fn spreads_small_integer_pairs() {
        let t = std::time::Instant::now();
        let mut m: FxMap<(u32, Scalar), u32> = map_with_capacity(16);
        for k in 0..20_000u32 {
            for v in 1..=16i64 {
                m.insert((k, Scalar::Int(v)), k);
            }
        }
        assert_eq!(m.len(), 320_000);
        eprintln!("fx: {:?}", t.elapsed());
        use std::hash::BuildHasher;
        let b = BuildHasherDefault::<FxHasher>::default();
        let mut low = std::collections::HashSet::new();
        let mut top = std::collections::HashSet::new();
        for k in 0..20_000u32 {
            for v in 1..=16i64 {
                let h = b.hash_one((k, Scalar::Int(v)));
                low.insert(h & ((1 << 20) - 1));
                top.insert(h >> 57);
            }
        }
        eprintln!(
            "distinct low-20-bit buckets: {}, distinct top-7: {}",
            low.len(),
            top.len()
        );
    }
}
