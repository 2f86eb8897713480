//! How many cores this process may use, asked once: `available_parallelism` reads the
//! cgroup files on every call, which costs more than checking a small history does.

use std::sync::OnceLock;

/// The cores available to this process (at least 1), as first asked.
pub fn available() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `threads` as asked, or with 0 one per available core.
pub fn or_available(threads: usize) -> usize {
    match threads {
        0 => available(),
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_every_core_and_the_answer_is_stable() {
        assert!(available() >= 1);
        assert_eq!(or_available(0), available());
        assert_eq!(or_available(3), 3);
        assert_eq!(available(), available());
    }
}
