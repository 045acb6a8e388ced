//! Line charts as inline SVG, drawn here so a report reads without
//! JavaScript, a chart library or anything fetched: axes with round ticks,
//! lines with gaps where there is no value, a shaded span, vertical markers,
//! a dashed threshold and pass/fail marks with tooltips (`<title>`). Colours
//! and sizes come from the page's CSS classes, so dark mode is the page's
//! business. Knows nothing about what is plotted.

use std::fmt::Write as _;

/// The viewBox; the page scales it to its column.
const W: f64 = 440.0;
const H: f64 = 210.0;
const LEFT: f64 = 46.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;

/// One line: (x, y) with `None` where there is no value (a gap).
pub struct Line {
    pub name: String,
    /// Colour class: 0 to 5.
    pub colour: usize,
    pub points: Vec<(f64, Option<f64>)>,
}

/// A point that passed or failed, with a tooltip.
pub struct Mark {
    pub x: f64,
    pub y: f64,
    pub pass: bool,
    pub title: String,
    /// `data-*` attributes, for whoever reads the page's data back.
    pub data: Vec<(&'static str, String)>,
}

pub struct Chart {
    /// The figure's id (and the test's handle on it).
    pub id: String,
    pub title: String,
    /// Appended to the y tick labels: "ms", "%", " MiB", "".
    pub y_unit: &'static str,
    pub x_label: String,
    pub lines: Vec<Line>,
    pub x_range: (f64, f64),
    /// Shaded spans of x, each with a label.
    pub bands: Vec<(f64, f64, String)>,
    /// Vertical markers with a label.
    pub rules: Vec<(f64, String)>,
    pub threshold: Option<(f64, String)>,
    pub marks: Vec<Mark>,
    /// A line under the chart.
    pub note: Option<String>,
    /// A logarithmic y axis (for values spanning decades, like latency against load).
    pub log_y: bool,
}

/// Where values go on the y axis, and its ticks.
struct YScale {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl YScale {
    /// From 0 to a round number at or above `peak`, in four or five steps.
    fn linear(peak: f64) -> YScale {
        if peak <= 0.0 {
            return YScale {
                log: false,
                lo: 0.0,
                hi: 1.0,
                ticks: vec![0.0, 0.25, 0.5, 0.75, 1.0],
            };
        }
        let step = nice_step(peak / 4.0);
        let hi = (peak / step).ceil().max(1.0) * step;
        let n = (hi / step).round() as usize;
        YScale {
            log: false,
            lo: 0.0,
            hi,
            ticks: (0..=n).map(|i| i as f64 * step).collect(),
        }
    }

    /// Whole decades around the positive values from `low` to `peak`.
    fn log(low: f64, peak: f64) -> YScale {
        let lo = 10f64.powf(low.log10().floor());
        let mut hi = 10f64.powf(peak.log10().ceil());
        if hi <= lo {
            hi = lo * 10.0;
        }
        let decades = (hi / lo).log10().round() as i32;
        let mut ticks = Vec::new();
        for d in 0..=decades {
            let base = lo * 10f64.powi(d);
            ticks.push(base);
            // Few decades: 2 and 5 too, so the axis still reads.
            if decades <= 2 && d < decades {
                ticks.extend([2.0 * base, 5.0 * base]);
            }
        }
        YScale {
            log: true,
            lo,
            hi,
            ticks,
        }
    }

    /// 0 at the bottom of the plot, 1 at its top.
    fn frac(&self, y: f64) -> f64 {
        if self.log {
            (y.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            y / self.hi
        }
    }
}

impl Chart {
    pub fn new(id: &str, title: &str, y_unit: &'static str, x_label: &str) -> Chart {
        Chart {
            id: id.into(),
            title: title.into(),
            y_unit,
            x_label: x_label.into(),
            lines: Vec::new(),
            x_range: (0.0, 1.0),
            bands: Vec::new(),
            rules: Vec::new(),
            threshold: None,
            marks: Vec::new(),
            note: None,
            log_y: false,
        }
    }

    /// x from the lines' and marks' extent.
    pub fn fit_x(mut self) -> Chart {
        let xs = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.marks.iter().map(|m| m.x));
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        if lo.is_finite() {
            self.x_range = (lo.min(0.0), if hi > lo { hi } else { lo + 1.0 });
        }
        self
    }

    pub fn render(&self) -> String {
        let ys = || {
            self.lines
                .iter()
                .flat_map(|l| l.points.iter().filter_map(|p| p.1))
                .chain(self.marks.iter().map(|m| m.y))
                .chain(self.threshold.iter().map(|t| t.0))
        };
        let y_peak = ys().fold(0.0f64, f64::max);
        let y_low = ys().filter(|y| *y > 0.0).fold(f64::INFINITY, f64::min);
        let scale = if self.log_y && y_low.is_finite() {
            YScale::log(y_low, y_peak)
        } else {
            YScale::linear(y_peak)
        };
        let (x0, x1) = self.x_range;
        let x_span = (x1 - x0).max(1e-9);
        let px = |x: f64| LEFT + (x - x0) / x_span * (W - LEFT - RIGHT);
        let py = |y: f64| TOP + (1.0 - scale.frac(y)) * (H - TOP - BOTTOM);
        let bottom = H - BOTTOM;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<figure class="chart" id="{}"><figcaption>{}</figcaption><svg viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
            esc(&self.id),
            esc(&self.title),
            esc(&self.title)
        );
        for (a, b, label) in &self.bands {
            let (a, b) = (px(a.max(x0)), px(b.min(x1)));
            if b > a {
                let _ = write!(
                    s,
                    r#"<rect class="band" x="{a:.1}" y="{TOP}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                    b - a,
                    H - TOP - BOTTOM,
                    esc(label)
                );
            }
        }
        // Grid and y ticks.
        s.push_str(r#"<g class="grid">"#);
        for &y in &scale.ticks {
            let _ = write!(
                s,
                r#"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                W - RIGHT,
                py(y),
                py(y),
                LEFT - 5.0,
                py(y) + 4.0,
                tick_label(y, self.y_unit),
            );
        }
        let x_step = nice_step(x_span / 5.0);
        let mut x = (x0 / x_step).ceil() * x_step;
        while x <= x1 + x_step * 1e-6 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                px(x),
                H - BOTTOM + 16.0,
                short(x)
            );
            x += x_step;
        }
        let _ = write!(
            s,
            r#"<text class="xlabel" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            H - 3.0,
            esc(&self.x_label)
        );
        let _ = write!(
            s,
            r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
            W - RIGHT,
            bottom,
            bottom
        );
        for (x, label) in &self.rules {
            let _ = write!(
                s,
                r#"<line class="rule" x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{1:.1}"><title>{2}</title></line>"#,
                px(*x),
                bottom,
                esc(label)
            );
        }
        if let Some((t, label)) = &self.threshold {
            let _ = write!(
                s,
                r#"<line class="threshold" x1="{LEFT}" x2="{:.1}" y1="{1:.1}" y2="{1:.1}"><title>{2}</title></line>"#,
                W - RIGHT,
                py(*t),
                esc(label)
            );
        }
        for l in &self.lines {
            let n = l.points.iter().filter(|p| p.1.is_some()).count();
            let _ = write!(
                s,
                r#"<g class="series c{}" data-name="{}" data-n="{n}"><title>{}</title>"#,
                l.colour % 6,
                esc(&l.name),
                esc(&l.name)
            );
            for run in l.points.split(|p| p.1.is_none()) {
                let pts: Vec<String> = run
                    .iter()
                    .filter_map(|&(x, y)| y.map(|y| format!("{:.1},{:.1}", px(x), py(y))))
                    .collect();
                match pts.len() {
                    0 => {}
                    1 => {
                        let (cx, cy) = pts[0].split_once(',').unwrap_or(("0", "0"));
                        let _ = write!(s, r#"<circle class="dot" cx="{cx}" cy="{cy}" r="2.5"/>"#);
                    }
                    _ => {
                        let _ = write!(s, r#"<polyline points="{}"/>"#, pts.join(" "));
                    }
                }
            }
            s.push_str("</g>");
        }
        for m in &self.marks {
            let (x, y) = (px(m.x), py(m.y));
            let data: String = m
                .data
                .iter()
                .map(|(k, v)| format!(r#" data-{k}="{}""#, esc(v)))
                .collect();
            if m.pass {
                let _ = write!(
                    s,
                    r#"<circle class="mark pass" cx="{x:.1}" cy="{y:.1}" r="5"{data}><title>{}</title></circle>"#,
                    esc(&m.title)
                );
            } else {
                let _ = write!(
                    s,
                    r#"<path class="mark fail" d="M{:.1} {:.1}l10 10m0 -10l-10 10"{data}><title>{}</title></path>"#,
                    x - 5.0,
                    y - 5.0,
                    esc(&m.title)
                );
            }
        }
        s.push_str("</svg>");
        // The legend is HTML, so it stays readable however small the chart gets.
        s.push_str(r#"<ul class="legend">"#);
        for l in &self.lines {
            let _ = write!(
                s,
                r#"<li><span class="swatch c{}"></span>{}</li>"#,
                l.colour % 6,
                esc(&l.name)
            );
        }
        if let Some((_, label)) = &self.threshold {
            let _ = write!(
                s,
                r#"<li><span class="swatch threshold"></span>{}</li>"#,
                esc(label)
            );
        }
        if self.marks.iter().any(|m| m.pass) {
            s.push_str(r#"<li><span class="swatch pass"></span>passed</li>"#);
        }
        if self.marks.iter().any(|m| !m.pass) {
            s.push_str(r#"<li><span class="swatch fail"></span>failed</li>"#);
        }
        if let Some((_, _, label)) = self.bands.first() {
            let _ = write!(
                s,
                r#"<li><span class="swatch band"></span>{}</li>"#,
                esc(label)
            );
        }
        s.push_str("</ul>");
        if let Some(note) = &self.note {
            let _ = write!(s, r#"<p class="note">{}</p>"#, esc(note));
        }
        s.push_str("</figure>");
        s
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= raw * (1.0 - 1e-9) {
            return m * p;
        }
    }
    10.0 * p
}

/// A tick label: 0, 0.5, 12, 1.5k, 2M.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let (n, suffix) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    // Enough decimals for a log axis's small decades (0.001), none wasted.
    let t = if a > 0.0 && a < 0.1 {
        format!("{:.3}", n)
    } else {
        format!("{:.2}", n)
    };
    let t = t.trim_end_matches('0').trim_end_matches('.');
    format!("{t}{suffix}")
}

/// A y tick: the value and its unit; a thousand ms and more in seconds.
fn tick_label(y: f64, unit: &str) -> String {
    if unit == "ms" && y >= 1000.0 {
        format!("{}s", short(y / 1000.0))
    } else {
        format!("{}{unit}", short(y))
    }
}

/// Escapes text for HTML and SVG, in content and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_labels_short() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.2), 2.0);
        assert_eq!(nice_step(30.0), 50.0);
        assert_eq!(nice_step(200.0), 200.0);
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(1500.0), "1500");
        assert_eq!(short(25_000.0), "25k");
        assert_eq!(short(2_500_000.0), "2.5M");
        assert_eq!(short(0.005), "0.005");
        assert_eq!(short(0.0), "0");
        assert_eq!(tick_label(10_000.0, "ms"), "10s");
        assert_eq!(tick_label(500.0, "ms"), "500ms");
        assert_eq!(tick_label(2.0, " MiB"), "2 MiB");
    }

    #[test]
    fn a_log_axis_spans_whole_decades_and_places_values_between_them() {
        let s = YScale::log(2.0, 1500.0);
        assert_eq!((s.lo, s.hi), (1.0, 10_000.0));
        assert_eq!(s.ticks, [1.0, 10.0, 100.0, 1000.0, 10_000.0]);
        assert!((s.frac(100.0) - 0.5).abs() < 1e-9);
        assert_eq!(s.frac(0.0), 0.0, "zero sits on the floor");
        let few = YScale::log(2.0, 30.0);
        assert_eq!(few.ticks, [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        let lin = YScale::linear(7.0);
        assert_eq!((lin.hi, lin.ticks.len()), (8.0, 5));
    }

    #[test]
    fn gaps_split_lines_and_text_is_escaped() {
        let mut c = Chart::new("x", "a <b>", "ms", "seconds");
        c.lines.push(Line {
            name: "p99 \"q\"".into(),
            colour: 2,
            points: vec![
                (0.0, Some(1.0)),
                (1.0, Some(2.0)),
                (2.0, None),
                (3.0, Some(4.0)),
            ],
        });
        c.marks.push(Mark {
            x: 1.0,
            y: 2.0,
            pass: false,
            title: "x".into(),
            data: vec![("pass", "false".into())],
        });
        let svg = c.fit_x().render();
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches(r#"class="dot""#).count(), 1, "{svg}");
        assert!(svg.contains(r#"data-n="3""#));
        assert!(svg.contains("a &lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("p99 &quot;q&quot;"));
        assert!(svg.contains(r#"class="mark fail""#) && svg.contains(r#"data-pass="false""#));
    }
}
