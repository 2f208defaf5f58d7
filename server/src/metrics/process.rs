//! The standard `process_*` metrics, named and computed as Prometheus'
//! client libraries export them on Linux (client_golang's process
//! collector): read from `/proc/self` at scrape time through `procfs`.
//!
//! `prometheus-client` has no process collector of its own; the crates that
//! do (`prometheus`'s `process` feature, `metrics-process`) belong to other
//! metrics libraries, so this small collector maps `procfs` readings onto
//! `prometheus-client`'s `Collector` trait. Elsewhere than Linux it exports
//! nothing.

use prometheus_client::{collector::Collector, encoding::DescriptorEncoder};

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of the process; a value the kernel would not give is absent.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessReading {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<u64>,
}

#[cfg(target_os = "linux")]
pub fn read() -> ProcessReading {
    use procfs::process::{LimitValue, Process};
    let Ok(me) = Process::myself() else { return ProcessReading::default() };
    let ticks = procfs::ticks_per_second() as f64;
    let stat = me.stat().ok();
    let max_fds = me.limits().ok().and_then(|l| match l.max_open_files.soft_limit {
        LimitValue::Value(v) => Some(v),
        LimitValue::Unlimited => None,
    });
    ProcessReading {
        cpu_seconds: stat.as_ref().map(|s| (s.utime + s.stime) as f64 / ticks),
        resident_bytes: stat.as_ref().map(|s| s.rss * procfs::page_size()),
        virtual_bytes: stat.as_ref().map(|s| s.vsize),
        open_fds: me.fd_count().ok().map(|n| n as u64),
        max_fds,
        start_time_seconds: stat
            .as_ref()
            .and_then(|s| Some(procfs::boot_time_secs().ok()? as f64 + s.starttime as f64 / ticks)),
        threads: stat.as_ref().and_then(|s| u64::try_from(s.num_threads).ok()),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn read() -> ProcessReading {
    ProcessReading::default()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::{
            encoding::EncodeMetric,
            metrics::{counter::ConstCounter, gauge::ConstGauge},
        };
        let r = read();
        if let Some(v) = r.cpu_seconds {
            // A counter's family name has no `_total`; the sample gets it.
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges: [(&str, &str, Option<f64>); 6] = [
            ("process_resident_memory_bytes", "Resident memory size in bytes.", r.resident_bytes.map(|v| v as f64)),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", r.virtual_bytes.map(|v| v as f64)),
            ("process_open_fds", "Number of open file descriptors.", r.open_fds.map(|v| v as f64)),
            ("process_max_fds", "Maximum number of open file descriptors.", r.max_fds.map(|v| v as f64)),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                r.start_time_seconds,
            ),
            ("process_threads", "Number of OS threads in the process.", r.threads.map(|v| v as f64)),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let r = read();
        assert!(r.cpu_seconds.is_some_and(|v| v >= 0.0));
        assert!(r.resident_bytes.is_some_and(|v| v > 1024 * 1024), "{r:?}");
        assert!(r.virtual_bytes >= r.resident_bytes);
        assert!(r.open_fds.is_some_and(|v| v >= 3));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = r.start_time_seconds.unwrap();
        assert!(started <= now + 1.0 && started > now - 24.0 * 3600.0, "{started} vs {now}");
        assert!(r.threads.is_some_and(|v| v >= 1));
    }
}
