//! A safe reader for the subset of Python's pickle format that PyTorch checkpoints (and
//! pickled numpy arrays) use.
//!
//! It never executes anything: `GLOBAL`/`STACK_GLOBAL` become [`Value::Global`] names,
//! `REDUCE` and `NEWOBJ` become [`Value::Call`] records, `BUILD` a [`Value::Build`], and
//! persistent ids stay [`Value::PersistentId`]. The caller interprets the few callables
//! it knows (tensor rebuilds, `OrderedDict`) and rejects everything else.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PickleError {
    #[error("the pickle stream ends early (truncated file?) at byte {0}")]
    Truncated(usize),
    #[error("unsupported pickle opcode 0x{op:02x} at byte {pos}: not a PyTorch checkpoint this reader understands")]
    UnknownOpcode { op: u8, pos: usize },
    #[error("malformed pickle at byte {pos}: {what}")]
    Malformed { pos: usize, what: String },
}

/// A decoded pickle value. Lists and dicts are shared, as pickle's memo shares them.
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// Integers that do not fit in 64 bits, as little-endian two's complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// `module.name`, never resolved.
    Global(String, String),
    /// A callable applied to arguments (REDUCE / NEWOBJ), never executed.
    Call(Box<Value>, Vec<Value>),
    /// BUILD: an object and the state it would receive.
    Build(Box<Value>, Box<Value>),
    PersistentId(Box<Value>),
    /// Internal: the MARK on the stack.
    Mark,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
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

    /// Items of a tuple or list.
    pub fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::Tuple(v) => Some(v.clone()),
            Value::List(v) => Some(v.borrow().clone()),
            _ => None,
        }
    }

    /// Entries of a dict, or of an `OrderedDict()` call that received SETITEMS.
    pub fn dict_entries(&self) -> Option<Vec<(Value, Value)>> {
        match self {
            Value::Dict(d) => Some(d.borrow().clone()),
            Value::Build(obj, _) => obj.dict_entries(),
            _ => None,
        }
    }

    pub fn is_global(&self, module: &str, name: &str) -> bool {
        matches!(self, Value::Global(m, n) if m == module && n == name)
    }
}

/// Reads one pickle from `data` starting at `pos`; returns the value and the position
/// after its STOP opcode. `persistent` is what BINPERSID/PERSID produce.
pub fn read(data: &[u8], mut pos: usize) -> Result<(Value, usize), PickleError> {
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let malformed = |pos: usize, what: &str| PickleError::Malformed { pos, what: what.to_string() };

    macro_rules! take {
        ($n:expr) => {{
            let n: usize = $n;
            if pos + n > data.len() {
                return Err(PickleError::Truncated(data.len()));
            }
            let s = &data[pos..pos + n];
            pos += n;
            s
        }};
    }
    macro_rules! u32le {
        () => {
            u32::from_le_bytes(take!(4).try_into().unwrap())
        };
    }
    macro_rules! pop {
        ($at:expr) => {
            stack.pop().ok_or_else(|| malformed($at, "stack underflow"))?
        };
    }
    fn pop_mark(stack: &mut Vec<Value>, at: usize) -> Result<Vec<Value>, PickleError> {
        let i = stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| PickleError::Malformed { pos: at, what: "MARK missing".into() })?;
        let items = stack.split_off(i + 1);
        stack.pop();
        Ok(items)
    }
    fn set_items(target: &Value, items: Vec<Value>, at: usize) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(PickleError::Malformed { pos: at, what: "odd number of dict items".into() });
        }
        let dict = match target {
            Value::Dict(d) => d.clone(),
            _ => return Err(PickleError::Malformed { pos: at, what: "SETITEM(S) on a non-dict".into() }),
        };
        let mut d = dict.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }
    fn append(target: &Value, items: Vec<Value>, at: usize) -> Result<(), PickleError> {
        match target {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            _ => Err(PickleError::Malformed { pos: at, what: "APPEND(S) on a non-list".into() }),
        }
    }
    fn text(bytes: &[u8], at: usize) -> Result<String, PickleError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| PickleError::Malformed { pos: at, what: "invalid UTF-8".into() })
    }

    loop {
        let at = pos;
        let op = take!(1)[0];
        match op {
            0x80 => {
                take!(1); // PROTO
            }
            0x95 => {
                take!(8); // FRAME
            }
            b'.' => {
                let v = pop!(at);
                return Ok((v, pos));
            }
            b'(' => stack.push(Value::Mark),
            b'}' => stack.push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
            b']' => stack.push(Value::List(Rc::new(RefCell::new(Vec::new())))),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'J' => stack.push(Value::Int(i32::from_le_bytes(take!(4).try_into().unwrap()) as i64)),
            b'K' => stack.push(Value::Int(take!(1)[0] as i64)),
            b'M' => stack.push(Value::Int(u16::from_le_bytes(take!(2).try_into().unwrap()) as i64)),
            0x8a | 0x8b => {
                let n = if op == 0x8a { take!(1)[0] as usize } else { u32le!() as usize };
                let bytes = take!(n).to_vec();
                stack.push(if n <= 8 {
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                    buf[..n].copy_from_slice(&bytes);
                    Value::Int(i64::from_le_bytes(buf))
                } else {
                    Value::BigInt(bytes)
                });
            }
            b'I' | b'L' => {
                // Text integers (protocol 0): "I01\n" booleans too.
                let end = data[pos..].iter().position(|&b| b == b'\n').ok_or(PickleError::Truncated(data.len()))?;
                let s = text(take!(end), at)?;
                take!(1);
                let s = s.trim_end_matches('L');
                stack.push(match s {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    _ => Value::Int(s.parse().map_err(|_| malformed(at, "bad integer"))?),
                });
            }
            b'G' => stack.push(Value::Float(f64::from_be_bytes(take!(8).try_into().unwrap()))),
            b'X' => {
                let n = u32le!() as usize;
                stack.push(Value::Str(text(take!(n), at)?));
            }
            0x8c => {
                let n = take!(1)[0] as usize;
                stack.push(Value::Str(text(take!(n), at)?));
            }
            0x8d => {
                let n = u64::from_le_bytes(take!(8).try_into().unwrap()) as usize;
                stack.push(Value::Str(text(take!(n), at)?));
            }
            b'T' => {
                let n = u32le!() as usize;
                stack.push(Value::Bytes(take!(n).to_vec()));
            }
            b'U' => {
                let n = take!(1)[0] as usize;
                stack.push(Value::Bytes(take!(n).to_vec()));
            }
            b'B' => {
                let n = u32le!() as usize;
                stack.push(Value::Bytes(take!(n).to_vec()));
            }
            b'C' => {
                let n = take!(1)[0] as usize;
                stack.push(Value::Bytes(take!(n).to_vec()));
            }
            0x8e => {
                let n = u64::from_le_bytes(take!(8).try_into().unwrap()) as usize;
                stack.push(Value::Bytes(take!(n).to_vec()));
            }
            b't' => {
                let items = pop_mark(&mut stack, at)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err(malformed(at, "stack underflow"));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'l' => {
                let items = pop_mark(&mut stack, at)?;
                stack.push(Value::List(Rc::new(RefCell::new(items))));
            }
            b'd' => {
                let items = pop_mark(&mut stack, at)?;
                let d = Value::Dict(Rc::new(RefCell::new(Vec::new())));
                set_items(&d, items, at)?;
                stack.push(d);
            }
            b'a' => {
                let v = pop!(at);
                let target = stack.last().ok_or_else(|| malformed(at, "stack underflow"))?;
                append(target, vec![v], at)?;
            }
            b'e' => {
                let items = pop_mark(&mut stack, at)?;
                let target = stack.last().ok_or_else(|| malformed(at, "stack underflow"))?;
                append(target, items, at)?;
            }
            b's' => {
                let v = pop!(at);
                let k = pop!(at);
                let target = stack.last().ok_or_else(|| malformed(at, "stack underflow"))?;
                set_items(target, vec![k, v], at)?;
            }
            b'u' => {
                let items = pop_mark(&mut stack, at)?;
                let target = stack.last().ok_or_else(|| malformed(at, "stack underflow"))?;
                set_items(target, items, at)?;
            }
            b'q' => {
                let i = take!(1)[0] as u32;
                memo.insert(i, stack.last().cloned().ok_or_else(|| malformed(at, "stack underflow"))?);
            }
            b'r' => {
                let i = u32le!();
                memo.insert(i, stack.last().cloned().ok_or_else(|| malformed(at, "stack underflow"))?);
            }
            0x94 => {
                let i = memo.len() as u32;
                memo.insert(i, stack.last().cloned().ok_or_else(|| malformed(at, "stack underflow"))?);
            }
            b'h' => {
                let i = take!(1)[0] as u32;
                stack.push(memo.get(&i).cloned().ok_or_else(|| malformed(at, "memo key missing"))?);
            }
            b'j' => {
                let i = u32le!();
                stack.push(memo.get(&i).cloned().ok_or_else(|| malformed(at, "memo key missing"))?);
            }
            b'c' => {
                let line = |pos: usize| data[pos..].iter().position(|&b| b == b'\n');
                let n = line(pos).ok_or(PickleError::Truncated(data.len()))?;
                let module = text(take!(n), at)?;
                take!(1);
                let n = line(pos).ok_or(PickleError::Truncated(data.len()))?;
                let name = text(take!(n), at)?;
                take!(1);
                stack.push(Value::Global(module, name));
            }
            0x93 => {
                let name = pop!(at);
                let module = pop!(at);
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Value::Global(m, n)),
                    _ => return Err(malformed(at, "STACK_GLOBAL needs two strings")),
                }
            }
            b'R' | 0x81 => {
                let args = pop!(at);
                let callable = pop!(at);
                let args = match args {
                    Value::Tuple(a) => a,
                    _ => return Err(malformed(at, "REDUCE/NEWOBJ arguments are not a tuple")),
                };
                // OrderedDict() is the one call we model as what it makes: SETITEMS follow.
                if callable.is_global("collections", "OrderedDict") && args.is_empty() {
                    stack.push(Value::Dict(Rc::new(RefCell::new(Vec::new()))));
                } else {
                    stack.push(Value::Call(Box::new(callable), args));
                }
            }
            b'b' => {
                let state = pop!(at);
                let obj = pop!(at);
                // A dict keeps its identity (state of an OrderedDict is its `_metadata`).
                stack.push(match obj {
                    d @ Value::Dict(_) => d,
                    other => Value::Build(Box::new(other), Box::new(state)),
                });
            }
            b'Q' => {
                let pid = pop!(at);
                stack.push(Value::PersistentId(Box::new(pid)));
            }
            b'P' => {
                let n = data[pos..].iter().position(|&b| b == b'\n').ok_or(PickleError::Truncated(data.len()))?;
                let s = text(take!(n), at)?;
                take!(1);
                stack.push(Value::PersistentId(Box::new(Value::Str(s))));
            }
            b'0' => {
                pop!(at);
            }
            b'1' => {
                pop_mark(&mut stack, at)?;
            }
            b'2' => {
                let top = stack.last().cloned().ok_or_else(|| malformed(at, "stack underflow"))?;
                stack.push(top);
            }
            0x8f => stack.push(Value::List(Rc::new(RefCell::new(Vec::new())))), // EMPTY_SET, as a list
            0x90 => {
                let items = pop_mark(&mut stack, at)?;
                let target = stack.last().ok_or_else(|| malformed(at, "stack underflow"))?;
                append(target, items, at)?;
            }
            0x91 => {
                let items = pop_mark(&mut stack, at)?;
                stack.push(Value::Tuple(items));
            }
            _ => return Err(PickleError::UnknownOpcode { op, pos: at }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_dict_with_memo_and_globals() {
        // {'a': [1, -2, 3.5], 'b': ('x', True), 'c': torch.FloatStorage}, protocol 2,
        // written by hand: PROTO 2, EMPTY_DICT, BINPUT 0, MARK, ...
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend([b'X', 1, 0, 0, 0, b'a', b']', b'q', 1, b'(', b'K', 1, b'J']);
        p.extend((-2i32).to_le_bytes());
        p.push(b'G');
        p.extend(3.5f64.to_be_bytes());
        p.extend([b'e', 0x8c, 1, b'b', 0x8c, 1, b'x', 0x88, 0x86, 0x8c, 1, b'c']);
        p.extend(b"ctorch\nFloatStorage\n");
        p.extend([b'u', b'.']);
        let (v, end) = read(&p, 0).unwrap();
        assert_eq!(end, p.len());
        let e = v.dict_entries().unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].0.as_str(), Some("a"));
        let list = e[0].1.items().unwrap();
        assert_eq!(list[0].as_int(), Some(1));
        assert_eq!(list[1].as_int(), Some(-2));
        assert!(matches!(list[2], Value::Float(f) if f == 3.5));
        assert!(matches!(&e[1].1, Value::Tuple(t) if t.len() == 2));
        assert!(e[2].1.is_global("torch", "FloatStorage"));
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let p = [0x80u8, 2, b'}', b'X', 10, 0, 0, 0, b'a'];
        assert!(matches!(read(&p, 0), Err(PickleError::Truncated(_))));
        assert!(read(&[0xffu8, 0x00, 0x13], 0).is_err());
        assert!(read(&[], 0).is_err());
        // Stack underflow instead of a panic.
        assert!(read(b"s.", 0).is_err());
    }

    #[test]
    fn long1_handles_sign_and_width() {
        let (v, _) = read(&[0x8a, 2, 0xff, 0xff, b'.'], 0).unwrap();
        assert_eq!(v.as_int(), Some(-1));
        let (v, _) = read(&[0x8a, 2, 0xff, 0x00, b'.'], 0).unwrap();
        assert_eq!(v.as_int(), Some(255));
        let (v, _) = read(&[0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'], 0).unwrap();
        assert!(matches!(v, Value::BigInt(b) if b.len() == 10));
    }
}
