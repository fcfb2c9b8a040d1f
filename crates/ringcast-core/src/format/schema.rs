//! The message schema stored in a ring header, checked before anything
//! else reads it.
//!
//! Typed rings store `numpy:` followed by the `repr` of the dtype
//! description the `.npy` format uses (`numpy.lib.format.dtype_to_descr`):
//! a type string such as `'<u8'`, or a list of fields
//! `[('name', descr), ('name', descr, shape), (('title', 'name'), descr)]`.
//! The header comes from a file anyone with write access may have changed,
//! so before the Python layer hands the text to `ast.literal_eval` and numpy,
//! [`check`] parses it here with a small literal grammar (strings, integers,
//! tuples and lists; bounded depth and size) and checks the structure: field
//! names are strings, type strings are plain numbers, booleans, byte or text
//! strings, raw bytes or datetimes (never Python objects), shapes are small
//! non-negative integers. What passes can only be a description numpy reads
//! as a fixed-size record type; its size is checked against the slots later.

/// What typed rings' schemas start with.
pub const PREFIX: &[u8] = b"numpy:";

/// Deepest nesting of tuples and lists accepted.
pub const MAX_DEPTH: usize = 16;

/// Most elements in all tuples and lists of one schema.
const MAX_ITEMS: usize = 4096;

/// Largest element count of one field's shape (the largest slot).
const MAX_ELEMENTS: u64 = crate::format::layout::MAX_SLOT_SIZE as u64;

/// A literal of the schema grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A quoted string.
    Str(String),
    /// A decimal integer (optionally negative).
    Int(i64),
    /// `( ... )`.
    Tuple(Vec<Literal>),
    /// `[ ... ]`.
    List(Vec<Literal>),
}

/// Checks a ring header's schema: empty (a raw bytes ring), or `numpy:`
/// and a dtype description numpy can only read as a fixed-size record type.
/// The error says what is wrong, for a `RingCorrupt` message.
pub fn check(schema: &[u8]) -> Result<(), String> {
    if schema.is_empty() {
        return Ok(());
    }
    let Some(text) = schema.strip_prefix(PREFIX) else {
        return Err("it does not start with \"numpy:\"".to_owned());
    };
    let text = std::str::from_utf8(text).map_err(|_| "it is not UTF-8 text".to_owned())?;
    let descr = parse(text)?;
    check_descr(&descr, 0)
}

/// Parses one literal making up all of `text` (surrounding blanks allowed).
pub fn parse(text: &str) -> Result<Literal, String> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        at: 0,
        items: 0,
    };
    let value = p.value(0)?;
    p.blanks();
    if p.at != p.bytes.len() {
        return Err(format!("unexpected text at byte {}", p.at));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    items: usize,
}

impl Parser<'_> {
    fn blanks(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal, String> {
        self.blanks();
        match self.bytes.get(self.at) {
            Some(b'\'' | b'"') => self.string().map(Literal::Str),
            Some(b'(') => self.sequence(b')', depth).map(Literal::Tuple),
            Some(b'[') => self.sequence(b']', depth).map(Literal::List),
            Some(b'-' | b'0'..=b'9') => self.int().map(Literal::Int),
            Some(&c) => Err(format!(
                "unexpected {:?} at byte {}: only strings, integers, tuples and lists may \
                 describe a dtype",
                c as char, self.at
            )),
            None => Err("it ends too early".to_owned()),
        }
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Literal>, String> {
        if depth >= MAX_DEPTH {
            return Err(format!("it nests deeper than {MAX_DEPTH} levels"));
        }
        self.at += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.blanks();
            if self.bytes.get(self.at) == Some(&close) {
                self.at += 1;
                return Ok(items);
            }
            self.items += 1;
            if self.items > MAX_ITEMS {
                return Err(format!("it has more than {MAX_ITEMS} elements"));
            }
            items.push(self.value(depth + 1)?);
            self.blanks();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(&c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or a closing bracket at byte {}",
                        self.at
                    ))
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.bytes[self.at];
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.bytes.get(self.at) {
                None => return Err("a string is not closed".to_owned()),
                Some(&c) if c == quote => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    // Only the escapes repr() writes for the characters
                    // field names and type strings use.
                    let c = self.bytes.get(self.at + 1).copied();
                    match c {
                        Some(b'\\' | b'\'' | b'"') => out.push(c.unwrap_or_default()),
                        _ => return Err(format!("unsupported escape at byte {}", self.at)),
                    }
                    self.at += 2;
                }
                Some(b'\n' | b'\r') => return Err("a string spans lines".to_owned()),
                Some(&c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| "a string is not UTF-8".to_owned())
    }

    fn int(&mut self) -> Result<i64, String> {
        let start = self.at;
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.at])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("a bad integer at byte {start}"))
    }
}

/// A dtype description: a type string, or a list of fields.
fn check_descr(descr: &Literal, depth: usize) -> Result<(), String> {
    match descr {
        Literal::Str(t) => check_type(t),
        Literal::List(fields) if depth < MAX_DEPTH => {
            if fields.is_empty() {
                return Err("it describes a record without fields".to_owned());
            }
            fields.iter().try_for_each(|f| check_field(f, depth))
        }
        _ => Err("a dtype is described by a type string or a list of fields".to_owned()),
    }
}

/// `(name, descr)` or `(name, descr, shape)`; a name may be `(title, name)`.
fn check_field(field: &Literal, depth: usize) -> Result<(), String> {
    let Literal::Tuple(parts) = field else {
        return Err("a field is not a (name, type[, shape]) tuple".to_owned());
    };
    let (name, descr, shape) = match parts.as_slice() {
        [name, descr] => (name, descr, None),
        [name, descr, shape] => (name, descr, Some(shape)),
        _ => return Err("a field is not a (name, type[, shape]) tuple".to_owned()),
    };
    match name {
        Literal::Str(_) => {}
        Literal::Tuple(t) if matches!(t.as_slice(), [Literal::Str(_), Literal::Str(_)]) => {}
        _ => return Err("a field name is not a string or a (title, name) pair".to_owned()),
    }
    if let Some(shape) = shape {
        check_shape(shape)?;
    }
    check_descr(descr, depth + 1)
}

/// A sub-array shape: an integer or a tuple of integers, small and >= 0.
fn check_shape(shape: &Literal) -> Result<(), String> {
    let dims: Vec<&Literal> = match shape {
        Literal::Int(_) => vec![shape],
        Literal::Tuple(d) => d.iter().collect(),
        _ => return Err("a field shape is not an integer or a tuple of them".to_owned()),
    };
    let mut elements: u64 = 1;
    for d in dims {
        let Literal::Int(n) = d else {
            return Err("a field shape is not an integer or a tuple of them".to_owned());
        };
        let n = u64::try_from(*n).map_err(|_| "a field shape is negative".to_owned())?;
        elements = elements.saturating_mul(n);
    }
    if elements > MAX_ELEMENTS {
        return Err(format!(
            "a field shape has {elements} elements, more than any slot holds"
        ));
    }
    Ok(())
}

/// A numpy type string: byte order, kind, size (and a datetime unit).
fn check_type(t: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "type {t:?} is not a fixed-size number, boolean, byte or text string, raw bytes \
             or datetime"
        ))
    };
    let b = t.as_bytes();
    // The byte order, if any, says nothing about safety.
    let rest = b
        .strip_prefix(b"<")
        .or(b.strip_prefix(b">"))
        .or(b.strip_prefix(b"|"));
    let rest = rest.or(b.strip_prefix(b"=")).unwrap_or(b);
    let Some((&kind, rest)) = rest.split_first() else {
        return bad();
    };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let (size, unit) = rest.split_at(digits);
    let size: u64 = match std::str::from_utf8(size).ok().and_then(|s| s.parse().ok()) {
        Some(n) => n,
        None => return bad(),
    };
    let unit_ok = unit.is_empty()
        || (matches!(kind, b'm' | b'M')
            && unit.len() <= 8
            && unit.first() == Some(&b'[')
            && unit.last() == Some(&b']')
            && unit[1..unit.len() - 1]
                .iter()
                .all(u8::is_ascii_alphanumeric));
    let size_ok = match kind {
        b'b' => size == 1,
        b'i' | b'u' => matches!(size, 1 | 2 | 4 | 8),
        b'f' => matches!(size, 2 | 4 | 8 | 12 | 16),
        b'c' => matches!(size, 8 | 16 | 24 | 32),
        b'm' | b'M' => size == 8,
        b'S' | b'V' | b'U' => size <= MAX_ELEMENTS,
        _ => false, // 'O' (Python objects) and anything unknown
    };
    if size_ok && unit_ok {
        Ok(())
    } else {
        bad()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn what_numpy_writes_passes() {
        for ok in [
            "",
            "numpy:'<u8'",
            "numpy:'|V16'",
            "numpy:[('seq', '<u8'), ('px', '<f8'), ('sym', '|S8')]",
            "numpy:[('a', '<i4', (2, 3)), ('b', [('x', '<u2'), ('', '|V2')])]",
            "numpy:[(('Price', 'px'), '<f8'), ('t', '<M8[ns]'), ('u', '<U4', 3)]",
            "numpy:[(\"it's\", '|b1')]",
        ] {
            assert_eq!(check(ok.as_bytes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_numpy_would_misread_is_refused() {
        for (bad, why) in [
            ("numpy:'|O'", "type"),
            ("numpy:[('a', '|O')]", "type"),
            ("numpy:__import__('os')", "unexpected"),
            ("numpy:[()]", "tuple"),
            ("numpy:[('a',)]", "tuple"),
            ("numpy:[]", "without fields"),
            ("numpy:[('a', '<u8', -1)]", "negative"),
            ("numpy:[('a', '<u8', (1 << 40,))]", "expected ','"),
            (
                "numpy:[('a', '<u8', (1099511627776,))]",
                "more than any slot",
            ),
            ("numpy:'<u8", "not closed"),
            ("numpy:'<u3'", "type"),
            ("numpy:'<M8[../x]'", "type"),
            ("json:{}", "numpy:"),
            ("numpy:'<u8' 'x'", "unexpected text"),
        ] {
            let e = check(bad.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let deep = format!("numpy:{}'<u8'{}", "[".repeat(40), "]".repeat(40));
        assert!(check(deep.as_bytes()).unwrap_err().contains("deeper"));
    }

    proptest! {
        /// Any bytes: an answer, never a panic.
        #[test]
        fn random_schemas_are_judged(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut schema = PREFIX.to_vec();
            schema.extend(bytes);
            let _ = check(&schema);
        }
    }
}
