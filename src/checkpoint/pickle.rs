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

/// A decoded pickle value. Lists and dicts are shared, as pickle's memo shares them; every
/// other part is reference-counted too, so that DUP and memo GETs copy a pointer, never a
/// value (a few bytes of them could otherwise ask for gigabytes of copies).
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// Integers that do not fit in 64 bits, as little-endian two's complement bytes.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Value]>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// `module.name`, never resolved.
    Global(Rc<str>, Rc<str>),
    /// A callable applied to arguments (REDUCE / NEWOBJ), never executed.
    Call(Rc<Value>, Rc<[Value]>),
    /// BUILD: an object and the state it would receive.
    Build(Rc<Value>, Rc<Value>),
    PersistentId(Rc<Value>),
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
            Value::Tuple(v) => Some(v.to_vec()),
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
        matches!(self, Value::Global(m, n) if &**m == module && &**n == name)
    }
}

/// Deepest nesting of containers a pickle may have (real checkpoints have under ten
/// levels): deeper ones are refused, so nothing that walks or drops a value recurses
/// without bound.
pub const MAX_DEPTH: u32 = 100;

/// Most values a pickle may expand to, counting shared containers once per reference
/// (it bounds every walk over the result, which a few bytes of memo references could
/// otherwise make exponential).
pub const MAX_EXPANDED: u64 = 2_000_000;

/// Reads one pickle from `data` starting at `pos`; returns the value and the position
/// after its STOP opcode.
pub fn read(data: &[u8], pos: usize) -> Result<(Value, usize), PickleError> {
    let mut m = Machine { data, pos, stack: Vec::new(), memo: HashMap::new(), cells: HashMap::new() };
    loop {
        if let Some(v) = m.step()? {
            return Ok((v, m.pos));
        }
    }
}

/// How deep a value nests and how many values it expands to.
#[derive(Clone, Copy, Debug, Default)]
struct Meta {
    depth: u32,
    size: u64,
}

/// A value on the stack or in the memo, with its [`Meta`] (for lists and dicts, which
/// grow after creation, the current figures are in [`Machine::cells`]).
#[derive(Clone)]
struct Slot {
    v: Value,
    m: Meta,
}

fn leaf(v: Value) -> Slot {
    Slot { v, m: Meta { depth: 0, size: 1 } }
}

/// What the machine knows of a list or dict: its figures, and whether it has been put
/// inside another value. A sealed container may not grow: its parents' figures would be
/// stale, and containers could be made to hold themselves. Real pickles fill every
/// container before its parent takes it.
struct Cell {
    m: Meta,
    sealed: bool,
}

/// The pickle virtual machine, minus everything that would execute code.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Slot>,
    memo: HashMap<u32, Slot>,
    cells: HashMap<usize, Cell>,
}

fn malformed(pos: usize, what: &str) -> PickleError {
    PickleError::Malformed { pos, what: what.to_string() }
}

fn text(bytes: &[u8], at: usize) -> Result<String, PickleError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(at, "invalid UTF-8"))
}

/// The identity of a list or dict (shared through the memo).
fn cell_key(v: &Value) -> Option<usize> {
    match v {
        Value::List(l) => Some(Rc::as_ptr(l) as *const () as usize),
        Value::Dict(d) => Some(Rc::as_ptr(d) as *const () as usize),
        _ => None,
    }
}

impl<'a> Machine<'a> {
    /// The next `n` bytes; the length is checked against what is left before anything
    /// is read or allocated, so a declared size larger than the file is refused.
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if n > self.data.len() - self.pos {
            return Err(PickleError::Truncated(self.data.len()));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u32le(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64le(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A length field of `width` bytes (1, 4 or 8).
    fn len(&mut self, width: usize) -> Result<usize, PickleError> {
        let n = match width {
            1 => self.byte()? as u64,
            4 => self.u32le()? as u64,
            _ => self.u64le()?,
        };
        usize::try_from(n).map_err(|_| PickleError::Truncated(self.data.len()))
    }

    /// The rest of the line (protocol-0 arguments), without its newline.
    fn line(&mut self, at: usize) -> Result<String, PickleError> {
        let n =
            self.data[self.pos..].iter().position(|&b| b == b'\n').ok_or(PickleError::Truncated(self.data.len()))?;
        let s = text(self.take(n)?, at)?;
        self.take(1)?;
        Ok(s)
    }

    /// The current figures of a slot's value.
    fn meta(&self, s: &Slot) -> Meta {
        cell_key(&s.v).and_then(|k| self.cells.get(&k)).map(|c| c.m).unwrap_or(s.m)
    }

    /// A new list or dict on the stack.
    fn push_cell(&mut self, v: Value, m: Meta) {
        if let Some(k) = cell_key(&v) {
            self.cells.insert(k, Cell { m, sealed: false });
        }
        self.stack.push(Slot { v, m });
    }

    /// The figures of a value made of `items`, which are sealed: they are inside it now.
    fn nest(&mut self, items: &[Slot], at: usize) -> Result<Meta, PickleError> {
        let mut m = Meta { depth: 0, size: 1 };
        for s in items {
            let im = self.meta(s);
            m.depth = m.depth.max(im.depth + 1);
            m.size = m.size.saturating_add(im.size);
            if let Some(c) = cell_key(&s.v).and_then(|k| self.cells.get_mut(&k)) {
                c.sealed = true;
            }
        }
        if m.depth > MAX_DEPTH {
            return Err(malformed(at, &format!("values nested more than {MAX_DEPTH} deep")));
        }
        if m.size > MAX_EXPANDED {
            return Err(malformed(at, &format!("more than {MAX_EXPANDED} values once shared parts are expanded")));
        }
        Ok(m)
    }

    /// Adds `items` to the list or dict on top of the stack (APPEND(S), SETITEM(S),
    /// ADDITEMS), checking that it may still grow and keeping its figures.
    fn grow(&mut self, items: Vec<Slot>, at: usize) -> Result<(), PickleError> {
        let added = self.nest(&items, at)?;
        let target = self.stack.last().ok_or_else(|| malformed(at, "stack underflow"))?.v.clone();
        let key = cell_key(&target)
            .ok_or_else(|| malformed(at, "APPEND or SETITEM on something that is not a list or dict"))?;
        let cell = self.cells.get_mut(&key).ok_or_else(|| malformed(at, "unknown container"))?;
        if cell.sealed {
            return Err(malformed(at, "a container grows after it was put inside another value"));
        }
        cell.m.depth = cell.m.depth.max(added.depth);
        cell.m.size = cell.m.size.saturating_add(added.size - 1);
        if cell.m.size > MAX_EXPANDED {
            return Err(malformed(at, &format!("more than {MAX_EXPANDED} values once shared parts are expanded")));
        }
        let values: Vec<Value> = items.into_iter().map(|s| s.v).collect();
        match &target {
            Value::List(l) => l.borrow_mut().extend(values),
            Value::Dict(d) => {
                if !values.len().is_multiple_of(2) {
                    return Err(malformed(at, "odd number of dict items"));
                }
                let mut d = d.borrow_mut();
                let mut it = values.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            _ => unreachable!("cell_key accepted it"),
        }
        Ok(())
    }

    fn pop(&mut self, at: usize) -> Result<Slot, PickleError> {
        self.stack.pop().ok_or_else(|| malformed(at, "stack underflow"))
    }

    /// The items above the topmost MARK (which is removed).
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Slot>, PickleError> {
        let i =
            self.stack.iter().rposition(|s| matches!(s.v, Value::Mark)).ok_or_else(|| malformed(at, "MARK missing"))?;
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Pushes a tuple, call, build or persistent id made of `parts`.
    fn push_made(&mut self, parts: &[Slot], make: impl FnOnce() -> Value, at: usize) -> Result<(), PickleError> {
        let m = self.nest(parts, at)?;
        self.stack.push(Slot { v: make(), m });
        Ok(())
    }

    /// Runs one opcode; returns the result at STOP.
    fn step(&mut self) -> Result<Option<Value>, PickleError> {
        let at = self.pos;
        let op = self.byte()?;
        match op {
            0x80 => {
                self.take(1)?; // PROTO
            }
            0x95 => {
                self.take(8)?; // FRAME
            }
            b'.' => return Ok(Some(self.pop(at)?.v)),
            _ => {
                let handled = self.constant(op, at)?
                    || self.string(op, at)?
                    || self.container(op, at)?
                    || self.memo_op(op, at)?
                    || self.object(op, at)?
                    || self.stack_op(op, at)?;
                if !handled {
                    return Err(PickleError::UnknownOpcode { op, pos: at });
                }
            }
        }
        Ok(None)
    }

    /// None, booleans, integers and floats.
    fn constant(&mut self, op: u8, at: usize) -> Result<bool, PickleError> {
        let v = match op {
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            b'J' => Value::Int(i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as i64),
            b'K' => Value::Int(self.byte()? as i64),
            b'M' => Value::Int(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as i64),
            0x8a | 0x8b => {
                let n = self.len(if op == 0x8a { 1 } else { 4 })?;
                let bytes = self.take(n)?.to_vec();
                if n <= 8 {
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                    buf[..n].copy_from_slice(&bytes);
                    Value::Int(i64::from_le_bytes(buf))
                } else {
                    Value::BigInt(bytes.into())
                }
            }
            b'I' | b'L' => {
                // Text integers (protocol 0): "I01\n" booleans too.
                let s = self.line(at)?;
                match s.trim_end_matches('L') {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    s => Value::Int(s.parse().map_err(|_| malformed(at, "bad integer"))?),
                }
            }
            b'G' => Value::Float(f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            _ => return Ok(false),
        };
        self.stack.push(leaf(v));
        Ok(true)
    }

    /// Text and byte strings.
    fn string(&mut self, op: u8, at: usize) -> Result<bool, PickleError> {
        let (width, is_text) = match op {
            0x8c => (1, true),
            b'X' => (4, true),
            0x8d => (8, true),
            b'U' | b'C' => (1, false),
            b'T' | b'B' => (4, false),
            0x8e => (8, false),
            _ => return Ok(false),
        };
        let n = self.len(width)?;
        let bytes = self.take(n)?;
        self.stack.push(leaf(if is_text { Value::Str(text(bytes, at)?.into()) } else { Value::Bytes(bytes.into()) }));
        Ok(true)
    }

    /// MARK, tuples, lists, dicts and sets, and adding to them.
    fn container(&mut self, op: u8, at: usize) -> Result<bool, PickleError> {
        let empty = Meta { depth: 0, size: 1 };
        match op {
            b'(' => self.stack.push(leaf(Value::Mark)),
            b'}' => self.push_cell(Value::Dict(Rc::new(RefCell::new(Vec::new()))), empty),
            b']' | 0x8f => self.push_cell(Value::List(Rc::new(RefCell::new(Vec::new()))), empty), // EMPTY_SET, as a list
            b')' => self.stack.push(leaf(Value::Tuple(Rc::new([])))),
            b't' | 0x91 => {
                let items = self.pop_mark(at)?;
                self.push_made(&items, || Value::Tuple(items.iter().map(|s| s.v.clone()).collect()), at)?;
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err(malformed(at, "stack underflow"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_made(&items, || Value::Tuple(items.iter().map(|s| s.v.clone()).collect()), at)?;
            }
            b'l' => {
                let items = self.pop_mark(at)?;
                self.push_cell(Value::List(Rc::new(RefCell::new(Vec::new()))), empty);
                self.grow(items, at)?;
            }
            b'd' => {
                let items = self.pop_mark(at)?;
                self.push_cell(Value::Dict(Rc::new(RefCell::new(Vec::new()))), empty);
                self.grow(items, at)?;
            }
            b'a' => {
                let v = self.pop(at)?;
                self.grow(vec![v], at)?;
            }
            b'e' | 0x90 | b'u' => {
                let items = self.pop_mark(at)?;
                self.grow(items, at)?;
            }
            b's' => {
                let v = self.pop(at)?;
                let k = self.pop(at)?;
                self.grow(vec![k, v], at)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The memo: PUT and GET in their three forms.
    fn memo_op(&mut self, op: u8, at: usize) -> Result<bool, PickleError> {
        match op {
            b'q' | b'r' | 0x94 => {
                let i = match op {
                    b'q' => self.byte()? as u32,
                    b'r' => self.u32le()?,
                    _ => self.memo.len() as u32,
                };
                let s = self.stack.last().ok_or_else(|| malformed(at, "stack underflow"))?.clone();
                self.memo.insert(i, s);
            }
            b'h' | b'j' => {
                let i = if op == b'h' { self.byte()? as u32 } else { self.u32le()? };
                let s = self.memo.get(&i).cloned().ok_or_else(|| malformed(at, "memo key missing"))?;
                self.stack.push(s);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Globals, calls, BUILD and persistent ids: recorded, never executed.
    fn object(&mut self, op: u8, at: usize) -> Result<bool, PickleError> {
        match op {
            b'c' => {
                let module = self.line(at)?;
                let name = self.line(at)?;
                self.stack.push(leaf(Value::Global(module.into(), name.into())));
            }
            0x93 => {
                let name = self.pop(at)?.v;
                let module = self.pop(at)?.v;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.stack.push(leaf(Value::Global(m, n))),
                    _ => return Err(malformed(at, "STACK_GLOBAL needs two strings")),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                let Value::Tuple(items) = &args.v else {
                    return Err(malformed(at, "REDUCE/NEWOBJ arguments are not a tuple"));
                };
                // OrderedDict() is the one call we model as what it makes: SETITEMS follow.
                if callable.v.is_global("collections", "OrderedDict") && items.is_empty() {
                    self.push_cell(Value::Dict(Rc::new(RefCell::new(Vec::new()))), Meta { depth: 0, size: 1 });
                } else {
                    let items = items.clone();
                    let parts = [callable.clone(), args.clone()];
                    self.push_made(&parts, || Value::Call(Rc::new(callable.v), items), at)?;
                }
            }
            b'b' => {
                let state = self.pop(at)?;
                let obj = self.pop(at)?;
                // A dict keeps its identity (the state of an OrderedDict is its `_metadata`).
                if matches!(obj.v, Value::Dict(_)) {
                    let m = self.nest(std::slice::from_ref(&state), at)?;
                    let key = cell_key(&obj.v).expect("a dict");
                    if let Some(c) = self.cells.get_mut(&key) {
                        if c.sealed {
                            return Err(malformed(at, "a container grows after it was put inside another value"));
                        }
                        c.m.depth = c.m.depth.max(m.depth);
                    }
                    self.stack.push(obj);
                } else {
                    let parts = [obj.clone(), state.clone()];
                    self.push_made(&parts, || Value::Build(Rc::new(obj.v), Rc::new(state.v)), at)?;
                }
            }
            b'Q' => {
                let pid = self.pop(at)?;
                let parts = [pid.clone()];
                self.push_made(&parts, || Value::PersistentId(Rc::new(pid.v)), at)?;
            }
            b'P' => {
                let s = self.line(at)?;
                self.stack.push(Slot {
                    v: Value::PersistentId(Rc::new(Value::Str(s.into()))),
                    m: Meta { depth: 1, size: 2 },
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// POP, POP_MARK and DUP.
    fn stack_op(&mut self, op: u8, at: usize) -> Result<bool, PickleError> {
        match op {
            b'0' => {
                self.pop(at)?;
            }
            b'1' => {
                self.pop_mark(at)?;
            }
            b'2' => {
                let top = self.stack.last().ok_or_else(|| malformed(at, "stack underflow"))?.clone();
                self.stack.push(top);
            }
            _ => return Ok(false),
        }
        Ok(true)
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
    fn deep_nesting_cycles_and_exponential_sharing_are_refused() {
        // 200,000 nested lists in 400 kB: refused, not a stack overflow.
        let d = 200_000;
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', d));
        p.extend(std::iter::repeat_n(b'a', d - 1));
        p.push(b'.');
        let e = read(&p, 0).unwrap_err().to_string();
        assert!(e.contains("nested more than"), "{e}");
        // A list appended into itself (through the memo): a cycle.
        let p = [0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.'];
        assert!(read(&p, 0).is_err());
        // A list put in another, then grown: refused too (the parent's figures would lie).
        let p = [0x80, 2, b']', b'q', 0, b']', b'h', 0, b'a', b'h', 0, b'K', 1, b'a', b'.'];
        assert!(read(&p, 0).unwrap_err().to_string().contains("grows after"));
        // Tuples of tuples sharing one child: 2^60 values once expanded, in a few bytes
        // (refused at 2^21).
        let mut p = vec![0x80, 2, b'K', 1, 0x85];
        for _ in 0..60 {
            p.extend([b'2', 0x86]); // DUP, TUPLE2: (t, t)
        }
        p.push(b'.');
        assert!(read(&p, 0).unwrap_err().to_string().contains("once shared parts are expanded"));
        // Below that limit, a tuple of ~800,000 values duplicated ten thousand times (DUP, memo PUT
        // and GET): every copy shares the one tuple. Were copies deep, this input of ~30 KB
        // would ask for hundreds of GB.
        let mut p = vec![0x80, 2, b'K', 1, 0x85];
        for _ in 0..18 {
            p.extend([b'2', 0x86]);
        }
        p.extend([b'q', 0]);
        for _ in 0..10_000 {
            p.extend([b'2', b'h', 0, b'0']); // DUP, GET 0, POP
        }
        p.extend([b'h', 0, 0x86, b'.']); // (t, t)
        let (v, _) = read(&p, 0).unwrap();
        let Value::Tuple(pair) = v else { panic!("a tuple") };
        let (Value::Tuple(a), Value::Tuple(b)) = (&pair[0], &pair[1]) else { panic!("two tuples") };
        assert!(Rc::ptr_eq(a, b), "the copies share one tuple");
        // Nesting of the depth real files have is fine.
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 50));
        p.extend(std::iter::repeat_n(b'a', 49));
        p.push(b'.');
        assert!(read(&p, 0).is_ok());
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
