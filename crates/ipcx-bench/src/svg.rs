//! The chart `ipcx bench --svg FILE` draws: latency per mechanism (p50 and p99 on a log
//! scale, one colour per payload size) beside throughput against payload size (log-log, one
//! line per mechanism).

use plotters::prelude::*;

use crate::report::{BenchResult, Pattern, Report};
use crate::units::{format_bytes_per_s, format_ns, format_size};

/// Width and height of the chart in pixels.
pub const SIZE: (u32, u32) = (1500, 680);

/// Draws the report as an SVG document.
pub fn render(report: &Report) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(&root, report).map_err(|e| format!("drawing the chart: {e}"))?;
        root.present()
            .map_err(|e| format!("drawing the chart: {e}"))?;
    }
    Ok(out)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error + 'static>>;

fn draw(root: &Area<'_>, report: &Report) -> DrawResult {
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(56);
    let title = format!(
        "ipcx {} bench: {}",
        report.ipcx_version,
        report.machine.describe()
    );
    top.draw(&Text::new(
        title,
        (20, 14),
        ("sans-serif", 20).into_font().color(&BLACK),
    ))?;
    let limit_row = report
        .run
        .baseline_p50_ns
        .map(|p| format!("limit row (the floor): p50 {}", format_ns(p as f64)));
    let floors = report.floor_range().map(|(lo, hi)| {
        format!(
            "floors measured alongside each row: p50 {}–{}",
            format_ns(lo as f64),
            format_ns(hi as f64)
        )
    });
    let sub = match (limit_row, floors, &report.run.ratios_omitted) {
        (Some(a), Some(b), _) => format!("{a}; {b}"),
        (Some(a), None, _) | (None, Some(a), _) => a,
        (None, None, Some(why)) => format!("no floor: {why}"),
        (None, None, None) => String::new(),
    };
    top.draw(&Text::new(
        sub,
        (20, 38),
        ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    let (left, right) = body.split_horizontally(SIZE.0 * 11 / 20);
    latency(root, &left, report)?;
    throughput(&right, report)?;
    Ok(())
}

fn empty(area: &Area<'_>, caption: &str, why: &str) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        caption.to_owned(),
        (20, 10),
        ("sans-serif", 18).into_font().color(&BLACK),
    ))?;
    area.draw(&Text::new(
        why.to_owned(),
        (40, (h / 2) as i32),
        ("sans-serif", 14)
            .into_font()
            .color(&RGBColor(120, 120, 120)),
    ))?;
    let _ = w;
    Ok(())
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

/// The mechanisms of `pts` in the report's order, and their payload sizes, smallest first.
fn mechanisms_and_sizes<'a, T>(pts: &[(&'a BenchResult, T)]) -> (Vec<&'a str>, Vec<u64>) {
    let mut mechs: Vec<&str> = Vec::new();
    let mut sizes: Vec<u64> = Vec::new();
    for (r, _) in pts {
        if !mechs.contains(&r.mechanism.as_str()) {
            mechs.push(&r.mechanism);
        }
        if !sizes.contains(&r.payload_bytes) {
            sizes.push(r.payload_bytes);
        }
    }
    sizes.sort_unstable();
    (mechs, sizes)
}

fn latency(root: &Area<'_>, area: &Area<'_>, report: &Report) -> DrawResult {
    let caption = "Round-trip latency (log scale): ● p50, ▲ p99";
    let pts: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.pattern == Pattern::PingPong)
        .filter_map(|r| r.rtt_ns.as_ref().map(|s| (r, s)))
        .collect();
    if pts.is_empty() {
        return empty(area, caption, "no latency measured (every row was skipped)");
    }
    let (mechs, sizes) = mechanisms_and_sizes(&pts);
    let lo = pts.iter().map(|(_, s)| s.p50.max(1)).min().unwrap_or(1) as f64 / 2.0;
    let hi = pts.iter().map(|(_, s)| s.p99.max(1)).max().unwrap_or(1) as f64 * 2.0;
    let n = mechs.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(120)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|y| format_ns(*y))
        .y_desc("round trip")
        .draw()?;
    // The mechanism names under their columns, rotated (drawn on the whole canvas, whose
    // coordinates are the backend's).
    for (i, m) in mechs.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64, lo));
        root.draw(&Text::new(
            (*m).to_owned(),
            (x - 6, y + 8),
            ("sans-serif", 13)
                .into_font()
                .transform(FontTransform::Rotate90)
                .color(&BLACK),
        ))?;
    }
    let spread = if sizes.len() > 1 { 0.5 } else { 0.0 };
    for (si, &size) in sizes.iter().enumerate() {
        let c = color(si);
        let off = if sizes.len() > 1 {
            -spread / 2.0 + spread * si as f64 / (sizes.len() - 1) as f64
        } else {
            0.0
        };
        let mine: Vec<(f64, u64, u64)> = pts
            .iter()
            .filter(|(r, _)| r.payload_bytes == size)
            .map(|(r, s)| {
                let i = mechs.iter().position(|m| *m == r.mechanism).unwrap_or(0);
                (i as f64 + off, s.p50.max(1), s.p99.max(1))
            })
            .collect();
        chart.draw_series(mine.iter().map(|&(x, p50, p99)| {
            PathElement::new(vec![(x, p50 as f64), (x, p99 as f64)], c.stroke_width(2))
        }))?;
        chart.draw_series(
            mine.iter()
                .map(|&(x, _, p99)| TriangleMarker::new((x, p99 as f64), 5, c.filled())),
        )?;
        chart
            .draw_series(
                mine.iter()
                    .map(|&(x, p50, _)| Circle::new((x, p50 as f64), 4, c.filled())),
            )?
            .label(format_size(size))
            .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn throughput(area: &Area<'_>, report: &Report) -> DrawResult {
    let caption = "One-way throughput against payload size (log-log)";
    let pts: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.pattern == Pattern::Stream)
        .filter_map(|r| r.throughput.as_ref().map(|t| (r, t)))
        .filter(|(_, t)| t.bytes_per_s > 0.0)
        .collect();
    if pts.is_empty() {
        return empty(
            area,
            caption,
            "no throughput measured (every row was skipped)",
        );
    }
    let (mechs, sizes) = mechanisms_and_sizes(&pts);
    // x is log2(payload): integer positions are powers of two, labelled as sizes.
    let log2 = |s: u64| (s.max(1) as f64).log2();
    let xlo = log2(sizes[0]) - 1.0;
    let xhi = log2(*sizes.last().unwrap_or(&sizes[0])) + 1.0;
    let ylo = pts
        .iter()
        .map(|(_, t)| t.bytes_per_s)
        .fold(f64::MAX, f64::min)
        / 2.0;
    let yhi = pts.iter().map(|(_, t)| t.bytes_per_s).fold(0.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(xlo..xhi, (ylo..yhi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(((xhi - xlo) as usize + 1).min(12))
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 && *x >= 0.0 {
                format_size(1u64 << (x.round() as u32).min(62))
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format_bytes_per_s(*y))
        .x_desc("payload")
        .y_desc("bytes/s")
        .draw()?;
    for (mi, m) in mechs.iter().enumerate() {
        let c = color(mi);
        let mut line: Vec<(f64, f64)> = pts
            .iter()
            .filter(|(r, _)| r.mechanism == *m)
            .map(|(r, t)| (log2(r.payload_bytes), t.bytes_per_s))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))?
            .label(*m)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::RttSummary;
    use crate::report::{BenchResult, Machine, RunInfo, Throughput};

    fn report(results: Vec<BenchResult>) -> Report {
        Report {
            ipcx_version: "0.1.0".into(),
            machine: Machine::detect(None),
            run: RunInfo {
                budget: "quick".into(),
                sizes: vec![64, 4096],
                baseline: "limit".into(),
                baseline_p50_ns: None,
                ratios_omitted: Some("the limit row was skipped".into()),
                elapsed_s: None,
            },
            results,
            memcpy: Vec::new(),
        }
    }

    #[test]
    fn draws_measured_rows_and_says_when_there_are_none() {
        let mut rs = Vec::new();
        for (m, base) in [("unix", 40_000u64), ("tcp", 50_000)] {
            for size in [64u64, 4096, 1 << 20] {
                let mut p = BenchResult::new(m, Pattern::PingPong, size as usize);
                p.rtt_ns = Some(RttSummary {
                    p50: base + size,
                    p99: 2 * base + size,
                    p999: 3 * base,
                    mean: base as f64,
                    min: None,
                    max: None,
                    samples: None,
                });
                rs.push(p);
                let mut s = BenchResult::new(m, Pattern::Stream, size as usize);
                s.throughput = Some(Throughput {
                    msgs_per_s: 1e5,
                    bytes_per_s: 1e5 * size as f64,
                    messages: None,
                });
                rs.push(s);
            }
        }
        rs[0].floor_p50_ns = Some(140);
        rs[2].floor_p50_ns = Some(430);
        let svg = render(&report(rs)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        assert!(svg.contains("floors measured alongside each row"), "{svg}");
        assert!(svg.contains("unix") && svg.contains("tcp"));
        assert!(svg.contains("1 MiB"));

        let none = render(&report(vec![BenchResult::skipped(
            "limit",
            Pattern::PingPong,
            64,
            "n/a",
        )]))
        .unwrap();
        assert!(none.contains("every row was skipped"));
    }
}
