//! A `--step` run's page and its chart: latency against clients, the
//! threshold, and each step passed or failed.

use super::*;

/// Latency against clients, the threshold, and each step passed or failed.
pub fn step_chart(
    id: &str,
    title: &str,
    runs: &[(&str, &[Step])],
    threshold_ms: Option<f64>,
) -> Chart {
    let mut c = Chart::new(id, title, "ms", "clients");
    for (i, (name, steps)) in runs.iter().enumerate() {
        let prefix = if runs.len() > 1 {
            format!("{name} ")
        } else {
            String::new()
        };
        let pts = |f: fn(&Step) -> f64| {
            steps
                .iter()
                .map(|s| (s.clients as f64, Some(f(s))))
                .collect()
        };
        c.lines.push(Line {
            name: format!("{prefix}p95"),
            colour: if runs.len() > 1 { i * 2 % 6 } else { 1 },
            points: pts(|s| s.p95_ms),
        });
        c.lines.push(Line {
            name: format!("{prefix}p99"),
            colour: if runs.len() > 1 { (i * 2 + 1) % 6 } else { 2 },
            points: pts(|s| s.p99_ms),
        });
        for s in steps.iter() {
            c.marks.push(Mark {
                x: s.clients as f64,
                y: s.p95_ms,
                pass: s.pass,
                title: format!(
                    "{prefix}{} clients (of {}): p95 {:.2} ms, p99 {:.2} ms, {} lost, {} failed to connect or join: {}",
                    int(s.clients as u64),
                    int(s.target as u64),
                    s.p95_ms,
                    s.p99_ms,
                    int(s.lost),
                    s.failed,
                    if s.pass { "passed" } else { "failed" }
                ),
                data: vec![
                    ("clients", s.clients.to_string()),
                    ("p95", jnum(s.p95_ms)),
                    ("pass", s.pass.to_string()),
                ],
            });
        }
    }
    if let Some(t) = threshold_ms {
        c.threshold = Some((t, format!("threshold: p95 ≤ {t} ms")));
    }
    // Latency under load spans decades; the threshold is often far above.
    c.log_y = true;
    c.fit_x()
}

pub fn step_page(r: &StepReport) -> String {
    let json = crate::report::to_json(r);
    let title = format!(
        "picochat-load: step test, up to {} clients",
        int(r.params.clients as u64)
    );
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<h1>{}</h1><p class="sub">{} · started {} · {} clients per step, {} s each, {} msg/s</p>"#,
        esc(&title),
        esc(&r.params.urls.join(", ")),
        esc(&r.params.started),
        int(r.params.step.unwrap_or(0) as u64),
        r.params.step_duration_s.unwrap_or(0.0),
        r.params.rate
    );
    let failed = r.steps.iter().find(|s| !s.pass);
    b.push_str(&verdict(&[
        (
            "clients passed",
            int(r.max_clients_passing as u64),
            Some(r.max_clients_passing > 0),
        ),
        ("p95 threshold", format!("{} ms", r.threshold_ms), None),
        (
            "first failing step (clients asked for)",
            failed.map_or("none".into(), |s| int(s.target.max(s.clients) as u64)),
            Some(failed.is_none()),
        ),
    ]));
    b.push_str("<h2>Where it bends</h2><div class=\"charts\">");
    let mut chart = step_chart(
        "chart-steps",
        "Latency against clients (log scale)",
        &[("", &r.steps)],
        Some(r.threshold_ms),
    );
    chart.note = Some("Each mark is a step's p95: a dot passed (p95 within the threshold, nothing lost, every client connected), a cross failed.".into());
    b.push_str(&chart.render());
    let mut d = Chart::new(
        "chart-step-deliveries",
        "Deliveries per second by step",
        "",
        "clients",
    );
    d.lines.push(Line {
        name: "deliveries/s".into(),
        colour: 0,
        points: r
            .steps
            .iter()
            .map(|s| (s.clients as f64, Some(s.deliveries_per_s)))
            .collect(),
    });
    b.push_str(&d.fit_x().render());
    b.push_str("</div><h2>Steps</h2>");
    b.push_str(r#"<div class="scroll"><table id="steps"><thead><tr><th>clients</th><th>of</th><th>p50</th><th>p95</th><th>p99</th><th>lost</th><th>failed</th><th>deliveries/s</th><th>result</th></tr></thead><tbody>"#);
    for s in &r.steps {
        let _ = write!(
            b,
            r#"<tr data-step="{}">{}{}{}{}{}{}{}{}<td data-key="pass" data-value="{}"{}>{}</td></tr>"#,
            s.clients,
            cell("clients", s.clients as u64),
            cell("target", s.target as u64),
            ms_cell("p50_ms", s.p50_ms),
            ms_cell("p95_ms", s.p95_ms),
            ms_cell("p99_ms", s.p99_ms),
            lost_cell(s.lost),
            cell("failed", s.failed as u64),
            num_cell(
                "deliveries_per_s",
                s.deliveries_per_s,
                int(s.deliveries_per_s as u64)
            ),
            s.pass,
            if s.pass { "" } else { " class=\"bad\"" },
            if s.pass { "pass" } else { "FAIL" }
        );
    }
    b.push_str("</tbody></table></div>");
    b.push_str("<h2>Over time</h2>");
    let rules = r
        .steps
        .iter()
        .map(|s| (s.from_s, format!("step: {} clients", int(s.clients as u64))))
        .collect();
    b.push_str(&time_charts(&r.series, Vec::new(), rules));
    if let Some(e) = &r.first_error {
        let _ = write!(b, "<p class=\"bad\">First error: {}</p>", esc(e));
    }
    b.push_str("<h2>Parameters</h2>");
    b.push_str(&params_table(&r.params));
    page(&title, &b, &json)
}
