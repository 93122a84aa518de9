//! The benchmark's report: plain text for a terminal, one JSON object for scripts, and one
//! self-contained HTML page (inline SVG, no scripts or network) with the latency histogram and
//! latency and throughput over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Kind, Tally, Timeline};

pub(crate) struct Report<'a> {
    pub(crate) target: &'a str,
    pub(crate) method: &'a str,
    pub(crate) kind: Kind,
    pub(crate) connections: usize,
    pub(crate) concurrency: usize,
    pub(crate) rps_target: Option<f64>,
    pub(crate) messages_per_call: usize,
    /// From the first call's start to the last call's end.
    pub(crate) duration: Duration,
    pub(crate) tally: &'a Tally,
    pub(crate) timeline: &'a Timeline,
}

/// Nanoseconds as milliseconds, rounded to the microsecond.
fn ms(nanos: u64) -> f64 {
    (nanos as f64 / 1e3).round() / 1e3
}

/// One point of latency over time.
struct Point {
    t: f64,
    calls: u64,
    errors: u64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Report<'_> {
    fn count(&self) -> u64 {
        self.tally.ok + self.tally.failed()
    }

    fn rps(&self) -> f64 {
        let seconds = self.duration.as_secs_f64();
        if seconds > 0.0 {
            self.count() as f64 / seconds
        } else {
            0.0
        }
    }

    /// (label, JSON key, nanoseconds) of the latency summary.
    fn latencies(&self) -> Vec<(&'static str, &'static str, u64)> {
        let h = &self.tally.latency;
        vec![
            ("min", "min", h.min()),
            ("mean", "mean", h.mean().round() as u64),
            ("p50", "p50", h.quantile(0.5)),
            ("p90", "p90", h.quantile(0.9)),
            ("p95", "p95", h.quantile(0.95)),
            ("p99", "p99", h.quantile(0.99)),
            ("p99.9", "p999", h.quantile(0.999)),
            ("max", "max", h.max()),
        ]
    }

    /// Error counts by code name, sorted.
    fn errors(&self) -> BTreeMap<&'static str, u64> {
        self.tally
            .errors
            .iter()
            .map(|(code, n)| (code.name(), *n))
            .collect()
    }

    /// The kept error messages, most frequent first.
    fn messages(&self) -> Vec<(&'static str, &str, u64)> {
        let mut messages: Vec<_> = self
            .tally
            .messages
            .iter()
            .map(|((code, message), n)| (code.name(), message.as_str(), *n))
            .collect();
        messages.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)).then(a.1.cmp(b.1)));
        messages
    }

    fn points(&self) -> Vec<Point> {
        let width = self.timeline.width().as_secs_f64();
        self.timeline
            .slots()
            .iter()
            .enumerate()
            .map(|(i, slot)| Point {
                t: (i as f64 + 0.5) * width,
                calls: slot.calls,
                errors: slot.errors,
                p50: ms(slot.latency.quantile(0.5)),
                p99: ms(slot.latency.quantile(0.99)),
                max: ms(slot.latency.max()),
            })
            .collect()
    }

    pub(crate) fn json(&self) -> Value {
        let latency: serde_json::Map<String, Value> = self
            .latencies()
            .into_iter()
            .map(|(_, key, nanos)| (key.to_owned(), json!(ms(nanos))))
            .collect();
        let histogram: Vec<Value> = self
            .tally
            .latency
            .bins(2)
            .into_iter()
            .map(|(from, to, count)| json!({"from_ms": ms(from), "to_ms": ms(to), "count": count}))
            .collect();
        let points: Vec<Value> = self
            .points()
            .into_iter()
            .map(|p| {
                json!({"t_s": p.t, "calls": p.calls, "errors": p.errors,
                       "p50_ms": p.p50, "p99_ms": p.p99, "max_ms": p.max})
            })
            .collect();
        let messages: Vec<Value> = self
            .messages()
            .into_iter()
            .map(|(code, message, count)| json!({"code": code, "message": message, "count": count}))
            .collect();
        json!({
            "target": self.target,
            "method": self.method,
            "kind": self.kind.name(),
            "connections": self.connections,
            "concurrency": self.concurrency,
            "rps_target": self.rps_target,
            "count": self.count(),
            "ok": self.tally.ok,
            "errors": self.errors(),
            "error_messages": messages,
            "rps": (self.rps() * 10.0).round() / 10.0,
            "duration_s": (self.duration.as_secs_f64() * 1e6).round() / 1e6,
            "latency_ms": latency,
            "messages": {
                "per_call": self.messages_per_call,
                "sent": self.tally.sent,
                "received": self.tally.received,
            },
            "histogram": histogram,
            "timeline": {"slot_s": self.timeline.width().as_secs_f64(), "points": points},
        })
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Summary:");
        let _ = writeln!(out, "  Target:     {}", self.target);
        let _ = writeln!(out, "  Method:     {} ({})", self.method, self.kind.name());
        let mode = match self.rps_target {
            Some(rps) => format!(
                "open loop at {rps} calls/s, at most {} in flight",
                self.concurrency
            ),
            None => format!("closed loop, {} in flight", self.concurrency),
        };
        let _ = writeln!(
            out,
            "  Load:       {mode}, {} connection(s)",
            self.connections
        );
        let _ = writeln!(out, "  Calls:      {} ({} OK)", self.count(), self.tally.ok);
        let _ = writeln!(out, "  Duration:   {:.3} s", self.duration.as_secs_f64());
        let _ = writeln!(out, "  Rate:       {:.1} calls/s", self.rps());
        if self.kind != Kind::Unary {
            let _ = writeln!(
                out,
                "  Messages:   {} sent, {} received",
                self.tally.sent, self.tally.received
            );
        }
        let _ = writeln!(out, "\nLatency of successful calls (ms):");
        for (label, _, nanos) in self.latencies() {
            let _ = writeln!(out, "  {label:<6} {:>10.3}", ms(nanos));
        }
        let bins = self.tally.latency.bins(2);
        if !bins.is_empty() {
            let _ = writeln!(out, "\nHistogram (ms):");
            let most = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1);
            let total = self.tally.latency.count().max(1);
            for (from, to, count) in bins {
                let bar = "■".repeat(((count * 40).div_ceil(most)) as usize);
                let _ = writeln!(
                    out,
                    "  {:>10.3} - {:<10.3} {count:>9} {:>5.1}% {bar}",
                    ms(from),
                    ms(to),
                    count as f64 * 100.0 / total as f64
                );
            }
        }
        let _ = writeln!(out, "\nStatus codes:");
        let _ = writeln!(out, "  {:<20} {:>9}", "OK", self.tally.ok);
        for (code, n) in self.errors() {
            let _ = writeln!(out, "  {code:<20} {n:>9}");
        }
        let messages = self.messages();
        if !messages.is_empty() {
            let _ = writeln!(out, "\nErrors:");
            for (code, message, n) in messages {
                let _ = writeln!(out, "  [{n}] {code}: {message}");
            }
        }
        out
    }

    pub(crate) fn html(&self) -> String {
        let mut rows = String::new();
        let mut row = |k: &str, v: String| {
            let _ = write!(
                rows,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(&v)
            );
        };
        row("target", self.target.to_owned());
        row("method", format!("{} ({})", self.method, self.kind.name()));
        row(
            "load",
            match self.rps_target {
                Some(rps) => format!(
                    "open loop, {rps} calls/s, at most {} in flight",
                    self.concurrency
                ),
                None => format!("closed loop, {} in flight", self.concurrency),
            },
        );
        row("connections", self.connections.to_string());
        row("calls", format!("{} ({} OK)", self.count(), self.tally.ok));
        row("duration", format!("{:.3} s", self.duration.as_secs_f64()));
        row("rate", format!("{:.1} calls/s", self.rps()));
        let mut latency = String::new();
        for (label, _, nanos) in self.latencies() {
            let _ = write!(
                latency,
                "<tr><th>{label}</th><td>{:.3} ms</td></tr>",
                ms(nanos)
            );
        }
        let mut codes = format!("<tr><th>OK</th><td>{}</td></tr>", self.tally.ok);
        for (code, n) in self.errors() {
            let _ = write!(codes, "<tr><th>{code}</th><td>{n}</td></tr>");
        }
        let mut messages = String::new();
        for (code, message, n) in self.messages() {
            let _ = write!(messages, "<li>[{n}] {code}: {}</li>", escape(message));
        }
        let data = self.json().to_string().replace("</", "<\\/");
        format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rgrpc bench: {title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0 2em 1em 0; display: inline-table; vertical-align: top; }}
th, td {{ padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; }}
svg {{ display: block; margin: 1em 0; }}
svg text {{ font-size: 11px; fill: #444; }}
.bar {{ fill: #4a7fc1; }}
.axis {{ stroke: #888; }}
.grid {{ stroke: #eee; }}
.p50 {{ stroke: #4a7fc1; fill: none; stroke-width: 1.5; }}
.p99 {{ stroke: #e07b39; fill: none; stroke-width: 1.5; }}
.max {{ stroke: #c44; fill: none; stroke-width: 1; stroke-dasharray: 3 2; }}
.calls {{ stroke: #3a9a5b; fill: none; stroke-width: 1.5; }}
.errors {{ stroke: #c44; fill: none; stroke-width: 1.5; }}
</style></head>
<body>
<h1>rgrpc bench</h1>
<table>{rows}</table><table>{latency}</table><table>{codes}</table>
<ul>{messages}</ul>
<h2>Latency histogram (successful calls)</h2>
{histogram}
<h2>Latency over time</h2>
{over_time}
<h2>Calls over time</h2>
{throughput}
<script type="application/json" id="report">{data}</script>
</body></html>
"#,
            title = escape(self.method),
            histogram = self.histogram_svg(),
            over_time = self.latency_svg(),
            throughput = self.throughput_svg(),
        )
    }

    fn histogram_svg(&self) -> String {
        let bins = self.tally.latency.bins(2);
        let mut svg = Chart::new("histogram", "calls", "latency (ms, log scale)");
        let most = bins.iter().map(|b| b.2).max().unwrap_or(0);
        svg.y_axis(most as f64);
        let n = bins.len().max(1) as f64;
        let slot = Chart::W / n;
        let label_every = (bins.len() / 10).max(1);
        for (i, (from, to, count)) in bins.iter().enumerate() {
            let h = if most == 0 {
                0.0
            } else {
                *count as f64 / most as f64 * Chart::H
            };
            let x = Chart::LEFT + i as f64 * slot;
            let _ = write!(
                svg.body,
                r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{:.3}-{:.3} ms: {count}</title></rect>"#,
                Chart::TOP + Chart::H - h,
                (slot - 1.0).max(0.5),
                ms(*from),
                ms(*to),
            );
            if i % label_every == 0 {
                let _ = write!(
                    svg.body,
                    r#"<text x="{x:.1}" y="{:.1}">{}</text>"#,
                    Chart::TOP + Chart::H + 14.0,
                    short(ms(*from))
                );
            }
        }
        svg.finish()
    }

    fn latency_svg(&self) -> String {
        let points = self.points();
        let top = points.iter().map(|p| p.max).fold(0.0, f64::max);
        let end = self.time_span(&points);
        let mut svg = Chart::new("latency-over-time", "ms", "time (s)");
        svg.y_axis(top);
        svg.x_axis(end);
        for (class, value) in [
            ("max", (|p: &Point| p.max) as fn(&Point) -> f64),
            ("p99", |p: &Point| p.p99),
            ("p50", |p: &Point| p.p50),
        ] {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.calls > p.errors)
                .map(|p| (p.t, value(p)))
                .collect();
            svg.line(class, &line, end, top);
        }
        svg.legend(&[("p50", "p50"), ("p99", "p99"), ("max", "max")]);
        svg.finish()
    }

    fn throughput_svg(&self) -> String {
        let points = self.points();
        let width = self.timeline.width().as_secs_f64();
        let end = self.time_span(&points);
        let rate = |n: u64| n as f64 / width;
        let top = points.iter().map(|p| rate(p.calls)).fold(0.0, f64::max);
        let mut svg = Chart::new("calls-over-time", "calls/s", "time (s)");
        svg.y_axis(top);
        svg.x_axis(end);
        let calls: Vec<(f64, f64)> = points.iter().map(|p| (p.t, rate(p.calls))).collect();
        svg.line("calls", &calls, end, top);
        if points.iter().any(|p| p.errors > 0) {
            let errors: Vec<(f64, f64)> = points.iter().map(|p| (p.t, rate(p.errors))).collect();
            svg.line("errors", &errors, end, top);
            svg.legend(&[("calls", "calls"), ("errors", "errors")]);
        }
        svg.finish()
    }

    fn time_span(&self, points: &[Point]) -> f64 {
        let last = points.len() as f64 * self.timeline.width().as_secs_f64();
        last.max(self.duration.as_secs_f64()).max(1e-3)
    }
}

/// An SVG chart with a plot area, axes and labels.
struct Chart {
    id: &'static str,
    body: String,
}

impl Chart {
    const LEFT: f64 = 60.0;
    const TOP: f64 = 20.0;
    const W: f64 = 760.0;
    const H: f64 = 240.0;

    fn new(id: &'static str, y_label: &str, x_label: &str) -> Chart {
        let mut body = String::new();
        let (x0, y0, x1, y1) = (
            Self::LEFT,
            Self::TOP,
            Self::LEFT + Self::W,
            Self::TOP + Self::H,
        );
        let _ = write!(
            body,
            r#"<line class="axis" x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}"/><line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/><text x="{:.0}" y="{:.0}" text-anchor="middle">{}</text><text x="12" y="{:.0}" transform="rotate(-90 12 {:.0})" text-anchor="middle">{}</text>"#,
            x0 + Self::W / 2.0,
            y1 + 32.0,
            escape(x_label),
            y0 + Self::H / 2.0,
            y0 + Self::H / 2.0,
            escape(y_label),
        );
        Chart { id, body }
    }

    fn y_axis(&mut self, top: f64) {
        for tick in ticks(top) {
            let y = Self::TOP + Self::H - if top > 0.0 { tick / top * Self::H } else { 0.0 };
            let _ = write!(
                self.body,
                r#"<line class="grid" x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                Self::LEFT + 1.0,
                Self::LEFT + Self::W,
                Self::LEFT - 4.0,
                y + 4.0,
                short(tick)
            );
        }
    }

    fn x_axis(&mut self, end: f64) {
        for tick in ticks(end) {
            let x = Self::LEFT + tick / end * Self::W;
            let _ = write!(
                self.body,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                Self::TOP + Self::H + 14.0,
                short(tick)
            );
        }
    }

    /// A polyline through `points` (x in 0..=x_max, y in 0..=y_max).
    fn line(&mut self, class: &str, points: &[(f64, f64)], x_max: f64, y_max: f64) {
        if points.is_empty() {
            return;
        }
        let mut d = String::new();
        for (i, (x, y)) in points.iter().enumerate() {
            let px = Self::LEFT + x / x_max * Self::W;
            let py = Self::TOP + Self::H
                - if y_max > 0.0 {
                    y / y_max * Self::H
                } else {
                    0.0
                };
            let _ = write!(d, "{}{px:.1},{py:.1}", if i == 0 { "M" } else { " L" });
        }
        if points.len() == 1 {
            // One point still shows: a short tick.
            let _ = write!(d, " h2");
        }
        let _ = write!(self.body, r#"<path class="{class}" d="{d}"/>"#);
    }

    fn legend(&mut self, entries: &[(&str, &str)]) {
        for (i, (class, label)) in entries.iter().enumerate() {
            let x = Self::LEFT + Self::W - 70.0;
            let y = Self::TOP + 10.0 + i as f64 * 14.0;
            let _ = write!(
                self.body,
                r#"<path class="{class}" d="M{x},{y} h20"/><text x="{}" y="{}">{label}</text>"#,
                x + 24.0,
                y + 4.0
            );
        }
    }

    fn finish(self) -> String {
        format!(
            r#"<svg id="{}" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}">{}</svg>"#,
            self.id,
            Self::LEFT + Self::W + 20.0,
            Self::TOP + Self::H + 40.0,
            Self::LEFT + Self::W + 20.0,
            Self::TOP + Self::H + 40.0,
            self.body
        )
    }
}

/// About five round tick values from 0 to `top`.
fn ticks(top: f64) -> Vec<f64> {
    if top <= 0.0 || !top.is_finite() {
        return vec![0.0];
    }
    let raw = top / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (0..=((top / step).floor() as usize))
        .map(|i| i as f64 * step)
        .collect()
}

/// A number for an axis label: no more digits than it needs.
fn short(value: f64) -> String {
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0), vec![0.0]);
        let t = ticks(0.37);
        assert!(t.len() >= 4 && *t.last().unwrap() <= 0.37);
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(1500.0), "1500");
        assert_eq!(escape("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }
}
