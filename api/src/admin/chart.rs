//! The Overview's chart, drawn here as SVG (no charting library): accepted, stored and
//! refused events per minute, as three lines over the last hour.

use std::fmt::Write as _;

use crate::store::console::Minute;

const W: f64 = 720.0;
const H: f64 = 200.0;
const PAD: f64 = 36.0;

/// An SVG of `minutes` (oldest first).
pub fn per_minute(minutes: &[Minute]) -> String {
    let max = minutes
        .iter()
        .map(|m| m.accepted.max(m.stored).max(m.refused))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = minutes.len().max(2) as f64 - 1.0;
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f64 / n;
    let y = |v: i64| H - PAD - (H - 2.0 * PAD) * v as f64 / max;
    let line = |pick: fn(&Minute) -> i64| {
        minutes
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{:.1},{:.1}", x(i), y(pick(m))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="chart" role="img" aria-label="events accepted, stored and refused per minute">"##
    );
    let _ = write!(
        svg,
        r##"<line x1="{PAD}" y1="{b}" x2="{r}" y2="{b}" stroke="#999"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{b}" stroke="#999"/>"##,
        b = H - PAD,
        r = W - PAD
    );
    let _ = write!(
        svg,
        r##"<text x="4" y="{t}" font-size="11">{max}</text><text x="4" y="{b}" font-size="11">0</text>"##,
        t = PAD + 4.0,
        b = H - PAD,
        max = max as i64
    );
    if let (Some(first), Some(last)) = (minutes.first(), minutes.last()) {
        let _ = write!(
            svg,
            r##"<text x="{PAD}" y="{l}" font-size="11">{a}</text><text x="{r}" y="{l}" font-size="11" text-anchor="end">{z} UTC</text>"##,
            l = H - PAD + 16.0,
            r = W - PAD,
            a = first.minute.format("%H:%M"),
            z = last.minute.format("%H:%M"),
        );
    }
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#16a34a" stroke-width="2" stroke-dasharray="5 3" points="{}"><title>accepted</title></polyline>"##,
        line(|m| m.accepted)
    );
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{}"><title>stored</title></polyline>"##,
        line(|m| m.stored)
    );
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#dc2626" stroke-width="2" points="{}"><title>refused</title></polyline>"##,
        line(|m| m.refused)
    );
    let _ = write!(
        svg,
        r##"<text x="{c}" y="16" font-size="12" fill="#16a34a">accepted</text><text x="{a}" y="16" font-size="12" fill="#2563eb">stored</text><text x="{b}" y="16" font-size="12" fill="#dc2626">refused</text></svg>"##,
        c = W - 220.0,
        a = W - 150.0,
        b = W - 90.0
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn the_chart_has_one_point_per_minute_on_each_line() {
        let minutes: Vec<Minute> = (0..60)
            .map(|i| Minute {
                minute: Utc::now(),
                accepted: i + 1,
                stored: i,
                refused: 60 - i,
            })
            .collect();
        let svg = per_minute(&minutes);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        let points = svg.split("points=\"").nth(1).expect("a line");
        assert_eq!(
            points.split('"').next().expect("points").split(' ').count(),
            60
        );
    }
}
