//! Quantities as people write them: memory sizes, CPU amounts, durations.

use std::time::Duration;

/// `256Mi`, `1Gi`, `512M`, `256mb` (Redis style, binary), `1048576` (bytes).
/// Binary suffixes Ki/Mi/Gi/Ti and KB/MB/GB/TB (any case) are powers of 1024;
/// decimal K/M/G/T (and k) are powers of 1000.
pub(crate) fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("{s:?} does not start with a number"));
    }
    let mult: u64 = match unit.trim() {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        u if u.eq_ignore_ascii_case("kb") => 1 << 10,
        u if u.eq_ignore_ascii_case("mb") => 1 << 20,
        u if u.eq_ignore_ascii_case("gb") => 1 << 30,
        u if u.eq_ignore_ascii_case("tb") => 1 << 40,
        "m" => return Err(format!("{s:?} uses \"m\", which means milli-, not mega-")),
        u => return Err(format!("{s:?} has an unknown unit {u:?}")),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a number with a unit"))?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    if bytes.fract() != 0.0 {
        return Err(format!("{s:?} is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// Memory in the most readable exact binary unit (`268435456` → `256Mi`).
pub(crate) fn format_memory(bytes: u64) -> String {
    for (unit, mult) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes != 0 && bytes.is_multiple_of(mult) {
            return format!("{}{unit}", bytes / mult);
        }
    }
    bytes.to_string()
}

/// `"0.5"`, `0.25`, `2`, `"500m"` (milli-CPUs) → milli-CPUs.
pub(crate) fn parse_cpu(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let millis = if let Some(m) = t.strip_suffix('m') {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a number of milli-CPUs"));
        }
        m.parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number"))?
    } else {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!("{s:?} is not a number of CPUs"));
        }
        t.parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number of CPUs"))?
            * 1000.0
    };
    if !millis.is_finite() || millis > 1_024_000.0 {
        return Err(format!("{s:?} is more than 1024 CPUs"));
    }
    if millis.fract() > 1e-6 {
        return Err(format!("{s:?} is finer than a thousandth of a CPU"));
    }
    Ok(millis.round() as u32)
}

/// Milli-CPUs as the manifest writes them (`250` → `"0.25"`).
pub(crate) fn format_cpu(millis: u32) -> String {
    let whole = millis / 1000;
    let frac = millis % 1000;
    if frac == 0 {
        whole.to_string()
    } else {
        let f = format!("{frac:03}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
}

/// `500ms`, `30s`, `5m`, `1h`, and combinations like `1h30m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the duration is empty".to_string());
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if n_end == 0 {
            return Err(format!("{s:?} is not a duration"));
        }
        let n: u128 = rest[..n_end]
            .parse()
            .map_err(|_| format!("{s:?} is too large"))?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        rest = &rest[u_end..];
        let ms: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => return Err(format!("{s:?} has a number without a unit")),
            u => return Err(format!("{s:?} has an unknown unit {u:?}")),
        };
        total = total.saturating_add(n.saturating_mul(ms));
    }
    let ms = u64::try_from(total).map_err(|_| format!("{s:?} is too large"))?;
    Ok(Duration::from_millis(ms))
}

/// A duration as the manifest writes it (`Duration::from_secs(900)` → `15m`).
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    if s >= 3600 && s.is_multiple_of(60) {
        out.push_str(&format!("{}h", s / 3600));
        s %= 3600;
    }
    if s >= 60 && s.is_multiple_of(60) {
        out.push_str(&format!("{}m", s / 60));
        s = 0;
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory() {
        assert_eq!(parse_memory("256Mi"), Ok(268_435_456));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("512M"), Ok(512_000_000));
        assert_eq!(parse_memory("256mb"), Ok(256 << 20));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert!(parse_memory("512m").is_err());
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("12Qi").is_err());
        assert!(parse_memory("99999999999999999999Ti").is_err());
        assert_eq!(format_memory(268_435_456), "256Mi");
        assert_eq!(format_memory(1000), "1000");
    }

    #[test]
    fn cpu() {
        assert_eq!(parse_cpu("0.25"), Ok(250));
        assert_eq!(parse_cpu("2"), Ok(2000));
        assert_eq!(parse_cpu("500m"), Ok(500));
        assert!(parse_cpu("half").is_err());
        assert!(parse_cpu("0.0001").is_err());
        assert!(parse_cpu("-1").is_err());
        assert_eq!(format_cpu(250), "0.25");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_cpu(1500), "1.5");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("1d").is_err());
        assert_eq!(format_duration(Duration::from_secs(900)), "15m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
