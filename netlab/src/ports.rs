//! Published-port specs in Docker's `-p` syntax.
//!
//! `[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|/udp]`, for example
//! `8080:80`, `127.0.0.1:5353:53/udp`, `[2001:2::1]:8080:80` or `8000-8009:9000-9009`.
//!
//! As in Docker, a spec without a host address is published on every address of
//! both families (of each family the lab has), `0.0.0.0` means every IPv4 address and
//! `[::]` every IPv6 one, and an IPv6 address goes in brackets. One thing differs on
//! purpose: ranges always map 1:1 (Docker lets a host range share one container port,
//! which needs a load-balancing rule netlab doesn't build).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP, the default when a spec names no protocol.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// IANA protocol number, as found in the IPv4 header's protocol field.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    /// Its name, as port specs, iptables and conntrack spell it.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// The name of IP protocol `number` as netlab's tables print it: `tcp`, `udp`, `icmp`,
/// `icmpv6`, or the number itself.
pub fn protocol_name(number: u8) -> String {
    match number {
        1 => "icmp".to_string(),
        6 => Proto::Tcp.name().to_string(),
        17 => Proto::Udp.name().to_string(),
        58 => "icmpv6".to_string(),
        other => other.to_string(),
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A protocol name other than `tcp` or `udp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol \"{0}\" (expected tcp or udp)")]
pub struct UnknownProto(pub String);

impl FromStr for Proto {
    type Err = UnknownProto;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(UnknownProto(other.to_owned())),
        }
    }
}

/// An inclusive range of ports; a single port has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    /// First port of the range.
    pub start: u16,
    /// Last port of the range, inclusive.
    pub end: u16,
}

impl PortRange {
    /// A range holding just `port`.
    pub fn single(port: u16) -> Self {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// Number of ports in the range; `u32` because `0-65535` holds 65536.
    pub fn len(self) -> u32 {
        if self.is_empty() {
            0
        } else {
            u32::from(self.end) - u32::from(self.start) + 1
        }
    }

    /// True only for a reversed range, which parsing never produces but the
    /// public fields allow.
    pub fn is_empty(self) -> bool {
        self.end < self.start
    }

    /// Whether `port` lies in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    /// Whether the two ranges share at least one port.
    pub fn overlaps(self, other: PortRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// One published port or port range: host side, container side, protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    /// Host address the port is bound to: `None` for every address of both families,
    /// an unspecified address (`0.0.0.0`, `::`) for every address of its family.
    pub host_ip: Option<IpAddr>,
    /// Ports on the host.
    pub host: PortRange,
    /// Ports in the container, the same length as `host`.
    pub container: PortRange,
    /// Transport protocol.
    pub proto: Proto,
}

impl PortSpec {
    /// The container port that `host_port` maps to, or `None` when
    /// `host_port` is outside the host range.
    pub fn container_port_for(&self, host_port: u16) -> Option<u16> {
        if !self.host.contains(host_port) {
            return None;
        }
        let port = self
            .container
            .start
            .checked_add(host_port - self.host.start)?;
        // The fields are public, so a hand-built spec may have a short
        // container range; never map past its end.
        self.container.contains(port).then_some(port)
    }

    /// True when both specs could claim the same (address, port, protocol):
    /// same protocol, overlapping host ranges, and the same host address or
    /// either one bound to every address of the other's family.
    pub fn conflicts_with(&self, other: &PortSpec) -> bool {
        let same_address = match (self.host_ip, other.host_ip) {
            (Some(a), Some(b)) => {
                a.is_ipv4() == b.is_ipv4() && (a == b || a.is_unspecified() || b.is_unspecified())
            }
            _ => true,
        };
        self.proto == other.proto && self.host.overlaps(other.host) && same_address
    }

    /// Where the spec is published in IPv4: `None` when it is not (an IPv6 host address),
    /// `Some(None)` on every address, `Some(Some(ip))` on `ip` only.
    pub fn host_ip4(&self) -> Option<Option<Ipv4Addr>> {
        match self.host_ip {
            None => Some(None),
            Some(IpAddr::V4(ip)) => Some((!ip.is_unspecified()).then_some(ip)),
            Some(IpAddr::V6(_)) => None,
        }
    }

    /// Where the spec is published in IPv6, as [`Self::host_ip4`] says for IPv4.
    pub fn host_ip6(&self) -> Option<Option<Ipv6Addr>> {
        match self.host_ip {
            None => Some(None),
            Some(IpAddr::V6(ip)) => Some((!ip.is_unspecified()).then_some(ip)),
            Some(IpAddr::V4(_)) => None,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:")?,
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            None => {}
        }
        write!(f, "{}:{}/{}", self.host, self.container, self.proto)
    }
}

/// Why a port spec failed to parse. Each variant carries the whole spec as
/// `input` so the message can quote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// The spec is the empty string.
    #[error("invalid port spec \"\": empty (expected HOST_PORT:CONTAINER_PORT, e.g. 8080:80)")]
    Empty,
    /// No `:` between host and container port.
    #[error(
        "invalid port spec \"{input}\": missing ':' between host and container port (e.g. 8080:80)"
    )]
    MissingColon {
        /// The whole spec.
        input: String,
    },
    /// A port (or range end) that is not a decimal number.
    #[error("invalid port spec \"{input}\": \"{port}\" is not a port number")]
    NotANumber {
        /// The whole spec.
        input: String,
        /// The offending text.
        port: String,
    },
    /// A port of 0 or above 65535.
    #[error("invalid port spec \"{input}\": port {port} is out of range 1-65535")]
    OutOfRange {
        /// The whole spec.
        input: String,
        /// The offending port, as written.
        port: String,
    },
    /// A range whose end is below its start.
    #[error("invalid port spec \"{input}\": range {range} ends before it starts")]
    ReversedRange {
        /// The whole spec.
        input: String,
        /// The offending range, as written.
        range: String,
    },
    /// Host and container ranges of different lengths.
    #[error(
        "invalid port spec \"{input}\": host range {host} has {} ports but container range {container} has {}",
        host.len(),
        container.len()
    )]
    LengthMismatch {
        /// The whole spec.
        input: String,
        /// Host side.
        host: PortRange,
        /// Container side.
        container: PortRange,
    },
    /// A host range mapped to one container port, which Docker allows.
    #[error(
        "invalid port spec \"{input}\": host range {host} needs a container range of the same length; netlab maps ports 1:1 (unlike Docker, which lets a range share container port {container})"
    )]
    RangeToSinglePort {
        /// The whole spec.
        input: String,
        /// Host side.
        host: PortRange,
        /// The single container port.
        container: u16,
    },
    /// A host address that is not an IP address.
    #[error("invalid port spec \"{input}\": \"{ip}\" is not a host IP address")]
    BadHostIp {
        /// The whole spec.
        input: String,
        /// The offending address text.
        ip: String,
    },
    /// An IPv6 host address without brackets, which cannot be told from the ports.
    #[error(
        "invalid port spec \"{input}\": an IPv6 host address goes in brackets, e.g. [{ip}]:8080:80"
    )]
    Ipv6HostIp {
        /// The whole spec.
        input: String,
        /// The offending address text.
        ip: String,
    },
    /// A protocol other than tcp or udp.
    #[error("invalid port spec \"{input}\": unknown protocol \"{proto}\" (expected tcp or udp)")]
    UnknownProto {
        /// The whole spec.
        input: String,
        /// The offending protocol name.
        proto: String,
    },
    /// Text after the protocol.
    #[error("invalid port spec \"{input}\": unexpected \"{rest}\" after the protocol")]
    TrailingGarbage {
        /// The whole spec.
        input: String,
        /// The text after the protocol.
        rest: String,
    },
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(PortSpecError::Empty);
        }
        let owned = || input.to_owned();

        let (port_text, proto) = match input.split_once('/') {
            None => (input, Proto::Tcp),
            Some((port_text, tail)) => {
                // The protocol is the run of letters; anything after it
                // (another "/x", a space, a ":53") is garbage rather than
                // part of a strange protocol name.
                let split = tail
                    .find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(tail.len());
                let (name, rest) = tail.split_at(split);
                if !rest.is_empty() {
                    return Err(PortSpecError::TrailingGarbage {
                        input: owned(),
                        rest: rest.to_owned(),
                    });
                }
                let proto =
                    name.parse()
                        .map_err(|UnknownProto(proto)| PortSpecError::UnknownProto {
                            input: owned(),
                            proto,
                        })?;
                (port_text, proto)
            }
        };

        // Split from the right: the address may itself contain ':' (IPv6).
        let mut fields = port_text.rsplitn(3, ':');
        let container_text = fields.next().unwrap_or_default();
        let Some(host_text) = fields.next() else {
            return Err(PortSpecError::MissingColon { input: owned() });
        };
        let host_ip = fields
            .next()
            .map(|ip| parse_host_ip(input, ip))
            .transpose()?;

        let host = parse_range(input, host_text)?;
        let container = parse_range(input, container_text)?;
        if host.len() != container.len() {
            return Err(if container.len() == 1 {
                PortSpecError::RangeToSinglePort {
                    input: owned(),
                    host,
                    container: container.start,
                }
            } else {
                PortSpecError::LengthMismatch {
                    input: owned(),
                    host,
                    container,
                }
            });
        }

        Ok(PortSpec {
            host_ip,
            host,
            container,
            proto,
        })
    }
}

fn parse_host_ip(input: &str, text: &str) -> Result<IpAddr, PortSpecError> {
    // IPv6 in brackets, as Docker writes it; IPv4 without.
    let bracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    match (bracketed, bracketed.unwrap_or(text).parse::<IpAddr>()) {
        (Some(_), Ok(ip @ IpAddr::V6(_))) | (None, Ok(ip @ IpAddr::V4(_))) => Ok(ip),
        (None, Ok(IpAddr::V6(_))) => Err(PortSpecError::Ipv6HostIp {
            input: input.to_owned(),
            ip: text.to_owned(),
        }),
        _ => Err(PortSpecError::BadHostIp {
            input: input.to_owned(),
            ip: text.to_owned(),
        }),
    }
}

fn parse_range(input: &str, text: &str) -> Result<PortRange, PortSpecError> {
    let range = match text.split_once('-') {
        None => PortRange::single(parse_port(input, text)?),
        Some((start, end)) => PortRange {
            start: parse_port(input, start)?,
            end: parse_port(input, end)?,
        },
    };
    if range.is_empty() {
        return Err(PortSpecError::ReversedRange {
            input: input.to_owned(),
            range: text.to_owned(),
        });
    }
    Ok(range)
}

fn parse_port(input: &str, text: &str) -> Result<u16, PortSpecError> {
    // `u16::from_str` takes a leading '+', which is not a port number.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortSpecError::NotANumber {
            input: input.to_owned(),
            port: text.to_owned(),
        });
    }
    // All digits, so a failed parse can only mean too large.
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(PortSpecError::OutOfRange {
            input: input.to_owned(),
            port: text.to_owned(),
        }),
    }
}

// The string form is what people write in lab files and read in JSON, so
// (de)serialize through it rather than as a struct.
impl Serialize for PortSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn range(start: u16, end: u16) -> PortRange {
        PortRange { start, end }
    }

    #[test]
    fn parses_valid_specs() {
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let any4 = Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let any6 = Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        let ext6 = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1)));
        let cases: &[(&str, Option<IpAddr>, PortRange, PortRange, Proto)] = &[
            (
                "8080:80",
                None,
                range(8080, 8080),
                range(80, 80),
                Proto::Tcp,
            ),
            (
                "8080:80/tcp",
                None,
                range(8080, 8080),
                range(80, 80),
                Proto::Tcp,
            ),
            ("53:53/udp", None, range(53, 53), range(53, 53), Proto::Udp),
            (
                "1:65535",
                None,
                range(1, 1),
                range(65535, 65535),
                Proto::Tcp,
            ),
            (
                "8000-8009:9000-9009",
                None,
                range(8000, 8009),
                range(9000, 9009),
                Proto::Tcp,
            ),
            ("7-7:8-8", None, range(7, 7), range(8, 8), Proto::Tcp),
            (
                "127.0.0.1:5353:53/udp",
                lo,
                range(5353, 5353),
                range(53, 53),
                Proto::Udp,
            ),
            (
                "127.0.0.1:1-2:3-4",
                lo,
                range(1, 2),
                range(3, 4),
                Proto::Tcp,
            ),
            (
                "0.0.0.0:8080:80",
                any4,
                range(8080, 8080),
                range(80, 80),
                Proto::Tcp,
            ),
            (
                "[::]:53:53/udp",
                any6,
                range(53, 53),
                range(53, 53),
                Proto::Udp,
            ),
            (
                "[2001:2::1]:8080-8081:80-81",
                ext6,
                range(8080, 8081),
                range(80, 81),
                Proto::Tcp,
            ),
        ];
        for &(text, host_ip, host, container, proto) in cases {
            let expected = PortSpec {
                host_ip,
                host,
                container,
                proto,
            };
            assert_eq!(spec(text), expected, "{text}");
        }
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        let cases = [
            ("8080:80", "8080:80/tcp"),
            ("53:53/udp", "53:53/udp"),
            ("8000-8009:9000-9009", "8000-8009:9000-9009/tcp"),
            ("7-7:8-8/udp", "7:8/udp"),
            ("127.0.0.1:5353:53/udp", "127.0.0.1:5353:53/udp"),
            ("0.0.0.0:8080:80", "0.0.0.0:8080:80/tcp"),
            ("[::]:8080:80", "[::]:8080:80/tcp"),
            ("[2001:2:0::1]:53:53/udp", "[2001:2::1]:53:53/udp"),
        ];
        for (text, canonical) in cases {
            let parsed = spec(text);
            assert_eq!(parsed.to_string(), canonical, "{text}");
            assert_eq!(spec(canonical), parsed, "{text}");
        }
    }

    fn err(s: &str) -> PortSpecError {
        match s.parse::<PortSpec>() {
            Ok(p) => panic!("{s} parsed as {p}"),
            Err(e) => e,
        }
    }

    fn owned(s: &str) -> String {
        s.to_owned()
    }

    /// Each case is (spec, offending part); `make` builds the expected
    /// error from the whole spec and that part.
    fn check_errors(cases: &[(&str, &str)], make: fn(String, String) -> PortSpecError) {
        for &(text, part) in cases {
            assert_eq!(err(text), make(owned(text), owned(part)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_specs() {
        assert_eq!(err(""), PortSpecError::Empty);
        for text in ["8080", "8080/udp", "8080-8090"] {
            let input = owned(text);
            assert_eq!(err(text), PortSpecError::MissingColon { input }, "{text}");
        }
        let cases = [
            ("http:80", "http"),
            ("8080:", ""),
            (":80", ""),
            ("+80:80", "+80"),
            ("80-:80", ""),
            ("80:80 ", "80 "),
            ("1.2.3.4:80x:80", "80x"),
        ];
        check_errors(&cases, |input, port| PortSpecError::NotANumber {
            input,
            port,
        });
        let cases = [
            ("80:80/tcp/udp", "/udp"),
            ("80:80/tcp ", " "),
            ("80:80/udp:53", ":53"),
        ];
        check_errors(&cases, |input, rest| PortSpecError::TrailingGarbage {
            input,
            rest,
        });
    }

    #[test]
    fn rejects_bad_ports_and_ranges() {
        let cases = [
            ("0:80", "0"),
            ("80:65536", "65536"),
            ("70000:80", "70000"),
            ("99999999999:80", "99999999999"),
            ("1-0:1-2", "0"),
        ];
        check_errors(&cases, |input, port| PortSpecError::OutOfRange {
            input,
            port,
        });
        let cases = [("90-80:90-80", "90-80"), ("80:91-90", "91-90")];
        check_errors(&cases, |input, range| PortSpecError::ReversedRange {
            input,
            range,
        });

        let mismatch = |text: &str, host, container| PortSpecError::LengthMismatch {
            input: owned(text),
            host,
            container,
        };
        let expected = mismatch("80-81:90-92", range(80, 81), range(90, 92));
        assert_eq!(err("80-81:90-92"), expected);
        let expected = mismatch("80:90-92", range(80, 80), range(90, 92));
        assert_eq!(err("80:90-92"), expected);
        let expected = PortSpecError::RangeToSinglePort {
            input: owned("80-81:90"),
            host: range(80, 81),
            container: 90,
        };
        assert_eq!(err("80-81:90"), expected);
    }

    #[test]
    fn rejects_bad_addresses_and_protocols() {
        let cases = [
            ("1.2.3:80:80", "1.2.3"),
            ("localhost:80:80", "localhost"),
            ("1.2.3.4:5:80:80", "1.2.3.4:5"),
            (":80:80", ""),
            ("[127.0.0.1]:80:80", "[127.0.0.1]"),
            ("[::1:80:80", "[::1"),
        ];
        check_errors(&cases, |input, ip| PortSpecError::BadHostIp { input, ip });
        let cases = [("::1:80:80", "::1"), ("fe80::1:80:80", "fe80::1")];
        check_errors(&cases, |input, ip| PortSpecError::Ipv6HostIp { input, ip });
        let cases = [("80:80/sctp", "sctp"), ("80:80/", ""), ("80:80/TCP", "TCP")];
        check_errors(&cases, |input, proto| PortSpecError::UnknownProto {
            input,
            proto,
        });
    }

    #[test]
    fn error_messages_name_the_problem() {
        let cases = [
            ("", "empty"),
            ("8080", "8080:80"),
            (
                "70000:80",
                "invalid port spec \"70000:80\": port 70000 is out of range 1-65535",
            ),
            ("0:80", "port 0 is out of range"),
            ("x:80", "\"x\" is not a port number"),
            ("90-80:90-80", "range 90-80 ends before it starts"),
            (
                "80-81:90-92",
                "host range 80-81 has 2 ports but container range 90-92 has 3",
            ),
            ("80-81:90", "1:1"),
            ("1.2.3:80:80", "\"1.2.3\" is not a host IP address"),
            ("::1:80:80", "goes in brackets, e.g. [::1]:8080:80"),
            ("80:80/sctp", "unknown protocol \"sctp\""),
            ("80:80/tcp/x", "unexpected \"/x\" after the protocol"),
        ];
        for (text, needle) in cases {
            let message = err(text).to_string();
            assert!(message.contains(needle), "{text}: {message}");
            assert!(!message.contains('\n'), "{text}: {message}");
        }
    }

    #[test]
    fn protocol_numbers_have_one_name() {
        assert_eq!(
            [1, 6, 17, 47].map(protocol_name),
            ["icmp", "tcp", "udp", "47"].map(str::to_string)
        );
    }

    #[test]
    fn proto_names_and_numbers() {
        assert_eq!("tcp".parse(), Ok(Proto::Tcp));
        assert_eq!("udp".parse(), Ok(Proto::Udp));
        assert_eq!("icmp".parse::<Proto>(), Err(UnknownProto(owned("icmp"))));
        assert_eq!(Proto::Tcp.to_string(), "tcp");
        assert_eq!(Proto::Udp.to_string(), "udp");
        assert_eq!(Proto::Tcp.number(), 6);
        assert_eq!(Proto::Udp.number(), 17);
    }

    #[test]
    fn port_range_basics() {
        assert_eq!(range(80, 80).len(), 1);
        assert_eq!(range(80, 90).len(), 11);
        assert_eq!(range(0, 65535).len(), 65536);
        assert_eq!(range(90, 80).len(), 0);
        assert!(range(90, 80).is_empty());
        assert!(range(80, 90).contains(80));
        assert!(range(80, 90).contains(90));
        assert!(!range(80, 90).contains(91));
        assert!(range(80, 90).overlaps(range(90, 95)));
        assert!(range(80, 90).overlaps(range(85, 85)));
        assert!(range(85, 85).overlaps(range(80, 90)));
        assert!(!range(80, 90).overlaps(range(91, 95)));
        assert!(!range(91, 95).overlaps(range(80, 90)));
        assert_eq!(range(80, 80).to_string(), "80");
        assert_eq!(range(80, 90).to_string(), "80-90");
    }

    #[test]
    fn container_port_for_maps_by_offset() {
        let s = spec("8000-8009:9000-9009");
        assert_eq!(s.container_port_for(8000), Some(9000));
        assert_eq!(s.container_port_for(8005), Some(9005));
        assert_eq!(s.container_port_for(8009), Some(9009));
        assert_eq!(s.container_port_for(7999), None);
        assert_eq!(s.container_port_for(8010), None);
        assert_eq!(spec("8080:80").container_port_for(8080), Some(80));
        assert_eq!(spec("8080:80").container_port_for(80), None);
        // A hand-built spec with a short container range maps no further.
        let short = PortSpec {
            host_ip: None,
            host: range(1, 10),
            container: range(65534, 65535),
            proto: Proto::Tcp,
        };
        assert_eq!(short.container_port_for(2), Some(65535));
        assert_eq!(short.container_port_for(3), None);
        assert_eq!(short.container_port_for(10), None);
    }

    #[test]
    fn conflicts() {
        let cases = [
            ("8080:80", "8080:90", true),
            ("8080:80", "8080:80/udp", false),
            ("8080:80/udp", "8080:81/udp", true),
            ("8000-8010:9000-9010", "8010:80", true),
            ("8000-8010:9000-9010", "8011:80", false),
            ("127.0.0.1:8080:80", "8080:80", true),
            ("8080:80", "127.0.0.1:8080:80", true),
            ("127.0.0.1:8080:80", "127.0.0.1:8080:81", true),
            ("127.0.0.1:8080:80", "198.18.0.1:8080:80", false),
            ("127.0.0.1:8080:80", "198.18.0.1:8081:80", false),
            ("0.0.0.0:8080:80", "198.18.0.1:8080:80", true),
            ("0.0.0.0:8080:80", "8080:80", true),
            ("[::]:8080:80", "8080:80", true),
            ("[::]:8080:80", "0.0.0.0:8080:80", false),
            ("[::]:8080:80", "[2001:2::1]:8080:80", true),
            ("[::1]:8080:80", "127.0.0.1:8080:80", false),
            ("[::1]:8080:80", "[2001:2::1]:8080:80", false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(spec(a).conflicts_with(&spec(b)), expected, "{a} vs {b}");
            assert_eq!(spec(b).conflicts_with(&spec(a)), expected, "{b} vs {a}");
        }
    }

    #[test]
    fn each_family_sees_where_a_spec_is_published() {
        let lo6 = Ipv6Addr::LOCALHOST;
        let cases = [
            ("8080:80", Some(None), Some(None)),
            ("0.0.0.0:8080:80", Some(None), None),
            ("127.0.0.1:8080:80", Some(Some(Ipv4Addr::LOCALHOST)), None),
            ("[::]:8080:80", None, Some(None)),
            ("[::1]:8080:80", None, Some(Some(lo6))),
        ];
        for (text, v4, v6) in cases {
            assert_eq!(spec(text).host_ip4(), v4, "{text}");
            assert_eq!(spec(text).host_ip6(), v6, "{text}");
        }
    }

    #[derive(Debug, Deserialize)]
    struct File {
        ports: Vec<PortSpec>,
    }

    #[test]
    fn serde_uses_the_string_form() {
        let s = spec("127.0.0.1:5353:53/udp");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"127.0.0.1:5353:53/udp\"");
        assert_eq!(serde_json::from_str::<PortSpec>(&json).unwrap(), s);

        let file: File = toml::from_str(r#"ports = ["8080:80/udp", "1-2:3-4"]"#).unwrap();
        assert_eq!(file.ports, vec![spec("8080:80/udp"), spec("1-2:3-4")]);

        let bad = toml::from_str::<File>(r#"ports = ["70000:80"]"#).unwrap_err();
        assert!(
            bad.message().contains("port 70000 is out of range"),
            "{bad}"
        );
        assert!(serde_json::from_str::<PortSpec>("\"80\"").is_err());
        assert_eq!(serde_json::to_string(&Proto::Udp).unwrap(), "\"udp\"");
    }
}
