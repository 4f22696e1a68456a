//! One TOML table, whichever of the three forms the user wrote it in — a `[header]` table, dotted
//! keys (`kubernetes.image = …`) or an inline table (`kubernetes = { … }`) — and one array of
//! tables, `[[header]]` entries or an array of inline tables. The runner reads all forms alike;
//! edits go into the form that is already there, laid out like its neighbours, and new tables
//! take the form of their parent (a header table gets header sub-tables, dotted keys get dotted
//! keys, an inline table grows inline).

use toml_edit::{Array, ArrayOfTables, InlineTable, Item, Table, TableLike, Value};

use super::indent::{Indent, indent_key, new_table};
use super::keys;

/// A table in one of its three forms.
pub(super) enum Node<'a> {
    /// A `[header]` table or a dotted-key table.
    Table(&'a mut Table),
    Inline(&'a mut InlineTable),
}

/// An array of tables in one of its two forms.
pub(super) enum TableArray<'a> {
    Tables(&'a mut ArrayOfTables),
    Inline(&'a mut Array),
}

impl<'a> Node<'a> {
    /// The table held by `item`, if it is one (in any form).
    pub(super) fn of(item: &'a mut Item) -> Option<Node<'a>> {
        match item {
            Item::Table(t) => Some(Node::Table(t)),
            Item::Value(Value::InlineTable(t)) => Some(Node::Inline(t)),
            _ => None,
        }
    }

    pub(super) fn like(&self) -> &dyn TableLike {
        match self {
            Node::Table(t) => *t,
            Node::Inline(t) => *t,
        }
    }

    /// Indentation of this table's keys, for a table whose parent is indented as `parent`.
    pub(super) fn indent(&self, parent: &Indent) -> Indent {
        match self {
            Node::Table(t) => Indent::of(t, parent),
            Node::Inline(_) => parent.child(),
        }
    }

    /// The key the runner reads as `name` (see [`keys::find`]).
    pub(super) fn find(&self, name: &str, exact: bool) -> Option<String> {
        keys::find(self.like(), name, exact)
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut Item> {
        match self {
            Node::Table(t) => t.get_mut(key),
            Node::Inline(t) => TableLike::get_mut(*t, key),
        }
    }

    /// Removes `key` (with its line and comments).
    pub(super) fn remove(&mut self, key: &str) {
        match self {
            Node::Table(t) => {
                t.remove(key);
            }
            Node::Inline(t) => {
                let last = t.iter().last().map(|(k, _)| k == key).unwrap_or(false);
                let removed = t.remove(key);
                // The space before `}` travels with the last value (see `push_inline`).
                if let (true, Some(removed)) = (last, removed) {
                    let suffix = removed.decor().suffix().cloned();
                    if let (Some(suffix), Some((_, v))) = (suffix, t.iter_mut().last()) {
                        v.decor_mut().set_suffix(suffix);
                    }
                }
            }
        }
    }

    /// The value the runner reads as struct field `name`.
    pub(super) fn value(&self, name: &str) -> Option<&Value> {
        let key = self.find(name, false)?;
        self.like().get(&key)?.as_value()
    }

    /// Sets struct field `name` to `value`, in the key already spelled for it if there is one
    /// (keeping its comments), else in a new key laid out like its neighbours; `false` if the
    /// field already held that value.
    pub(super) fn set_value(&mut self, name: &str, value: Value, indent: &Indent) -> bool {
        let key = self.find(name, false);
        if let Some(key) = &key
            && let Some(Item::Value(existing)) = self.get_mut(key)
        {
            if same_value(existing, &value) {
                return false;
            }
            let decor = existing.decor().clone();
            *existing = plain_value(&value);
            *existing.decor_mut() = decor;
            return true;
        }
        let key = key.unwrap_or_else(|| name.to_owned());
        self.insert(&key, Item::Value(value), indent);
        true
    }

    /// Inserts (or replaces) `key` with `item` converted to this table's form and layout.
    pub(super) fn insert(&mut self, key: &str, item: Item, indent: &Indent) {
        match self {
            Node::Table(t) => {
                let item = if t.is_dotted() {
                    dotted_item(item)
                } else {
                    header_item(item, &indent.child())
                };
                let is_line = !matches!(&item, Item::Table(s) if !s.is_dotted())
                    && !matches!(item, Item::ArrayOfTables(_));
                if let Some(slot) = t.get_mut(key) {
                    *slot = item;
                } else {
                    t.insert(key, item);
                }
                if is_line {
                    indent_key(t, key, &indent.keys);
                }
            }
            Node::Inline(t) => {
                let value = inline_value(item);
                if let Some(existing) = t.get_mut(key) {
                    let decor = existing.decor().clone();
                    *existing = value;
                    *existing.decor_mut() = decor;
                } else {
                    push_inline(t, key, value);
                }
            }
        }
    }

    /// The sub-table for struct field `name`, created (in this table's form) when missing.
    /// `Err` names the key when it holds something other than a table.
    pub(super) fn child(&mut self, name: &str, indent: &Indent) -> Result<Node<'_>, String> {
        let key = match self.find(name, false) {
            Some(key) => key,
            None => {
                let mut empty = Table::new();
                // `[runners.kubernetes.volumes]` alone says nothing: leave it implicit.
                empty.set_implicit(true);
                self.insert(name, Item::Table(empty), indent);
                name.to_owned()
            }
        };
        match self.get_mut(&key) {
            Some(item) if Node::of_ref(item) => Ok(Node::of(item).expect("checked")),
            _ => Err(key),
        }
    }

    /// Like [`Node::child`], but when the runner reads several keys as `name` (`Kubernetes` and
    /// `kubernetes`, both tables it merges into one struct), the one whose table holds `field`.
    pub(super) fn child_holding(
        &mut self,
        name: &str,
        field: &str,
        indent: &Indent,
    ) -> Result<Node<'_>, String> {
        let holder = self
            .like()
            .iter()
            .filter(|(k, _)| keys::same_field(k, name))
            .find(|(_, item)| {
                item.as_table_like()
                    .is_some_and(|t| keys::find(t, field, false).is_some())
            })
            .map(|(k, _)| k.to_owned());
        match holder {
            Some(key) => match self.get_mut(&key) {
                Some(item) if Node::of_ref(item) => Ok(Node::of(item).expect("checked")),
                _ => Err(key),
            },
            None => self.child(name, indent),
        }
    }

    fn of_ref(item: &Item) -> bool {
        matches!(item, Item::Table(_) | Item::Value(Value::InlineTable(_)))
    }

    /// The array of tables for struct field `name`, created (in this table's form) when
    /// missing. `Err` names the key when it holds something else.
    pub(super) fn table_array(
        &mut self,
        name: &str,
        indent: &Indent,
    ) -> Result<TableArray<'_>, String> {
        let key = match self.find(name, false) {
            Some(key) => key,
            None => {
                let item = match self {
                    Node::Table(t) if !t.is_dotted() => Item::ArrayOfTables(ArrayOfTables::new()),
                    _ => Item::Value(Value::Array(Array::new())),
                };
                self.insert(name, item, indent);
                name.to_owned()
            }
        };
        match self.get_mut(&key) {
            Some(Item::ArrayOfTables(a)) => Ok(TableArray::Tables(a)),
            Some(Item::Value(Value::Array(a))) if a.iter().all(Value::is_inline_table) => {
                Ok(TableArray::Inline(a))
            }
            _ => Err(key),
        }
    }
}

impl TableArray<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            TableArray::Tables(a) => a.len(),
            TableArray::Inline(a) => a.len(),
        }
    }

    pub(super) fn get(&self, i: usize) -> Option<&dyn TableLike> {
        match self {
            TableArray::Tables(a) => a.get(i).map(|t| t as &dyn TableLike),
            TableArray::Inline(a) => a
                .get(i)
                .and_then(Value::as_inline_table)
                .map(|t| t as &dyn TableLike),
        }
    }

    pub(super) fn get_mut(&mut self, i: usize) -> Option<Node<'_>> {
        match self {
            TableArray::Tables(a) => a.get_mut(i).map(Node::Table),
            TableArray::Inline(a) => a
                .get_mut(i)
                .and_then(Value::as_inline_table_mut)
                .map(Node::Inline),
        }
    }

    /// Appends `table` (plain content) as a new entry laid out like the others; `indent` is the
    /// indentation of a new `[[header]]` entry.
    pub(super) fn push(&mut self, table: &dyn TableLike, indent: &Indent) {
        match self {
            TableArray::Tables(a) => {
                // A new entry sits where the entries before it sit.
                let indent = a
                    .iter()
                    .last()
                    .map_or_else(|| indent.clone(), |last| Indent::sibling(last, indent));
                let mut t = new_table(&indent);
                let mut node = Node::Table(&mut t);
                for (k, item) in table.iter() {
                    node.insert(k, item.clone(), &indent);
                }
                a.push(t);
            }
            TableArray::Inline(a) => {
                let mut t = InlineTable::new();
                for (k, item) in table.iter() {
                    t.insert(k, inline_value(item.clone()));
                }
                push_styled(a, Value::InlineTable(t));
            }
        }
    }
}

/// Whether two values read the same (formatting aside).
pub(super) fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Float(x), Value::Float(y)) => x.value().to_bits() == y.value().to_bits(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Datetime(x), Value::Datetime(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same_value(p, q))
        }
        (Value::InlineTable(x), Value::InlineTable(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => false,
    }
}

/// Appends `value` to `array` laid out like its last element (one per line stays one per
/// line; `["a", "b"]` stays on one line).
pub(super) fn push_styled(array: &mut Array, value: Value) {
    let mut value = plain_value(&value);
    if let Some(last) = array.iter().last() {
        // No decor means the default layout, which puts a space before every element but the first.
        let prefix = last
            .decor()
            .prefix()
            .map_or(" ", |p| p.as_str().unwrap_or(""));
        // The first element of `["a"]` has no space before it; the next ones do.
        let prefix = if array.len() == 1 && !prefix.contains('\n') {
            " "
        } else {
            prefix
        };
        value.decor_mut().set_prefix(prefix.to_owned());
        value.decor_mut().set_suffix("");
    }
    array.push_formatted(value);
}

/// Appends `key = value` to an inline table, spaced like its last pair.
fn push_inline(table: &mut InlineTable, key: &str, value: Value) {
    let last = table.iter().last().map(|(k, _)| k.to_owned());
    let Some(last) = last else {
        table.insert(key, value);
        return;
    };
    let key_decor = table.key(&last).map(|k| k.leaf_decor().clone());
    let value_decor = table.get(&last).map(|v| v.decor().clone());
    let mut value = value;
    if let Some(d) = value_decor {
        // The space before `}` travels with the last value.
        let suffix = d.suffix().and_then(|s| s.as_str()).unwrap_or("").to_owned();
        if let Some(v) = table.get_mut(&last) {
            v.decor_mut().set_suffix("");
        }
        value.decor_mut().set_prefix(
            d.prefix()
                .and_then(|p| p.as_str())
                .unwrap_or(" ")
                .to_owned(),
        );
        value.decor_mut().set_suffix(suffix);
    }
    table.insert(key, value);
    if let (Some(d), Some(mut k)) = (key_decor, table.key_mut(key)) {
        *k.leaf_decor_mut() = d;
    }
}

/// `value` without any of its source formatting (default spacing when printed).
pub(super) fn plain_value(value: &Value) -> Value {
    let mut v = match value {
        Value::Array(a) => {
            let mut out = Array::new();
            for x in a.iter() {
                out.push(plain_value(x));
            }
            Value::Array(out)
        }
        Value::InlineTable(t) => {
            let mut out = InlineTable::new();
            for (k, x) in t.iter() {
                out.insert(k, plain_value(x));
            }
            Value::InlineTable(out)
        }
        other => {
            let mut o = other.clone();
            o.decor_mut().clear();
            o
        }
    };
    v.decor_mut().clear();
    v
}

/// `item` as a value of an inline table: tables become inline tables, arrays of tables arrays
/// of inline tables.
pub(super) fn inline_value(item: Item) -> Value {
    match item {
        Item::Value(v) => plain_value(&v),
        Item::Table(t) => {
            let mut out = InlineTable::new();
            for (k, x) in t.iter() {
                out.insert(k, inline_value(x.clone()));
            }
            Value::InlineTable(out)
        }
        Item::ArrayOfTables(a) => {
            let mut out = Array::new();
            for t in a.iter() {
                out.push(inline_value(Item::Table(t.clone())));
            }
            Value::Array(out)
        }
        Item::None => Value::InlineTable(InlineTable::new()),
    }
}

/// `item` as an entry of a dotted-key table: sub-tables become dotted too, arrays of tables
/// become arrays of inline tables (a `[[header]]` cannot continue dotted keys).
fn dotted_item(item: Item) -> Item {
    match item {
        Item::Table(t) => {
            let mut out = Table::new();
            out.set_dotted(true);
            for (k, x) in t.iter() {
                out.insert(k, dotted_item(x.clone()));
            }
            Item::Table(out)
        }
        Item::Value(Value::InlineTable(t)) if t.is_empty() => Item::Value(Value::InlineTable(t)),
        other => Item::Value(inline_value(other)),
    }
}

/// `item` as an entry of a header table: a copy laid out at `indent` (sub-tables as headers,
/// dotted tables and inline values kept as written).
fn header_item(item: Item, indent: &Indent) -> Item {
    match item {
        Item::Table(t) if t.is_dotted() => {
            let mut out = Table::new();
            out.set_dotted(true);
            for (k, x) in t.iter() {
                out.insert(k, dotted_item(x.clone()));
            }
            Item::Table(out)
        }
        Item::Table(t) => {
            let mut out = new_table(indent);
            out.set_implicit(t.is_implicit());
            let only_tables = t.iter().all(|(_, x)| !x.is_value());
            let inner = if t.is_implicit() && only_tables {
                indent.implicit()
            } else {
                indent.clone()
            };
            let mut node = Node::Table(&mut out);
            for (k, x) in t.iter() {
                node.insert(k, x.clone(), &inner);
            }
            Item::Table(out)
        }
        Item::ArrayOfTables(a) => {
            let mut out = ArrayOfTables::new();
            for t in a.iter() {
                if let Item::Table(entry) = header_item(Item::Table(t.clone()), indent) {
                    out.push(entry);
                }
            }
            Item::ArrayOfTables(out)
        }
        Item::Value(v) => Item::Value(plain_value(&v)),
        Item::None => Item::None,
    }
}

/// Longest line an inline table grown by the patch may make before it becomes a sub-table.
const MAX_INLINE_LINE: usize = 100;

/// The inline tables of `table` (a header table indented as `indent`), rendered, to tell later
/// which ones the patch grew.
pub(super) fn inline_snapshot(table: &Table) -> Vec<(String, String)> {
    table
        .iter()
        .filter_map(|(k, item)| match item {
            Item::Value(v @ Value::InlineTable(_)) => Some((k.to_owned(), v.to_string())),
            _ => None,
        })
        .collect()
}

/// Turns each inline table of `table` that the patch changed (it differs from `before`) and
/// that no longer fits on a line of [`MAX_INLINE_LINE`] characters into a sub-table (`[header]`),
/// and inside it the values that do not fit either: long inline tables into sub-tables, long
/// arrays of inline tables into `[[header]]` entries. The data stays the same.
pub(super) fn expand_grown_inline(table: &mut Table, before: &[(String, String)], indent: &Indent) {
    if table.is_dotted() {
        return;
    }
    let grown: Vec<String> = inline_snapshot(table)
        .into_iter()
        .filter(|(k, text)| {
            before.iter().all(|(bk, bt)| bk != k || bt != text)
                && indent.keys.len() + k.len() + 3 + text.trim().len() > MAX_INLINE_LINE
        })
        .map(|(k, _)| k)
        .collect();
    for key in grown {
        expand(table, &key, indent);
    }
}

/// Makes the inline table or array of inline tables at `key` a sub-table or `[[header]]`
/// entries, recursing into what is still too long.
fn expand(table: &mut Table, key: &str, indent: &Indent) {
    let child_indent = indent.child();
    let item = match table.get(key) {
        Some(Item::Value(Value::InlineTable(t))) => {
            let mut out = new_table(&child_indent);
            let mut node = Node::Table(&mut out);
            for (k, v) in t.iter() {
                node.insert(k, Item::Value(v.clone()), &child_indent);
            }
            Item::Table(out)
        }
        Some(Item::Value(Value::Array(a)))
            if !a.is_empty() && a.iter().all(Value::is_inline_table) =>
        {
            let mut out = ArrayOfTables::new();
            for t in a.iter().filter_map(Value::as_inline_table) {
                let mut entry = new_table(&child_indent);
                let mut node = Node::Table(&mut entry);
                for (k, v) in t.iter() {
                    node.insert(k, Item::Value(v.clone()), &child_indent);
                }
                out.push(entry);
            }
            Item::ArrayOfTables(out)
        }
        _ => return,
    };
    if let Some(slot) = table.get_mut(key) {
        *slot = item;
    }
    if let Some(mut k) = table.key_mut(key) {
        k.leaf_decor_mut().clear();
    }
    // Inside, whatever is still too long becomes a sub-table as well.
    let long = |t: &Table| -> Vec<String> {
        t.iter()
            .filter(|(k, item)| match item {
                Item::Value(v @ (Value::InlineTable(_) | Value::Array(_))) => {
                    child_indent.keys.len() + k.len() + 3 + v.to_string().trim().len()
                        > MAX_INLINE_LINE
                }
                _ => false,
            })
            .map(|(k, _)| k.to_owned())
            .collect()
    };
    match table.get_mut(key) {
        Some(Item::Table(t)) => {
            for k in long(t) {
                expand(t, &k, &child_indent);
            }
            // `[runners.kubernetes.volumes]` with nothing but arrays under it says nothing.
            let only_tables = t.iter().all(|(_, item)| !item.is_value());
            if only_tables {
                t.set_implicit(true);
                // Its header is not printed, so its sub-tables take its place in the layout.
                for (_, item) in t.iter_mut() {
                    reindent(item, &child_indent);
                }
            }
        }
        Some(Item::ArrayOfTables(a)) => {
            for t in a.iter_mut() {
                for k in long(t) {
                    expand(t, &k, &child_indent);
                }
            }
        }
        _ => {}
    }
}

/// Lays out the header tables in `item` at `indent` (and their sub-tables one level deeper).
fn reindent(item: &mut Item, indent: &Indent) {
    let tables: Vec<&mut Table> = match item {
        Item::Table(t) if !t.is_dotted() => vec![t],
        Item::ArrayOfTables(a) => a.iter_mut().collect(),
        _ => return,
    };
    for t in tables {
        t.decor_mut().set_prefix(indent.header.clone());
        let keys: Vec<String> = t
            .iter()
            .filter(|(_, i)| i.is_value())
            .map(|(k, _)| k.to_owned())
            .collect();
        for k in keys {
            indent_key(t, &k, &indent.keys);
        }
        for (_, sub) in t.iter_mut() {
            reindent(sub, &indent.child());
        }
    }
}
