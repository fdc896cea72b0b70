//! CSV (RFC 4180): a byte-level state machine cuts the body into rows, quoted fields with commas,
//! quotes and line breaks included, whatever the chunk boundaries. The header row names the
//! columns; each later row is filtered and rewritten field by field, unchanged fields byte for byte.
//! Strict where leniency could misplace a column: a stray quote or a row with the wrong number of
//! fields ends the stream, since a shifted column could let a restricted value through.

use std::borrow::Cow;

use bytes::BytesMut;

use super::plan::{FieldAction, TransformPlan};
use super::{TransformError, Unsupported};

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the very start: a byte order mark may follow.
    Bom,
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: either the first of `""` or the closing quote.
    QuoteInQuoted,
    /// After a CR: an LF may follow as part of the same line end.
    AfterCr,
}

#[derive(Debug, Clone, Copy)]
enum LineEnd {
    Lf,
    CrLf,
    Cr,
    None,
}

impl LineEnd {
    fn bytes(self) -> &'static [u8] {
        match self {
            LineEnd::Lf => b"\n",
            LineEnd::CrLf => b"\r\n",
            LineEnd::Cr => b"\r",
            LineEnd::None => b"",
        }
    }
}

struct Header {
    actions: Vec<Option<FieldAction>>,
    /// Per row filter of the plan, its column; `None` if the header lacks it (no row matches).
    filters: Vec<Option<usize>>,
    /// No column to drop or pseudonymise: rows pass byte for byte (when the filters let them).
    unchanged: bool,
}

pub(super) struct CsvTransformer {
    plan: TransformPlan,
    state: State,
    bom: usize,
    /// The current row as read (separators included, line end not), and its fields' spans.
    row: Vec<u8>,
    fields: Vec<(usize, usize)>,
    field_start: usize,
    header: Option<Header>,
    rows: u64,
    offset: u64,
}

impl CsvTransformer {
    pub(super) fn new(plan: TransformPlan) -> Self {
        Self {
            plan,
            state: State::Bom,
            bom: 0,
            row: Vec::new(),
            fields: Vec::new(),
            field_start: 0,
            header: None,
            rows: 0,
            offset: 0,
        }
    }

    pub(super) fn buffered(&self) -> usize {
        self.row.capacity() + self.fields.capacity() * std::mem::size_of::<(usize, usize)>()
    }

    fn malformed(&self, at: usize, reason: impl Into<String>) -> TransformError {
        TransformError::Malformed {
            format: "CSV",
            offset: self.offset + at as u64,
            reason: format!("record {}: {}", self.rows + 1, reason.into()),
        }
    }

    pub(super) fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), TransformError> {
        let r = self.run(input, out);
        self.offset += input.len() as u64;
        r
    }

    fn run(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), TransformError> {
        let limit = self.plan.max_record_bytes();
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Bom => {
                    if self.bom < BOM.len() && b == BOM[self.bom] {
                        self.bom += 1;
                        i += 1;
                        if self.bom == BOM.len() {
                            out.extend_from_slice(&BOM);
                            self.state = State::FieldStart;
                        }
                    } else {
                        // Not a byte order mark after all: what matched is text of the first field.
                        self.row.extend_from_slice(&BOM[..self.bom]);
                        self.state = if self.bom > 0 {
                            State::Unquoted
                        } else {
                            State::FieldStart
                        };
                    }
                }
                State::FieldStart => match b {
                    b'"' => {
                        self.row.push(b);
                        self.state = State::Quoted;
                        i += 1;
                    }
                    b',' => {
                        self.end_field();
                        self.row.push(b);
                        self.field_start = self.row.len();
                        i += 1;
                    }
                    b'\n' => {
                        self.end_field();
                        self.end_row(LineEnd::Lf, out, i)?;
                        i += 1;
                    }
                    b'\r' => {
                        self.end_field();
                        self.state = State::AfterCr;
                        i += 1;
                    }
                    _ => self.state = State::Unquoted,
                },
                State::Unquoted => {
                    let run = input[i..]
                        .iter()
                        .position(|&c| matches!(c, b',' | b'\n' | b'\r' | b'"'))
                        .unwrap_or(input.len() - i);
                    self.row.extend_from_slice(&input[i..i + run]);
                    i += run;
                    if let Some(&c) = input.get(i) {
                        if c == b'"' {
                            return Err(self.malformed(i, "a quote inside an unquoted field"));
                        }
                        // The separator or line end is handled as at the start of a field.
                        self.state = State::FieldStart;
                        self.end_field_then(c, out, &mut i)?;
                    }
                }
                State::Quoted => {
                    let run = input[i..]
                        .iter()
                        .position(|&c| c == b'"')
                        .unwrap_or(input.len() - i);
                    self.row.extend_from_slice(&input[i..i + run]);
                    i += run;
                    if i < input.len() {
                        self.row.push(b'"');
                        self.state = State::QuoteInQuoted;
                        i += 1;
                    }
                }
                State::QuoteInQuoted => match b {
                    b'"' => {
                        // `""`: an escaped quote; the first was already kept.
                        self.row.push(b);
                        self.state = State::Quoted;
                        i += 1;
                    }
                    b',' | b'\n' | b'\r' => {
                        self.state = State::FieldStart;
                        self.end_field_then(b, out, &mut i)?;
                    }
                    _ => return Err(self.malformed(i, "text after a closing quote")),
                },
                State::AfterCr => {
                    let end = if b == b'\n' {
                        i += 1;
                        LineEnd::CrLf
                    } else {
                        LineEnd::Cr
                    };
                    self.state = State::FieldStart;
                    self.end_row(end, out, i)?;
                }
            }
            if self.row.len() > limit {
                return Err(TransformError::RecordTooLarge {
                    offset: self.offset + i as u64,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Ends the current field at a separator or line end `c` (at `input[*i]`), and consumes it.
    fn end_field_then(
        &mut self,
        c: u8,
        out: &mut BytesMut,
        i: &mut usize,
    ) -> Result<(), TransformError> {
        self.end_field();
        match c {
            b',' => {
                self.row.push(b',');
                self.field_start = self.row.len();
            }
            b'\n' => self.end_row(LineEnd::Lf, out, *i)?,
            _ => self.state = State::AfterCr,
        }
        *i += 1;
        Ok(())
    }

    pub(super) fn finish(&mut self, out: &mut BytesMut) -> Result<(), TransformError> {
        let at = 0;
        match self.state {
            State::Quoted => return Err(self.malformed(at, "the body ends inside a quoted field")),
            State::Bom if self.bom == 0 => return Ok(()),
            State::Bom => {
                self.row.extend_from_slice(&BOM[..self.bom]);
                self.end_field();
            }
            State::AfterCr => return self.end_row(LineEnd::Cr, out, at),
            State::Unquoted | State::QuoteInQuoted => self.end_field(),
            State::FieldStart if !self.row.is_empty() || !self.fields.is_empty() => {
                self.end_field()
            }
            State::FieldStart => return Ok(()),
        }
        self.end_row(LineEnd::None, out, at)
    }

    fn end_field(&mut self) {
        self.fields.push((self.field_start, self.row.len()));
    }

    fn end_row(
        &mut self,
        end: LineEnd,
        out: &mut BytesMut,
        at: usize,
    ) -> Result<(), TransformError> {
        let blank = self.row.is_empty() && self.fields.len() == 1;
        let r = if blank {
            Ok(())
        } else if self.header.is_none() {
            self.header_row(end, out, at)
        } else {
            self.data_row(end, out, at)
        };
        if !blank {
            self.rows += 1;
        }
        self.row.clear();
        self.fields.clear();
        self.field_start = 0;
        r
    }

    fn header_row(
        &mut self,
        end: LineEnd,
        out: &mut BytesMut,
        at: usize,
    ) -> Result<(), TransformError> {
        let mut names = Vec::with_capacity(self.fields.len());
        for &(s, e) in &self.fields {
            let name = String::from_utf8(unquote(&self.row[s..e]).into_owned())
                .map_err(|_| self.malformed(at, "a column name is not UTF-8"))?;
            names.push(name);
        }
        if let [only] = names.as_slice() {
            if only.contains(';') || only.contains('\t') {
                return Err(Unsupported(
                    "CSV body: the header has one column with `;` or tab in it; only `,` separates \
                     columns"
                        .into(),
                )
                .into());
            }
        }
        let actions: Vec<_> = names.iter().map(|n| self.plan.field_action(n)).collect();
        let filters: Vec<_> = self
            .plan
            .filter_properties()
            .map(|p| names.iter().position(|n| n == p))
            .collect();
        // Which of two same-named columns would a restriction mean? Refuse rather than guess.
        for (i, n) in names.iter().enumerate() {
            let named = actions[i].is_some() || self.plan.filter_properties().any(|p| p == n);
            if named && names[..i].contains(n) {
                return Err(self.malformed(at, format!("column `{n}` appears more than once")));
            }
        }
        let header = Header {
            unchanged: actions.iter().all(Option::is_none),
            actions,
            filters,
        };
        self.write_row(&header, false, end, out);
        self.header = Some(header);
        Ok(())
    }

    fn data_row(
        &mut self,
        end: LineEnd,
        out: &mut BytesMut,
        at: usize,
    ) -> Result<(), TransformError> {
        let Some(header) = self.header.take() else {
            return Ok(());
        };
        let r = if self.fields.len() != header.actions.len() {
            Err(self.malformed(
                at,
                format!(
                    "{} fields where the header has {}",
                    self.fields.len(),
                    header.actions.len()
                ),
            ))
        } else {
            let keep = header.filters.iter().enumerate().all(|(f, col)| {
                col.and_then(|c| self.fields.get(c))
                    .is_some_and(|&(s, e)| self.plan.allows(f, &unquote(&self.row[s..e])))
            });
            if keep {
                self.write_row(&header, true, end, out);
            }
            Ok(())
        };
        self.header = Some(header);
        r
    }

    fn write_row(&self, header: &Header, pseudonymise: bool, end: LineEnd, out: &mut BytesMut) {
        if header.unchanged {
            out.extend_from_slice(&self.row);
        } else {
            let mut first = true;
            for (&(s, e), action) in self.fields.iter().zip(&header.actions) {
                let raw = &self.row[s..e];
                if *action == Some(FieldAction::Drop) {
                    continue;
                }
                if !first {
                    out.extend_from_slice(b",");
                }
                first = false;
                let value = unquote(raw);
                if pseudonymise && *action == Some(FieldAction::Pseudonymise) && !value.is_empty() {
                    out.extend_from_slice(self.plan.pseudonym(&value).as_bytes());
                } else {
                    out.extend_from_slice(raw);
                }
            }
        }
        out.extend_from_slice(end.bytes());
    }
}

/// A field's text: outer quotes removed and `""` turned back into `"`.
fn unquote(raw: &[u8]) -> Cow<'_, [u8]> {
    match raw {
        [b'"', inner @ .., b'"'] => {
            if inner.contains(&b'"') {
                let mut v = Vec::with_capacity(inner.len());
                let mut quote = false;
                for &b in inner {
                    if b == b'"' && quote {
                        quote = false;
                        continue;
                    }
                    quote = b == b'"';
                    v.push(b);
                }
                Cow::Owned(v)
            } else {
                Cow::Borrowed(inner)
            }
        }
        _ => Cow::Borrowed(raw),
    }
}
