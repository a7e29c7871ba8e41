//! Python pickles read as data, never run: a stack machine over the opcodes that plain data and
//! NumPy arrays use (protocols 0 to 5), which builds values instead of calling anything. A
//! global (`numpy.core.multiarray._reconstruct`, `numpy.dtype`) becomes a name, a call of it an
//! [`Value::Object`] that records the name, the arguments and the state it was given; the one call
//! evaluated is `_codecs.encode(text, "latin1")`, which is how Python 3 pickles bytes at protocol 2.
//! Python 2 strings are bytes (as `pickle.load(f, encoding="bytes")` gives them).
//!
//! Memoised containers are copied when memoised, not shared: exact for files whose lists and
//! dicts are not referenced twice, such as the CIFAR-10 batches.

use std::collections::HashMap;

/// A pickled value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `module.name`, not looked up.
    Global(String, String),
    /// A call of global `class` with `args`, and the state a BUILD gave it.
    Object {
        class: (String, String),
        args: Vec<Value>,
        state: Option<Box<Value>>,
    },
}

/// Containers nested deeper than this are refused (dropping a deeper value would recurse).
const MAX_DEPTH: usize = 64;

impl Value {
    /// `self[key]` of a dict, the key given as text (matching `str` and `bytes` keys).
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Dict(items) = self else { return None };
        items.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
    }

    /// A `str`, or `bytes` that are UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    fn depth(&self) -> usize {
        let inner = |v: &[Value]| v.iter().map(Value::depth).max().unwrap_or(0);
        match self {
            Value::List(v) | Value::Tuple(v) => 1 + inner(v),
            Value::Dict(kv) => 1 + kv.iter().map(|(k, v)| k.depth().max(v.depth())).max().unwrap_or(0),
            Value::Object { args, state, .. } => 1 + inner(args).max(state.as_ref().map_or(0, |s| s.depth())),
            _ => 0,
        }
    }
}

/// Reads a pickle; the error says what is wrong and at which byte.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut m = Machine { input: bytes, at: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() };
    m.run().map_err(|e| format!("pickle byte {}: {e}", m.at))
}

struct Machine<'a> {
    input: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.input.len()).ok_or("cut short")?;
        let b = &self.input[self.at..end];
        self.at = end;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn len(&mut self, n: usize) -> Result<usize, String> {
        usize::try_from(self.uint(n)?).map_err(|_| "length past the address space".to_string())
    }

    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.input[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("a text argument without its newline")?;
        self.at += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| "a text argument that is not UTF-8".to_string())
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack.pop().ok_or_else(|| "pop from an empty stack".to_string())
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "empty stack".to_string())
    }

    /// The values since the last MARK, which is dropped.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let at = self.marks.pop().ok_or("no MARK")?;
        if at > self.stack.len() {
            return Err("MARK above the stack".into());
        }
        Ok(self.stack.split_off(at))
    }

    fn push(&mut self, v: Value) -> Result<(), String> {
        if v.depth() > MAX_DEPTH {
            return Err(format!("containers nested deeper than {MAX_DEPTH}"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let op = self.take(1)?[0];
            if op == b'.' {
                return self.pop();
            }
            self.step(op)?;
        }
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => drop(self.take(1)?),               // PROTO
            0x95 => drop(self.take(8)?),               // FRAME
            b'(' => self.marks.push(self.stack.len()), // MARK
            b'0' => drop(self.pop()?),                 // POP
            b'1' => drop(self.pop_mark()?),            // POP_MARK
            b'2' => {
                let v = self.top()?.clone();
                self.push(v)?
            }
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'J' => {
                let v = self.uint(4)? as u32 as i32;
                self.stack.push(Value::Int(v as i64))
            }
            b'K' => {
                let v = self.uint(1)?;
                self.stack.push(Value::Int(v as i64))
            }
            b'M' => {
                let v = self.uint(2)?;
                self.stack.push(Value::Int(v as i64))
            }
            0x8a => {
                let n = self.len(1)?;
                let v = self.long(n)?;
                self.stack.push(v)
            }
            b'I' | b'L' => {
                let text = self.line()?.trim_end_matches('L');
                let v = match text {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    t => Value::Int(t.parse().map_err(|_| format!("an integer {t:?} past 64 bits"))?),
                };
                self.stack.push(v)
            }
            b'G' => {
                let b: [u8; 8] = self.take(8)?.try_into().expect("8 bytes");
                self.stack.push(Value::Float(f64::from_be_bytes(b)))
            }
            b'F' => {
                let t = self.line()?;
                self.stack.push(Value::Float(t.parse().map_err(|_| format!("a float {t:?}"))?))
            }
            _ => return self.step_data(op),
        }
        Ok(())
    }

    /// Strings, containers, the memo, globals and calls.
    fn step_data(&mut self, op: u8) -> Result<(), String> {
        let bytes = |m: &mut Self, n: usize| -> Result<Value, String> {
            let len = m.len(n)?;
            Ok(Value::Bytes(m.take(len)?.to_vec()))
        };
        let text = |m: &mut Self, n: usize| -> Result<Value, String> {
            let len = m.len(n)?;
            let b = m.take(len)?;
            Ok(Value::Str(String::from_utf8(b.to_vec()).map_err(|_| "a str that is not UTF-8")?))
        };
        let v = match op {
            b'U' | b'C' => bytes(self, 1)?,
            b'T' | b'B' => bytes(self, 4)?,
            0x8e | 0x96 => bytes(self, 8)?,
            0x8c => text(self, 1)?,
            b'X' => text(self, 4)?,
            0x8d => text(self, 8)?,
            b']' => Value::List(Vec::new()),
            b')' => Value::Tuple(Vec::new()),
            b'}' => Value::Dict(Vec::new()),
            b'l' => Value::List(self.pop_mark()?),
            b't' => Value::Tuple(self.pop_mark()?),
            b'd' => Value::Dict(pairs(self.pop_mark()?)?),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let at = self.stack.len().checked_sub(n).ok_or("a tuple of more items than the stack holds")?;
                Value::Tuple(self.stack.split_off(at))
            }
            b'a' | b'e' | b's' | b'u' => return self.extend(op),
            b'p' | b'q' | b'r' | 0x94 => return self.memo_put(op),
            b'g' | b'h' | b'j' => {
                let key = match op {
                    b'g' => self.line()?.parse().map_err(|_| "a bad memo key")?,
                    b'h' => self.uint(1)?,
                    _ => self.uint(4)?,
                };
                self.memo.get(&key).cloned().ok_or_else(|| format!("memo key {key} was never put"))?
            }
            b'c' => {
                let (module, name) = (self.line()?.to_string(), self.line()?.to_string());
                Value::Global(module, name)
            }
            0x93 => {
                let (name, module) = (self.pop()?, self.pop()?);
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => Value::Global(m, n),
                    _ => return Err("STACK_GLOBAL of something other than two str".into()),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                call(callable, args)?
            }
            b'b' => {
                let state = self.pop()?;
                match self.top()? {
                    Value::Object { state: s, .. } => *s = Some(Box::new(state)),
                    _ => return Err("BUILD of something other than an object".into()),
                }
                self.pop()?
            }
            other => return Err(format!("opcode 0x{other:02x} is not one that plain data uses")),
        };
        self.push(v)
    }

    fn long(&mut self, n: usize) -> Result<Value, String> {
        if n > 8 {
            return Err(format!("an integer of {n} bytes"));
        }
        let b = self.take(n)?;
        let mut v = b.iter().rev().fold(0i64, |acc, &x| (acc << 8) | x as i64);
        if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
            v -= 1i64 << (8 * n);
        }
        Ok(Value::Int(v))
    }

    fn extend(&mut self, op: u8) -> Result<(), String> {
        let items = match op {
            b'a' => vec![self.pop()?],
            b's' => {
                let (v, k) = (self.pop()?, self.pop()?);
                vec![k, v]
            }
            _ => self.pop_mark()?,
        };
        if items.iter().any(|v| v.depth() >= MAX_DEPTH) {
            return Err(format!("containers nested deeper than {MAX_DEPTH}"));
        }
        match (self.top()?, op) {
            (Value::List(l), b'a' | b'e') => l.extend(items),
            (Value::Dict(d), b's' | b'u') => d.extend(pairs(items)?),
            _ => return Err("APPEND or SETITEM on the wrong kind of container".into()),
        }
        Ok(())
    }

    fn memo_put(&mut self, op: u8) -> Result<(), String> {
        let key = match op {
            b'p' => self.line()?.parse().map_err(|_| "a bad memo key")?,
            b'q' => self.uint(1)?,
            b'r' => self.uint(4)?,
            _ => self.memo.len() as u64,
        };
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }
}

/// The shape and bytes of a pickled NumPy array of `uint8` in C order (what
/// `numpy.ndarray.__reduce__` gives: `_reconstruct(ndarray, (0,), b"b")` built with
/// `(version, shape, dtype, is_fortran, raw bytes)`).
/// Protocol 5 gives `_frombuffer(bytes, dtype, shape, order)` instead.
pub fn numpy_u8(v: &Value) -> Result<(Vec<usize>, &[u8]), String> {
    let Value::Object { class: (module, name), state, args } = v else {
        return Err("not a NumPy array".into());
    };
    let (shape, dtype, fortran, data) = match (module.starts_with("numpy"), name.as_str(), state.as_deref(), args.as_slice()) {
        (true, "_reconstruct", Some(Value::Tuple(parts)), _) => match parts.as_slice() {
            [_, Value::Tuple(shape), dtype, fortran, Value::Bytes(data)] => (shape, dtype, fortran.as_int() != Some(0), data),
            _ => return Err("a NumPy array state of an unexpected form (an object array?)".into()),
        },
        (true, "_frombuffer", None, [Value::Bytes(data), dtype, Value::Tuple(shape), order]) => {
            (shape, dtype, order.as_text() != Some("C"), data)
        }
        _ => return Err(format!("a {module}.{name}, not a NumPy array")),
    };
    let shape = shape
        .iter()
        .map(|d| d.as_int().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or("a NumPy array with a bad shape")?;
    let kind = match dtype {
        Value::Object { class, args, .. } if class.1 == "dtype" => args.first().and_then(Value::as_text).unwrap_or_default(),
        _ => "",
    };
    if kind != "u1" && kind != "uint8" {
        return Err(format!("a NumPy array of dtype {kind:?}, not uint8"));
    }
    if fortran {
        return Err("a NumPy array in Fortran order".into());
    }
    let want = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("a NumPy array whose size overflows")?;
    if data.len() != want {
        return Err(format!("a NumPy array of shape {shape:?} with {} bytes of data", data.len()));
    }
    Ok((shape, data))
}

/// What Python 2's `cPickle.dump(d, f, 2)` writes for a CIFAR-10 batch dict of `rows` images
/// of `data.len() / rows` bytes, opcode by opcode (the real batches have this form at 10000 x
/// 3072): the tests' and the fuzzer's example.
pub fn python2_cifar_batch(data: &[u8], rows: u8, labels: &[u8]) -> Vec<u8> {
    let mut p =
        b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05(K\x01"
            .to_vec();
    p.extend_from_slice(&[b'K', rows, b'M']);
    p.extend_from_slice(&((data.len() / rows as usize) as u16).to_le_bytes());
    p.extend_from_slice(
        b"\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T",
    );
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p.extend_from_slice(b"tbU\x06labelsq\x08]q\x09(");
    for &l in labels {
        p.extend_from_slice(&[b'K', l]);
    }
    p.extend_from_slice(b"eU\x0bbatch_labelq\x0aU\x14testing batch 1 of 1q\x0bU\x09filenamesq\x0c]q\x0d(U\x05a.pngq\x0eh\x0eeu.");
    p
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("a dict with a key and no value".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// REDUCE / NEWOBJ: records the call; evaluates only `_codecs.encode(text, "latin1")`.
fn call(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(module, name) = callable else { return Err("a call of something other than a global".into()) };
    let Value::Tuple(args) = args else { return Err(format!("a call of {module}.{name} whose arguments are not a tuple")) };
    if (module.as_str(), name.as_str()) == ("_codecs", "encode") {
        return match args.as_slice() {
            [Value::Str(s), Value::Str(enc)] if enc == "latin1" || enc == "latin-1" => s
                .chars()
                .map(|c| u8::try_from(c as u32).map_err(|_| "a latin1 text with a character past U+00FF".to_string()))
                .collect::<Result<Vec<u8>, String>>()
                .map(Value::Bytes),
            _ => Err("a _codecs.encode call other than (str, \"latin1\")".into()),
        };
    }
    Ok(Value::Object { class: (module, name), args, state: None })
}

#[cfg(test)]
mod tests;
