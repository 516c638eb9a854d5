//! Label selectors (the full `labels.Parse` syntax) and field selectors.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Exists,
    NotExists,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

#[derive(Clone, Debug, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    name_ok && prefix.is_none_or(super::resource::is_dns_subdomain)
}

/// A label value: empty, or ≤ 63 alphanumerics, '-', '_', '.', alphanumeric at both ends.
pub fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

/// A label key: a qualified name with an optional DNS-subdomain prefix.
pub fn is_label_key(k: &str) -> bool {
    is_qualified_name(k)
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(s) {
            let part = part.trim();
            let err = |why: &str| format!("unable to parse requirement: {part:?}: {why}");
            let r = if let Some(key) = part.strip_prefix('!') {
                Requirement {
                    key: key.trim().into(),
                    op: Op::NotExists,
                }
            } else if let Some((k, rest)) = split_word(part, " notin ") {
                Requirement {
                    key: k.into(),
                    op: Op::NotIn(
                        parse_set(rest).ok_or_else(|| err("expected a (value, ...) set"))?,
                    ),
                }
            } else if let Some((k, rest)) = split_word(part, " in ") {
                Requirement {
                    key: k.into(),
                    op: Op::In(parse_set(rest).ok_or_else(|| err("expected a (value, ...) set"))?),
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement {
                    key: k.trim().into(),
                    op: Op::NotEquals(v.trim().into()),
                }
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement {
                    key: k.trim().into(),
                    op: Op::Equals(v.trim().into()),
                }
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement {
                    key: k.trim().into(),
                    op: Op::Equals(v.trim().into()),
                }
            } else if let Some((k, v)) = part.split_once('>') {
                Requirement { key: k.trim().into(), op: Op::Gt(v.trim().parse().map_err(|_| err("for 'gt', 'lt' operators, exactly one value is required and it must be an integer"))?) }
            } else if let Some((k, v)) = part.split_once('<') {
                Requirement { key: k.trim().into(), op: Op::Lt(v.trim().parse().map_err(|_| err("for 'gt', 'lt' operators, exactly one value is required and it must be an integer"))?) }
            } else {
                Requirement {
                    key: part.into(),
                    op: Op::Exists,
                }
            };
            if !is_qualified_name(&r.key) {
                return Err(err(&format!("invalid label key {:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", r.key)));
            }
            let values: Vec<&String> = match &r.op {
                Op::Equals(v) | Op::NotEquals(v) => vec![v],
                Op::In(vs) | Op::NotIn(vs) => vs.iter().collect(),
                _ => vec![],
            };
            if let Some(bad) = values.iter().find(|v| !is_label_value(v)) {
                return Err(err(&format!("invalid label value: {bad:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
            }
            reqs.push(r);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.0.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match &r.op {
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Equals(x) => v == Some(x.as_str()),
                Op::NotEquals(x) => v != Some(x.as_str()),
                Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::NotIn(xs) => v.is_none_or(|v| !xs.iter().any(|x| x == v)),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn split_word<'a>(s: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let i = s.find(word)?;
    Some((s[..i].trim(), s[i + word.len()..].trim()))
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parse, accepting only `allowed` field names (`metadata.name`, ...).
    pub fn parse(s: &str, allowed: &[String]) -> Result<Self, String> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(out));
        }
        for part in s.split(',') {
            let part = part.trim();
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if !allowed.iter().any(|a| a == field) {
                return Err(format!("field label not supported: {field}"));
            }
            out.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    /// Add `field=value` (a legacy watch on one name).
    pub fn require(&mut self, field: &str, value: &str) {
        self.0.push((field.to_string(), true, value.to_string()));
    }

    /// Whether `obj` matches; a missing field compares as the empty string.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, value)| {
            let mut cur = obj;
            for seg in field.split('.') {
                cur = cur.get(seg).unwrap_or(&Value::Null);
            }
            // Compared without allocating: this runs per object and per watch event.
            let same = match cur {
                Value::String(s) => s == value,
                Value::Null => value.is_empty(),
                Value::Bool(b) => value == if *b { "true" } else { "false" },
                other => {
                    let text = other.to_string();
                    text == *value
                }
            };
            same == *eq
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether an object matches a label and a field selector: a list's or a watch's filter.
pub fn matches(labels: &LabelSelector, fields: &FieldSelector, obj: &Value) -> bool {
    labels.matches(obj["metadata"]["labels"].as_object()) && fields.matches(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn full_label_syntax() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app in (web, db)", true),
            ("app notin (web,db)", false),
            ("tier in (back)", false),
            ("n>3", true),
            ("n<3", false),
            ("app=web,tier=front", true),
            ("app=web, tier notin (front)", false),
            ("example.com/x", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(Some(&l)),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn bad_label_selectors_say_why() {
        for bad in ["app=in valid", "a b c", "app in web", "-bad", "n>x"] {
            let e = LabelSelector::parse(bad).unwrap_err();
            assert!(e.starts_with("unable to parse requirement"), "{bad}: {e}");
        }
    }

    #[test]
    fn field_selectors() {
        let allowed = vec!["metadata.name".to_string(), "spec.image".to_string()];
        let obj = json!({"metadata": {"name": "a"}, "spec": {"image": "busybox"}});
        assert!(FieldSelector::parse("metadata.name=a", &allowed)
            .unwrap()
            .matches(&obj));
        assert!(!FieldSelector::parse("spec.image!=busybox", &allowed)
            .unwrap()
            .matches(&obj));
        assert_eq!(
            FieldSelector::parse("spec.other=x", &allowed).unwrap_err(),
            "field label not supported: spec.other"
        );
    }
}
