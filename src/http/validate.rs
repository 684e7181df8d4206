//! Serializer-style validation: each resource declares its writable fields once; every error is
//! collected and reported at once with DRF's wording, and values are coerced as DRF does
//! (`"5"` for an integer, `"true"` for a boolean, a single form value for a list).

use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{python_type_name, Fields};

/// The type of a declared field.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Text (trimmed, NUL refused).
    Str,
    /// Text kept exactly as sent (passwords).
    Secret,
    /// An e-mail address (blank allowed unless required).
    Email,
    /// A 64-bit integer, optionally bounded.
    Int {
        /// Smallest value allowed.
        min: Option<i64>,
        /// Largest value allowed.
        max: Option<i64>,
    },
    /// A boolean.
    Bool,
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// An IPv4 or IPv6 address.
    Ip,
    /// A list of integers (ids, ports); `max` bounds every item.
    IntList {
        /// Smallest item allowed.
        min: Option<i64>,
        /// Largest item allowed.
        max: Option<i64>,
        /// Whether `[]` is accepted.
        allow_empty: bool,
        /// Most items accepted.
        max_items: Option<usize>,
    },
    /// A list of strings.
    StrList,
    /// A primary key of another object (existence is checked by the caller).
    Pk,
}

/// One writable field of a resource.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Name in the body.
    pub name: &'static str,
    /// Type and bounds.
    pub kind: Kind,
    /// Must be present on create and PUT.
    pub required: bool,
    /// `null` accepted.
    pub null: bool,
    /// `""` accepted (text kinds).
    pub blank: bool,
    /// Longest text accepted.
    pub max_len: Option<usize>,
}

impl Field {
    /// A required text field of at most `max_len` characters.
    pub const fn text(name: &'static str, max_len: usize) -> Field {
        Field {
            name,
            kind: Kind::Str,
            required: true,
            null: false,
            blank: false,
            max_len: Some(max_len),
        }
    }

    /// A field of the given kind, required, not null.
    pub const fn new(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            kind,
            required: true,
            null: false,
            blank: false,
            max_len: None,
        }
    }

    /// Makes the field optional.
    pub const fn optional(mut self) -> Field {
        self.required = false;
        self
    }

    /// Accepts `null`.
    pub const fn nullable(mut self) -> Field {
        self.null = true;
        self
    }

    /// Accepts `""`.
    pub const fn blank(mut self) -> Field {
        self.blank = true;
        self
    }
}

/// How a body is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// POST and PUT: every required field must be present.
    Full,
    /// PATCH: only the fields sent are validated.
    Partial,
}

/// The mode of an update request, as an extractor: PATCH validates partially, anything else
/// (PUT) fully, so one handler serves both methods.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Mode {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(if parts.method == axum::http::Method::PATCH {
            Mode::Partial
        } else {
            Mode::Full
        })
    }
}

/// DRF's message for a primary key that names nothing (or nothing the caller may see).
pub fn invalid_pk(id: impl std::fmt::Display) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}

/// Adds DRF's "Invalid pk" error to `field` for the first of `ids` that is not a row of `table`.
pub async fn check_pks(
    db: &crate::db::Db,
    table: &str,
    field: &str,
    ids: &[i64],
    errors: &mut Errors,
) -> crate::db::DbResult<()> {
    let found = crate::db::existing_ids(db, table, ids).await?;
    if let Some(missing) = ids.iter().find(|i| !found.contains(i)) {
        errors.add(field, invalid_pk(missing));
    }
    Ok(())
}

/// Collected field errors, reported together.
#[derive(Debug, Default)]
pub struct Errors(Map<String, Value>);

impl Errors {
    /// Adds a message for a field.
    pub fn add(&mut self, field: &str, msg: impl Into<String>) {
        let entry = self
            .0
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(Value::String(msg.into()));
        }
    }

    /// Sets a structured error (e.g. a per-index list error).
    pub fn set(&mut self, field: &str, v: Value) {
        self.0.insert(field.to_string(), v);
    }

    /// `Err(400)` when any error was added.
    pub fn check(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// Validated, coerced values of the fields that were sent.
#[derive(Debug, Default, Clone)]
pub struct Valid(pub Map<String, Value>);

impl Valid {
    /// True when the field was sent.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A text value (None if not sent or null).
    pub fn str(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(Value::as_str).map(str::to_string)
    }

    /// An integer value (None if not sent or null).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Value::as_i64)
    }

    /// A boolean value.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.0.get(name).and_then(Value::as_bool)
    }

    /// A list of integers.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.0
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
    }

    /// A list of strings.
    pub fn strs(&self, name: &str) -> Option<Vec<String>> {
        self.0.get(name).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    }
}

/// Validates a body against the declared fields. Fields not declared are ignored (read-only
/// fields in a body are ignored, as DRF does).
pub fn validate(body: &Fields, fields: &[Field], mode: Mode) -> Result<Valid, ApiError> {
    let mut errors = Errors::default();
    let valid = validate_into(body, fields, mode, &mut errors)?;
    errors.check()?;
    Ok(valid)
}

/// Like [`validate`], but leaves the errors in `errors` so the caller can add its own checks
/// (existence of referenced objects, cross-field rules) before answering.
pub fn validate_into(
    body: &Fields,
    fields: &[Field],
    mode: Mode,
    errors: &mut Errors,
) -> Result<Valid, ApiError> {
    let obj = body.object()?;
    let mut out = Map::new();
    for f in fields {
        match obj.get(f.name) {
            None => {
                if mode == Mode::Full && f.required {
                    errors.add(f.name, "This field is required.");
                }
            }
            Some(Value::Null) => {
                if f.null {
                    out.insert(f.name.to_string(), Value::Null);
                } else {
                    errors.add(f.name, "This field may not be null.");
                }
            }
            Some(v) => match coerce(f, form_value(body, f, v), body.form) {
                Ok(c) => {
                    out.insert(f.name.to_string(), c);
                }
                Err(e) => errors.set(f.name, e),
            },
        }
    }
    Ok(Valid(out))
}

/// For a form body, a repeated key gives a single-value field its last value.
fn form_value<'a>(body: &Fields, f: &Field, v: &'a Value) -> &'a Value {
    let list_kind = matches!(f.kind, Kind::IntList { .. } | Kind::StrList);
    match v {
        Value::Array(items) if body.form && !list_kind => items.last().unwrap_or(v),
        _ => v,
    }
}

fn msgs(m: impl Into<String>) -> Value {
    json!([m.into()])
}

fn coerce_text(f: &Field, v: &Value, trim: bool) -> Result<String, Value> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(msgs("Not a valid string.")),
    };
    if s.contains('\0') {
        return Err(msgs("Null characters are not allowed."));
    }
    let s = if trim { s.trim().to_string() } else { s };
    if s.is_empty() && !f.blank {
        return Err(msgs("This field may not be blank."));
    }
    if let Some(max) = f.max_len {
        if s.chars().count() > max {
            return Err(msgs(format!(
                "Ensure this field has no more than {max} characters."
            )));
        }
    }
    Ok(s)
}

/// Coerces an integer the way DRF's IntegerField does (`5`, `"5"`, `5.0`).
pub fn coerce_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.strip_suffix(".0").and_then(|x| x.parse::<i64>().ok()))
        }
        _ => None,
    }
}

/// An integer outside a field's bounds (DRF's messages).
#[derive(Debug, thiserror::Error)]
enum OutOfBounds {
    #[error("Ensure this value is greater than or equal to {0}.")]
    BelowMin(i64),
    #[error("Ensure this value is less than or equal to {0}.")]
    AboveMax(i64),
}

fn check_bounds(n: i64, min: Option<i64>, max: Option<i64>) -> Result<i64, OutOfBounds> {
    match (min, max) {
        (Some(min), _) if n < min => Err(OutOfBounds::BelowMin(min)),
        (_, Some(max)) if n > max => Err(OutOfBounds::AboveMax(max)),
        _ => Ok(n),
    }
}

/// Coerces a boolean the way DRF's BooleanField does.
pub fn coerce_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Some(true),
        Value::Number(n) if n.as_i64() == Some(0) => Some(false),
        Value::String(s) => match s.as_str() {
            "t" | "T" | "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on"
            | "On" | "ON" | "1" => Some(true),
            "f" | "F" | "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off"
            | "Off" | "OFF" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Most items any list field accepts when its declaration names no smaller bound (a list is
/// checked item by item and may become an `IN (...)` of that many values).
pub const MAX_LIST_ITEMS: usize = 10_000;

fn as_list(v: &Value, form: bool, max_items: Option<usize>) -> Result<Vec<Value>, Value> {
    let max = max_items.unwrap_or(MAX_LIST_ITEMS).min(MAX_LIST_ITEMS);
    let too_many = || {
        msgs(format!(
            "Ensure this field has no more than {max} elements."
        ))
    };
    match v {
        Value::Array(a) if a.len() > max => Err(too_many()),
        Value::Array(a) => Ok(a.clone()),
        // A single form value (`ports=443`) is a one-item list, as a QueryDict's getlist gives;
        // in JSON a string is not a list (DRF's ListField refuses it).
        Value::String(s) if form => Ok(vec![Value::String(s.clone())]),
        other => Err(msgs(format!(
            "Expected a list of items but got type \"{}\".",
            python_type_name(other)
        ))),
    }
}

fn coerce(f: &Field, v: &Value, form: bool) -> Result<Value, Value> {
    match f.kind {
        Kind::Str => coerce_text(f, v, true).map(Value::String),
        Kind::Secret => coerce_text(f, v, false).map(Value::String),
        Kind::Email => {
            let s = coerce_text(f, v, true)?;
            if !s.is_empty() && !looks_like_email(&s) {
                return Err(msgs("Enter a valid email address."));
            }
            Ok(Value::String(s))
        }
        Kind::Int { min, max } => {
            let n = coerce_int(v).ok_or_else(|| msgs("A valid integer is required."))?;
            check_bounds(n, min, max)
                .map(|n| json!(n))
                .map_err(|e| msgs(e.to_string()))
        }
        Kind::Bool => coerce_bool(v)
            .map(Value::Bool)
            .ok_or_else(|| msgs("Must be a valid boolean.")),
        Kind::Choice(choices) => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                _ => String::new(),
            };
            if choices.contains(&s.as_str()) {
                Ok(Value::String(s))
            } else if s.is_empty() && !matches!(v, Value::String(_)) {
                Err(msgs(format!("\"{v}\" is not a valid choice.")))
            } else {
                Err(msgs(format!("\"{s}\" is not a valid choice.")))
            }
        }
        Kind::Ip => {
            let s = coerce_text(f, v, true)?;
            s.parse::<std::net::IpAddr>()
                .map(|ip| Value::String(ip.to_string()))
                .map_err(|_| msgs("Enter a valid IPv4 or IPv6 address."))
        }
        Kind::IntList {
            min,
            max,
            allow_empty,
            max_items,
        } => {
            let items = as_list(v, form, max_items)?;
            if items.is_empty() && !allow_empty {
                return Err(msgs("This list may not be empty."));
            }
            let mut out = Vec::with_capacity(items.len());
            let mut errs = Map::new();
            for (i, item) in items.iter().enumerate() {
                match coerce_int(item) {
                    Some(n) => match check_bounds(n, min, max) {
                        Ok(n) => out.push(json!(n)),
                        Err(e) => {
                            errs.insert(i.to_string(), msgs(e.to_string()));
                        }
                    },
                    None => {
                        errs.insert(i.to_string(), msgs("A valid integer is required."));
                    }
                }
            }
            if !errs.is_empty() {
                return Err(Value::Object(errs));
            }
            match max_items {
                Some(m) if out.len() > m => Err(msgs(format!(
                    "Ensure this field has no more than {m} elements."
                ))),
                _ => Ok(Value::Array(out)),
            }
        }
        Kind::StrList => {
            let items = as_list(v, form, None)?;
            let mut out = Vec::with_capacity(items.len());
            let mut errs = Map::new();
            let item_field = Field { blank: false, ..*f };
            for (i, item) in items.iter().enumerate() {
                match coerce_text(&item_field, item, true) {
                    Ok(s) => out.push(Value::String(s)),
                    Err(e) => {
                        errs.insert(i.to_string(), e);
                    }
                }
            }
            if errs.is_empty() {
                Ok(Value::Array(out))
            } else {
                Err(Value::Object(errs))
            }
        }
        Kind::Pk => match v {
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(msgs(format!(
                "Incorrect type. Expected pk value, received {}.",
                python_type_name(v)
            ))),
            _ => coerce_int(v)
                .map(|n| json!(n))
                .ok_or_else(|| msgs(invalid_pk(plain(v)))),
        },
    }
}

/// A JSON value as Python would print it inside a message (strings without quotes).
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((user, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !user.is_empty()
        && !user.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field::text("name", 5),
        Field::new(
            "n",
            Kind::Int {
                min: Some(1),
                max: Some(10),
            },
        )
        .optional(),
        Field::new(
            "ports",
            Kind::IntList {
                min: Some(1),
                max: Some(65535),
                allow_empty: false,
                max_items: None,
            },
        )
        .optional(),
    ];

    fn run(v: Value, mode: Mode) -> Result<Valid, Value> {
        validate(&Fields::json(v), FIELDS, mode).map_err(|e| match e {
            ApiError::Validation(m) => Value::Object(m),
            other => json!(other.to_string()),
        })
    }

    #[test]
    fn reports_all_errors_with_drf_wording() {
        let err = run(json!({"n": "x", "ports": [1, "a", 70000]}), Mode::Full).unwrap_err();
        assert_eq!(
            err,
            json!({"name": ["This field is required."], "n": ["A valid integer is required."],
                   "ports": {"1": ["A valid integer is required."], "2": ["Ensure this value is less than or equal to 65535."]}})
        );
        let err = run(json!({"name": "toolong"}), Mode::Full).unwrap_err();
        assert_eq!(
            err,
            json!({"name": ["Ensure this field has no more than 5 characters."]})
        );
        assert_eq!(
            run(json!([1]), Mode::Full).unwrap_err(),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
    }

    #[test]
    fn repeated_form_keys_take_the_last_value() {
        let body = Fields {
            data: json!({"name": ["a", "b"], "ports": ["1", "2"]}),
            form: true,
        };
        let v = validate(&body, FIELDS, Mode::Full).unwrap();
        assert_eq!(v.str("name").as_deref(), Some("b"));
        assert_eq!(v.ints("ports"), Some(vec![1, 2]));
        assert!(run(json!({"name": ["a", "b"]}), Mode::Full).is_err());
    }

    #[test]
    fn coerces_like_drf() {
        let v = run(
            json!({"name": " ab ", "n": "5", "ports": [443]}),
            Mode::Full,
        )
        .unwrap();
        assert_eq!(v.str("name").as_deref(), Some("ab"));
        assert_eq!(v.int("n"), Some(5));
        assert_eq!(v.ints("ports"), Some(vec![443]));
        assert_eq!(
            run(json!({"name": "ab", "ports": "443"}), Mode::Full).unwrap_err(),
            json!({"ports": ["Expected a list of items but got type \"str\"."]})
        );
        let form = Fields {
            data: json!({"name": "ab", "ports": "443"}),
            form: true,
        };
        assert_eq!(
            validate(&form, FIELDS, Mode::Full).unwrap().ints("ports"),
            Some(vec![443])
        );
        assert!(run(json!({}), Mode::Partial).is_ok());
    }
}
