//! The runner's reading of a TOML, for tests: what gitlab-runner v19.3.0 (BurntSushi/toml into
//! the `common/config.go` structs) sees, as JSON. Struct fields match ignoring case, so they come
//! out lower-cased; two spellings of one field in one table are an error (the runner would read
//! either at random, runner-config.md §12), unless both are tables: the runner decodes both into
//! the one struct, so they merge, and only a key set in both is an error. Keys of Go maps (`node_selector`, `items`, …: every
//! property the runner schema types as an object of values) are data and kept as written. Tables,
//! dotted keys and inline tables are one thing; so are `[[x]]` entries and arrays of inline tables.

#![allow(dead_code)]

use serde_json::{Map, Value as Json};
use toml_edit::{DocumentMut, Item, TableLike, Value};

/// Go map fields, read from the runner schema (objects with typed `additionalProperties`) plus
/// the two `map[string]any` tables.
fn is_go_map(key: &str) -> bool {
    let defs = include_str!("../../schema/runner-template.defs");
    let lower = key.to_lowercase();
    lower == "plugin_config"
        || lower == "nesting_config"
        || defs.lines().any(|l| {
            l.strip_prefix('\t')
                .and_then(|l| l.split_once('\t'))
                .is_some_and(|(k, s)| {
                    k == lower && s.starts_with(r#"{"type":"object","additionalProperties":{"#)
                })
        })
}

/// Reads `text` as the runner does (see the module documentation).
pub(crate) fn read(text: &str) -> Result<Json, String> {
    let doc: DocumentMut = text.parse().map_err(|e| format!("invalid TOML: {e}"))?;
    table(doc.as_table(), false)
}

fn table(t: &dyn TableLike, in_map: bool) -> Result<Json, String> {
    let mut out = Map::new();
    for (key, item) in t.iter() {
        if item.is_none() {
            continue;
        }
        let name = if in_map {
            key.to_owned()
        } else {
            key.to_lowercase()
        };
        let map = in_map || is_go_map(key);
        let value = match item {
            Item::Value(v) => value(v, map)?,
            Item::Table(t) => table(t, map)?,
            Item::ArrayOfTables(a) => {
                Json::Array(a.iter().map(|t| table(t, map)).collect::<Result<_, _>>()?)
            }
            Item::None => continue,
        };
        match out.get_mut(&name) {
            Some(existing) => combine(existing, value, &name)?,
            None => {
                out.insert(name, value);
            }
        }
    }
    Ok(Json::Object(out))
}

/// A second spelling of field `name` read into `existing`: tables merge, anything else is two
/// values for one field.
fn combine(existing: &mut Json, value: Json, name: &str) -> Result<(), String> {
    match (existing, value) {
        (Json::Object(e), Json::Object(v)) => {
            for (k, x) in v {
                match e.get_mut(&k) {
                    Some(old) => combine(old, x, &k)?,
                    None => {
                        e.insert(k, x);
                    }
                }
            }
            Ok(())
        }
        _ => Err(format!("two spellings of field `{name}`")),
    }
}

fn value(v: &Value, map: bool) -> Result<Json, String> {
    Ok(match v {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(i) => Json::from(*i.value()),
        Value::Float(f) => Json::from(*f.value()),
        Value::Boolean(b) => Json::Bool(*b.value()),
        Value::Datetime(d) => Json::String(d.value().to_string()),
        Value::Array(a) => Json::Array(a.iter().map(|x| value(x, map)).collect::<Result<_, _>>()?),
        Value::InlineTable(t) => table(t, map)?,
    })
}

/// What a fragment merge must mean, on the runner's reading: tables merged key by key, other
/// values replaced; arrays of tables merged entry by entry: host aliases by IP with their
/// hostnames unioned in order, every other array by `name`, the fragment's entry replacing the
/// one of that name whole (an entry without a name is added once).
pub(crate) fn merge(dst: &mut Json, src: &Json) {
    let (Json::Object(d), Json::Object(s)) = (dst, src) else {
        unreachable!("tables")
    };
    for (k, sv) in s {
        if k == "host_aliases"
            && let Json::Array(sa) = sv
        {
            let da = d
                .entry(k.clone())
                .or_insert_with(|| Json::Array(Vec::new()));
            let Json::Array(da) = da else {
                unreachable!("an array of tables")
            };
            for entry in sa {
                let ip = ip_of(entry);
                match da.iter_mut().find(|e| ip.is_some() && ip_of(e) == ip) {
                    Some(found) => {
                        let hosts = found["hostnames"].as_array_mut().expect("hostnames");
                        for h in entry["hostnames"].as_array().into_iter().flatten() {
                            if !hosts.contains(h) {
                                hosts.push(h.clone());
                            }
                        }
                    }
                    None => da.push(entry.clone()),
                }
            }
            continue;
        }
        match d.get_mut(k) {
            Some(dv @ Json::Object(_)) if sv.is_object() => merge(dv, sv),
            Some(Json::Array(da))
                if table_array(da) && matches!(sv, Json::Array(sa) if table_array(sa)) =>
            {
                for entry in sv.as_array().unwrap() {
                    let name = entry.get("name").and_then(Json::as_str);
                    if name.is_none() && da.contains(entry) {
                        continue;
                    }
                    match da
                        .iter_mut()
                        .find(|e| name.is_some() && e.get("name").and_then(Json::as_str) == name)
                    {
                        Some(found) => *found = entry.clone(),
                        None => da.push(entry.clone()),
                    }
                }
            }
            _ => {
                d.insert(k.clone(), sv.clone());
            }
        }
    }
}

fn ip_of(entry: &Json) -> Option<String> {
    let v = entry.get("ip")?.as_str()?;
    Some(
        v.parse::<std::net::IpAddr>()
            .map_or(v.to_owned(), |ip| ip.to_string()),
    )
}

fn table_array(a: &[Json]) -> bool {
    !a.is_empty() && a.iter().all(Json::is_object)
}

/// The `[[runners]]` entries of a reading.
pub(crate) fn runners(reading: &Json) -> &Vec<Json> {
    reading["runners"].as_array().expect("runners is an array")
}
