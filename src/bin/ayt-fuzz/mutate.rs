//! Mutations of a seed input, drawn from the run's own ChaCha stream so that `(seed, index)`
//! always gives the same input: a finding is replayed from its index alone.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Values that make parsers' arithmetic go wrong: zero, one, sign bits, maxima.
const INTERESTING_U32: [u32; 10] = [0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
/// The same for text formats.
const INTERESTING_TEXT: [&str; 14] =
    ["0", "-1", "1", "nan", "inf", "-inf", "1e309", "-0.0", "18446744073709551616", "9223372036854775807", "\"\"", "[]", "{}", "[[]]"];

/// 1 to 8 byte-level mutations of `input`, some crossing over with `other`.
pub fn bytes(input: &[u8], other: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        let len = v.len();
        match rng.random_range(0..9) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] = rng.random();
            }
            2 if len >= 4 => {
                let i = rng.random_range(0..=len - 4);
                let x = INTERESTING_U32[rng.random_range(0..INTERESTING_U32.len())];
                let b = if rng.random() { x.to_be_bytes() } else { x.to_le_bytes() };
                v[i..i + 4].copy_from_slice(&b);
            }
            3 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..=16);
                let ins: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                v.splice(i..i, ins);
            }
            4 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(64));
                v.drain(i..i + n);
            }
            5 if len > 0 => {
                let (i, n) = range(len, rng);
                let copy = v[i..i + n].to_vec();
                let at = rng.random_range(0..=len);
                v.splice(at..at, copy);
            }
            6 if len > 0 => v.truncate(rng.random_range(0..len)),
            7 if !other.is_empty() && len > 0 => {
                // crossover: a piece of another seed in place of a piece of this one
                let (i, n) = range(len, rng);
                let (j, m) = range(other.len(), rng);
                v.splice(i..i + n, other[j..j + m].iter().copied());
            }
            _ => v.extend((0..rng.random_range(1..=32)).map(|_| rng.random::<u8>())),
        }
    }
    v
}

fn range(len: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let i = rng.random_range(0..len);
    (i, rng.random_range(1..=(len - i).min(256)))
}

/// Text mutations (half the time), else byte mutations: a token replaced by an interesting
/// value, a line deleted, duplicated or swapped.
pub fn text(input: &[u8], other: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    if rng.random() {
        return bytes(input, other, rng);
    }
    let s = String::from_utf8_lossy(input);
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return bytes(input, other, rng);
    }
    for _ in 0..rng.random_range(1..=4) {
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..4) {
            0 => {
                if let Some((k, _)) = lines[i].split_once('=') {
                    lines[i] = format!("{k}= {}", INTERESTING_TEXT[rng.random_range(0..INTERESTING_TEXT.len())]);
                }
            }
            1 if lines.len() > 1 => {
                lines.remove(i);
            }
            2 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            _ => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
        }
    }
    lines.join("\n").into_bytes()
}
