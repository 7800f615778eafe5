//! The whole machine's busy CPU time, from `/proc/stat`: what a load cost in CPU, whatever
//! the load's rate. A loop bound by round trips and wake-ups runs at about the same rate on
//! a cheaper datapath; the CPU it burned says what the datapath saved.

use std::time::Duration;

use crate::error::{Error, Result};

/// The busy time of every CPU summed, at one instant.
#[derive(Debug, Clone, Copy)]
pub struct BusyTime(Duration);

impl BusyTime {
    /// Reads `/proc/stat` now. It counts the whole machine, whichever namespace asks.
    pub fn now() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat")
            .map_err(|err| Error::io("reading /proc/stat", err))?;
        // SAFETY: sysconf has no preconditions.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks_per_second = u64::try_from(ticks_per_second)
            .ok()
            .filter(|&t| t > 0)
            .ok_or_else(|| Error::invalid("sysconf(_SC_CLK_TCK) gave no clock rate"))?;
        let ticks = busy_ticks(&stat)
            .ok_or_else(|| Error::invalid("/proc/stat has no aggregate `cpu` line"))?;
        Ok(Self(Duration::from_nanos(
            ticks.saturating_mul(1_000_000_000) / ticks_per_second,
        )))
    }

    /// The busy time spent since `self` was read.
    pub fn elapsed(self) -> Result<Duration> {
        Ok(Self::now()?.0.saturating_sub(self.0))
    }
}

/// The busy ticks of the aggregate `cpu` line: user, nice, system, irq and softirq. Idle and
/// iowait are not work; steal is time the hypervisor gave another guest; guest time is
/// counted in user already.
fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    let field = |i: usize| fields.get(i).copied();
    Some(field(0)? + field(1)? + field(2)? + field(5)? + field(6)?)
}

#[cfg(test)]
mod tests {
    use super::busy_ticks;

    #[test]
    fn busy_is_user_nice_system_irq_and_softirq() {
        let stat = "cpu  49324 7 5786 2345917 412 3 48 51 0 0\n\
                    cpu0 24000 0 2800 1170000 200 1 20 25 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(busy_ticks(stat), Some(49324 + 7 + 5786 + 3 + 48));
    }

    #[test]
    fn a_per_cpu_line_is_not_the_aggregate() {
        assert_eq!(busy_ticks("cpu0 1 2 3 4 5 6 7 8 9 10\n"), None);
    }

    #[test]
    fn a_short_or_garbled_line_gives_nothing() {
        assert_eq!(busy_ticks("cpu  1 2 3 4\n"), None);
        assert_eq!(busy_ticks("cpu  1 2 x 4 5 6 7 8 9 10\n"), None);
    }
}
