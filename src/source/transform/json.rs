//! JSON and GeoJSON: a byte-level state machine walks the top-level object or array, cuts the
//! records array into one record at a time, and hands each record to serde_json. Record members
//! are read as raw slices, so values nobody asked to change (geometry above all) are copied byte
//! for byte and never parsed into numbers and back.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::TransformError;
use super::Unsupported;
use super::plan::{FieldAction, TransformPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `application/geo+json`: a FeatureCollection; fields are each feature's `properties`.
    GeoJson,
    /// `application/json`: an array of records or an object with one records member.
    Json,
}

/// Where a record keeps the fields that obligations name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fields {
    /// The record is the field map.
    Itself,
    /// A GeoJSON feature's `properties` (or, outside `application/geo+json`, ArcGIS `attributes`).
    Properties,
    /// An Opendatasoft record's `fields`.
    Opendatasoft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// After `{`: a member name or `}`.
    ObjectStart,
    /// After `,` in the top-level object: a member name.
    MemberName,
    Name,
    Colon,
    MemberValueStart,
    MemberValue,
    AfterMember,
    /// After `[` of the records array: a record or `]`.
    ArrayStart,
    /// After `,` in the records array: a record.
    RecordStart,
    Record,
    AfterRecord,
    Trailing,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Totals of the unfiltered source: wrong once rows are filtered, and not knowable in a stream.
const TOTALS: &[&str] = &[
    "totalFeatures",
    "numberMatched",
    "nhits",
    "total_count",
    "count",
];
/// Summaries of field values across all rows, withheld ones included.
const FACETS: &[&str] = &["facet_groups", "facets"];
/// Top-level arrays of objects that describe the schema or navigation, not records: ArcGIS REST
/// `fields`, OGC API `links`, DSO/HAL `_links` (Amsterdam's APIs).
const SCHEMA_LISTS: &[&str] = &["fields", "links", "_links"];

pub(super) struct JsonTransformer {
    plan: TransformPlan,
    shape: Shape,
    state: State,
    bom: usize,
    /// `Some` once the records array is found: how its records keep their fields.
    fields: Option<Fields>,
    /// The records array has ended (members after it may be written with counts known).
    records_done: bool,
    array_document: bool,
    /// The current top-level member's name: raw (as written, quotes included) and decoded.
    raw_name: Vec<u8>,
    name: String,
    name_escape: bool,
    /// A member value or record that spans chunks.
    buf: Vec<u8>,
    scan: Scanner,
    /// Output before the records array, held back so that a body of an unknown shape is refused
    /// before any of it leaves.
    held: Vec<u8>,
    scratch: Vec<u8>,
    wrote_member: bool,
    wrote_record: bool,
    records_seen: u64,
    served: u64,
    /// Bytes of input before the current chunk, for error offsets.
    offset: u64,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl JsonTransformer {
    pub(super) fn new(plan: TransformPlan, shape: Shape) -> Self {
        Self {
            plan,
            shape,
            state: State::Start,
            bom: 0,
            fields: None,
            records_done: false,
            array_document: false,
            raw_name: Vec::new(),
            name: String::new(),
            name_escape: false,
            buf: Vec::new(),
            scan: Scanner::default(),
            held: Vec::new(),
            scratch: Vec::new(),
            wrote_member: false,
            wrote_record: false,
            records_seen: 0,
            served: 0,
            offset: 0,
        }
    }

    pub(super) fn buffered(&self) -> usize {
        self.buf.capacity()
            + self.held.capacity()
            + self.scratch.capacity()
            + self.raw_name.capacity()
    }

    fn malformed(&self, at: usize, reason: impl Into<String>) -> TransformError {
        TransformError::Malformed {
            format: "JSON",
            offset: self.offset + at as u64,
            reason: reason.into(),
        }
    }

    fn unsupported(&self, why: impl std::fmt::Display) -> TransformError {
        TransformError::Unsupported(Unsupported(format!("JSON body: {why}")))
    }

    fn too_large(&self, at: usize) -> TransformError {
        TransformError::RecordTooLarge {
            offset: self.offset + at as u64,
            limit: self.plan.max_record_bytes(),
        }
    }

    /// Output goes to `held` until the records array starts, then straight out.
    fn emit(&mut self, out: &mut BytesMut, bytes: &[u8]) {
        if self.fields.is_some() {
            out.extend_from_slice(bytes);
        } else {
            self.held.extend_from_slice(bytes);
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
                State::Start => {
                    if self.bom < BOM.len() && b == BOM[self.bom] {
                        self.bom += 1;
                    } else if self.bom != 0 && self.bom != BOM.len() {
                        return Err(self.malformed(i, "broken byte order mark"));
                    } else if is_ws(b) {
                    } else if b == b'{' {
                        self.held.push(b'{');
                        self.state = State::ObjectStart;
                    } else if b == b'[' && self.shape == Shape::Json {
                        self.array_document = true;
                        self.fields = Some(Fields::Itself);
                        out.extend_from_slice(b"[");
                        self.state = State::ArrayStart;
                    } else if b == b'[' {
                        return Err(self.unsupported("GeoJSON must be a FeatureCollection object"));
                    } else {
                        return Err(self.unsupported("not an object or an array of records"));
                    }
                    i += 1;
                }
                State::ObjectStart | State::MemberName => {
                    if b == b'"' {
                        self.raw_name.clear();
                        self.raw_name.push(b);
                        self.name_escape = false;
                        self.state = State::Name;
                    } else if b == b'}' && self.state == State::ObjectStart {
                        return Err(self.unsupported("an empty object holds no records"));
                    } else if !is_ws(b) {
                        return Err(self.malformed(i, "expected a member name"));
                    }
                    i += 1;
                }
                State::Name => {
                    // Names are short: byte by byte is fine here.
                    self.raw_name.push(b);
                    if self.name_escape {
                        self.name_escape = false;
                    } else if b == b'\\' {
                        self.name_escape = true;
                    } else if b == b'"' {
                        self.name = serde_json::from_slice(&self.raw_name)
                            .map_err(|e| self.malformed(i, format!("member name: {e}")))?;
                        self.state = State::Colon;
                    }
                    if self.raw_name.len() > limit {
                        return Err(self.too_large(i));
                    }
                    i += 1;
                }
                State::Colon => {
                    if b == b':' {
                        self.state = State::MemberValueStart;
                    } else if !is_ws(b) {
                        return Err(self.malformed(i, "expected `:`"));
                    }
                    i += 1;
                }
                State::MemberValueStart => {
                    if is_ws(b) {
                        i += 1;
                    } else if let Some(fields) = self.records_member() {
                        if self.fields.is_some() {
                            return Err(self.unsupported(format!(
                                "more than one records member (`{}`)",
                                self.name
                            )));
                        }
                        if b != b'[' {
                            return Err(self.unsupported(format!(
                                "records member `{}` is not an array",
                                self.name
                            )));
                        }
                        self.fields = Some(fields);
                        out.extend_from_slice(&std::mem::take(&mut self.held));
                        if self.wrote_member {
                            out.extend_from_slice(b",");
                        }
                        out.extend_from_slice(&self.raw_name);
                        out.extend_from_slice(b":[");
                        self.wrote_member = true;
                        self.state = State::ArrayStart;
                        i += 1;
                    } else {
                        self.scan = Scanner::default();
                        self.buf.clear();
                        self.state = State::MemberValue;
                    }
                }
                State::MemberValue => {
                    let (n, done) = self.scan.scan(&input[i..]);
                    self.buf.extend_from_slice(&input[i..i + n]);
                    if self.buf.len() > limit {
                        return Err(self.too_large(i));
                    }
                    i += n;
                    if done {
                        let value = std::mem::take(&mut self.buf);
                        let r = self.member(&value, out, i);
                        self.buf = value;
                        r?;
                        self.state = State::AfterMember;
                    }
                }
                State::AfterMember => {
                    if b == b',' {
                        self.state = State::MemberName;
                    } else if b == b'}' {
                        if self.fields.is_none() {
                            return Err(self.unsupported(match self.shape {
                                Shape::GeoJson => "no `features` array",
                                Shape::Json => "no records member (features, records, results, data, items, value)",
                            }));
                        }
                        out.extend_from_slice(b"}");
                        self.state = State::Trailing;
                    } else if !is_ws(b) {
                        return Err(self.malformed(i, "expected `,` or `}`"));
                    }
                    i += 1;
                }
                State::ArrayStart | State::RecordStart => {
                    if is_ws(b) {
                        i += 1;
                    } else if b == b']' && self.state == State::ArrayStart {
                        self.end_records(out);
                        i += 1;
                    } else {
                        self.scan = Scanner::default();
                        self.buf.clear();
                        self.state = State::Record;
                    }
                }
                State::Record => {
                    let (n, done) = self.scan.scan(&input[i..]);
                    if done && self.buf.is_empty() {
                        // The whole record is in this chunk: no copy.
                        if n > limit {
                            return Err(self.too_large(i));
                        }
                        self.record(&input[i..i + n], out, i)?;
                    } else {
                        self.buf.extend_from_slice(&input[i..i + n]);
                        if self.buf.len() > limit {
                            return Err(self.too_large(i));
                        }
                        if done {
                            let record = std::mem::take(&mut self.buf);
                            let r = self.record(&record, out, i);
                            self.buf = record;
                            self.buf.clear();
                            r?;
                        }
                    }
                    i += n;
                    if done {
                        self.state = State::AfterRecord;
                    }
                }
                State::AfterRecord => {
                    if b == b',' {
                        self.state = State::RecordStart;
                    } else if b == b']' {
                        self.end_records(out);
                    } else if !is_ws(b) {
                        return Err(self.malformed(i, "expected `,` or `]` after a record"));
                    }
                    i += 1;
                }
                State::Trailing => {
                    if !is_ws(b) {
                        return Err(self.malformed(i, "data after the end of the document"));
                    }
                    i += 1;
                }
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self, _out: &mut BytesMut) -> Result<(), TransformError> {
        match self.state {
            State::Trailing => Ok(()),
            State::Start => Err(self.malformed(0, "empty body")),
            _ => Err(self.malformed(0, "the body ends before the document does")),
        }
    }

    /// How records keep their fields if the current member is the records array.
    fn records_member(&self) -> Option<Fields> {
        match (self.shape, self.name.as_str()) {
            (_, "features") => Some(Fields::Properties),
            (Shape::Json, "records") => Some(Fields::Opendatasoft),
            (Shape::Json, "results" | "data" | "items" | "value") => Some(Fields::Itself),
            _ => None,
        }
    }

    fn end_records(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"]");
        self.records_done = true;
        self.state = if self.array_document {
            State::Trailing
        } else {
            State::AfterMember
        };
    }

    /// A top-level member other than the records array: copied, dropped or recomputed.
    fn member(
        &mut self,
        value: &[u8],
        out: &mut BytesMut,
        at: usize,
    ) -> Result<(), TransformError> {
        serde_json::from_slice::<IgnoredAny>(value)
            .map_err(|e| self.malformed(at, format!("member `{}`: {e}", self.name)))?;
        let name = self.name.as_str();
        if FACETS.contains(&name) {
            return Ok(());
        }
        let mut value = Cow::Borrowed(value);
        if self.plan.has_filters() {
            if TOTALS.contains(&name) {
                return Ok(());
            }
            if name == "numberReturned" {
                if !self.records_done {
                    return Ok(());
                }
                value = Cow::Owned(self.served.to_string().into_bytes());
            }
        }
        if value.first() == Some(&b'[') && !SCHEMA_LISTS.contains(&name) {
            let items: Vec<&RawValue> = serde_json::from_slice(&value)
                .map_err(|e| self.malformed(at, format!("member `{name}`: {e}")))?;
            if items.iter().any(|v| v.get().starts_with('{')) {
                return Err(self.unsupported(format!(
                    "member `{name}` holds objects that are not the records"
                )));
            }
        }
        let mut bytes = Vec::with_capacity(self.raw_name.len() + value.len() + 2);
        if self.wrote_member {
            bytes.push(b',');
        }
        bytes.extend_from_slice(&self.raw_name);
        bytes.push(b':');
        bytes.extend_from_slice(&value);
        self.wrote_member = true;
        self.emit(out, &bytes);
        if self.held.len() > self.plan.max_record_bytes() {
            return Err(self.too_large(at));
        }
        Ok(())
    }

    /// One record: filtered, transformed and written.
    fn record(&mut self, raw: &[u8], out: &mut BytesMut, at: usize) -> Result<(), TransformError> {
        self.records_seen += 1;
        let n = self.records_seen;
        let offset = self.offset + at as u64;
        let bad = move |why: String| TransformError::Malformed {
            format: "JSON",
            offset,
            reason: format!("record {n}: {why}"),
        };
        let record: Members = serde_json::from_slice(raw).map_err(|e| bad(e.to_string()))?;
        record.check_unique().map_err(&bad)?;
        let Some(how) = self.fields else {
            return Ok(());
        };
        let (container, fields) = match how {
            Fields::Itself => (None, None),
            Fields::Properties | Fields::Opendatasoft => {
                let names: &[&str] = match (how, self.shape) {
                    (Fields::Opendatasoft, _) => &["fields"],
                    (_, Shape::GeoJson) => &["properties"],
                    _ => &["properties", "attributes"],
                };
                let Some((pos, value)) = names.iter().find_map(|n| record.find(n)) else {
                    return Err(self.unsupported(format!(
                        "record {n} has no `{}` member",
                        names.join("` or `")
                    )));
                };
                let fields = if value.get() == "null" {
                    Members(Vec::new())
                } else {
                    let f: Members = serde_json::from_str(value.get())
                        .map_err(|e| bad(format!("`{}`: {e}", record.0[pos].0)))?;
                    f.check_unique().map_err(&bad)?;
                    f
                };
                (Some(pos), Some(fields))
            }
        };
        let fields = fields.as_ref().unwrap_or(&record);

        for (i, property) in self.plan.filter_properties().enumerate() {
            let keep = fields
                .find(property)
                .and_then(|(_, v)| value_text(v))
                .is_some_and(|text| self.plan.allows(i, text.as_bytes()));
            if !keep {
                return Ok(());
            }
        }

        let changes = self.plan.has_field_actions()
            && fields
                .0
                .iter()
                .any(|(k, _)| self.plan.field_action(k).is_some());
        if self.wrote_record {
            out.extend_from_slice(b",");
        }
        self.wrote_record = true;
        self.served += 1;
        if !changes {
            out.extend_from_slice(raw);
            return Ok(());
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let r = match container {
            None => self.write_fields(fields, &mut scratch),
            Some(pos) => {
                scratch.push(b'{');
                let mut r = Ok(());
                for (j, (k, v)) in record.0.iter().enumerate() {
                    if j > 0 {
                        scratch.push(b',');
                    }
                    write_name(&mut scratch, k);
                    if j == pos {
                        r = self.write_fields(fields, &mut scratch);
                    } else {
                        scratch.extend_from_slice(v.get().as_bytes());
                    }
                }
                scratch.push(b'}');
                r
            }
        };
        out.extend_from_slice(&scratch);
        self.scratch = scratch;
        r.map_err(bad)
    }

    fn write_fields(&self, fields: &Members, w: &mut Vec<u8>) -> Result<(), String> {
        w.push(b'{');
        let mut first = true;
        for (k, v) in &fields.0 {
            let action = self.plan.field_action(k);
            if action == Some(FieldAction::Drop) {
                continue;
            }
            if !first {
                w.push(b',');
            }
            first = false;
            write_name(w, k);
            match action {
                Some(FieldAction::Pseudonymise) => match value_text(v) {
                    Some(text) if !text.is_empty() => {
                        w.push(b'"');
                        w.extend_from_slice(self.plan.pseudonym(text.as_bytes()).as_bytes());
                        w.push(b'"');
                    }
                    // null and "" carry nothing to hide.
                    _ => w.extend_from_slice(v.get().as_bytes()),
                },
                _ => w.extend_from_slice(v.get().as_bytes()),
            }
        }
        w.push(b'}');
        Ok(())
    }
}

/// Writes `"name":`.
fn write_name(w: &mut Vec<u8>, name: &str) {
    // Serialising a str into a Vec cannot fail; fall back to an empty name rather than panic.
    if serde_json::to_writer(&mut *w, name).is_err() {
        w.extend_from_slice(b"\"\"");
    }
    w.push(b':');
}

/// A value as filters and pseudonyms see it: a string's content, any other value's JSON text;
/// `None` for null.
fn value_text(v: &RawValue) -> Option<Cow<'_, str>> {
    let text = v.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        Some(b'n') => None,
        _ => Some(Cow::Borrowed(text)),
    }
}

/// An object's members in order, values unparsed.
pub(in crate::source) struct Members<'a>(pub(in crate::source) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// Parses one JSON object, refusing repeated member names.
    pub(in crate::source) fn parse(text: &'a str) -> Result<Self, String> {
        let m: Members = serde_json::from_str(text).map_err(|e| e.to_string())?;
        m.check_unique()?;
        Ok(m)
    }

    fn find(&self, name: &str) -> Option<(usize, &'a RawValue)> {
        self.0
            .iter()
            .position(|(k, _)| k == name)
            .map(|p| (p, self.0[p].1))
    }

    /// A repeated name would let one copy through while the other is transformed: JSON parsers
    /// disagree on which one counts.
    fn check_unique(&self) -> Result<(), String> {
        let names = &self.0;
        let dup = if names.len() <= 16 {
            names
                .iter()
                .enumerate()
                .find(|(i, (k, _))| names[..*i].iter().any(|(k2, _)| k2 == k))
                .map(|(_, (k, _))| k.as_ref())
        } else {
            let mut seen = std::collections::HashSet::with_capacity(names.len());
            names
                .iter()
                .map(|(k, _)| k.as_ref())
                .find(|&k| !seen.insert(k))
        };
        match dup {
            Some(k) => Err(format!("member `{k}` appears more than once")),
            None => Ok(()),
        }
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Name(k)) = map.next_key()? {
                    let v: &'de RawValue = map.next_value()?;
                    members.push((k, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// A member name, borrowed from the input unless it had escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Finds where one JSON value ends, across chunks, without validating it (serde_json does that
/// on the complete value): tracks nesting and strings, so brackets inside strings do not count.
#[derive(Default)]
struct Scanner {
    started: bool,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// A number, `true`, `false` or `null`: ends at the first delimiter, which is not consumed.
    primitive: bool,
}

impl Scanner {
    /// Consumes bytes of the value from `input`; returns how many, and whether the value ended.
    fn scan(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        if !self.started {
            let Some(&first) = input.first() else {
                return (0, false);
            };
            self.started = true;
            match first {
                b'{' | b'[' => self.depth = 1,
                b'"' => self.in_string = true,
                _ => self.primitive = true,
            }
            i = 1;
        }
        while i < input.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                match input[i..].iter().position(|&c| c == b'"' || c == b'\\') {
                    None => return (input.len(), false),
                    Some(p) => {
                        i += p;
                        if input[i] == b'\\' {
                            self.escape = true;
                        } else {
                            self.in_string = false;
                            if self.depth == 0 {
                                return (i + 1, true);
                            }
                        }
                        i += 1;
                    }
                }
                continue;
            }
            let b = input[i];
            if self.primitive {
                if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                    return (i, true);
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            return (i + 1, true);
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        (input.len(), false)
    }
}
