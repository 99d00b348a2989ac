//! The `timeouts` block of resources whose work runs as operations (VMs):
//! `timeouts { create = "20m" update = "10m" delete = "10m" }`, each a duration
//! in Terraform's usual form (`30s`, `10m`, `1h30m`), defaulting to
//! [`DEFAULT`]. The block is a local setting: it is never sent to the API and
//! is kept in the state as configured.

use std::time::Duration;

use super::object::Obj;
use super::schema::{Attribute, Block, Mode, Validator};
use crate::value::Value;

/// The block's name.
pub const BLOCK: &str = "timeouts";

/// How long an operation is waited for when the block does not say.
pub const DEFAULT: Duration = Duration::from_secs(10 * 60);

/// The block with one attribute per operation (`create`, `update`, `delete`).
pub fn block(operations: &[&'static str]) -> Block {
    let attributes = operations
        .iter()
        .map(|op| {
            Attribute::string(op, Mode::Optional).validate(validator()).describe(
                "How long to wait for this operation to finish: a duration such as `30s`, `10m` or `1h30m` (default `10m`).",
            )
        })
        .collect();
    Block::new(
        BLOCK,
        "How long to wait for the operations this resource starts. When the time runs out Terraform reports an error naming the operation, which goes on on the server.",
        attributes,
    )
}

/// The timeout for `operation` as configured in `obj`'s block, else [`DEFAULT`].
pub fn of(obj: &Obj, operation: &str) -> Duration {
    match obj.get(BLOCK) {
        Value::Object(m) => m.get(operation).and_then(Value::as_str).and_then(|s| parse(s).ok()).unwrap_or(DEFAULT),
        _ => DEFAULT,
    }
}

fn validator() -> Validator {
    std::sync::Arc::new(|v: &Value| parse(v.as_str().unwrap_or_default()).map(|_| ()))
}

/// Parses a duration the way Terraform providers write them (Go's
/// `time.ParseDuration` without signs): numbers with units `ms`, `s`, `m`, `h`,
/// e.g. `90s`, `1.5h`, `1h30m`. Zero is refused: it would never wait.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration: use a number and a unit, e.g. \"30s\", \"10m\" or \"1h30m\"");
    let mut rest = text;
    let mut seconds = 0.0_f64;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let n: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        seconds += n * factor;
        rest = &rest[unit..];
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{text:?} is not a duration longer than zero, e.g. \"10m\"")),
    }
}

/// `d` the way [`parse`] reads it back: `10m`, `1h30m`, `45s`, `1m0.5s`.
pub fn display(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let millis = d.subsec_millis();
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if millis > 0 {
        out.push_str(&format!("{s}.{millis:03}s"));
    } else if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terraform_durations() {
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "m", "10 m", "-5m", "10d", "0s", "1..2s"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn displays_what_it_parses() {
        for text in ["10m", "1h30m", "45s", "1h0m5s", "2h"] {
            let d = parse(text).expect("parses");
            assert_eq!(parse(&display(d)), Ok(d), "{text}");
        }
        assert_eq!(display(Duration::from_secs(600)), "10m");
        assert_eq!(display(Duration::from_millis(1500)), "1.500s");
    }

    #[test]
    fn the_block_value_or_the_default() {
        let mut obj = Obj::default();
        assert_eq!(of(&obj, "create"), DEFAULT);
        let block = [("create".to_string(), Value::string("20m")), ("delete".to_string(), Value::Null)];
        obj.set(BLOCK, Value::Object(block.into_iter().collect()));
        assert_eq!(of(&obj, "create"), Duration::from_secs(1200));
        assert_eq!(of(&obj, "delete"), DEFAULT);
    }
}
