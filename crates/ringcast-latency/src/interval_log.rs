//! HdrHistogram interval logs: one encoded histogram per interval of a run.
//!
//! The text format every HdrHistogram tool reads (Java's
//! `HistogramLogReader` and `HistogramLogProcessor`, Python's
//! `hdrh.log.HistogramLogReader`, HdrHistogram plotters): comment lines with
//! the start and base time, a legend, then one line per interval,
//! `start,length,max,encoded` (seconds since the base time, seconds,
//! milliseconds, [`histogram::encode`]), optionally prefixed `Tag=name,`.
//! Values in the histograms are nanoseconds.

use crate::histogram::{self, LatencyHistogram};
use std::io::{self, Write};

/// Version of the log format written (as Java's HdrHistogram 2.1 writes).
const FORMAT_VERSION: &str = "1.3";

/// A log being written to `W`.
pub struct IntervalLog<W: Write> {
    out: W,
}

impl<W: Write> IntervalLog<W> {
    /// Starts a log whose intervals are timed from `start_unix_ns` (ns since
    /// the Unix epoch); `comment` (one line) says what was measured.
    pub fn new(mut out: W, start_unix_ns: u64, comment: &str) -> io::Result<Self> {
        let start = start_unix_ns as f64 / 1e9;
        writeln!(out, "#[{}]", comment.replace(['\n', '\r'], " "))?;
        writeln!(out, "#[Histogram log format version {FORMAT_VERSION}]")?;
        writeln!(out, "#[StartTime: {start:.3} (seconds since epoch)]")?;
        writeln!(out, "#[BaseTime: {start:.3} (seconds since epoch)]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(Self { out })
    }

    /// Appends the histogram of the interval that began `start_s` seconds
    /// after the log's start time and lasted `length_s` seconds.
    pub fn append(
        &mut self,
        hist: &LatencyHistogram,
        start_s: f64,
        length_s: f64,
        tag: Option<&str>,
    ) -> io::Result<()> {
        if let Some(tag) = tag {
            write!(
                self.out,
                "Tag={},",
                tag.replace([',', ' ', '\n', '\r'], "_")
            )?;
        }
        writeln!(
            self.out,
            "{start_s:.3},{length_s:.3},{:.3},{}",
            hist.max() as f64 / 1e6,
            histogram::encode(hist)
        )?;
        self.out.flush()
    }

    /// The writer, with everything written so far.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{LatencyRecorder, RecorderConfig};

    #[test]
    fn header_legend_and_one_line_per_interval() {
        let mut rec = LatencyRecorder::new(RecorderConfig::default()).unwrap();
        let mut log = IntervalLog::new(Vec::new(), 1_700_000_000_500_000_000, "a\nrun").unwrap();
        rec.record(2_000_000);
        log.append(&rec.take_interval(), 0.0, 1.0, None).unwrap();
        rec.record(3_000);
        log.append(&rec.take_interval(), 1.0, 1.0, Some("sub 1"))
            .unwrap();
        let text = String::from_utf8(log.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#[a run]");
        assert_eq!(
            lines[2],
            "#[StartTime: 1700000000.500 (seconds since epoch)]"
        );
        assert!(lines[4].starts_with("\"StartTimestamp\""));
        assert!(
            lines[5].starts_with("0.000,1.000,2.001,HISTF"),
            "{}",
            lines[5]
        );
        assert!(
            lines[6].starts_with("Tag=sub_1,1.000,1.000,0.003,HISTF"),
            "{}",
            lines[6]
        );
        let encoded = lines[6].rsplit(',').next().unwrap();
        assert_eq!(histogram::decode(encoded).unwrap().len(), 1);
    }
}
