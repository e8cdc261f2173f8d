//! A minimal pickle reader: the opcodes `torch.save` emits (protocols 2 to 5) evaluated into an
//! immutable tree. Nothing is executed: GLOBAL, REDUCE and BUILD are recorded or ignored.
//!
//! Guards against hostile input: nodes are shared through `Rc` (so memo GETs cost nothing and
//! cannot blow up exponentially, unlike deep clones), nesting depth is capped (dropping a deeply
//! nested tree recurses and could overflow the stack), and the shallow copies made when a shared
//! container is mutated are counted against a budget.

use std::collections::HashMap;
use std::rc::Rc;

use super::Problem;
use super::cursor::Cursor;

pub(crate) type Obj = Rc<Node>;

/// Deeper nesting than this is refused; real checkpoints nest fewer than ten levels.
const MAX_DEPTH: u32 = 100;
/// Element copies allowed when copying shared containers, per pickle.
const COPY_BUDGET: usize = 50_000_000;
/// The highest pickle protocol defined so far.
const MAX_PROTOCOL: u8 = 5;

#[derive(Debug, Clone)]
pub(crate) struct Node {
    value: Value,
    /// 1 for scalars, 1 + the deepest child for containers.
    depth: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// A module attribute reference (`GLOBAL`), e.g. `torch._utils._rebuild_tensor_v2`.
    Global {
        module: String,
        name: String,
    },
    Tuple(Vec<Obj>),
    List(Vec<Obj>),
    /// Entries in file order; a later duplicate key wins, as in Python.
    Dict(Vec<(Obj, Obj)>),
    /// `func(*args)` recorded, not executed (`REDUCE`, `NEWOBJ`).
    Call {
        func: Obj,
        args: Obj,
    },
    /// A persistent id: in torch checkpoints, a reference to a tensor storage.
    PersistentId(Obj),
}

impl Node {
    fn new(value: Value) -> Result<Obj, Problem> {
        let depth = 1 + value.children().map(|c| c.depth).max().unwrap_or(0);
        check_depth(depth)?;
        Ok(Rc::new(Self { value, depth }))
    }

    pub(crate) fn value(&self) -> &Value {
        &self.value
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// Items of a tuple or a list.
    pub(crate) fn as_seq(&self) -> Option<&[Obj]> {
        match &self.value {
            Value::Tuple(items) | Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_dict(&self) -> Option<&[(Obj, Obj)]> {
        match &self.value {
            Value::Dict(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_call(&self) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Call { func, args } => Some((func, args)),
            _ => None,
        }
    }

    pub(crate) fn as_persistent_id(&self) -> Option<&Node> {
        match &self.value {
            Value::PersistentId(id) => Some(id),
            _ => None,
        }
    }

    pub(crate) fn is_global(&self, module: &str, name: &str) -> bool {
        matches!(&self.value, Value::Global { module: m, name: n } if m == module && n == name)
    }

    /// Looks a string key up in a dict (the last entry wins, as in Python).
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        let items = self.as_dict()?;
        items
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.as_ref())
    }

    /// A short description for error messages (never the whole tree).
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            Value::None => "None".into(),
            Value::Bool(b) => format!("bool {b}"),
            Value::Int(i) => format!("int {i}"),
            Value::Float(f) => format!("float {f}"),
            Value::Str(s) => format!("str {:?}", truncated(s)),
            Value::Bytes(b) => format!("{} bytes", b.len()),
            Value::Global { module, name } => format!("global {module}.{name}"),
            Value::Tuple(items) => format!("tuple of {}", items.len()),
            Value::List(items) => format!("list of {}", items.len()),
            Value::Dict(items) => format!("dict of {}", items.len()),
            Value::Call { func, .. } => format!("call of {}", func.describe()),
            Value::PersistentId(_) => "persistent id".into(),
        }
    }

    /// Direct children, for walks over the whole tree.
    pub(crate) fn children(&self) -> impl Iterator<Item = &Obj> {
        self.value.children()
    }

    /// Raises the depth after a child was added in place.
    fn absorb(&mut self, child_depth: u32) -> Result<(), Problem> {
        self.depth = self.depth.max(child_depth.saturating_add(1));
        check_depth(self.depth)
    }
}

impl Value {
    fn children(&self) -> Box<dyn Iterator<Item = &Obj> + '_> {
        match self {
            Value::Tuple(items) | Value::List(items) => Box::new(items.iter()),
            Value::Dict(items) => Box::new(items.iter().flat_map(|(k, v)| [k, v])),
            Value::Call { func, args } => Box::new([func, args].into_iter()),
            Value::PersistentId(id) => Box::new(std::iter::once(id)),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// How many `Rc`s a shallow copy of this value clones.
    fn width(&self) -> usize {
        match self {
            Value::Tuple(items) | Value::List(items) => items.len(),
            Value::Dict(items) => 2 * items.len(),
            _ => 1,
        }
    }
}

fn truncated(s: &str) -> String {
    s.chars().take(60).collect()
}

fn check_depth(depth: u32) -> Result<(), Problem> {
    if depth > MAX_DEPTH {
        return Err(Problem::Invalid(format!(
            "pickle nests deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(())
}

/// Reads one pickle (up to and including its STOP opcode) and returns its value.
pub(crate) fn read(cur: &mut Cursor<'_>) -> Result<Obj, Problem> {
    let mut machine = Machine::default();
    loop {
        let at = cur.pos();
        let op = cur.u8()?;
        let step = machine
            .step(op, cur)
            .map_err(|p| p.context(&format!("opcode {op:#04x} at offset {at}")))?;
        if let Step::Stop = step {
            return machine.pop();
        }
    }
}

enum Step {
    Continue,
    Stop,
}

#[derive(Default)]
struct Machine {
    stack: Vec<Obj>,
    /// Stack lengths at each MARK, innermost last.
    marks: Vec<usize>,
    memo: HashMap<u32, Obj>,
    copies: usize,
}

impl Machine {
    fn step(&mut self, op: u8, cur: &mut Cursor<'_>) -> Result<Step, Problem> {
        match op {
            b'.' => return Ok(Step::Stop),
            0x80 => self.proto(cur.u8()?)?,
            // FRAME: protocol 4 groups opcodes in frames; the length is only a hint.
            0x95 => {
                cur.u64_le()?;
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => self.dup()?,
            b'N' => self.push_value(Value::None)?,
            0x88 => self.push_value(Value::Bool(true))?,
            0x89 => self.push_value(Value::Bool(false))?,
            b'J' => self.push_value(Value::Int(cur.i32_le()?.into()))?,
            b'K' => self.push_value(Value::Int(cur.u8()?.into()))?,
            b'M' => self.push_value(Value::Int(cur.u16_le()?.into()))?,
            0x8a => {
                let n = usize::from(cur.u8()?);
                self.push_value(Value::Int(long_le(cur.take(n)?)?))?
            }
            0x8b => {
                let n = signed_len(cur.i32_le()?)?;
                self.push_value(Value::Int(long_le(cur.take(n)?)?))?
            }
            b'G' => self.push_value(Value::Float(cur.f64_be()?))?,
            // Unicode strings; SHORT_BINSTRING and BINSTRING are Python 2 `str`, which
            // torch.load decodes as UTF-8 too.
            b'X' => {
                let len = len_u32(cur)?;
                self.push_str(cur.take(len)?)?
            }
            0x8c | b'U' => {
                let len = usize::from(cur.u8()?);
                self.push_str(cur.take(len)?)?
            }
            0x8d => {
                let len = len_u64(cur)?;
                self.push_str(cur.take(len)?)?
            }
            b'T' => {
                let len = signed_len(cur.i32_le()?)?;
                self.push_str(cur.take(len)?)?
            }
            b'C' => {
                let len = usize::from(cur.u8()?);
                self.push_value(Value::Bytes(cur.take(len)?.to_vec()))?
            }
            b'B' => {
                let len = len_u32(cur)?;
                self.push_value(Value::Bytes(cur.take(len)?.to_vec()))?
            }
            0x8e => {
                let len = len_u64(cur)?;
                self.push_value(Value::Bytes(cur.take(len)?.to_vec()))?
            }
            b')' => self.push_value(Value::Tuple(Vec::new()))?,
            b't' => {
                let items = self.pop_mark()?;
                self.push_value(Value::Tuple(items))?
            }
            0x85 => self.tuple_n(1)?,
            0x86 => self.tuple_n(2)?,
            0x87 => self.tuple_n(3)?,
            b']' => self.push_value(Value::List(Vec::new()))?,
            b'l' => {
                let items = self.pop_mark()?;
                self.push_value(Value::List(items))?
            }
            b'a' => {
                let item = self.pop()?;
                self.extend_top(vec![item])?
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_top(items)?
            }
            b'}' => self.push_value(Value::Dict(Vec::new()))?,
            b'd' => {
                let items = pairs(self.pop_mark()?)?;
                self.push_value(Value::Dict(items))?
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.extend_top(vec![key, value])?
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_top(items)?
            }
            b'c' => {
                let module = utf8(cur.line()?)?;
                let name = utf8(cur.line()?)?;
                self.push_value(Value::Global { module, name })?
            }
            0x93 => self.stack_global()?,
            b'R' | 0x81 => self.call()?,
            // BUILD sets attributes (e.g. a state dict's `_metadata`), which we do not need.
            b'b' => {
                self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let id = self.pop()?;
                self.push_value(Value::PersistentId(id))?
            }
            b'h' => self.memo_get(cur.u8()?.into())?,
            b'j' => self.memo_get(cur.u32_le()?)?,
            b'q' => self.memo_put(cur.u8()?.into())?,
            b'r' => self.memo_put(cur.u32_le()?)?,
            0x94 => self.memoize()?,
            _ => {
                return Err(Problem::Invalid(
                    "unknown or unsupported pickle opcode".into(),
                ));
            }
        }
        Ok(Step::Continue)
    }

    fn proto(&self, version: u8) -> Result<(), Problem> {
        if version > MAX_PROTOCOL {
            return Err(Problem::Unsupported(format!("pickle protocol {version}")));
        }
        Ok(())
    }

    fn push(&mut self, obj: Obj) {
        self.stack.push(obj);
    }

    fn push_value(&mut self, value: Value) -> Result<(), Problem> {
        let obj = Node::new(value)?;
        self.push(obj);
        Ok(())
    }

    fn push_str(&mut self, bytes: &[u8]) -> Result<(), Problem> {
        self.push_value(Value::Str(utf8(bytes)?))
    }

    /// The stack floor: objects below the innermost MARK are out of reach.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Obj, Problem> {
        if self.stack.len() <= self.floor() {
            return Err(underflow());
        }
        self.stack.pop().ok_or_else(underflow)
    }

    fn top(&self) -> Result<&Obj, Problem> {
        if self.stack.len() <= self.floor() {
            return Err(underflow());
        }
        self.stack.last().ok_or_else(underflow)
    }

    fn dup(&mut self) -> Result<(), Problem> {
        let top = Rc::clone(self.top()?);
        self.push(top);
        Ok(())
    }

    fn pop_mark(&mut self) -> Result<Vec<Obj>, Problem> {
        let Some(mark) = self.marks.pop() else {
            return Err(Problem::Invalid("no MARK to pop to".into()));
        };
        if mark > self.stack.len() {
            return Err(underflow());
        }
        Ok(self.stack.split_off(mark))
    }

    fn tuple_n(&mut self, n: usize) -> Result<(), Problem> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.push_value(Value::Tuple(items))
    }

    /// APPEND(S) and SETITEM(S): adds items to the list or dict on top of the stack.
    fn extend_top(&mut self, items: Vec<Obj>) -> Result<(), Problem> {
        let mut node = self.pop_owned()?;
        let child_depth = items.iter().map(|c| c.depth).max().unwrap_or(0);
        match &mut node.value {
            Value::List(list) => list.extend(items),
            Value::Dict(dict) => dict.extend(pairs(items)?),
            _ => {
                return Err(Problem::Invalid(format!(
                    "cannot add items to a {}",
                    node.describe()
                )));
            }
        }
        node.absorb(child_depth)?;
        self.push(Rc::new(node));
        Ok(())
    }

    /// Pops the top object for mutation, copying it (shallowly) when the memo shares it.
    fn pop_owned(&mut self) -> Result<Node, Problem> {
        let obj = self.pop()?;
        if Rc::strong_count(&obj) > 1 {
            self.copies = self.copies.saturating_add(obj.value.width());
            if self.copies > COPY_BUDGET {
                return Err(Problem::Invalid(
                    "pickle copies shared containers too often".into(),
                ));
            }
        }
        Ok(Rc::unwrap_or_clone(obj))
    }

    fn stack_global(&mut self) -> Result<(), Problem> {
        let name = self.pop()?;
        let module = self.pop()?;
        match (module.as_str(), name.as_str()) {
            (Some(module), Some(name)) => self.push_value(Value::Global {
                module: module.to_owned(),
                name: name.to_owned(),
            }),
            _ => Err(Problem::Invalid(
                "STACK_GLOBAL needs two strings".to_owned(),
            )),
        }
    }

    /// REDUCE and NEWOBJ: recorded as a call, except `OrderedDict()`, which becomes a dict so
    /// that the SETITEMS that follow can fill it.
    fn call(&mut self) -> Result<(), Problem> {
        let args = self.pop()?;
        let func = self.pop()?;
        let no_args = args.as_seq().is_some_and(<[Obj]>::is_empty);
        if no_args && func.is_global("collections", "OrderedDict") {
            return self.push_value(Value::Dict(Vec::new()));
        }
        self.push_value(Value::Call { func, args })
    }

    fn memo_get(&mut self, key: u32) -> Result<(), Problem> {
        let Some(obj) = self.memo.get(&key) else {
            return Err(Problem::Invalid(format!("memo key {key} was never stored")));
        };
        let obj = Rc::clone(obj);
        self.push(obj);
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), Problem> {
        let top = Rc::clone(self.top()?);
        self.memo.insert(key, top);
        Ok(())
    }

    fn memoize(&mut self) -> Result<(), Problem> {
        let key = u32::try_from(self.memo.len())
            .map_err(|_| Problem::Invalid("memo too large".into()))?;
        self.memo_put(key)
    }
}

fn underflow() -> Problem {
    Problem::Invalid("pickle stack underflow".into())
}

/// Pairs up a flat key, value, key, value... list.
fn pairs(items: Vec<Obj>) -> Result<Vec<(Obj, Obj)>, Problem> {
    if !items.len().is_multiple_of(2) {
        return Err(Problem::Invalid(
            "odd number of items for a dict".to_owned(),
        ));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// LONG1/LONG4 payload: little-endian two's complement. Wider than 64 bits is refused
/// (torch's magic number is one, but it is checked on raw bytes before any pickle is read).
fn long_le(bytes: &[u8]) -> Result<i64, Problem> {
    if bytes.len() > 8 {
        return Err(Problem::Unsupported(format!(
            "{}-byte integer (more than 64 bits)",
            bytes.len()
        )));
    }
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let mut buf = if negative { [0xff; 8] } else { [0; 8] };
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    Ok(i64::from_le_bytes(buf))
}

fn len_u32(cur: &mut Cursor<'_>) -> Result<usize, Problem> {
    usize::try_from(cur.u32_le()?).map_err(|_| too_long())
}

fn len_u64(cur: &mut Cursor<'_>) -> Result<usize, Problem> {
    usize::try_from(cur.u64_le()?).map_err(|_| too_long())
}

fn signed_len(len: i32) -> Result<usize, Problem> {
    usize::try_from(len).map_err(|_| Problem::Invalid(format!("negative length {len}")))
}

fn too_long() -> Problem {
    Problem::Truncated("length larger than the address space".into())
}

fn utf8(bytes: &[u8]) -> Result<String, Problem> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Problem::Invalid("string is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Obj, Problem> {
        read(&mut Cursor::new(bytes))
    }

    #[test]
    fn reads_a_small_dict() {
        // pickle.dumps({'a': (1, -2, 'x')}, protocol=2)
        let bytes = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01J\xfe\xff\xff\xffX\x01\x00\x00\x00xq\x02\x87q\x03s.";
        let obj = parse(bytes).map_err(|p| format!("{p:?}")).unwrap();
        let t = obj.get("a").and_then(Node::as_seq).unwrap();
        assert_eq!(t[0].as_int(), Some(1));
        assert_eq!(t[1].as_int(), Some(-2));
        assert_eq!(t[2].as_str(), Some("x"));
    }

    #[test]
    fn long1_sign_extends() {
        assert_eq!(long_le(&[0xff]).ok(), Some(-1));
        assert_eq!(long_le(&[0x00, 0x80]).ok(), Some(-32768));
        assert_eq!(long_le(&[]).ok(), Some(0));
        assert!(long_le(&[1; 9]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = vec![0x80, 2, b'N'];
        bytes.extend(std::iter::repeat_n(0x85u8, 10_000));
        bytes.push(b'.');
        assert!(matches!(parse(&bytes), Err(Problem::Invalid(_))));
    }

    #[test]
    fn underflow_and_bad_memo_are_errors() {
        assert!(parse(b"\x80\x02a.").is_err());
        assert!(parse(b"\x80\x02(a.").is_err());
        assert!(parse(b"\x80\x02h\x05.").is_err());
        assert!(parse(b"\x80\x02").is_err());
        assert!(parse(b"").is_err());
    }
}
