//! The binary form of what the HDF5 checker sends back (see `sandbox.rs`): every length and
//! number little-endian, every string and array length-prefixed, every read bounds-checked (a
//! checker that died mid-answer gives a short buffer, an error here, never a panic).

use crate::error::{Error, Result};

/// Builds an answer.
#[derive(Default)]
pub struct Enc(Vec<u8>);

impl Enc {
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.u64(1).str(s),
            None => self.u64(0),
        }
    }

    pub fn strs(&mut self, v: &[String]) -> &mut Self {
        self.u64(v.len() as u64);
        v.iter().for_each(|s| {
            self.str(s);
        });
        self
    }

    pub fn usizes(&mut self, v: &[usize]) -> &mut Self {
        self.u64(v.len() as u64);
        v.iter().for_each(|&x| {
            self.u64(x as u64);
        });
        self
    }

    pub fn i64s(&mut self, v: &[i64]) -> &mut Self {
        self.u64(v.len() as u64);
        v.iter().for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
        self
    }

    pub fn f64s(&mut self, v: &[f64]) -> &mut Self {
        self.u64(v.len() as u64);
        v.iter().for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
        self
    }

    pub fn f32s(&mut self, v: &[f32]) -> &mut Self {
        self.u64(v.len() as u64);
        v.iter().for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads an answer back, in the order it was built.
pub struct Dec<'a> {
    buf: &'a [u8],
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Dec { buf }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).ok().filter(|&n| n <= self.buf.len()).ok_or_else(short)?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn usize(&mut self) -> Result<usize> {
        usize::try_from(self.u64()?).map_err(|_| short())
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u64()?;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| Error::msg("the HDF5 checker's answer holds a string that is not UTF-8"))
    }

    pub fn opt_str(&mut self) -> Result<Option<String>> {
        Ok(if self.u64()? == 1 { Some(self.str()?) } else { None })
    }

    pub fn strs(&mut self) -> Result<Vec<String>> {
        let n = self.count(8)?;
        (0..n).map(|_| self.str()).collect()
    }

    pub fn usizes(&mut self) -> Result<Vec<usize>> {
        let n = self.count(8)?;
        (0..n).map(|_| self.usize()).collect()
    }

    /// A count of items at least `min_size` bytes each, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.usize()?;
        if n.checked_mul(min_size).is_none_or(|b| b > self.buf.len()) {
            return Err(short());
        }
        Ok(n)
    }

    fn words<const N: usize>(&mut self) -> Result<impl Iterator<Item = [u8; N]> + 'a> {
        let n = self.count(N)?;
        let b = self.take((n * N) as u64)?;
        Ok(b.chunks_exact(N).map(|c| c.try_into().expect("N bytes")))
    }

    pub fn i64s(&mut self) -> Result<Vec<i64>> {
        Ok(self.words::<8>()?.map(i64::from_le_bytes).collect())
    }

    pub fn f64s(&mut self) -> Result<Vec<f64>> {
        Ok(self.words::<8>()?.map(f64::from_le_bytes).collect())
    }

    pub fn f32s(&mut self) -> Result<Vec<f32>> {
        Ok(self.words::<4>()?.map(f32::from_le_bytes).collect())
    }
}

fn short() -> Error {
    Error::msg("the HDF5 checker's answer is cut short")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input_is_an_error() {
        let mut e = Enc::default();
        e.str("é").opt_str(None).opt_str(Some("x")).strs(&["a".into(), "".into()]).usizes(&[3, 4]);
        e.i64s(&[-1, 2]).f64s(&[0.5]).f32s(&[1.5, f32::NAN]).bytes(b"raw");
        let buf = e.finish();
        let mut d = Dec::new(&buf);
        assert_eq!(d.str().unwrap(), "é");
        assert_eq!((d.opt_str().unwrap(), d.opt_str().unwrap()), (None, Some("x".into())));
        assert_eq!(d.strs().unwrap(), ["a", ""]);
        assert_eq!(d.usizes().unwrap(), [3, 4]);
        assert_eq!(d.i64s().unwrap(), [-1, 2]);
        assert_eq!(d.f64s().unwrap(), [0.5]);
        let f = d.f32s().unwrap();
        assert!(f[0] == 1.5 && f[1].is_nan());
        assert_eq!(d.bytes().unwrap(), b"raw");
        assert!(d.u64().is_err(), "past the end");
        for cut in 0..buf.len() {
            let mut d = Dec::new(&buf[..cut]);
            let all = (|| -> Result<()> {
                d.str()?;
                d.opt_str()?;
                d.opt_str()?;
                d.strs()?;
                d.usizes()?;
                d.i64s()?;
                d.f64s()?;
                d.f32s()?;
                d.bytes().map(drop)
            })();
            assert!(all.is_err(), "cut at {cut} of {}", buf.len());
        }
        let mut huge = Enc::default();
        huge.u64(u64::MAX);
        let huge = huge.finish();
        assert!(Dec::new(&huge).f64s().is_err() && Dec::new(&huge).strs().is_err() && Dec::new(&huge).bytes().is_err());
    }
}
