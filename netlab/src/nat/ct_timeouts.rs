//! `netlab up --ct-timeouts NAME=SECONDS[,NAME=SECONDS...]`: conntrack lifetimes, by name
//! (`tcp-syn`, `tcp-established`, `tcp-closing`, `udp`, `icmp`), each 1 s to 7 days; names
//! not given keep their current value (the running lab's, else the defaults).

use netlab_common::nat::CtTimeouts;

/// The longest lifetime accepted: a week, far beyond any protocol's need.
const MAX_SECONDS: u32 = 7 * 24 * 3600;

/// Changes to some lifetimes, as parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtTimeoutChanges(Vec<(String, u32)>);

impl std::str::FromStr for CtTimeoutChanges {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut changes = Vec::new();
        for item in text.split(',') {
            let (name, seconds) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not NAME=SECONDS"))?;
            let name = name.trim();
            if field(&mut CtTimeouts::default(), name).is_none() {
                return Err(format!(
                    "unknown conntrack timeout {name:?} (known: tcp-syn, tcp-established, tcp-closing, udp, icmp)"
                ));
            }
            let seconds: u32 = seconds
                .trim()
                .parse()
                .ok()
                .filter(|s| (1..=MAX_SECONDS).contains(s))
                .ok_or_else(|| {
                    format!("timeout {name}={seconds}: give whole seconds from 1 to {MAX_SECONDS}")
                })?;
            changes.push((name.to_string(), seconds));
        }
        Ok(Self(changes))
    }
}

impl CtTimeoutChanges {
    /// `base` with these changes.
    pub fn apply(&self, mut base: CtTimeouts) -> CtTimeouts {
        for (name, seconds) in &self.0 {
            if let Some(slot) = field(&mut base, name) {
                *slot = *seconds;
            }
        }
        base
    }
}

fn field<'a>(timeouts: &'a mut CtTimeouts, name: &str) -> Option<&'a mut u32> {
    Some(match name {
        "tcp-syn" => &mut timeouts.tcp_syn,
        "tcp-established" => &mut timeouts.tcp_established,
        "tcp-closing" => &mut timeouts.tcp_closing,
        "udp" => &mut timeouts.udp,
        "icmp" => &mut timeouts.icmp,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_on_top_of_the_base() {
        let changes: CtTimeoutChanges = "udp=2, tcp-syn=5".parse().expect("valid");
        let timeouts = changes.apply(CtTimeouts::DEFAULT);
        assert_eq!((timeouts.udp, timeouts.tcp_syn), (2, 5));
        assert_eq!(
            timeouts.tcp_established,
            CtTimeouts::DEFAULT.tcp_established
        );
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        for (text, message) in [
            ("udp", "is not NAME=SECONDS"),
            ("sctp=5", "unknown conntrack timeout \"sctp\""),
            ("udp=0", "whole seconds from 1"),
            ("udp=-1", "whole seconds from 1"),
            ("udp=1.5", "whole seconds from 1"),
            ("udp=604801", "whole seconds from 1"),
        ] {
            let err = text.parse::<CtTimeoutChanges>().expect_err(text);
            assert!(err.contains(message), "{text}: {err}");
        }
    }
}
