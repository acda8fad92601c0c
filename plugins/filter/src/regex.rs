//! A small regular-expression matcher for `fields[].regex`.
//!
//! `regex-lite` alone adds ~57 KB to the component and put the plugin over
//! its 200 KB budget, so the filter carries this one: a parser to a Thompson
//! NFA and a Pike-VM simulation, linear in the input for any pattern (no
//! backtracking, so no catastrophic patterns).
//!
//! Syntax: literals, `.`, `^`, `$`, `|`, groups `(...)` and `(?:...)`,
//! `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (a trailing `?` for laziness is
//! accepted and changes nothing for a yes/no match), classes `[a-z_]` and
//! `[^...]`, and the escapes `\d \w \s \D \W \S \n \r \t` plus `\` before any
//! punctuation. `\d`, `\w` and `\s` are ASCII. The match is unanchored:
//! write `^...$` for a whole-value match.

use std::fmt;

/// The largest repetition count, to bound the compiled program.
const MAX_REPEAT: u32 = 100;
/// The largest compiled program.
const MAX_PROGRAM: usize = 10_000;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    text: String,
    prog: Vec<Inst>,
}

#[derive(Debug, Clone, PartialEq)]
enum Inst {
    Char(char),
    Any,
    Class(Class),
    Split(usize, usize),
    Jmp(usize),
    Start,
    End,
    Match,
}

#[derive(Debug, Clone, PartialEq)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= c && c <= b) != self.negated
    }
}

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Char(char),
    Any,
    Class(Class),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
}

impl Regex {
    /// Compiles `pattern`.
    ///
    /// # Errors
    ///
    /// A message naming the problem, e.g. `unclosed group`.
    ///
    /// ```
    /// let re = filter::regex::Regex::new("^api-[0-9]+$").unwrap();
    /// assert!(re.is_match("api-12"));
    /// assert!(!re.is_match("api-x"));
    /// ```
    pub fn new(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser { s: &chars, i: 0 };
        let node = p.alt()?;
        if p.i < chars.len() {
            return Err("unmatched )".into());
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog)?;
        prog.push(Inst::Match);
        Ok(Regex {
            text: pattern.to_string(),
            prog,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let n = self.prog.len();
        let mut clist = Threads::new(n);
        let mut nlist = Threads::new(n);
        for pos in 0..=chars.len() {
            // Unanchored: a new thread starts at every position.
            if self.add(&mut clist, 0, pos, chars.len()) {
                return true;
            }
            let Some(&c) = chars.get(pos) else { break };
            nlist.clear();
            for k in 0..clist.list.len() {
                let pc = clist.list[k];
                let step = match &self.prog[pc] {
                    Inst::Char(want) => *want == c,
                    Inst::Any => true,
                    Inst::Class(class) => class.matches(c),
                    _ => false,
                };
                if step && self.add(&mut nlist, pc + 1, pos + 1, chars.len()) {
                    return true;
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
        }
        false
    }

    /// Adds the thread at `pc` and every thread reachable from it without
    /// consuming input; `true` when one of them is a match.
    fn add(&self, list: &mut Threads, pc: usize, pos: usize, len: usize) -> bool {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if !list.insert(pc) {
                continue;
            }
            match self.prog[pc] {
                Inst::Match => return true,
                Inst::Jmp(to) => stack.push(to),
                Inst::Split(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                Inst::Start if pos == 0 => stack.push(pc + 1),
                Inst::End if pos == len => stack.push(pc + 1),
                _ => {}
            }
        }
        false
    }
}

impl fmt::Display for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A sparse set of program counters, in insertion order.
struct Threads {
    seen: Vec<bool>,
    list: Vec<usize>,
}

impl Threads {
    fn new(n: usize) -> Self {
        Threads {
            seen: vec![false; n],
            list: Vec::with_capacity(n),
        }
    }

    fn clear(&mut self) {
        for &pc in &self.list {
            self.seen[pc] = false;
        }
        self.list.clear();
    }

    fn insert(&mut self, pc: usize) -> bool {
        if self.seen[pc] {
            return false;
        }
        self.seen[pc] = true;
        self.list.push(pc);
        true
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) -> Result<(), String> {
    if prog.len() > MAX_PROGRAM {
        return Err("pattern too large".into());
    }
    match node {
        Node::Empty => {}
        Node::Char(c) => prog.push(Inst::Char(*c)),
        Node::Any => prog.push(Inst::Any),
        Node::Class(c) => prog.push(Inst::Class(c.clone())),
        Node::Start => prog.push(Inst::Start),
        Node::End => prog.push(Inst::End),
        Node::Concat(items) => {
            for item in items {
                compile(item, prog)?;
            }
        }
        Node::Alt(branches) => {
            // split L1, next; L1: a; jmp end; next: split L2, ... ; last
            let mut jumps = Vec::new();
            for (k, b) in branches.iter().enumerate() {
                if k + 1 < branches.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(b, prog)?;
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    compile(b, prog)?;
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat(inner, min, max) => {
            for _ in 0..*min {
                compile(inner, prog)?;
            }
            match max {
                None => {
                    // L: split body, end; body; jmp L
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(inner, prog)?;
                    prog.push(Inst::Jmp(split));
                    let end = prog.len();
                    prog[split] = Inst::Split(split + 1, end);
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(prog.len());
                        prog.push(Inst::Split(prog.len() + 1, 0));
                        compile(inner, prog)?;
                    }
                    let end = prog.len();
                    for s in splits {
                        prog[s] = Inst::Split(s + 1, end);
                    }
                }
            }
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn alt(&mut self) -> Result<Node, String> {
        let mut branches = vec![self.concat()?];
        while self.eat('|') {
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.repeat(atom)?);
        }
        Ok(Node::Concat(items))
    }

    fn repeat(&mut self, mut atom: Node) -> Result<Node, String> {
        loop {
            let (min, max) = match self.peek() {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                Some('{') => {
                    self.i += 1;
                    let bounds = self.bounds()?;
                    self.i -= 1;
                    bounds
                }
                _ => return Ok(atom),
            };
            self.i += 1;
            if matches!(atom, Node::Start | Node::End | Node::Empty) {
                return Err("nothing to repeat".into());
            }
            if matches!(atom, Node::Repeat(..)) {
                if self.eat('?') {
                    // Lazy: the same yes/no answer.
                    continue;
                }
                return Err("repetition of a repetition (use a group)".into());
            }
            atom = Node::Repeat(Box::new(atom), min, max);
            // Lazy marker right after a quantifier.
            self.eat('?');
        }
    }

    /// After `{`: `n}`, `n,}` or `n,m}`; leaves `i` just past `}`.
    fn bounds(&mut self) -> Result<(u32, Option<u32>), String> {
        let min = self
            .number()
            .ok_or("invalid repetition {...}: expected a number")?;
        let max = if self.eat(',') {
            if self.peek() == Some('}') {
                None
            } else {
                Some(
                    self.number()
                        .ok_or("invalid repetition {...}: expected a number")?,
                )
            }
        } else {
            Some(min)
        };
        if !self.eat('}') {
            return Err("unclosed repetition {...}".into());
        }
        if max.is_some_and(|m| m < min) {
            return Err("invalid repetition {n,m}: m is less than n".into());
        }
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(format!("repetition count above {MAX_REPEAT}"));
        }
        Ok((min, max))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let digits: String = self.s[start..self.i].iter().collect();
        digits.parse().ok()
    }

    fn atom(&mut self) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err("unexpected end of pattern".into());
        };
        self.i += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '(' => {
                if self.eat('?') && !self.eat(':') {
                    return Err("unsupported group flag (only (?:...) is supported)".into());
                }
                let inner = self.alt()?;
                if !self.eat(')') {
                    return Err("unclosed group".into());
                }
                inner
            }
            '[' => Node::Class(self.class()?),
            '\\' => self.escape(false)?,
            '*' | '+' | '?' => return Err("nothing to repeat".into()),
            '{' => return Err("nothing to repeat".into()),
            c => Node::Char(c),
        })
    }

    /// After `\`; inside a class only single characters and `\d \w \s`.
    fn escape(&mut self, in_class: bool) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err("trailing backslash".into());
        };
        self.i += 1;
        let class = |ranges: &[(char, char)], negated| {
            Node::Class(Class {
                ranges: ranges.to_vec(),
                negated,
            })
        };
        const DIGIT: &[(char, char)] = &[('0', '9')];
        const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
        const SPACE: &[(char, char)] = &[('\t', '\r'), (' ', ' ')];
        Ok(match c {
            'd' => class(DIGIT, false),
            'w' => class(WORD, false),
            's' => class(SPACE, false),
            'D' | 'W' | 'S' if in_class => {
                return Err(format!("\\{c} inside a class is not supported"));
            }
            'D' => class(DIGIT, true),
            'W' => class(WORD, true),
            'S' => class(SPACE, true),
            'n' => Node::Char('\n'),
            'r' => Node::Char('\r'),
            't' => Node::Char('\t'),
            c if c.is_ascii_alphanumeric() => {
                return Err(format!("unsupported escape \\{c}"));
            }
            c => Node::Char(c),
        })
    }

    /// After `[`.
    fn class(&mut self) -> Result<Class, String> {
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err("unclosed character class".into());
            };
            if c == ']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            self.i += 1;
            let lo = if c == '\\' {
                match self.escape(true)? {
                    Node::Char(c) => c,
                    Node::Class(inner) => {
                        ranges.extend(inner.ranges);
                        continue;
                    }
                    _ => unreachable!("escape returns a char or a class"),
                }
            } else {
                c
            };
            let is_range =
                self.peek() == Some('-') && self.s.get(self.i + 1).is_some_and(|&n| n != ']');
            if is_range {
                self.i += 1;
                let Some(mut hi) = self.peek() else {
                    return Err("unclosed character class".into());
                };
                self.i += 1;
                if hi == '\\' {
                    match self.escape(true)? {
                        Node::Char(c) => hi = c,
                        _ => return Err("a class cannot end a range".into()),
                    }
                }
                if hi < lo {
                    return Err(format!("invalid range {lo}-{hi} in a class"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Class { ranges, negated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Regex::new(p).unwrap().is_match(t)
    }

    #[test]
    fn literals_anchors_and_any() {
        assert!(m("api", "my-api-1"));
        assert!(!m("^api", "my-api"));
        assert!(m("^api$", "api"));
        assert!(!m("^api$", "api2"));
        assert!(m("a.c", "abc"));
        assert!(!m("a.c", "ac"));
        assert!(m("", "anything"));
        assert!(m("^$", ""));
        assert!(m("é", "café"));
    }

    #[test]
    fn repetition() {
        assert!(m("^ab*c$", "ac"));
        assert!(m("^ab*c$", "abbbc"));
        assert!(!m("^ab+c$", "ac"));
        assert!(m("^ab?c$", "abc"));
        assert!(!m("^ab?c$", "abbc"));
        assert!(m("^a{2}$", "aa"));
        assert!(!m("^a{2}$", "aaa"));
        assert!(m("^a{2,}$", "aaaa"));
        assert!(m("^a{1,3}$", "aaa"));
        assert!(!m("^a{1,3}$", "aaaa"));
        assert!(m("^a*?b$", "aab"));
        assert!(m("^(ab)+$", "ababab"));
        assert!(!m("^(ab)+$", "aba"));
    }

    #[test]
    fn alternation_groups_and_classes() {
        assert!(m("^(prod|staging)-", "staging-eu"));
        assert!(!m("^(prod|staging)-", "dev-eu"));
        assert!(m("^(?:a|b)c$", "bc"));
        assert!(m("^[a-c]+$", "abcab"));
        assert!(!m("^[a-c]+$", "abd"));
        assert!(m("^[^0-9]+$", "abc"));
        assert!(!m("^[^0-9]+$", "ab1"));
        assert!(m("^[]a]$", "]"));
        assert!(m("^[a-]$", "-"));
        assert!(m("^[\\d.]+$", "1.2.3"));
        assert!(m("^\\d+\\.\\d+$", "10.25"));
        assert!(m("^\\w+$", "a_1"));
        assert!(!m("^\\w+$", "a-1"));
        assert!(m("\\s", "a b"));
        assert!(m("^\\S+$", "ab"));
        assert!(m("^\\D\\W$", "a-"));
        assert!(m("a|", "zzz"));
    }

    #[test]
    fn linear_on_a_pathological_pattern() {
        let re = Regex::new("^(a+)+$").unwrap();
        let text = format!("{}b", "a".repeat(5000));
        assert!(!re.is_match(&text));
    }

    #[test]
    fn errors() {
        let err = |p: &str| Regex::new(p).err().unwrap();
        assert_eq!(err("(a"), "unclosed group");
        assert_eq!(err("a)"), "unmatched )");
        assert_eq!(err("*a"), "nothing to repeat");
        assert_eq!(err("^*"), "nothing to repeat");
        assert_eq!(err("[a"), "unclosed character class");
        assert_eq!(err("a{2"), "unclosed repetition {...}");
        assert_eq!(err("a{3,1}"), "invalid repetition {n,m}: m is less than n");
        assert_eq!(err("a{500}"), "repetition count above 100");
        assert_eq!(err("a\\"), "trailing backslash");
        assert_eq!(err("\\b"), "unsupported escape \\b");
        assert_eq!(err("[z-a]"), "invalid range z-a in a class");
        assert_eq!(
            err("(?i)a"),
            "unsupported group flag (only (?:...) is supported)"
        );
        assert_eq!(err("a**"), "repetition of a repetition (use a group)");
    }
}
