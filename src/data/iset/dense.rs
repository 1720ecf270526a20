//! Dense sets: unsigned integers below a bound, one bit each.
//!
//! A set made with [`RawISet::dense`](super::RawISet::dense) holds no
//! entries (its hash table stays at the minimum size, empty): element `i`
//! is bit `i % 63` of word `i / 63`, and
//! bit 63 of every word is its `FROZEN` flag. This is what a graph
//! traversal's visited set over vertex numbers wants: an insert of a
//! present element is one load that usually hits the cache, against a probe
//! and an entry comparison in the hashed set.
//!
//! # Protocols
//!
//! **Insert.** A CAS loop on the element's word: if the bit is set the
//! element is present (`Ok(false)`, nothing written); if `FROZEN` is set it
//! fails with `PutAfterFreeze`; otherwise a `SeqCst` CAS sets the bit. That
//! CAS is the element's publication; the set's counting, waiter and
//! listener steps follow it exactly as after the hashed set's slot CAS.
//!
//! **Freeze.** `fetch_or(FROZEN)` on every word, in order; the value each
//! returns is that word's final content. **Invariant (freeze vs insert).**
//! An insert and the freeze are ordered on the element's word: either the
//! insert's CAS came first (the freeze's `fetch_or` returns the bit) or the
//! insert sees `FROZEN` without its bit and fails. A word never changes
//! after its `FROZEN` is set, so a second freeze returns the same elements.
//!
//! **Listeners.** Each listener has a bitmap of the same shape ([`Handled`]);
//! whoever (the inserting thread or the listener's installation scan) sets
//! an element's bit there with `fetch_or` delivers it. Exactly once by the
//! same argument as the hashed set's `handled` words: at most once because
//! one `fetch_or` wins, at least once because the insert's `SeqCst` CAS is
//! followed by a `SeqCst` load of the listener list and the installation's
//! `SeqCst` push by a `SeqCst` fence and `SeqCst` loads of the words.
//!
//! Modelled by `loom_tests/iset.rs` (`dense_*`).

use std::marker::PhantomData;

use super::inline::InlineKey;
use crate::error::Error;
use crate::sync::{AtomicU64, Ordering::*};

/// Element bits per word (bit 63 is `FROZEN`).
const BITS: usize = 63;
const FROZEN: u64 = 1 << 63;

/// Element types of a dense set ([`RawISet::dense`](super::RawISet::dense),
/// [`ISet::dense`](crate::ISet::dense)): unsigned integers, each stored as
/// the bit of its value. Sealed: implemented for `u8`, `u16`, `u32`, `u64`
/// and `usize`, whose numeric order is the order the frozen set is sorted
/// in.
pub trait DenseKey: Copy + Ord + std::hash::Hash + Send + Sync + 'static + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! dense_key {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl DenseKey for $t {}
    )*};
}
dense_key!(u8, u16, u32, u64, usize);

/// A bitmap of `bound` elements.
fn bitmap(bound: usize) -> Box<[AtomicU64]> {
    (0..bound.div_ceil(BITS)).map(|_| AtomicU64::new(0)).collect()
}

#[inline]
fn split(i: usize) -> (usize, u64) {
    (i / BITS, 1 << (i % BITS))
}

/// The elements of a dense set. Its element type is a [`DenseKey`] (checked
/// when it is made); an element's index is its value, read through
/// [`InlineKey`] (every dense key type is an inline type), which compiles to
/// a plain load where the set's methods are not generic over the type any
/// more: no call through a function pointer on the insert path.
pub(super) struct Dense<T> {
    words: Box<[AtomicU64]>,
    bound: usize,
    _elements: PhantomData<fn(T) -> T>,
}

impl<T: 'static> Dense<T> {
    pub(super) fn new(bound: usize) -> Self
    where
        T: DenseKey,
    {
        debug_assert!(InlineKey::of::<T>());
        Self {
            words: bitmap(bound),
            bound,
            _elements: PhantomData,
        }
    }

    /// The bit index of `value`, if it is below the bound.
    #[inline]
    pub(super) fn index(&self, value: &T) -> Option<usize> {
        usize::try_from(InlineKey::to_bits(value))
            .ok()
            .filter(|&i| i < self.bound)
    }

    pub(super) fn element(&self, i: usize) -> T {
        InlineKey::from_bits(i as u64)
    }

    /// The hash of an element for the set's waiter stripes (no hasher
    /// needed: indices below the bound are distinct).
    #[inline]
    pub(super) fn hash(&self, value: &T) -> u64 {
        InlineKey::to_bits(value).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Whether index `i` is present (an `Acquire` load: the insert fast
    /// path's "already there", as in [`insert`](Self::insert)).
    #[inline]
    pub(super) fn has_index(&self, i: usize) -> bool {
        let (w, bit) = split(i);
        self.words[w].load(Acquire) & bit != 0
    }

    /// The insert protocol (module doc): `Ok(true)` if this call set the
    /// bit.
    #[inline]
    pub(super) fn insert(&self, i: usize) -> Result<bool, Error> {
        let (w, bit) = split(i);
        let word = &self.words[w];
        let mut cur = word.load(Acquire);
        loop {
            if cur & bit != 0 {
                return Ok(false);
            }
            if cur & FROZEN != 0 {
                return Err(Error::PutAfterFreeze { lvar: "ISet" });
            }
            // SeqCst: the publication of the element (module doc).
            match word.compare_exchange_weak(cur, cur | bit, SeqCst, Acquire) {
                Ok(_) => return Ok(true),
                Err(actual) => cur = actual,
            }
        }
    }

    #[inline]
    pub(super) fn contains_index(&self, i: usize) -> bool {
        let (w, bit) = split(i);
        self.words[w].load(SeqCst) & bit != 0
    }

    /// Calls `f` on every element index present now, in ascending order
    /// (`SeqCst` loads: the listener installation's side of the Dekker
    /// pair).
    pub(super) fn for_each_index(&self, mut f: impl FnMut(usize)) {
        for (w, word) in self.words.iter().enumerate() {
            each_bit(word.load(SeqCst) & !FROZEN, w, &mut f);
        }
    }

    /// The freeze protocol (module doc): the final elements, ascending.
    pub(super) fn freeze(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.count_hint());
        for (w, word) in self.words.iter().enumerate() {
            each_bit(word.fetch_or(FROZEN, SeqCst) & !FROZEN, w, &mut |i| out.push(i));
        }
        out
    }

    /// How many elements are present now (a capacity hint for `freeze`).
    fn count_hint(&self) -> usize {
        self.words
            .iter()
            .map(|w| (w.load(Relaxed) & !FROZEN).count_ones() as usize)
            .sum()
    }

    pub(super) fn bound(&self) -> usize {
        self.bound
    }
}

fn each_bit(mut bits: u64, w: usize, f: &mut impl FnMut(usize)) {
    while bits != 0 {
        f(w * BITS + bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

/// One listener's delivered elements in a dense set.
pub(super) struct Handled {
    words: Box<[AtomicU64]>,
}

impl Handled {
    pub(super) fn new(bound: usize) -> Self {
        Self { words: bitmap(bound) }
    }

    /// Claims the delivery of element `i`: `true` for exactly one caller.
    #[inline]
    pub(super) fn claim(&self, i: usize) -> bool {
        let (w, bit) = split(i);
        self.words[w].fetch_or(bit, AcqRel) & bit == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn elements_map_to_bits_across_word_boundaries() {
        let d: Dense<u32> = Dense::new(200);
        for i in [0usize, 62, 63, 125, 126, 199] {
            assert_eq!(d.insert(i), Ok(true));
            assert_eq!(d.insert(i), Ok(false));
            assert!(d.contains_index(i));
        }
        assert!(!d.contains_index(1) && !d.contains_index(64));
        let mut seen = Vec::new();
        d.for_each_index(|i| seen.push(i));
        assert_eq!(seen, [0, 62, 63, 125, 126, 199]);
        assert_eq!(d.index(&199), Some(199));
        assert_eq!(d.index(&200), None);
        assert_eq!(d.element(126), 126u32);
    }

    #[test]
    fn freeze_returns_the_elements_once_and_for_all() {
        let d: Dense<u8> = Dense::new(256);
        for i in [5usize, 255, 63] {
            d.insert(i).unwrap();
        }
        assert_eq!(d.freeze(), [5, 63, 255]);
        assert_eq!(d.insert(5), Ok(false), "present: fine after freeze");
        assert_eq!(d.insert(6), Err(Error::PutAfterFreeze { lvar: "ISet" }));
        assert_eq!(d.freeze(), [5, 63, 255], "a second freeze agrees");
    }

    #[test]
    fn a_handled_bit_is_claimed_once() {
        let h = Handled::new(100);
        assert!(h.claim(70));
        assert!(!h.claim(70));
        assert!(h.claim(7));
    }
}
