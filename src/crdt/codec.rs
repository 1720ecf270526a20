//! A compact binary encoding for replica states and deltas.
//!
//! Unsigned integers are LEB128 varints (7 bits a byte, low bits first),
//! signed ones are zigzag-mapped first, collections are a varint length
//! followed by their elements, and sets and maps are written in ascending
//! order. Every value has exactly one encoding: the decoder rejects
//! overlong varints, unsorted or repeated set elements and map keys, and
//! the non-canonical forms each CRDT type documents (a zero vector-clock
//! entry, for instance), so two replicas with equal states produce equal
//! bytes.
//!
//! Decoding never panics, and a hostile length cannot make it allocate: a
//! length larger than the bytes left is rejected before anything is
//! allocated (every element takes at least one byte), and collections grow
//! only as their elements actually decode.
//!
//! ```
//! use lvars::crdt::codec::{from_bytes, to_bytes, DecodeError};
//! use std::collections::BTreeSet;
//!
//! let set: BTreeSet<u32> = [1, 300].into_iter().collect();
//! let bytes = to_bytes(&set);
//! assert_eq!(bytes, [2, 1, 0xAC, 0x02]);
//! assert_eq!(from_bytes::<BTreeSet<u32>>(&bytes).unwrap(), set);
//! assert_eq!(from_bytes::<BTreeSet<u32>>(&bytes[..3]), Err(DecodeError::UnexpectedEnd));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::lattice::{Flat, MapUnion, Max, Min, SetUnion};

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    UnexpectedEnd,
    /// A varint ran past 64 bits.
    VarintOverflow,
    /// A number does not fit the type it is decoded into.
    OutOfRange {
        /// What was being decoded.
        what: &'static str,
    },
    /// A length prefix is larger than the bytes that follow it.
    LengthTooLarge {
        /// The claimed length.
        len: u64,
        /// The bytes left in the input.
        remaining: usize,
    },
    /// An enum tag (or a bool) that no variant uses.
    InvalidTag {
        /// What was being decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// Well-formed bytes that are not the one canonical encoding of a
    /// value (an overlong varint, unsorted or repeated set elements, a zero
    /// clock entry, ...).
    NonCanonical {
        /// What was wrong.
        what: &'static str,
    },
    /// The value ended before the input did.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd => f.write_str("truncated input: it ended in the middle of a value"),
            DecodeError::VarintOverflow => f.write_str("malformed varint: longer than 64 bits"),
            DecodeError::OutOfRange { what } => write!(f, "number out of range for {what}"),
            DecodeError::LengthTooLarge { len, remaining } => {
                write!(
                    f,
                    "length prefix {len} exceeds the {remaining} byte(s) left in the input"
                )
            }
            DecodeError::InvalidTag { what, tag } => write!(f, "invalid tag {tag} for {what}"),
            DecodeError::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeError::NonCanonical { what } => write!(f, "non-canonical encoding: {what}"),
            DecodeError::TrailingBytes { count } => write!(f, "{count} unexpected byte(s) after the value"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A value that can be written in this module's binary format.
pub trait Encode {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
}

/// A value that can be read back from this module's binary format.
pub trait Decode: Sized {
    /// Reads one value from `input`, advancing it past the value.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] for truncated, malformed or non-canonical input.
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// The encoding of `value` as a new vector.
pub fn to_bytes<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

/// Decodes one value that must span all of `bytes`.
///
/// # Errors
///
/// Whatever [`Decode::decode`] reports, or [`DecodeError::TrailingBytes`]
/// if bytes are left over.
pub fn from_bytes<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut input = Reader::new(bytes);
    let value = T::decode(&mut input)?;
    match input.remaining() {
        0 => Ok(value),
        count => Err(DecodeError::TrailingBytes { count }),
    }
}

/// A cursor over input bytes, for [`Decode`] implementations.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Reads one byte.
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.bytes.split_first().ok_or(DecodeError::UnexpectedEnd)?;
        self.bytes = rest;
        Ok(b)
    }

    /// Reads `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::UnexpectedEnd);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// Reads a canonical LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let low = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= low << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(DecodeError::NonCanonical {
                        what: "overlong varint",
                    });
                }
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// Reads a collection length and checks it against the bytes left
    /// (every element takes at least one byte), so a hostile length cannot
    /// cause a large allocation.
    pub fn length(&mut self) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        let remaining = self.remaining();
        match usize::try_from(len) {
            Ok(n) if n <= remaining => Ok(n),
            _ => Err(DecodeError::LengthTooLarge { len, remaining }),
        }
    }
}

/// Appends `value` as a LEB128 varint.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a collection length.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    write_varint(out, len as u64);
}

/// Decodes `len` elements that must be strictly increasing: the shared
/// rule for sets, map keys and sorted sequences.
pub fn decode_sorted<T: Decode + Ord>(input: &mut Reader<'_>, what: &'static str) -> Result<Vec<T>, DecodeError> {
    let len = input.length()?;
    // The length is bounded by the input's size, but an element may be far
    // larger in memory than its one byte: grow as elements actually decode.
    let mut items: Vec<T> = Vec::with_capacity(len.min(64));
    for _ in 0..len {
        let item = T::decode(input)?;
        if items.last().is_some_and(|prev| *prev >= item) {
            return Err(DecodeError::NonCanonical { what });
        }
        items.push(item);
    }
    Ok(items)
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                write_varint(out, u64::from(*self));
            }
        }
        impl Decode for $t {
            fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
                <$t>::try_from(input.varint()?).map_err(|_| DecodeError::OutOfRange { what: stringify!($t) })
            }
        }
    )*};
}
unsigned!(u16, u32, u64);

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                let v = i64::from(*self);
                write_varint(out, ((v << 1) ^ (v >> 63)) as u64);
            }
        }
        impl Decode for $t {
            fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let z = input.varint()?;
                let v = ((z >> 1) as i64) ^ -((z & 1) as i64);
                <$t>::try_from(v).map_err(|_| DecodeError::OutOfRange { what: stringify!($t) })
            }
        }
    )*};
}
signed!(i32, i64);

impl Encode for u8 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl Decode for u8 {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        input.byte()
    }
}

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match input.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what: "bool", tag }),
        }
    }
}

/// One zero byte, so that every value takes at least one byte (which the
/// length check of [`Reader::length`] relies on).
impl Encode for () {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(0);
    }
}

impl Decode for () {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match input.byte()? {
            0 => Ok(()),
            tag => Err(DecodeError::InvalidTag { what: "()", tag }),
        }
    }
}

impl Encode for str {
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        out.extend_from_slice(self.as_bytes());
    }
}

impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_str().encode(out);
    }
}

impl Decode for String {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = input.length()?;
        let bytes = input.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match input.byte()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(input)?)),
            tag => Err(DecodeError::InvalidTag { what: "Option", tag }),
        }
    }
}

impl<T: Encode> Encode for [T] {
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_slice().encode(out);
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = input.length()?;
        (0..len).map(|_| T::decode(input)).collect()
    }
}

impl<T: Encode> Encode for BTreeSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }
}

impl<T: Decode + Ord> Decode for BTreeSet<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(decode_sorted(input, "set elements not strictly increasing")?
            .into_iter()
            .collect())
    }
}

impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }
}

impl<K: Decode + Ord, V: Decode> Decode for BTreeMap<K, V> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = input.length()?;
        let mut map = BTreeMap::new();
        for _ in 0..len {
            let k = K::decode(input)?;
            if map.last_key_value().is_some_and(|(prev, _)| *prev >= k) {
                return Err(DecodeError::NonCanonical {
                    what: "map keys not strictly increasing",
                });
            }
            let v = V::decode(input)?;
            map.insert(k, v);
        }
        Ok(map)
    }
}

macro_rules! tuple {
    ($($name:ident . $idx:tt),*) => {
        impl<$($name: Encode),*> Encode for ($($name,)*) {
            fn encode(&self, out: &mut Vec<u8>) {
                $(self.$idx.encode(out);)*
            }
        }
        impl<$($name: Decode),*> Decode for ($($name,)*) {
            fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(($($name::decode(input)?,)*))
            }
        }
    };
}
tuple!(A.0, B.1);
tuple!(A.0, B.1, C.2);

// The crate's own lattices, so they can be replica states too.

impl<T: Encode + Ord> Encode for Max<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_option_ref(self.get(), out);
    }
}

impl<T: Decode + Ord> Decode for Max<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Option::<T>::decode(input)?.map_or_else(Max::default, Max::new))
    }
}

impl<T: Encode + Ord> Encode for Min<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_option_ref(self.get(), out);
    }
}

impl<T: Decode + Ord> Decode for Min<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Option::<T>::decode(input)?.map_or_else(Min::default, Min::new))
    }
}

fn encode_option_ref<T: Encode>(value: Option<&T>, out: &mut Vec<u8>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            v.encode(out);
        }
    }
}

impl<T: Encode + Ord> Encode for SetUnion<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }
}

impl<T: Decode + Ord> Decode for SetUnion<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BTreeSet::<T>::decode(input)?.into_iter().collect())
    }
}

impl<K: Encode + Ord, V: Encode + crate::lattice::Lattice> Encode for MapUnion<K, V> {
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }
}

impl<K: Decode + Ord, V: Decode + crate::lattice::Lattice> Decode for MapUnion<K, V> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BTreeMap::<K, V>::decode(input)?.into_iter().collect())
    }
}

impl<T: Encode> Encode for Flat<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Flat::Bottom => out.push(0),
            Flat::Value(v) => {
                out.push(1);
                v.encode(out);
            }
            Flat::Top => out.push(2),
        }
    }
}

impl<T: Decode> Decode for Flat<T> {
    fn decode(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match input.byte()? {
            0 => Ok(Flat::Bottom),
            1 => Ok(Flat::Value(T::decode(input)?)),
            2 => Ok(Flat::Top),
            tag => Err(DecodeError::InvalidTag { what: "Flat", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let bytes = to_bytes(&v);
            assert_eq!(from_bytes::<u64>(&bytes), Ok(v), "{v}");
        }
        assert_eq!(to_bytes(&u64::MAX).len(), 10);
    }

    #[test]
    fn malformed_varints_are_rejected() {
        assert_eq!(
            from_bytes::<u64>(&[0x80, 0x00]),
            Err(DecodeError::NonCanonical {
                what: "overlong varint"
            })
        );
        assert_eq!(from_bytes::<u64>(&[0xff; 9]), Err(DecodeError::UnexpectedEnd));
        let mut too_long = vec![0xff; 9];
        too_long.push(0x02);
        assert_eq!(from_bytes::<u64>(&too_long), Err(DecodeError::VarintOverflow));
        assert_eq!(
            from_bytes::<u32>(&to_bytes(&(1u64 << 32))),
            Err(DecodeError::OutOfRange { what: "u32" })
        );
    }

    #[test]
    fn signed_values_use_zigzag() {
        assert_eq!(to_bytes(&-1i64), [1]);
        assert_eq!(to_bytes(&1i64), [2]);
        for v in [i64::MIN, -300, 0, 300, i64::MAX] {
            assert_eq!(from_bytes::<i64>(&to_bytes(&v)), Ok(v));
        }
        assert_eq!(
            from_bytes::<i32>(&to_bytes(&i64::MAX)),
            Err(DecodeError::OutOfRange { what: "i32" })
        );
    }

    #[test]
    fn hostile_lengths_are_rejected_before_allocating() {
        let mut bytes = Vec::new();
        write_varint(&mut bytes, u64::MAX);
        assert!(matches!(
            from_bytes::<Vec<u8>>(&bytes),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        assert!(matches!(
            from_bytes::<String>(&[5, b'a']),
            Err(DecodeError::LengthTooLarge { len: 5, remaining: 1 })
        ));
    }

    #[test]
    fn sets_and_maps_must_be_sorted_and_unique() {
        assert!(matches!(
            from_bytes::<BTreeSet<u8>>(&[2, 5, 5]),
            Err(DecodeError::NonCanonical { .. })
        ));
        assert!(matches!(
            from_bytes::<BTreeSet<u8>>(&[2, 6, 5]),
            Err(DecodeError::NonCanonical { .. })
        ));
        assert!(matches!(
            from_bytes::<BTreeMap<u8, u8>>(&[2, 1, 0, 1, 0]),
            Err(DecodeError::NonCanonical { .. })
        ));
        let map: BTreeMap<u8, String> = [(1, "a".to_string()), (2, "bc".to_string())].into();
        assert_eq!(from_bytes::<BTreeMap<u8, String>>(&to_bytes(&map)), Ok(map));
    }

    #[test]
    fn the_crates_lattices_round_trip() {
        let v = (Max::new(3u32), Min::new(-4i64), Flat::Value(String::from("x")));
        assert_eq!(from_bytes::<(Max<u32>, Min<i64>, Flat<String>)>(&to_bytes(&v)), Ok(v));
        let s: SetUnion<u16> = [3, 1000].into_iter().collect();
        assert_eq!(from_bytes::<SetUnion<u16>>(&to_bytes(&s)), Ok(s));
        let m: MapUnion<u8, Max<u8>> = [(1, Max::new(2))].into_iter().collect();
        assert_eq!(from_bytes::<MapUnion<u8, Max<u8>>>(&to_bytes(&m)), Ok(m));
        assert_eq!(
            from_bytes::<Flat<u8>>(&[3]),
            Err(DecodeError::InvalidTag { what: "Flat", tag: 3 })
        );
        assert_eq!(
            from_bytes::<bool>(&[1, 0]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(from_bytes::<String>(&[1, 0xff]), Err(DecodeError::InvalidUtf8));
    }
}
