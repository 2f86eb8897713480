//! A minimal SVG chart frame shared by the plots: time on x (seconds since the run began),
//! a linear or log y axis, grid, ticks, and nemesis bands behind the data.

use std::fmt::Write;

use super::escape;
use super::fault_bands::{self, FaultBand};

#[derive(Clone, Copy, Debug)]
pub enum YScale {
    Linear {
        min: f64,
        max: f64,
    },
    /// Both bounds > 0.
    Log {
        min: f64,
        max: f64,
    },
}

pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    /// x range in seconds.
    pub x_max: f64,
    pub y: YScale,
    pub y_label: String,
}

impl Frame {
    pub fn new(x_max: f64, y: YScale, y_label: &str) -> Self {
        Frame {
            width: 1000.0,
            height: 260.0,
            left: 64.0,
            right: 16.0,
            top: 12.0,
            bottom: 34.0,
            x_max: if x_max > 0.0 { x_max } else { 1.0 },
            y,
            y_label: y_label.to_string(),
        }
    }

    pub fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }

    pub fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }

    pub fn x(&self, secs: f64) -> f64 {
        self.left + (secs / self.x_max).clamp(0.0, 1.0) * self.plot_w()
    }

    pub fn y(&self, v: f64) -> f64 {
        let frac = match self.y {
            YScale::Linear { min, max } => (v - min) / (max - min).max(f64::MIN_POSITIVE),
            YScale::Log { min, max } => {
                (v.max(min).ln() - min.ln()) / (max.ln() - min.ln()).max(f64::MIN_POSITIVE)
            }
        };
        self.top + (1.0 - frac.clamp(0.0, 1.0)) * self.plot_h()
    }

    /// Opens the `<svg>`, draws bands, grid, axes and labels. Close with `</svg>`.
    pub fn open(&self, out: &mut String, id: &str, bands: &[FaultBand], end_ns: u64) {
        let _ = write!(
            out,
            r#"<svg id="{id}" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" role="img">"#,
            w = self.width,
            h = self.height
        );
        for b in bands {
            let x0 = self.x(b.start_ns as f64 / 1e9);
            let x1 = self.x(b.end_or(end_ns) as f64 / 1e9);
            let _ = write!(
                out,
                r#"<rect class="band" x="{x0:.1}" y="{}" width="{:.1}" height="{}" fill="{}"><title>{}</title></rect>"#,
                self.top,
                (x1 - x0).max(1.0),
                self.plot_h(),
                fault_bands::color(&b.fault),
                escape::html(&b.label())
            );
        }
        // x ticks
        for t in nice_ticks(0.0, self.x_max, 10) {
            let x = self.x(t);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#0001"/><text x="{x:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"##,
                self.top,
                self.top + self.plot_h(),
                self.top + self.plot_h() + 14.0,
                fmt_num(t)
            );
        }
        let yticks: Vec<f64> = match self.y {
            YScale::Linear { min, max } => nice_ticks(min, max, 5),
            YScale::Log { min, max } => log_ticks(min, max),
        };
        for t in yticks {
            let y = self.y(t);
            let _ = write!(
                out,
                r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#0001"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
                self.left,
                self.left + self.plot_w(),
                self.left - 4.0,
                y + 4.0,
                fmt_num(t)
            );
        }
        let _ = write!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/><text x="{}" y="{}" class="axis" text-anchor="middle">seconds since start</text><text class="axis" transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
            self.left,
            self.top,
            self.plot_w(),
            self.plot_h(),
            self.left + self.plot_w() / 2.0,
            self.height - 4.0,
            self.top + self.plot_h() / 2.0,
            escape::html(&self.y_label)
        );
    }
}

/// About `n` round tick values covering [min, max].
pub fn nice_ticks(min: f64, max: f64, n: usize) -> Vec<f64> {
    let span = max - min;
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return vec![min];
    }
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let first = (min / step).ceil() * step;
    (0..)
        .map(|i| first + i as f64 * step)
        .take_while(|t| *t <= max + step * 1e-9)
        .take(100)
        .collect()
}

/// Powers of ten within [min, max].
pub fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let lo = min.log10().floor() as i32;
    let hi = max.log10().ceil() as i32;
    (lo..=hi)
        .map(|e| 10f64.powi(e))
        .filter(|t| *t >= min * 0.999 && *t <= max * 1.001)
        .collect()
}

/// Numbers for tick labels: no trailing zeros, at most 3 decimals.
pub fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(
            nice_ticks(0.0, 0.7, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001]
        );
        assert_eq!(log_ticks(0.05, 2000.0), vec![0.1, 1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(nice_ticks(3.0, 3.0, 5), vec![3.0]);
    }

    #[test]
    fn scales_map_into_the_plot_area() {
        let f = Frame::new(
            10.0,
            YScale::Log {
                min: 1.0,
                max: 100.0,
            },
            "ms",
        );
        assert_eq!(f.x(0.0), f.left);
        assert_eq!(f.x(20.0), f.left + f.plot_w());
        assert_eq!(f.y(100.0), f.top);
        assert!((f.y(10.0) - (f.top + f.plot_h() / 2.0)).abs() < 1e-9);
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(1500.0), "1500");
    }
}
